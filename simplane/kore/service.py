"""API clients: creation, lookup, revocation and the check of their credentials. A Session in,
rows out; no HTTP."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from simplane.core.clock import Clock
from simplane.core.db import changed
from simplane.core.errors import TwilioError, bad_request
from simplane.core.models import Account
from simplane.core.secrets import SecretBox
from simplane.kore.models import ApiClient, AuthState

PRODUCTS = ("SuperSIM", "ProgrammableWireless")
# The token lifetimes KORE offers, as `--lifetime` names them.
LIFETIMES = {"1h": 3600, "1d": 86_400, "30d": 30 * 86_400, "24m": 730 * 86_400}
CLIENT_TYPES = ("admin", "standard")
_ACCOUNT_ID = re.compile(r"^acct_([0-9a-f]{32})$")


def account_id(account_sid: str) -> str:
    """KORE's id for an account (`acct_…`): its own, beside Twilio's AC SID, which answers keep."""
    return "acct_" + account_sid[2:].lower()


def account_sid_of(kore_account_id: str) -> str | None:
    match = _ACCOUNT_ID.match(kore_account_id)
    return "AC" + match.group(1) if match else None


def products_of(given: Iterable[str]) -> list[str]:
    """Product names as KORE spells them, each once, in KORE's order; others are a 400."""
    wanted = {p.strip() for p in given if p.strip()}
    unknown = sorted(wanted - set(PRODUCTS))
    if unknown:
        raise bad_request(f"Invalid products: {', '.join(unknown)} (give SuperSIM or "
                          "ProgrammableWireless)")
    if not wanted:
        raise bad_request("Invalid products: give at least one of SuperSIM, ProgrammableWireless")
    return [p for p in PRODUCTS if p in wanted]


def lifetime_of(name: str) -> int:
    if name not in LIFETIMES:
        raise bad_request(f"Invalid lifetime: {name!r} is not one of {', '.join(LIFETIMES)}")
    return LIFETIMES[name]


def create_client(db: Session, box: SecretBox, clock: Clock, account_sid: str, *, name: str,
                  products: list[str], lifetime: int = LIFETIMES["1h"],
                  client_type: str = "standard", client_owner: str | None = None,
                  locked: bool = False) -> tuple[ApiClient, str]:
    """A new client of `account_sid` and its secret, which is told once: only its hash is kept."""
    if client_type not in CLIENT_TYPES:
        raise bad_request(f"Invalid client_type: {client_type!r} is not admin or standard")
    if db.scalar(select(Account.sid).where(Account.sid == account_sid)) is None:
        raise bad_request(f"No account {account_sid}")
    client_id = "apiclient_" + secrets.token_hex(13)
    secret = secrets.token_urlsafe(32)
    client = ApiClient(client_id=client_id, account_sid=account_sid, name=name,
                       client_type=client_type, client_owner=client_owner,
                       products=products_of(products), lifetime=lifetime, locked=locked,
                       secret_hash=box.digest(client_id, secret), date_created=clock.now())
    db.add(client)
    db.flush()
    return client, secret


def active(db: Session, account_sid: str | None = None):  # type: ignore[no-untyped-def]
    """The clients not revoked (of `account_sid`), as a statement to filter and page."""
    stmt = select(ApiClient).where(ApiClient.date_revoked.is_(None))
    return stmt if account_sid is None else stmt.where(ApiClient.account_sid == account_sid)


def get_client(db: Session, account_sid: str, client_id: str) -> ApiClient:
    client = db.scalar(active(db, account_sid).where(ApiClient.client_id == client_id))
    if client is None:
        raise TwilioError(404, 20404, f"The requested resource client {client_id} was not found")
    return client


def revoke_client(db: Session, clock: Clock, client_id: str,
                  account_sid: str | None = None) -> ApiClient:
    """Revoke a client: no more tokens for it, and the ones it has stop working at once (every
    process sees the generation move on; see `tokens.Verifier`)."""
    stmt = active(db, account_sid).where(ApiClient.client_id == client_id)
    client = db.scalar(stmt)
    if client is None:
        raise TwilioError(404, 20404, f"No active client {client_id}")
    client.date_revoked = clock.now()
    bump_generation(db)
    return client


def bump_generation(db: Session) -> None:
    moved = db.execute(update(AuthState).where(AuthState.id == 1)
                       .values(generation=AuthState.generation + 1))
    if not changed(moved):  # the row is gone (a snapshot from before it was restored)
        db.add(AuthState(id=1, generation=1))
        db.flush()


def generation(db: Session) -> int:
    return db.scalar(select(AuthState.generation).where(AuthState.id == 1)) or 0


def check_credentials(db: Session, box: SecretBox, client_id: str,
                      secret: str) -> ApiClient | None:
    """The active, unlocked client of an active account whose secret this is; None otherwise,
    after the same work (a client id that does not exist costs what a wrong secret does)."""
    row = db.execute(select(ApiClient, Account.status)
                     .join(Account, Account.sid == ApiClient.account_sid)
                     .where(ApiClient.client_id == client_id)).first()
    if row is None:
        box.check(client_id, secret, None)
        return None
    client, status = row
    if not box.check(client_id, secret, client.secret_hash):
        return None
    if client.date_revoked is not None or client.locked or status != "active":
        return None
    return client


def rfc1123(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")
