"""Proxy rules: services, the number pool, sessions and their expiry, participants and
proxy-number selection, interactions. No HTTP here."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import phonenumbers
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from simplane.core.db import changed
from simplane.core.errors import TwilioError, bad_request, conflict, not_found
from simplane.core.lookups import get_by_key_or_404, unique_name_problem
from simplane.core.models import Account
from simplane.core.params import ascii_digits, check_text, json_value
from simplane.core.sids import looks_like_sid, new_sid
from simplane.proxy import carrier, geo, webhooks
from simplane.proxy import errors as E
from simplane.proxy.models import (
    ProxyAccountNumber,
    ProxyInteraction,
    ProxyParticipant,
    ProxyPhoneNumber,
    ProxyService,
    ProxySession,
)

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.proxy")

ACTIVE = ("open", "in-progress")
GEO_MATCH = ("area-code", "overlay", "radius", "country")
SELECTION = ("avoid-sticky", "prefer-sticky")
MODES = ("message-only", "voice-only", "voice-and-message")
MAX_PARTICIPANTS = 2
MAX_UNIQUE_NAME = 191
CLOSED_BY_API = "api"
CLOSED_BY_EXPIRY = "expired"


def invalid(message: str) -> TwilioError:
    return bad_request(message, E.INVALID_VALUE)


def _unique_name(name: str, what: str) -> str:
    if name == "":
        raise invalid("Invalid UniqueName: must not be empty")
    problem = unique_name_problem(name)
    if problem:
        raise invalid(f"Invalid UniqueName: {problem}")
    if len(name) > MAX_UNIQUE_NAME:
        raise invalid(f"Invalid UniqueName: longer than {MAX_UNIQUE_NAME} characters")
    # (An out-of-session callback's uniqueName comes past the kernel's form checks.)
    return check_text("UniqueName", name, E.INVALID_VALUE)


# --- services --------------------------------------------------------------------------------

def get_service(db: Session, account_sid: str, key: str) -> ProxyService:
    return get_by_key_or_404(db, ProxyService, account_sid, key, "KS", "Service")


def _check_service_name(db: Session, account_sid: str, name: str, current_pk: int | None) -> str:
    _unique_name(name, "Service")
    taken = db.scalar(select(ProxyService.pk).where(ProxyService.account_sid == account_sid,
                                                    ProxyService.unique_name == name))
    if taken is not None and taken != current_pk:
        raise conflict(f"Service with UniqueName {name!r} already exists", E.SERVICE_NAME_TAKEN)
    return name


MAX_TTL = 2**31 - 1
MAX_TEXT = 255


def _default_ttl(value: int) -> int:
    if not 0 <= value <= MAX_TTL:
        raise invalid(f"Invalid DefaultTtl: must be between 0 and {MAX_TTL}")
    return value


SERVICE_FIELDS = {
    "CallbackUrl": "callback_url", "InterceptCallbackUrl": "intercept_callback_url",
    "OutOfSessionCallbackUrl": "out_of_session_callback_url",
    "ChatInstanceSid": "chat_instance_sid",
}


def _chat_instance(value: str) -> str | None:
    if value and not looks_like_sid(value, "IS"):
        raise invalid(f"Invalid ChatInstanceSid: {value!r} is not an IS… SID")
    return value or None


def create_service(db: Session, account_sid: str, params: Any, now: datetime) -> ProxyService:
    service = ProxyService(
        sid=new_sid("KS"), account_sid=account_sid,
        unique_name=_check_service_name(db, account_sid, params["UniqueName"], None),
        default_ttl=_default_ttl(params.get("DefaultTtl", 0)),
        geo_match_level=params.get("GeoMatchLevel", "country"),
        number_selection_behavior=params.get("NumberSelectionBehavior", "prefer-sticky"),
        date_created=now, date_updated=now,
    )
    _apply_service_fields(service, params)
    db.add(service)
    db.flush()
    if service.geo_match_level == "radius":
        geo.load_places_soon()
    return service


def _apply_service_fields(service: ProxyService, params: Any) -> None:
    for name, attr in SERVICE_FIELDS.items():
        if name in params:
            value = params[name]
            if name == "ChatInstanceSid":
                value = _chat_instance(value)
            setattr(service, attr, value or None)


def update_service(db: Session, service: ProxyService, params: Any, now: datetime) -> ProxyService:
    if "UniqueName" in params:
        service.unique_name = _check_service_name(db, service.account_sid, params["UniqueName"],
                                                  service.pk)
    if "DefaultTtl" in params:
        service.default_ttl = _default_ttl(params["DefaultTtl"])
    if "GeoMatchLevel" in params:
        service.geo_match_level = params["GeoMatchLevel"]
        if service.geo_match_level == "radius":
            geo.load_places_soon()
    if "NumberSelectionBehavior" in params:
        service.number_selection_behavior = params["NumberSelectionBehavior"]
    _apply_service_fields(service, params)
    service.date_updated = now
    return service


def delete_service(db: Session, service: ProxyService) -> None:
    for model in (ProxyInteraction, ProxyParticipant, ProxySession, ProxyPhoneNumber):
        db.execute(delete(model).where(model.service_pk == service.pk))
    db.delete(service)


# --- phone numbers ---------------------------------------------------------------------------

def e164(value: str) -> phonenumbers.PhoneNumber | None:
    """The phone number `value` is, written in E.164 (+ and digits) and possible; else None."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) != value:
        return None
    return number if phonenumbers.is_possible_number(number) else None


