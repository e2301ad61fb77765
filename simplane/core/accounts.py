"""Accounts and API keys: creation, the bootstrap account, and credential checks."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from simplane.core.clock import Clock
from simplane.core.errors import bad_request
from simplane.core.models import Account, ApiKey
from simplane.core.secrets import SecretBox, new_token

if TYPE_CHECKING:
    from simplane.core.db import Database
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
        owner_account_sid=owner_account_sid, auth_token_hash=box.digest(sid, token),
        auth_token_sealed=box.seal(token), date_created=now, date_updated=now,
    ))
    db.flush()
    return Credentials(sid=sid, secret=token, account_sid=sid)


def create_api_key(
    db: Session, box: SecretBox, clock: Clock, account_sid: str, friendly_name: str | None = None
) -> Credentials:
    if db.scalar(select(Account.sid).where(Account.sid == account_sid)) is None:
        raise bad_request(f"No account {account_sid}")
    sid, secret = new_sid("SK"), new_token() + new_token()
    db.add(ApiKey(sid=sid, account_sid=account_sid, friendly_name=friendly_name,
                  secret_hash=box.digest(sid, secret), date_created=clock.now()))
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
        stored = existing.auth_token_hash
        if not box.check(sid, token, stored) or box.outdated(stored):  # rotated, or an old hash
            existing.auth_token_hash = box.digest(sid, token)
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


class FailureCounter:
    """Failed logins per key (a source address, or the SID tried) in fixed windows; the keys seen
    last are kept, at most `size` of them."""

    def __init__(self, limit: int, window: float, size: int = 10_000) -> None:
        self.limit, self.window, self.size = limit, window, size
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, now: float) -> None:
        with self._lock:
            started, count = self._counts.pop(key, (now, 0))
            if now - started >= self.window:
                started, count = now, 0
            self._counts[key] = (started, count + 1)
            if len(self._counts) > self.size:
                self._counts.popitem(last=False)

    def retry_after(self, key: str, now: float) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        started, count = self._counts.get(key, (now, 0))
        left = started + self.window - now
        return math.ceil(left) if count >= self.limit and left > 0 else 0


class Authenticator:
    """HTTP Basic credentials to an account SID. Verified credentials are remembered briefly, so
    a client's requests touch the database once in a while, not each time. Failed attempts are
    counted per source address and per SID tried: past a limit within a minute, credentials that
    are not already verified are not checked until the minute is over (`backoff`), so guessing
    neither gets far nor takes the server's time from other clients. The HTTP layer answers a
    failed or refused login after DELAY seconds."""

    TTL = 30.0
    DELAY = 0.25
    WINDOW = 60.0
    FAILURES_PER_ADDRESS = 50
    FAILURES_PER_SID = 200

    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box
        self._cache: dict[bytes, tuple[str, float]] = {}  # kept past their TTL: see backoff
        self._lock = threading.Lock()
        self.by_address = FailureCounter(self.FAILURES_PER_ADDRESS, self.WINDOW)
        self.by_sid = FailureCounter(self.FAILURES_PER_SID, self.WINDOW)

    @staticmethod
    def _key(username: str, password: str) -> bytes:
        return hashlib.sha256(f"{username}\0{password}".encode()).digest()

    def cached(self, username: str, password: str) -> str | None:
        """The account of credentials verified within the last TTL seconds."""
        hit = self._cache.get(self._key(username, password))
        return hit[0] if hit and hit[1] > time.monotonic() else None

    def backoff(self, address: str, username: str | None = None,
                password: str | None = None) -> int:
        """Seconds before credentials from `address` (for `username`, when there is one) are
        checked again; 0 when they may be now, and always for credentials that held before in
        this process: whatever others try, a client that has logged in keeps working."""
        if username is not None and password is not None and (
                self._key(username, password) in self._cache):
            return 0
        now = time.monotonic()
        wait = self.by_address.retry_after(address, now)
        return max(wait, self.by_sid.retry_after(username, now)) if username is not None else wait

    def failed(self, username: str | None, address: str) -> None:
        now = time.monotonic()
        self.by_address.add(address, now)
        if username is not None:
            self.by_sid.add(username, now)

    def verify(self, username: str, password: str) -> str | None:
        """Check credentials against the database (blocking); remembered when they hold."""
        with self._db.read() as db:
            account_sid, outdated = self._check(db, username, password)
        if account_sid and outdated:
            self._rehash(username, password, outdated)
        if account_sid:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[self._key(username, password)] = (account_sid,
                                                             time.monotonic() + self.TTL)
        return account_sid

    def _check(self, db: Session, username: str, password: str) -> tuple[str | None, str | None]:
        """(account SID, the stored hash when it is of an earlier kind) or (None, None). A SID
        that does not exist costs what a wrong secret does."""
        row = None
        if username.startswith("AC"):
            row = db.execute(select(Account.auth_token_hash, Account.sid, Account.status)
                             .where(Account.sid == username)).first()
        elif username.startswith("SK"):
            row = db.execute(
                select(ApiKey.secret_hash, Account.sid, Account.status)
                .join(Account, Account.sid == ApiKey.account_sid)
                .where(ApiKey.sid == username)
            ).first()
        if row is None:
            self._box.check(username, password, None)  # the same work, against a dummy
            return None, None
        stored, account_sid, status = row
        if not self._box.check(username, password, stored) or status != "active":
            return None, None
        return account_sid, stored if self._box.outdated(stored) else None

    def _rehash(self, username: str, password: str, old: str) -> None:
        """Replace a hash of an earlier kind, now that the secret is known to match it."""
        table, column = (Account, Account.auth_token_hash) if username.startswith("AC") else (
            ApiKey, ApiKey.secret_hash)
        with self._db.write() as db:
            db.execute(update(table).where(table.sid == username, column == old)
                       .values({column: self._box.digest(username, password)}))

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
