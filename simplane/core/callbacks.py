"""Signed outbound callbacks through a durable queue.

`enqueue` writes the callback in the caller's transaction, so a callback is owed exactly when the
change that causes it commits. The worker sends what is due, signs it with the account's auth
token, and retries with exponential backoff and jitter until it is delivered or gives up.
"""

from __future__ import annotations

import logging
import random
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from simplane.core.metrics import CALLBACKS
from simplane.core.models import Account, Callback
from simplane.core.signature import sign_form

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.callbacks")

MAX_ATTEMPTS = 8
BATCH = 50


def enqueue(db: Session, runtime: Runtime, account_sid: str, url: str | None, method: str | None,
            params: dict[str, str]) -> None:
    if not url:
        return
    now = runtime.clock.now()
    db.add(Callback(account_sid=account_sid, url=url, method=(method or "POST").upper(),
                    params={k: v for k, v in params.items() if v is not None},
                    status="pending", attempts=0, next_attempt_at=now, date_created=now))
    runtime.worker.wake_after_commit(db)


def send_due(runtime: Runtime) -> bool:
    """Send the callbacks that are due; True when there was something to do."""
    now = runtime.clock.now()
    with runtime.db.read() as db:
        due = list(db.scalars(
            select(Callback).where(Callback.status == "pending", Callback.next_attempt_at <= now)
            .order_by(Callback.pk).limit(BATCH)))
        tokens = {sid: sealed for sid, sealed in db.execute(
            select(Account.sid, Account.auth_token_sealed)
            .where(Account.sid.in_({c.account_sid for c in due})))}
    for cb in due:
        code = _deliver(runtime, cb, tokens.get(cb.account_sid))
        ok = code is not None and 200 <= code < 300
        attempts = cb.attempts + 1
        values: dict = {"attempts": attempts, "last_status_code": code}
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


def _deliver(runtime: Runtime, cb: Callback, sealed: str | None) -> int | None:
    if sealed is None:
        return None
    token = runtime.box.open(sealed)
    params = {k: str(v) for k, v in cb.params.items()}
    headers = {"User-Agent": "TwilioProxy/1.1", "Accept": "*/*"}
    try:
        if cb.method == "GET":
            parts = urlsplit(cb.url)
            query = "&".join(q for q in (parts.query, urlencode(params)) if q)
            url = urlunsplit(parts._replace(query=query))
            headers["X-Twilio-Signature"] = sign_form(token, url, {})
            response = runtime.http.get(url, headers=headers)
        else:
            headers["X-Twilio-Signature"] = sign_form(token, cb.url, params)
            response = runtime.http.post(cb.url, data=params, headers=headers)
        return response.status_code
    except httpx.HTTPError as exc:
        log.info("callback failed", extra={"fields": {"host": urlsplit(cb.url).hostname, "error": type(exc).__name__}})
        return None