def parse_e164(value: str, name: str) -> phonenumbers.PhoneNumber:
    number = e164(value)
    if number is None:
        raise invalid(f"Invalid {name}: {value!r} is not an E.164 phone number (+ and digits)")
    return number


def iso_country(number: phonenumbers.PhoneNumber) -> str | None:
    region = phonenumbers.region_code_for_number(number)
    if region and region != "ZZ":
        return region
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    return None if region == "ZZ" else region


def get_phone_number(db: Session, service: ProxyService, key: str) -> ProxyPhoneNumber:
    column = ProxyPhoneNumber.sid if looks_like_sid(key, "PN") else ProxyPhoneNumber.phone_number
    number = db.scalar(select(ProxyPhoneNumber).where(ProxyPhoneNumber.service_pk == service.pk,
                                                      column == key))
    if number is None:
        raise not_found("PhoneNumber", key)
    return number


CAPABILITIES = {"fax": False, "mms": True, "sms": True, "voice": True}


def add_phone_number(db: Session, service: ProxyService, params: Any, now: datetime
                     ) -> ProxyPhoneNumber:
    """A number the account owns (`simplane proxy numbers add`) joins the pool, by Sid or by
    PhoneNumber; a number it does not own, whoever else does, is unknown to it (20404)."""
    sid_given, number_given = params.get("Sid"), params.get("PhoneNumber")
    if not sid_given and not number_given:
        raise bad_request("Either Sid or PhoneNumber is required", E.INVALID_VALUE)
    if sid_given:
        if not looks_like_sid(sid_given, "PN"):
            raise invalid(f"Invalid Sid: {sid_given!r} is not a PN… SID")
        owned = _owned(db, service.account_sid, ProxyAccountNumber.sid == sid_given)
        if owned is None:
            raise bad_request(f"Invalid Sid: no phone number {sid_given} on this account",
                              20404)
        if number_given and number_given != owned.phone_number:
            raise invalid(f"Invalid PhoneNumber: {sid_given} is {owned.phone_number}")
    else:
        parse_e164(number_given, "PhoneNumber")
        owned = _owned(db, service.account_sid, ProxyAccountNumber.phone_number == number_given)
        if owned is None:
            raise bad_request(f"Invalid PhoneNumber: no phone number {number_given} on this "
                              "account", 20404)
    if db.scalar(select(ProxyPhoneNumber.pk).where(
            ProxyPhoneNumber.service_pk == service.pk,
            ProxyPhoneNumber.phone_number == owned.phone_number)):
        raise conflict(f"Phone number {owned.phone_number} is already in the pool of "
                       f"{service.sid}", E.NUMBER_IN_POOL)
    parsed = parse_e164(owned.phone_number, "PhoneNumber")
    number = ProxyPhoneNumber(  # the same number keeps its one PN SID across the services
        sid=owned.sid, account_sid=service.account_sid,
        service_pk=service.pk, phone_number=owned.phone_number,
        friendly_name=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
        iso_country=iso_country(parsed), capabilities=dict(CAPABILITIES),
        is_reserved=params.get("IsReserved", False), date_created=now, date_updated=now,
    )
    db.add(number)
    db.flush()
    return number


