"""Signed outbound callbacks through a durable queue.

`enqueue` writes the callback in the caller's transaction, so a callback is owed exactly when the
change that causes it commits. The worker sends what is due, signs it, and retries with
exponential backoff and jitter until it is delivered or gives up.

A callback is sent as the API it was configured through sends it (its `flavour`): Twilio's
(X-Twilio-Signature, an HMAC with the account's auth token), or KORE's (kore-signature, a SHA-256
over the account's active webhook secret, the method, the URL and the body, and a
kore-idempotency-token that is the same on every attempt of one event). The kernel knows no
flavour's secrets: a runtime is given, per flavour, the function that finds them
(`Runtime.webhook_secrets`, filled in by `simplane.products.register`), asked on every send, so
that the secret active when a callback is sent signs it.

The worker of every process on a database sends callbacks: each first claims those it sends
(`lease_until`, wall-clock seconds, set in one write transaction, `FOR UPDATE SKIP LOCKED` on
PostgreSQL), so a callback is sent by one process; one claimed by a process that died is sent
again once its claim has run out (`LEASE_SECONDS`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from simplane.core import outbound
from simplane.core.clock import utc
from simplane.core.errors import TwilioError
from simplane.core.metrics import CALLBACKS
from simplane.core.models import Account, Callback
from simplane.core.signature import kore_signature, sign_form

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.callbacks")

MAX_ATTEMPTS = 8
BATCH = 50
LEASE_SECONDS = 60.0
TWILIO, KORE = "twilio", "kore"
FLAVOURS = (TWILIO, KORE)

# Account SIDs in, each one's webhook signing secret (in clear) out, for those that have one.
SecretLookup = Callable[[Session, "Runtime", Collection[str]], Mapping[str, str]]


def enqueue(db: Session, runtime: Runtime, account_sid: str, url: str | None, method: str | None,
            params: Mapping[str, str | None], flavour: str = TWILIO) -> None:
    """Owe a callback to `url` when the caller's transaction commits, sent as `flavour`'s API
    sends its callbacks."""
    if not url:
        return
    add(db, account_sid, url, method, params, runtime.clock.now(), flavour)
    runtime.worker.wake_after_commit(db)


def add(db: Session, account_sid: str, url: str, method: str | None,
        params: Mapping[str, str | None], now: datetime, flavour: str = TWILIO) -> None:
    """`enqueue` for a writer without a runtime at hand (ingest): the worker finds the callback
    on its next pass."""
    if flavour not in FLAVOURS:
        raise ValueError(f"unknown callback flavour {flavour!r}")
    db.add(Callback(account_sid=account_sid, url=url, method=(method or "POST").upper(),
                    params={k: v for k, v in params.items() if v is not None},
                    status="pending", attempts=0, next_attempt_at=now, date_created=now,
                    flavour=flavour, token=str(uuid.uuid4())))


def send_due(runtime: Runtime) -> bool:
    """Send the callbacks that are due (those this process claims); True when there was
    something to do."""
    now, wall = runtime.clock.now(), time.time()
    unclaimed = or_(Callback.lease_until.is_(None), Callback.lease_until < wall)
    with runtime.db.read() as db:  # a read first: an idle worker never takes the write lock
        if db.execute(select(Callback.pk).where(
                Callback.status == "pending", Callback.next_attempt_at <= now, unclaimed)
                .limit(1)).first() is None:
            return False
    with runtime.db.write() as db:
        due = list(db.scalars(
            select(Callback).where(Callback.status == "pending", Callback.next_attempt_at <= now,
                                   unclaimed)
            .order_by(Callback.pk).limit(BATCH).with_for_update(skip_locked=True)))
        for cb in due:
            cb.lease_until = wall + LEASE_SECONDS
        tokens = dict(db.execute(
            select(Account.sid, Account.auth_token_sealed)
            .where(Account.sid.in_({c.account_sid for c in due}))).all())
        secrets = _webhook_secrets(db, runtime, due)
    for cb in due:
        try:
            if cb.flavour == KORE:
                if secrets is None:  # never sign with nothing when a secret may exist
                    raise RuntimeError("the webhook secrets of KORE callbacks are not known "
                                       "(simplane.products.register installs their lookup)")
                code = _deliver_kore(runtime, cb, cb.account_sid in tokens,
                                     secrets.get(cb.account_sid))
            else:
                code = _deliver(runtime, cb, tokens.get(cb.account_sid))
        except Exception:  # one callback must never hold up the ones behind it
            log.exception("callback failed", extra={"fields": {"callback": cb.pk}})
            code = None
        ok = code is not None and 200 <= code < 300
        attempts = cb.attempts + 1
        values: dict = {"attempts": attempts, "last_status_code": code, "lease_until": None}
        if ok:
            values["status"] = "delivered"
        elif attempts >= MAX_ATTEMPTS or (code is not None and 400 <= code < 500 and code != 429):
            values["status"] = "failed"
        else:
            backoff = min(2 ** attempts, 600) * (0.5 + random.random())
            values["next_attempt_at"] = runtime.clock.now() + timedelta(seconds=backoff)
        CALLBACKS.labels(values.get("status", "retry")).inc()
        with runtime.db.write() as db:
            db.execute(update(Callback).where(Callback.pk == cb.pk, Callback.status == "pending")
                       .values(**values))
    return bool(due)


def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """The first moment after `now` that a callback is to be retried."""
    with runtime.db.read() as db:
        return db.scalar(select(func.min(Callback.next_attempt_at)).where(
            Callback.status == "pending", Callback.next_attempt_at > now))


USER_AGENT = "TwilioProxy/1.1"  # what Twilio's webhook requests say they are


def account_token(db: Session, runtime: Runtime, account_sid: str) -> str:
    """The account's auth token, which signs its callbacks."""
    sealed = db.execute(select(Account.auth_token_sealed)
                        .where(Account.sid == account_sid)).scalar_one()
    return runtime.box.open(sealed)


