"""SIM inventory: what an operator provisions into an account (Wireless has no public create).

ICCIDs are 19–20 digits ending in a Luhn check digit; every SIM gets an IMSI (generated when not
given) and a registration code. An MSISDN (the number an SMSC reaches the SIM on, for SMS
Commands through SMPP) is optional: given in the file, or generated under a prefix.
"""

from __future__ import annotations

import csv
import re
import secrets
import string
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import String, any_, bindparam, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session
from stdnum import luhn
from stdnum.exceptions import ValidationError

from simplane.core.bulk import copy_rows
from simplane.core.lookups import unique_name_problem
from simplane.core.params import ascii_digits
from simplane.core.sids import looks_like_sid, new_sid
from simplane.wireless.models import RatePlan, Sim
from simplane.wireless.service import NEEDS_RATE_PLAN

# Issuer prefix of generated ICCIDs: 89 (telecom) + 882 (international) + issuer 0.
ICCID_PREFIX = "898820"
# Home network of generated IMSIs: MCC 901 (international) / MNC 42.
IMSI_PREFIX = "90142"
CODE_ALPHABET = string.ascii_uppercase + string.digits
MSISDN_LENGTH = 12  # digits of a generated MSISDN, country code included
STATUSES = ("new", "ready", "active", "suspended", "deactivated", "canceled")


class InventoryError(ValueError):
    """Raised with every problem found, one per line."""


@dataclass
class SimRow:
    iccid: str
    imsi: str | None = None
    registration_code: str | None = None
    unique_name: str | None = None
    status: str = "new"
    msisdn: str | None = None


def new_iccid(prefix: str = ICCID_PREFIX, length: int = 19) -> str:
    """A random ICCID of `length` digits (19 or 20) under `prefix`, with its Luhn digit."""
    body = prefix + "".join(secrets.choice(string.digits)
                            for _ in range(length - 1 - len(prefix)))
    return body + luhn.calc_check_digit(body)


def new_imsi(prefix: str = IMSI_PREFIX) -> str:
    return prefix + "".join(secrets.choice(string.digits) for _ in range(15 - len(prefix)))


def new_msisdn(prefix: str) -> str:
    return prefix + "".join(secrets.choice(string.digits)
                            for _ in range(MSISDN_LENGTH - len(prefix)))


def msisdn_prefix_problem(prefix: str) -> str | None:
    if not ascii_digits(prefix) or not 1 <= len(prefix) <= MSISDN_LENGTH - 3:
        return (f"MSISDN prefix {prefix!r} must be 1 to {MSISDN_LENGTH - 3} digits (a country "
                "code and the start of the national number)")
    return None


def normal_msisdn(value: str) -> str:
    """An MSISDN as stored: its E.164 digits, without +, spaces or dashes."""
    return re.sub(r"[\s\-()]", "", value).removeprefix("+")


def msisdn_problem(msisdn: str) -> str | None:
    if not ascii_digits(msisdn) or not 6 <= len(msisdn) <= 15:
        return f"msisdn {msisdn!r} must be an international number of 6 to 15 digits"
    try:
        number = phonenumbers.parse("+" + msisdn)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        return f"msisdn {msisdn!r} is not a possible international number (E.164)"
    return None


def new_registration_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def iccid_problem(iccid: str) -> str | None:
    if not ascii_digits(iccid) or not 19 <= len(iccid) <= 20:
        return f"iccid {iccid!r} must be 19 or 20 digits"
    try:
        luhn.validate(iccid)
    except ValidationError:
        return f"iccid {iccid!r} has a wrong check digit"
    return None


def imsi_problem(imsi: str) -> str | None:
    if not ascii_digits(imsi) or not 14 <= len(imsi) <= 15:
        return f"imsi {imsi!r} must be 14 or 15 digits"
    return None


def resolve_rate_plan(db: Session, account_sid: str, key: str | None) -> int | None:
    if not key:
        return None
    column = RatePlan.sid if looks_like_sid(key, "WP") else RatePlan.unique_name
    pk = db.scalar(select(RatePlan.pk).where(RatePlan.account_sid == account_sid, column == key))
    if pk is None:
        raise InventoryError(f"no rate plan {key!r} on account {account_sid}")
    return pk


def read_csv(path: Path) -> list[SimRow]:
    """Parse an inventory file; every bad line is reported, with its line number."""
    problems: list[str] = []
    rows: list[SimRow] = []
    seen: dict[tuple[str, str], int] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "iccid" not in [f.strip() for f in reader.fieldnames]:
            raise InventoryError("line 1: a header row with an iccid column is required")
        for record in reader:
            line = reader.line_num
            record = {(k or "").strip(): (v or "").strip() for k, v in record.items()}
            row = SimRow(iccid=record.get("iccid", ""), imsi=record.get("imsi") or None,
                         registration_code=record.get("registration_code") or None,
                         unique_name=record.get("unique_name") or None,
                         status=record.get("status") or "new",
                         msisdn=normal_msisdn(record.get("msisdn", "")) or None)
            found = [iccid_problem(row.iccid), row.imsi and imsi_problem(row.imsi),
                     row.msisdn and msisdn_problem(row.msisdn)]
            if row.status not in STATUSES:
                found.append(f"status {row.status!r} is not one of {', '.join(STATUSES)}")
            name_problem = row.unique_name and unique_name_problem(row.unique_name)
            if name_problem:
                found.append(f"unique_name {name_problem}")
            for kind, value in (("iccid", row.iccid), ("imsi", row.imsi),
                                ("unique_name", row.unique_name), ("msisdn", row.msisdn)):
                if value and (kind, value) in seen:
                    found.append(f"{kind} {value} repeats line {seen[(kind, value)]}")
                elif value:
                    seen[(kind, value)] = line
            problems += [f"line {line}: {p}" for p in found if p]
            rows.append(row)
    if problems:
        raise InventoryError("\n".join(problems))
    return rows