def _owned(db: Session, account_sid: str, match: Any) -> ProxyAccountNumber | None:
    """The number the account owns that `match` names, if any."""
    return db.scalar(select(ProxyAccountNumber).where(
        ProxyAccountNumber.account_sid == account_sid, match))


def add_account_numbers(db: Session, account_sid: str, numbers: list[str], now: datetime
                        ) -> list[ProxyAccountNumber]:
    """Give the account phone numbers (the operator's job); a number it already owns keeps its
    SID, as does one already in its pools. All or nothing: one invalid number refuses the lot."""
    for value in numbers:
        parse_e164(value, "PhoneNumber")
    rows = []
    for value in numbers:
        row = _owned(db, account_sid, ProxyAccountNumber.phone_number == value)
        if row is None:
            pooled = db.scalar(select(ProxyPhoneNumber.sid).where(
                ProxyPhoneNumber.account_sid == account_sid,
                ProxyPhoneNumber.phone_number == value).limit(1))
            row = ProxyAccountNumber(sid=pooled or new_sid("PN"), account_sid=account_sid,
                                     phone_number=value, date_created=now)
            db.add(row)
            db.flush()
        rows.append(row)
    return rows


def account_numbers(db: Session, account_sid: str) -> list[ProxyAccountNumber]:
    return list(db.scalars(select(ProxyAccountNumber).where(
        ProxyAccountNumber.account_sid == account_sid).order_by(ProxyAccountNumber.pk)))


def usage(db: Session, service_pk: int, number_sid: str | None = None) -> dict[str, int]:
    """How many active sessions of the service use each of its numbers (or just the one);
    a number no active session uses is absent."""
    stmt = (select(ProxyParticipant.proxy_identifier_sid,
                   func.count(func.distinct(ProxyParticipant.session_pk)))
            .join(ProxySession, ProxySession.pk == ProxyParticipant.session_pk)
            .where(ProxyParticipant.service_pk == service_pk,
                   ProxyParticipant.date_deleted.is_(None), ProxySession.status.in_(ACTIVE))
            .group_by(ProxyParticipant.proxy_identifier_sid))
    if number_sid is not None:
        stmt = stmt.where(ProxyParticipant.proxy_identifier_sid == number_sid)
    return {sid: count for sid, count in db.execute(stmt) if sid is not None}


def in_use(db: Session, service_pk: int, number_sid: str) -> int:
    """How many active sessions of the service use the number."""
    return usage(db, service_pk, number_sid).get(number_sid, 0)


# --- sessions --------------------------------------------------------------------------------

def get_session(db: Session, service: ProxyService, key: str) -> ProxySession:
    column = ProxySession.sid if looks_like_sid(key, "KC") else ProxySession.unique_name
    session = db.scalar(select(ProxySession).where(ProxySession.service_pk == service.pk,
                                                   column == key))
    if session is None:
        raise not_found("Session", key)
    return session


def _ttl(value: int) -> int:
    if not 0 <= value <= MAX_TTL:
        raise invalid(f"Invalid Ttl: must be between 0 and {MAX_TTL}")
    return value


def compute_expiry(session: ProxySession) -> datetime | None:
    """date_expiry wins; otherwise ttl seconds after create, re-open or the last interaction;
    a ttl of 0 never expires."""
    if session.date_expiry is not None:
        return session.date_expiry
    if session.ttl:
        return session.ttl_from + timedelta(seconds=session.ttl)
    return None