def _signed(token: str, url: str, params: dict[str, str], method: str
            ) -> tuple[str, dict[str, str], dict[str, str] | None]:
    """URL, headers and form of a webhook request signed with `token` (X-Twilio-Signature):
    a GET carries the parameters in its query."""
    params = {k: str(v) for k, v in params.items()}
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if method == "GET":
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        url = urlunsplit(parts._replace(query=query))
        headers["X-Twilio-Signature"] = sign_form(token, url, {})
        return url, headers, None
    headers["X-Twilio-Signature"] = sign_form(token, url, params)
    return url, headers, params


def _failed(url: str, exc: Exception) -> None:
    error = outbound.failure_text(exc) if isinstance(exc, httpx.HTTPError) else "invalid URL"
    log.info("callback failed", extra={"fields": {"host": urlsplit(url).hostname,
                                                  "error": error}})


def send_signed(runtime: Runtime, token: str, url: str, params: dict[str, str],
                method: str = "POST") -> httpx.Response | None:
    """Send a webhook signed with `token` now and return the answer; None when it could not be
    reached, or the outbound policy refused its address."""
    try:
        signed_url, headers, form = _signed(token, url, params, method)
        return runtime.http.request(method, signed_url, data=form, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a URL stored before it was checked
        _failed(url, exc)
        return None


class Waiting:
    """Callbacks that API requests are waiting for, counted per account: at most `cap` at
    once, so that one account cannot hold any number of connections and sockets open."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, account_sid: str) -> Iterator[None]:
        with self._lock:
            count = self._counts.get(account_sid, 0)
            if count >= self.cap:
                raise TwilioError(429, 20429, f"Too many requests: {self.cap} of this "
                                  "account's callbacks are already awaited; try again when they "
                                  "have answered")
            self._counts[account_sid] = count + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._counts.pop(account_sid) - 1
                if left:
                    self._counts[account_sid] = left


async def send_signed_async(runtime: Runtime, account_sid: str, token: str, url: str,
                            params: dict[str, str], method: str = "POST"
                            ) -> httpx.Response | None:
    """`send_signed` for an API request that waits for the answer: it waits on the event loop,
    holding no thread, and the account may have `callback_concurrency` of them at once (one
    more is a 429)."""
    with runtime.waiting.slot(account_sid):
        try:
            signed_url, headers, form = _signed(token, url, params, method)
            return await runtime.http_async.request(
                method, signed_url, data=form, headers=headers,
                timeout=runtime.settings.callback_timeout)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            _failed(url, exc)
            return None


def _webhook_secrets(db: Session, runtime: Runtime,
                     due: list[Callback]) -> Mapping[str, str] | None:
    """The active webhook secrets of the accounts with KORE callbacks due, read now: a secret
    rotated since a callback was queued does not sign it. None when this runtime was given no
    way to find them."""
    accounts = {cb.account_sid for cb in due if cb.flavour == KORE}
    if not accounts:
        return {}
    lookup = runtime.webhook_secrets.get(KORE)
    if lookup is None:
        return None
    try:
        return lookup(db, runtime, accounts)
    except Exception:  # (a secret the server key cannot open): Twilio's callbacks still go
        log.exception("webhook secrets could not be read")
        return None


KORE_USER_AGENT = "KoreProxy/1.1"  # what KORE's webhook requests say they are


def kore_request(secret: str | None, url: str, params: Mapping[str, str], method: str,
                 token: str, now: datetime) -> tuple[str, dict[str, str], bytes]:
    """URL, headers and raw body of a callback as KORE sends it: form-encoded (a GET carries the
    parameters in its query), signed with kore-signature (empty without a secret), with the
    event's kore-idempotency-token and KORE's date header."""
    form = urlencode({k: str(v) for k, v in params.items()})
    body = b""
    headers = {"User-Agent": KORE_USER_AGENT, "Accept": "*/*",
               "kore-idempotency-token": token, "date": utc(now).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if method == "GET":
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(query="&".join(q for q in (parts.query, form) if q)))
    else:
        body = form.encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["kore-signature"] = kore_signature(secret, method, url, body)
    return url, headers, body


def _deliver_kore(runtime: Runtime, cb: Callback, account_exists: bool,
                  secret: str | None) -> int | None:
    if not account_exists:
        return None
    token = cb.token or str(uuid.uuid5(uuid.NAMESPACE_URL, f"simplane:callback:{cb.pk}"))
    try:
        url, headers, body = kore_request(secret, cb.url, cb.params, cb.method, token,
                                          runtime.clock.now())
        response = runtime.http.request(cb.method, url, content=body, headers=headers)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # a URL stored before it was checked
        _failed(cb.url, exc)
        return None
    return response.status_code


def _deliver(runtime: Runtime, cb: Callback, sealed: str | None) -> int | None:
    if sealed is None:
        return None
    response = send_signed(runtime, runtime.box.open(sealed), cb.url, cb.params, cb.method)
    return None if response is None else response.status_code
