"""KORE's Webhook API rules: the signing secrets of an account (`/v1/secrets`). No HTTP here.

As KORE documents secret rotation: the first secret an account creates is `active`, and every
one after it `pending`, replacing the pending one there was; making the pending secret `active`
retires the active one (for good: rotation cannot be undone), so there is only ever one active
secret, the one that signs every KORE-flavoured callback (`simplane.core.callbacks`). A secret is
answered once, when it is created; it is kept sealed with the server's key.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from simplane.core.errors import TwilioError
from simplane.core.secrets import SecretBox
from simplane.kore.webhook_models import WebhookSecret

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

ACTIVE, PENDING = "active", "pending"
STATUSES = (ACTIVE, PENDING)
MAX_NAME = 255  # what the name column holds
CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

# Error codes of the rules' answers (KORE publishes its codes only by example: 30010 is
# "Resource access is forbidden"); the HTTP status says the rest. They are answered in the
# Webhook API's shape (`simplane.kore.errors.with_info`).
INVALID = 30001
NOT_FOUND = 30004
CONFLICT = 30009


def invalid(message: str) -> TwilioError:
    return TwilioError(400, INVALID, message)


def not_found(secret_id: str) -> TwilioError:
    return TwilioError(404, NOT_FOUND, f"Secret {secret_id!r} was not found")


def new_id(now: datetime) -> str:
    """whs_ and a ULID in lower case (48 bits of milliseconds, 80 random bits), as KORE's ids
    look: 30 characters that sort by creation."""
    value = (int(now.timestamp() * 1000) << 80) | secrets.randbits(80)
    return "whs_" + "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def new_secret() -> str:
    return secrets.token_hex(32)


# --- requests ------------------------------------------------------------------------------

def name_of(body: Mapping[str, Any], required: bool) -> str | None:
    if "Name" not in body:
        if required:
            raise invalid("Missing required parameter Name")
        return None
    name = body["Name"]
    if not isinstance(name, str) or not name.strip():
        raise invalid("Invalid Name: must be a non-empty string")
    if "\x00" in name or not _utf8(name):
        raise invalid("Invalid Name: must be UTF-8 text without NUL characters")
    if len(name) > MAX_NAME:
        raise invalid(f"Invalid Name: longer than {MAX_NAME} characters")
    return name


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800"): no database stores it
        return False
    return True


def status_of(body: Mapping[str, Any]) -> str | None:
    if "Status" not in body:
        return None
    status = body["Status"]
    if status not in STATUSES:
        raise invalid(f"Invalid Status: {status!r} is not one of {', '.join(STATUSES)}")
    return status


# --- the rules -----------------------------------------------------------------------------

def create_secret(db: Session, box: SecretBox, now: datetime, account_sid: str,
                  name: str) -> tuple[WebhookSecret, str]:
    """A new secret and its value, the one time it is told: active if the account has no
    active secret, else pending, in place of the pending one there was."""
    has_active = db.scalar(select(func.count()).select_from(WebhookSecret).where(
        WebhookSecret.account_sid == account_sid, WebhookSecret.status == ACTIVE))
    status = PENDING if has_active else ACTIVE
    if status == PENDING:
        db.execute(delete(WebhookSecret).where(WebhookSecret.account_sid == account_sid,
                                               WebhookSecret.status == PENDING))
    value = new_secret()
    row = WebhookSecret(id=new_id(now), account_sid=account_sid, name=name, status=status,
                        secret_sealed=box.seal(value), date_created=now, last_modified=now)
    db.add(row)
    _flush(db)
    return row, value


def list_secrets(db: Session, account_sid: str, status: str | None, offset: int,
                 limit: int) -> tuple[list[WebhookSecret], int]:
    """A page of the account's secrets (the active one first), and how many there are."""
    where = [WebhookSecret.account_sid == account_sid]
    if status is not None:
        where.append(WebhookSecret.status == status)
    count = db.scalar(select(func.count()).select_from(WebhookSecret).where(*where)) or 0
    rows = list(db.scalars(select(WebhookSecret).where(*where)
                           .order_by(WebhookSecret.status, WebhookSecret.pk)
                           .offset(offset).limit(limit)))
    return rows, count


def get_secret(db: Session, account_sid: str, secret_id: str) -> WebhookSecret:
    row = db.scalar(select(WebhookSecret).where(WebhookSecret.id == secret_id,
                                                WebhookSecret.account_sid == account_sid))
    if row is None:  # another account's secret is not found either
        raise not_found(secret_id)
    return row


def modify_secret(db: Session, now: datetime, account_sid: str, secret_id: str,
                  name: str | None, status: str | None) -> WebhookSecret:
    """Rename a secret, or make the pending one active (the active one is retired). An active
    secret cannot become pending again: an account that has one always signs with one."""
    row = get_secret(db, account_sid, secret_id)
    if status == PENDING and row.status == ACTIVE:
        raise invalid(f"Invalid Status: {secret_id} is the active secret; create a new secret "
                      "and make it active to rotate")
    if status == ACTIVE and row.status == PENDING:
        db.execute(delete(WebhookSecret).where(WebhookSecret.account_sid == account_sid,
                                               WebhookSecret.status == ACTIVE))
        row.status = ACTIVE
    if name is not None:
        row.name = name
    row.last_modified = now
    _flush(db)
    return row


def _flush(db: Session) -> None:
    try:
        db.flush()
    except IntegrityError:  # another request changed the account's secrets at the same moment
        raise TwilioError(409, CONFLICT, "The account's secrets changed at the same moment; "
                        "try again") from None


# --- for the callbacks ---------------------------------------------------------------------

def active_secrets(db: Session, runtime: Runtime,
                   account_sids: Collection[str]) -> dict[str, str]:
    """Account SID → its active secret, in clear, for the accounts that have one: what signs
    their KORE callbacks now (`simplane.core.callbacks.SecretLookup`)."""
    rows = db.execute(select(WebhookSecret.account_sid, WebhookSecret.secret_sealed).where(
        WebhookSecret.account_sid.in_(set(account_sids)), WebhookSecret.status == ACTIVE))
    return {account_sid: runtime.box.open(sealed) for account_sid, sealed in rows}