def create_session(db: Session, runtime: Runtime, service: ProxyService, params: Any
                   ) -> ProxySession:
    now = runtime.clock.now()
    unique_name = None
    if "UniqueName" in params:
        unique_name = _unique_name(params["UniqueName"], "Session")
        if db.scalar(select(ProxySession.pk).where(ProxySession.service_pk == service.pk,
                                                   ProxySession.unique_name == unique_name)):
            raise conflict(f"Session with UniqueName {unique_name!r} already exists",
                           E.SESSION_NAME_TAKEN)
    status = params.get("Status", "open")
    if status not in ("open", "in-progress", "closed"):
        raise bad_request(f"Invalid Status: a Session cannot be created {status}", E.BAD_STATUS)
    date_expiry = params.get("DateExpiry")
    if date_expiry is not None and date_expiry <= now:
        raise invalid("Invalid DateExpiry: must be in the future")
    specs = [_participant_spec(raw) for raw in params.get("Participants", [])]
    if len(specs) > MAX_PARTICIPANTS:
        raise bad_request(f"A Session can have at most {MAX_PARTICIPANTS} Participants",
                          E.PARTICIPANT_LIMIT)
    session = ProxySession(
        sid=new_sid("KC"), account_sid=service.account_sid, service_pk=service.pk,
        service_sid=service.sid, unique_name=unique_name, status=status,
        closed_reason=CLOSED_BY_API if status == "closed" else None,
        ttl=_ttl(params.get("Ttl", service.default_ttl)),
        mode=params.get("Mode", "voice-and-message"),
        date_started=now, date_ended=now if status == "closed" else None,
        date_last_interaction=None, date_expiry=date_expiry, ttl_from=now,
        date_created=now, date_updated=now,
    )
    session.expires_at = compute_expiry(session)
    db.add(session)
    db.flush()
    for spec in specs:
        add_participant(db, runtime, service, session, spec)
    runtime.worker.wake_after_commit(db)
    return session


def _participant_spec(raw: Any) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json_value(raw)
        except ValueError:
            raise invalid(f"Invalid Participants: {raw!r} is not a JSON object") from None
    if not isinstance(raw, dict):
        raise invalid("Invalid Participants: each must be a JSON object")
    names = {"identifier": "Identifier", "friendlyname": "FriendlyName",
             "proxyidentifier": "ProxyIdentifier", "proxyidentifiersid": "ProxyIdentifierSid"}
    spec: dict[Any, Any] = {names.get(str(k).lower().replace("_", ""), k): v
                            for k, v in raw.items()}
    if not spec.get("Identifier"):
        raise bad_request("Invalid Participants: each needs an Identifier", E.INVALID_VALUE)
    for name in names.values():
        value = spec.get(name)
        if value is not None and not isinstance(value, str):
            raise invalid(f"Invalid Participants: {name} must be a string")
        if value is not None:
            check_text(f"Participants {name}", value, E.INVALID_VALUE)
    return {k: v for k, v in spec.items() if v is not None}


def update_session(db: Session, runtime: Runtime, service: ProxyService, session: ProxySession,
                   params: Any) -> ProxySession:
    now = runtime.clock.now()
    status = params.get("Status")
    if session.status == "closed":
        if status != "in-progress":
            raise bad_request(f"Session {session.sid} is closed; it can only be re-opened with "
                              "Status in-progress", E.SESSION_CLOSED)
    elif status is not None and status != "closed":
        raise bad_request(f"Invalid Status: a Session cannot go from {session.status} to {status}",
                          E.BAD_STATUS)
    if "DateExpiry" in params:
        if params["DateExpiry"] <= now:
            raise invalid("Invalid DateExpiry: must be in the future")
        session.date_expiry = params["DateExpiry"]
    if "Ttl" in params:
        session.ttl = _ttl(params["Ttl"])
    if status == "closed" and session.status != "closed":
        close(session, now, CLOSED_BY_API)
        webhooks.session_closed(db, runtime, service, session)
    elif status == "in-progress":  # re-open
        lock_pool(db, service)
        for participant in active_participants(db, session):
            number_sid = participant.proxy_identifier_sid
            if number_sid and _pair_taken(db, service.account_sid, participant.identifier,
                                          number_sid, session.pk):
                raise conflict(f"Participant {participant.identifier} already uses "
                               f"{participant.proxy_identifier} in another active Session",
                               E.PROXY_IDENTIFIER_IN_USE)
        session.status = "in-progress"
        session.closed_reason = None
        session.date_ended = None
        session.ttl_from = now
    if session.status != "closed":
        session.expires_at = compute_expiry(session)
        if session.date_expiry is not None and session.date_expiry <= now:
            raise invalid("Invalid DateExpiry: the Session's date_expiry has passed; give a "
                          "later DateExpiry to re-open it")
    session.date_updated = now
    runtime.worker.wake_after_commit(db)
    return session


