"""Bearer tokens: signed, not stored, checked in memory.

A token is `<client id>.<expiry, Unix seconds>.<nonce>.<HMAC>`, the HMAC keyed with a key
derived from the server key (`SecretBox.digest`), so issuing one writes nothing and checking one
costs an HMAC and, the first time a process sees it, one read of its client (revoked? locked?
which account and products?). What was verified is kept per process (`Verifier`); each process
reads the revocation generation (`kore_auth_state`) again at most every REFRESH seconds and
drops what it kept when it moved, and a revocation in this process drops it at once. Expiry is
checked on every request against the server's clock (`runtime.clock`), which tests move.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from simplane.core.models import Account
from simplane.core.secrets import HMAC_PREFIX, SecretBox
from simplane.kore import service
from simplane.kore.models import ApiClient

if TYPE_CHECKING:
    from simplane.core.db import Database
    from simplane.core.runtime import Runtime


@dataclass(frozen=True)
class Grant:
    """What a verified token lets its bearer do, and until when."""

    account_sid: str
    client_id: str
    client_type: str
    products: frozenset[str]
    expires: datetime


def _mac(box: SecretBox, payload: str) -> str:
    return box.digest("kore-token", payload).removeprefix(HMAC_PREFIX)


def issue(box: SecretBox, client: ApiClient, now: datetime) -> str:
    expires = int(now.timestamp()) + client.lifetime
    payload = f"{client.client_id}.{expires}.{secrets.token_hex(8)}"
    return f"{payload}.{_mac(box, payload)}"


def parse(box: SecretBox, token: str) -> tuple[str, datetime] | None:
    """(client id, expiry) of a token this server signed; None for anything else."""
    payload, _, mac = token.rpartition(".")
    parts = payload.split(".")
    if len(parts) != 3 or not parts[1].isascii() or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    if not hmac.compare_digest(_mac(box, payload).encode(), mac.encode("utf-8", "replace")):
        return None
    return parts[0], datetime.fromtimestamp(int(parts[1]), UTC)


class Verifier:
    """Tokens to grants for one runtime, remembered (see the module)."""

    REFRESH = 0.1
    SIZE = 10_000

    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box
        self._cache: dict[str, Grant] = {}
        self._generation: int | None = None
        self._checked = -1e9
        self._lock = threading.Lock()
        _VERIFIERS.add(self)

    def cached(self, token: str) -> Grant | None:
        """The grant of a token verified since the generation was last read, if that was less
        than REFRESH seconds ago (cheap: for the event loop)."""
        if time.monotonic() - self._checked >= self.REFRESH:
            return None
        return self._cache.get(token)

    def known(self, token: str) -> bool:
        """Whether the token held when last checked: its bearer is not held back by the
        failures of others from its address (as credentials that held before are not)."""
        return token in self._cache

    def verify(self, token: str) -> Grant | None:
        """Check a token (blocking: reads the database); remembered when it holds. Expiry is
        the caller's to check, on its clock."""
        with self._db.read() as db:
            current = service.generation(db)
            with self._lock:
                if current != self._generation:
                    self._cache.clear()
                    self._generation = current
                self._checked = time.monotonic()
            hit = self._cache.get(token)
            if hit is not None:
                return hit
            parsed = parse(self._box, token)
            if parsed is None:
                return None
            client_id, expires = parsed
            row = db.execute(
                select(ApiClient.account_sid, ApiClient.client_type, ApiClient.products,
                       ApiClient.locked, ApiClient.date_revoked, Account.status)
                .join(Account, Account.sid == ApiClient.account_sid)
                .where(ApiClient.client_id == client_id)).first()
        if row is None or row.locked or row.date_revoked is not None or row.status != "active":
            return None
        grant = Grant(row.account_sid, client_id, row.client_type, frozenset(row.products),
                      expires)
        with self._lock:
            if len(self._cache) >= self.SIZE:
                self._cache.clear()
            if self._generation == current:
                self._cache[token] = grant
        return grant

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
            self._checked = -1e9


_VERIFIERS: weakref.WeakSet[Verifier] = weakref.WeakSet()
_OF_RUNTIME: weakref.WeakKeyDictionary[Runtime, Verifier] = weakref.WeakKeyDictionary()


def verifier(runtime: Runtime) -> Verifier:
    found = _OF_RUNTIME.get(runtime)
    if found is None:
        found = _OF_RUNTIME.setdefault(runtime, Verifier(runtime.db, runtime.box))
    return found


def forget_all() -> None:
    """After a revocation in this process: every verifier in it checks its tokens again."""
    for each in list(_VERIFIERS):
        each.forget()
