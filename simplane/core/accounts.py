"""Accounts and API keys: creation, the bootstrap account, and credential checks."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from simplane.core.clock import Clock
from simplane.core.errors import bad_request
from simplane.core.models import Account, ApiKey
from simplane.core.secrets import SecretBox, hash_secret, new_token, verify_secret
from simplane.core.sids import looks_like_sid, new_sid


@dataclass(frozen=True)
class Credentials:
    """What a new account or key is told once; only hashes (and a sealed token) are kept."""

    sid: str
    secret: str
    account_sid: str


def create_account(
    db: Session, box: SecretBox, clock: Clock, *, friendly_name: str | None = None,
    sid: str | None = None, auth_token: str | None = None, owner_account_sid: str | None = None,
    admin: bool = False,
) -> Credentials:
    sid = sid or new_sid("AC")
    if not looks_like_sid(sid, "AC"):
        raise bad_request(f"Account SID {sid!r} must be AC followed by 32 hex digits")
    token = auth_token or new_token()
    if len(token) < 16:
        raise bad_request("Auth token must be at least 16 characters")
    now = clock.now()
    db.add(Account(
        sid=sid, friendly_name=friendly_name or sid, status="active", admin=admin,
        owner_account_sid=owner_account_sid, auth_token_hash=hash_secret(token),
        auth_token_sealed=box.seal(token), date_created=now, date_updated=now,
    ))
    db.flush()
    return Credentials(sid=sid, secret=token, account_sid=sid)


def create_api_key(
    db: Session, clock: Clock, account_sid: str, friendly_name: str | None = None
) -> Credentials:
    if db.scalar(select(Account.sid).where(Account.sid == account_sid)) is None:
        raise bad_request(f"No account {account_sid}")
    sid, secret = new_sid("SK"), new_token() + new_token()
    db.add(ApiKey(sid=sid, account_sid=account_sid, friendly_name=friendly_name,
                  secret_hash=hash_secret(secret), date_created=clock.now()))
    db.flush()
    return Credentials(sid=sid, secret=secret, account_sid=account_sid)


def ensure_bootstrap_account(
    db: Session, box: SecretBox, clock: Clock, sid: str | None, token: str | None
) -> Credentials | None:
    """The account named by SIMPLANE_ACCOUNT_SID/AUTH_TOKEN, created if absent; without them, one
    generated on first start (returned so that its credentials are printed once)."""
    if sid and token:
        existing = db.scalar(select(Account).where(Account.sid == sid))
        if existing is None:
            return create_account(db, box, clock, sid=sid, auth_token=token, friendly_name="bootstrap",
                                  admin=True)
        if not verify_secret(token, existing.auth_token_hash):  # the operator rotated it
            existing.auth_token_hash = hash_secret(token)
            existing.auth_token_sealed = box.seal(token)
            existing.date_updated = clock.now()
        return None
    if db.scalar(select(Account.pk).limit(1)) is None:
        return create_account(db, box, clock, friendly_name="bootstrap", admin=True)
    return None


def default_account_sid(db: Session) -> str | None:
    """The bootstrap account: the first one created."""
    return db.scalar(select(Account.sid).order_by(Account.pk).limit(1))


def accounts_in_reach(db: Session, account_sid: str) -> set[str]:
    """The accounts a caller may move resources to: itself and its subaccounts."""
    subaccounts = db.scalars(select(Account.sid).where(Account.owner_account_sid == account_sid))
    return {account_sid, *subaccounts}


class Authenticator:
    """HTTP Basic credentials to an account SID; verified hashes are remembered briefly so that the
    slow hash is paid once per credential, not per request."""

    TTL = 30.0

    def __init__(self) -> None:
        self._cache: dict[bytes, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, db_factory: Callable[[], AbstractContextManager[Session]],
                     username: str, password: str) -> str | None:
        key = hashlib.sha256(f"{username}\0{password}".encode()).digest()
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit and hit[1] > now:
            return hit[0]
        with db_factory() as db:
            account_sid = self._check(db, username, password)
        if account_sid:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (account_sid, now + self.TTL)
        return account_sid

    @staticmethod
    def _check(db: Session, username: str, password: str) -> str | None:
        if username.startswith("AC"):
            account = db.scalar(select(Account).where(Account.sid == username))
            if account and account.status == "active" and verify_secret(password, account.auth_token_hash):
                return account.sid
        elif username.startswith("SK"):
            row = db.execute(
                select(ApiKey.secret_hash, Account.sid, Account.status)
                .join(Account, Account.sid == ApiKey.account_sid)
                .where(ApiKey.sid == username)
            ).first()
            if row and row.status == "active" and verify_secret(password, row.secret_hash):
                return row.sid
        return None

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