def close(session: ProxySession, now: datetime, reason: str) -> None:
    session.status = "closed"
    session.closed_reason = reason
    session.date_ended = now
    session.expires_at = None
    session.date_updated = now


def delete_session(db: Session, session: ProxySession) -> None:
    for model in (ProxyInteraction, ProxyParticipant):
        db.execute(delete(model).where(model.session_pk == session.pk))
    db.delete(session)


def close_expired(db: Session, runtime: Runtime, now: datetime, limit: int) -> int:
    """Close what has expired (a conditional UPDATE each, so concurrent workers close a session
    once) and tell each service's callback_url."""
    sessions = list(db.scalars(select(ProxySession).where(
        ProxySession.status.in_(ACTIVE), ProxySession.expires_at <= now).limit(limit)))
    closed = 0
    for session in sessions:
        result = db.execute(update(ProxySession).where(
            ProxySession.pk == session.pk, ProxySession.status == session.status,
            ProxySession.expires_at <= now).values(
            status="closed", closed_reason=CLOSED_BY_EXPIRY, date_ended=now, expires_at=None,
            date_updated=now))
        if changed(result):
            closed += 1
            db.refresh(session)
            webhooks.session_closed(db, runtime, db.get_one(ProxyService, session.service_pk),
                                    session)
    return closed


# --- participants ----------------------------------------------------------------------------

def active_participants(db: Session, session: ProxySession) -> list[ProxyParticipant]:
    return list(db.scalars(select(ProxyParticipant).where(
        ProxyParticipant.session_pk == session.pk, ProxyParticipant.date_deleted.is_(None)
    ).order_by(ProxyParticipant.pk)))


def get_participant(db: Session, session: ProxySession, key: str) -> ProxyParticipant:
    participant = None
    if looks_like_sid(key, "KP"):
        participant = db.scalar(select(ProxyParticipant).where(
            ProxyParticipant.session_pk == session.pk, ProxyParticipant.sid == key))
    if participant is None:
        raise not_found("Participant", key)
    return participant


def _pair_taken(db: Session, account_sid: str, identifier: str, number_sid: str,
                except_session_pk: int | None) -> bool:
    """Whether the identifier already talks through the number in an active Session of the
    account: a number may sit in several services' pools, and inbound traffic must find one
    Session."""
    stmt = (select(ProxyParticipant.pk)
            .join(ProxySession, ProxySession.pk == ProxyParticipant.session_pk)
            .where(ProxyParticipant.account_sid == account_sid,
                   ProxyParticipant.identifier == identifier,
                   ProxyParticipant.proxy_identifier_sid == number_sid,
                   ProxyParticipant.date_deleted.is_(None),
                   ProxySession.status.in_(ACTIVE)))
    if except_session_pk is not None:
        stmt = stmt.where(ProxyParticipant.session_pk != except_session_pk)
    return db.execute(stmt.limit(1)).first() is not None