def _existing(db: Session, column: InstrumentedAttribute[Any],
              values: Sequence[str | None]) -> set[str]:
    found: set[str] = set()
    if db.get_bind().dialect.name == "postgresql":  # one array parameter: big chunks
        for i in range(0, len(values), 20_000):
            found |= set(db.scalars(select(column).where(column == any_(
                bindparam(None, list(values[i:i + 20_000]), type_=ARRAY(String()))))))
        return found
    for i in range(0, len(values), 500):
        found |= set(db.scalars(select(column).where(column.in_(values[i:i + 500]))))
    return found


def fill_in(db: Session, rows: list[SimRow], imsi_prefix: str = IMSI_PREFIX,
            msisdn_prefix: str | None = None) -> None:
    """Give rows without an IMSI or registration code new ones (and, given `msisdn_prefix`,
    rows without an MSISDN one under it): numbers drawn again until none repeats another row's
    or one already provisioned (for either product)."""
    for row in rows:
        row.registration_code = row.registration_code or new_registration_code()
    _draw(db, rows, "imsi", lambda: new_imsi(imsi_prefix))
    if msisdn_prefix is not None:
        _draw(db, rows, "msisdn", lambda: new_msisdn(msisdn_prefix))


def _draw(db: Session, rows: list[SimRow], kind: str, new: Callable[[], str]) -> None:
    from simplane.supersim.models import Sim as SuperSim  # one network serves both products

    drawn = [row for row in rows if not getattr(row, kind)]
    used = {getattr(row, kind) for row in rows if getattr(row, kind)}
    while drawn:
        for row in drawn:
            value = new()
            while value in used:
                value = new()
            setattr(row, kind, value)
            used.add(value)
        values = [getattr(row, kind) for row in drawn]
        taken = (_existing(db, getattr(Sim, kind), values)
                 | _existing(db, getattr(SuperSim, kind), values))
        drawn = [row for row in drawn if getattr(row, kind) in taken]


def already_provisioned(db: Session, rows: list[SimRow]) -> list[str]:
    """The rows whose ICCID, IMSI or MSISDN a SIM of either product already has."""
    from simplane.supersim.models import Sim as SuperSim  # one network serves both products

    problems = []
    for kind in ("iccid", "imsi", "msisdn"):
        values = [getattr(r, kind) for r in rows if getattr(r, kind)]
        if not values:
            continue
        taken = _existing(db, getattr(Sim, kind), values) | _existing(
            db, getattr(SuperSim, kind), values)
        problems += [f"line {i + 2}: {kind} {getattr(r, kind)} is already provisioned"
                     for i, r in enumerate(rows) if getattr(r, kind) in taken]
    return problems


def add_sims(db: Session, account_sid: str, rows: Iterable[SimRow], now: datetime,
             rate_plan_pk: int | None = None, batch: int = 5000,
             progress: Callable[[int], None] | None = None,
             msisdn_prefix: str | None = None) -> list[str]:
    """Insert SIMs, all or none (the caller's transaction); returns their SIDs in order."""
    rows = list(rows)
    fill_in(db, rows, msisdn_prefix=msisdn_prefix)
    problems = already_provisioned(db, rows)
    names = [r.unique_name for r in rows if r.unique_name]
    if names:
        taken = set(db.scalars(select(Sim.unique_name).where(Sim.account_sid == account_sid,
                                                             Sim.unique_name.in_(names))))
        problems += [f"line {i + 2}: unique_name {r.unique_name} is already used on the account"
                     for i, r in enumerate(rows) if r.unique_name in taken]
    needs_plan = [i for i, r in enumerate(rows) if r.status in NEEDS_RATE_PLAN]
    if needs_plan and rate_plan_pk is None:
        problems += [f"line {i + 2}: status {rows[i].status} needs a rate plan (--rate-plan)"
                     for i in needs_plan]
    if problems:
        raise InventoryError("\n".join(problems))
    sids: list[str] = []
    if db.get_bind().dialect.name == "postgresql":
        batch = max(batch, 50_000)
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        values = []
        for row in chunk:
            sid = new_sid("DE")
            sids.append(sid)
            values.append({
                "sid": sid, "account_sid": account_sid, "unique_name": row.unique_name,
                "friendly_name": None, "iccid": row.iccid, "imsi": row.imsi, "msisdn": row.msisdn,
                "e_id": None,
                "registration_code": row.registration_code, "status": row.status,
                "reset_status": None, "rate_plan_pk": rate_plan_pk,
                "commands_callback_method": "POST", "sms_fallback_method": "POST",
                "sms_method": "POST", "voice_fallback_method": "POST", "voice_method": "POST",
                "date_status_changed": now, "date_created": now, "date_updated": now,
                "date_activated": now if row.status == "active" else None,
            })
        if not copy_rows(db, Sim.__table__, list(values[0]),
                         (tuple(v.values()) for v in values)):
            db.execute(insert(Sim), values)
        if progress:
            progress(len(chunk))
    return sids


def generated_rows(count: int, status: str = "new", iccid_prefix: str = ICCID_PREFIX,
                   iccid_length: int = 19) -> list[SimRow]:
    iccids: set[str] = set()
    while len(iccids) < count:
        iccids.add(new_iccid(iccid_prefix, iccid_length))
    return [SimRow(iccid=iccid, status=status) for iccid in iccids]
