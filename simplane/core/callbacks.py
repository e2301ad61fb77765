"""Signed outbound callbacks through a durable queue.

`enqueue` writes the callback in the caller's transaction, so a callback is owed exactly when the
change that causes it commits. The worker sends what is due, signs it with the account's auth
token, and retries with exponential backoff and jitter until it is delivered or gives up.

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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from simplane.core import outbound
from simplane.core.errors import TwilioError
from simplane.core.metrics import CALLBACKS
from simplane.core.models import Account, Callback
from simplane.core.signature import sign_form

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.callbacks")

MAX_ATTEMPTS = 8
BATCH = 50
LEASE_SECONDS = 60.0


def enqueue(db: Session, runtime: Runtime, account_sid: str, url: str | None, method: str | None,
            params: Mapping[str, str | None]) -> None:
    if not url:
        return
    now = runtime.clock.now()
    db.add(Callback(account_sid=account_sid, url=url, method=(method or "POST").upper(),
                    params={k: v for k, v in params.items() if v is not None},
                    status="pending", attempts=0, next_attempt_at=now, date_created=now))
    runtime.worker.wake_after_commit(db)


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
    for cb in due:
        try:
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


def _deliver(runtime: Runtime, cb: Callback, sealed: str | None) -> int | None:
    if sealed is None:
        return None
    response = send_signed(runtime, runtime.box.open(sealed), cb.url, cb.params, cb.method)
    return None if response is None else response.status_code