def _identifier_number(identifier: str) -> phonenumbers.PhoneNumber | None:
    """A phone-number identifier parsed; None for a channel address Twilio's Proxy takes
    (`messenger:` and a page-scoped ID, `whatsapp:` and an E.164 number). Anything else is
    refused with Twilio's 80404 ("Participant Identifier Invalid")."""
    channel, _, address = identifier.partition(":")
    if channel in CHANNELS and CHANNELS[channel](address):
        return None
    number = e164(identifier)
    if number is None:
        raise bad_request(f"Invalid Identifier: {identifier!r} is neither a phone number in "
                          "E.164 format (+ and digits) nor a channel address "
                          f"({', '.join(f'{c}:…' for c in CHANNELS)})", E.IDENTIFIER_INVALID)
    return number


# Channel addresses a Participant's Identifier may be, by what follows the channel's prefix.
CHANNELS: dict[str, Callable[[str], bool]] = {
    "messenger": ascii_digits, "whatsapp": lambda address: e164(address) is not None}


def select_number(db: Session, service: ProxyService, session: ProxySession, identifier: str
                  ) -> ProxyPhoneNumber:
    """A proxy number for the identifier: from the pool, not reserved, matching the service's
    geo_match_level, never one the identifier already uses in another active session; sticky
    or not as the service says; then the least used."""
    pool = list(db.scalars(select(ProxyPhoneNumber).where(
        ProxyPhoneNumber.service_pk == service.pk).order_by(ProxyPhoneNumber.pk)))
    if not pool:
        raise bad_request(f"Service {service.sid} has no phone numbers in its pool",
                          E.IDENTIFIER_PAIR_INVALID)
    candidates = [n for n in pool if not n.is_reserved]
    if not candidates:
        raise bad_request(f"Every phone number of Service {service.sid} is reserved",
                          E.IDENTIFIER_PAIR_INVALID)
    parsed = _identifier_number(identifier)
    if parsed is not None:
        country = iso_country(parsed)
        candidates = [n for n in candidates if n.iso_country == country]
        if not candidates:
            raise bad_request(f"No phone number in the pool of {service.sid} is in {country} "
                              f"(geo_match_level {service.geo_match_level})",
                              E.IDENTIFIER_PAIR_INVALID)
        level = service.geo_match_level
        candidates = [n for n in candidates if geo.same_area(level, parsed, n.phone_number)]
        if not candidates:
            raise bad_request(f"No phone number in the pool of {service.sid} "
                              f"{geo.wanted(level, parsed)} (geo_match_level {level})",
                              E.IDENTIFIER_PAIR_INVALID)
    used_now = set(db.scalars(
        select(ProxyParticipant.proxy_identifier_sid)
        .join(ProxySession, ProxySession.pk == ProxyParticipant.session_pk)
        .where(ProxyParticipant.account_sid == service.account_sid,
               ProxyParticipant.identifier == identifier,
               ProxyParticipant.date_deleted.is_(None), ProxySession.status.in_(ACTIVE),
               ProxyParticipant.session_pk != session.pk)))
    free = [n for n in candidates if n.sid not in used_now]
    if not free:
        raise bad_request(f"Every matching phone number of {service.sid} is already used by "
                          f"{identifier} in another active Session; add numbers to the pool",
                          E.IDENTIFIER_PAIR_INVALID)
    used_before = set(db.scalars(select(ProxyParticipant.proxy_identifier_sid).where(
        ProxyParticipant.service_pk == service.pk, ProxyParticipant.identifier == identifier)))
    load = usage(db, service.pk)
    sticky = service.number_selection_behavior == "prefer-sticky"

    def rank(n: ProxyPhoneNumber) -> tuple:
        seen = n.sid in used_before
        return (0 if seen == sticky else 1, load.get(n.sid, 0), n.pk)

    return min(free, key=rank)


def lock_pool(db: Session, service: ProxyService) -> None:
    """Serialise number allocation within the account, whose services may share numbers
    (PostgreSQL row lock; SQLite already runs one writer at a time), so two concurrent requests
    never hand out the same pair."""
    db.execute(select(Account.pk).where(Account.sid == service.account_sid).with_for_update())


def add_participant(db: Session, runtime: Runtime, service: ProxyService, session: ProxySession,
                    spec: Any) -> ProxyParticipant:
    now = runtime.clock.now()
    lock_pool(db, service)
    if session.status not in ACTIVE:
        raise bad_request(f"Session {session.sid} is {session.status}; Participants can only be "
                          "added to open Sessions", E.SESSION_CLOSED)
    identifier = spec["Identifier"]
    if identifier == "" or len(identifier) > MAX_TEXT:
        raise invalid(f"Invalid Identifier: must be 1 to {MAX_TEXT} characters")
    if len(spec.get("FriendlyName") or "") > MAX_TEXT:
        raise invalid(f"Invalid FriendlyName: longer than {MAX_TEXT} characters")
    _identifier_number(identifier)
    others = list(db.scalars(select(ProxyParticipant).where(
        ProxyParticipant.session_pk == session.pk)))
    if any(p.identifier == identifier for p in others):
        raise conflict(f"{identifier} is already a Participant of Session {session.sid} (a removed "
                       "Participant cannot be added again)", E.DUPLICATE_PARTICIPANT)
    if sum(1 for p in others if p.date_deleted is None) >= MAX_PARTICIPANTS:
        raise bad_request(f"Session {session.sid} already has {MAX_PARTICIPANTS} Participants",
                          E.PARTICIPANT_LIMIT)
    wanted_sid, wanted_number = spec.get("ProxyIdentifierSid"), spec.get("ProxyIdentifier")
    if wanted_sid or wanted_number:
        number = get_phone_number_or_none(db, service, wanted_sid or wanted_number)
        if number is None or (wanted_sid and wanted_number
                              and number.phone_number != wanted_number):
            raise bad_request(f"{wanted_sid or wanted_number} is not a phone number in the pool "
                              f"of Service {service.sid}", E.IDENTIFIER_PAIR_INVALID)
        if _pair_taken(db, service.account_sid, identifier, number.sid, session.pk):
            raise conflict(f"{identifier} already uses {number.phone_number} in another active "
                           "Session", E.PROXY_IDENTIFIER_IN_USE)
    else:
        number = select_number(db, service, session, identifier)
    participant = ProxyParticipant(
        sid=new_sid("KP"), account_sid=service.account_sid, service_pk=service.pk,
        session_pk=session.pk, friendly_name=spec.get("FriendlyName"), identifier=identifier,
        proxy_identifier=number.phone_number, proxy_identifier_sid=number.sid,
        date_created=now, date_updated=now,
    )
    db.add(participant)
    db.flush()
    return participant


def get_phone_number_or_none(db: Session, service: ProxyService, key: str
                             ) -> ProxyPhoneNumber | None:
    try:
        return get_phone_number(db, service, key)
    except TwilioError:
        return None


def remove_participant(db: Session, participant: ProxyParticipant, now: datetime) -> None:
    if participant.date_deleted is None:
        participant.date_deleted = now
        participant.date_updated = now


# --- interactions ----------------------------------------------------------------------------

def get_interaction(db: Session, session: ProxySession, key: str,
                    participant_sid: str | None = None) -> ProxyInteraction:
    interaction = None
    if looks_like_sid(key, "KI"):
        stmt = select(ProxyInteraction).where(ProxyInteraction.session_pk == session.pk,
                                              ProxyInteraction.sid == key)
        if participant_sid is not None:
            stmt = stmt.where(ProxyInteraction.participant_sid == participant_sid)
        interaction = db.scalar(stmt)
    if interaction is None:
        raise not_found("Interaction", key)
    return interaction


def touch(session: ProxySession, now: datetime) -> None:
    """An interaction happened: open → in-progress, and the ttl counts from now."""
    session.date_last_interaction = now
    session.ttl_from = now
    if session.status == "open":
        session.status = "in-progress"
    session.expires_at = compute_expiry(session)
    session.date_updated = now


def create_message_interaction(db: Session, runtime: Runtime, service: ProxyService,
                               session: ProxySession, participant: ProxyParticipant, params: Any
                               ) -> ProxyInteraction:
    """A message to the participant from their proxy number, recorded, queued for the carrier
    and reported to callback_url."""
    now = runtime.clock.now()
    if session.status not in ACTIVE:
        raise bad_request(f"Session {session.sid} is {session.status}; messages can only be sent "
                          "in open Sessions", E.SESSION_CLOSED)
    if session.mode == "voice-only":
        raise bad_request(f"Session {session.sid} is voice-only", E.INVALID_VALUE)
    if participant.date_deleted is not None:
        raise bad_request(f"Participant {participant.sid} was removed from the Session",
                          E.INVALID_VALUE)
    body, media = params.get("Body"), params.get("MediaUrl", [])
    if not body and not media:
        raise bad_request("Either Body or MediaUrl is required", E.INVALID_VALUE)
    data: dict[str, Any] = {"body": body or ""}
    if media:
        data["media_urls"] = media
    interaction = ProxyInteraction(
        sid=new_sid("KI"), account_sid=session.account_sid, service_pk=session.service_pk,
        session_pk=session.pk, participant_sid=participant.sid, data=json.dumps(data),
        type="message", outbound_participant_sid=participant.sid,
        outbound_resource_sid=new_sid("SM"), outbound_resource_status="queued",
        outbound_resource_type="Message", date_created=now, date_updated=now,
    )
    db.add(interaction)
    touch(session, now)
    db.flush()
    webhooks.interaction(db, runtime, service, session, interaction)
    runtime.worker.wake_after_commit(db)
    return interaction


# Outbound legs waiting for the carrier: a message queued, a call initiated.
PENDING = ("queued", "initiated")
# What a leg the carrier took is at least, when the carrier still calls it pending.
HANDED_OVER = {"message": "sent", "voice": "ringing"}


def deliver_pending(db: Session, runtime: Runtime, limit: int) -> int:
    """Hand each pending outbound leg to the carrier, from the recipient's proxy number to their
    real one; its new status is recorded and reported to the service's callback_url. Rows are
    claimed with FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite has one writer), so concurrent
    workers never hand the same leg over twice. A leg the carrier fails on (or the database
    refuses) is `failed` alone, under a savepoint: the rest of the batch goes on."""
    now = runtime.clock.now()
    rows = db.execute(
        select(ProxyInteraction, ProxySession, ProxyService, ProxyParticipant)
        .join(ProxySession, ProxySession.pk == ProxyInteraction.session_pk)
        .join(ProxyService, ProxyService.pk == ProxyInteraction.service_pk)
        .outerjoin(ProxyParticipant, (ProxyParticipant.session_pk == ProxyInteraction.session_pk)
                   & (ProxyParticipant.sid == ProxyInteraction.outbound_participant_sid))
        .where(ProxyInteraction.outbound_resource_status.in_(PENDING))
        .order_by(ProxyInteraction.pk).limit(limit)
        .with_for_update(skip_locked=True, of=ProxyInteraction)).all()
    for i, session, service, to in rows:
        if to is None or to.proxy_identifier is None or to.date_deleted is not None:
            i.outbound_resource_status = "failed"  # removed from the Session meanwhile
        else:
            data = json.loads(i.data or "{}")
            leg = carrier.Outbound(
                sid=i.outbound_resource_sid or "", account_sid=i.account_sid,
                from_number=to.proxy_identifier, to_number=to.identifier,
                body=data.get("body"), media_urls=data.get("media_urls"),
                service_sid=session.service_sid, session_sid=session.sid, interaction_sid=i.sid)
            send = (carrier.carrier.place_call if i.type == "voice"
                    else carrier.carrier.send_message)
            try:
                with db.begin_nested():
                    status = send(db, leg, now)
            except Exception:
                log.exception("the carrier failed on a leg", extra={"fields": {
                    "interaction_sid": i.sid, "resource_sid": leg.sid}})
                status = "failed"
            i.outbound_resource_status = HANDED_OVER[i.type] if status in PENDING else status
        i.date_updated = now
        webhooks.interaction(db, runtime, service, session, i)
    return len(rows)
