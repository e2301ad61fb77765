"""Inbound traffic to the number pool, as the carrier hands it to Proxy: messages and calls.

A message or call from a participant's real number to their proxy number is routed through the
open Session that pairs them:

1. the Session's mode must allow it (a call to a message-only Session is rejected with 80911,
   a message to a voice-only one with 80912);
2. the service's intercept_callback_url is asked first; a 403 blocks it (80909), any other
   answer or no answer lets it through;
3. it is recorded as an Interaction (`message`: SM… legs, the inbound one `delivered`;
   `voice`: CA… legs, the inbound one `in-progress`) and the outbound leg, from the other
   participant's proxy number to their real one, is handed to the carrier by a background job;
4. the service's callback_url is told (and told again as the legs' statuses change).

Calls then report their progress (`ringing`, `in-progress`, `completed`, `busy`, …) by their
CallSid, inbound or outbound leg; when one leg ends, the other ends with it. An outbound leg
reports nothing until the carrier has been handed it (409, 80608).

Traffic that no open Session routes goes to the service's out_of_session_callback_url, signed,
as Twilio's phone-number webhook carries it (From, To, Body or CallSid/CallStatus, AccountSid).
Its answer is acted on as Twilio documents:

- `application/json`: an auto-create Session (`uniqueName`, `mode`, `ttl`, `dateExpiry`,
  `participantIdentifier` (required), `participantProxyIdentifier`,
  `participantFriendlyName`). The Session is created with the sender (on the proxy number they
  reached) and that participant, and the traffic is then routed as if it had found it open.
- `application/xml` or `text/xml`: TwiML for the sender. The simulated carrier carries out each
  `<Message>` (a reply from the proxy number to the sender, kept in the outbox); the caller of
  the operator endpoint hears what was sent, never the callback's answer itself, so the
  callback cannot be used to read what its URL serves.
- any other 2xx answer: nothing can route it (80905); a non-2xx answer or no answer: 80913.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlalchemy import Select, bindparam, or_, select
from sqlalchemy.orm import Session

from simplane.core import callbacks
from simplane.core.errors import TwilioError, bad_request, conflict, not_found
from simplane.core.params import json_value, parse_datetime
from simplane.core.sids import looks_like_sid, new_sid
from simplane.proxy import carrier, webhooks
from simplane.proxy import errors as E
from simplane.proxy import service as svc
from simplane.proxy.models import (
    ProxyInteraction,
    ProxyParticipant,
    ProxyPhoneNumber,
    ProxyService,
    ProxySession,
)

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.proxy")

# In lifecycle order; the last five are final.
CALL_STATUSES = ("queued", "initiated", "ringing", "in-progress", "completed", "busy",
                 "no-answer", "canceled", "failed")
CALL_ENDED = ("completed", "busy", "no-answer", "canceled", "failed")


def moves_back(current: str | None, status: str) -> bool:
    """Whether a leg at `current` going to `status` would go back in the call's lifecycle: to
    an earlier status, or from a final one to any other. A status reported again is not."""
    if current == status or current not in CALL_STATUSES:
        return False
    return current in CALL_ENDED or CALL_STATUSES.index(status) < CALL_STATUSES.index(current)


@dataclass
class Inbound:
    """A message or call reaching a proxy number, as the carrier's webhook describes it."""

    kind: str  # message | voice
    sender: str
    to: str
    resource_sid: str  # MessageSid / CallSid: the carrier's, or made up when it gave none
    body: str = ""
    media_urls: list[str] = field(default_factory=list)
    call_status: str | None = None

    def webhook_params(self, account_sid: str, service_sid: str) -> dict[str, str]:
        """The parameters Twilio's phone-number webhook would carry, and Proxy's own."""
        params = {"From": self.sender, "To": self.to, "AccountSid": account_sid,
                  "interactionServiceSid": service_sid, "interactionType": self.kind,
                  "interactionData": self.data()}
        if self.kind == "message":
            params.update(Body=self.body, NumMedia=str(len(self.media_urls)))
            params.update({f"MediaUrl{n}": url for n, url in enumerate(self.media_urls)})
            params["MessageSid"] = self.resource_sid
        else:
            params.update(CallSid=self.resource_sid, CallStatus=self.call_status or "ringing",
                          Direction="inbound")
        return params

    def data(self) -> str:
        if self.kind == "voice":
            return json.dumps({})
        content: dict[str, Any] = {"body": self.body}
        if self.media_urls:
            content["media_urls"] = self.media_urls
        return json.dumps(content)


@dataclass
class Route:
    service_pk: int
    session_pk: int
    participant_pk: int
    mode: str


@cache
def _route_statements() -> tuple[Select, Select]:
    """Built once, with bind parameters: routing runs for every inbound message and call."""
    in_session = (
        select(ProxyParticipant.pk, ProxySession.pk, ProxySession.mode, ProxyService)
        .join(ProxySession, ProxySession.pk == ProxyParticipant.session_pk)
        .join(ProxyService, ProxyService.pk == ProxyParticipant.service_pk)
        .where(ProxyParticipant.account_sid == bindparam("account_sid"),
               ProxyParticipant.identifier == bindparam("sender"),
               ProxyParticipant.proxy_identifier == bindparam("number"),
               ProxyParticipant.date_deleted.is_(None),
               ProxySession.status.in_(svc.ACTIVE))
        .order_by(ProxySession.pk.desc()).limit(1))
    pool = (
        select(ProxyService)
        .join(ProxyPhoneNumber, ProxyPhoneNumber.service_pk == ProxyService.pk)
        .where(ProxyPhoneNumber.account_sid == bindparam("account_sid"),
               ProxyPhoneNumber.phone_number == bindparam("number"))
        .order_by(ProxyService.pk).limit(1))
    return in_session, pool


def find_route(db: Session, account_sid: str, sender: str, proxy_number: str
               ) -> tuple[Route | None, ProxyService | None]:
    """The open session where `sender` is a participant on `proxy_number`, and the service
    whose pool holds the number (None: not a proxy number of this account)."""
    in_session, pool = _route_statements()
    values = {"account_sid": account_sid, "sender": sender, "number": proxy_number}
    row = db.execute(in_session, values).first()
    if row is not None:
        return Route(row[3].pk, row[1], row[0], row[2]), row[3]
    return None, db.scalar(pool, {"account_sid": account_sid, "number": proxy_number})


async def receive(runtime: Runtime, account_sid: str, inbound: Inbound) -> dict:
    """Route one inbound message or call; returns what happened to it. The callbacks it waits
    for are awaited on the event loop; the database is used on threads."""
    route, service, token = await to_thread.run_sync(_find, runtime, account_sid, inbound)
    if route is None:
        answer = await _out_of_session(runtime, token, service, account_sid, inbound)
        if not isinstance(answer, Route):
            return answer
        route = answer
    if inbound.kind == "voice" and route.mode == "message-only":
        raise bad_request("The Session is message-only: Proxy rejected the call",
                          E.CALL_TO_MESSAGE_ONLY)
    if inbound.kind == "message" and route.mode == "voice-only":
        raise bad_request("The Session is voice-only: Proxy rejected the message",
                          E.MESSAGE_TO_VOICE_ONLY)
    url = service.intercept_callback_url
    if url:
        verdict = await callbacks.send_signed_async(
            runtime, account_sid, token, url, inbound.webhook_params(account_sid, service.sid))
        if verdict is not None and verdict.status_code == 403:
            raise TwilioError(403, E.BLOCKED, "The intercept callback blocked the interaction")
    return await to_thread.run_sync(_record, runtime, account_sid, service, route, inbound)


def _find(runtime: Runtime, account_sid: str, inbound: Inbound
          ) -> tuple[Route | None, ProxyService, str]:
    """The route, the service, and the token that signs its callbacks ("" when it has none
    to make)."""
    with runtime.db.read() as db:
        route, service = find_route(db, account_sid, inbound.sender, inbound.to)
        if service is None:
            raise TwilioError(404, 20404, f"{inbound.to} is not a proxy number of this account")
        calls_out = service.intercept_callback_url or (
            route is None and service.out_of_session_callback_url)
        token = callbacks.account_token(db, runtime, account_sid) if calls_out else ""
    return route, service, token


def _record(runtime: Runtime, account_sid: str, service: ProxyService, route: Route,
            inbound: Inbound) -> dict:
    with runtime.db.write() as db:
        now = runtime.clock.now()
        session = db.get(ProxySession, route.session_pk)
        present = list(db.scalars(select(ProxyParticipant).where(
            ProxyParticipant.session_pk == route.session_pk,
            ProxyParticipant.date_deleted.is_(None))))
        sender = next((p for p in present if p.pk == route.participant_pk), None)
        if session is None or sender is None or session.status not in svc.ACTIVE:
            raise TwilioError(404, E.OUT_OF_SESSION,
                              f"No open Session routes {inbound.sender} → {inbound.to}")
        other = next((p for p in present if p.pk != sender.pk), None)
        voice = inbound.kind == "voice"
        prefix, kind = ("CA", "Call") if voice else ("SM", "Message")
        interaction = ProxyInteraction(
            sid=new_sid("KI"), account_sid=account_sid, service_pk=session.service_pk,
            session_pk=session.pk, participant_sid=None, data=inbound.data(), type=inbound.kind,
            inbound_participant_sid=sender.sid,
            inbound_resource_sid=inbound.resource_sid,
            inbound_resource_status="in-progress" if voice else "delivered",
            inbound_resource_type=kind,
            outbound_participant_sid=other.sid if other else None,
            outbound_resource_sid=new_sid(prefix) if other else None,
            outbound_resource_status=("initiated" if voice else "queued") if other else None,
            outbound_resource_type=kind if other else None,
            date_created=now, date_updated=now)
        db.add(interaction)
        svc.touch(session, now)
        db.flush()
        webhooks.interaction(db, runtime, service, session, interaction)
        runtime.worker.wake_after_commit(db)
        return {"interaction_sid": interaction.sid, "session_sid": session.sid,
                "type": interaction.type,
                "inbound_resource_sid": interaction.inbound_resource_sid,
                "outbound_resource_sid": interaction.outbound_resource_sid,
                "to": other.identifier if other else None,
                "from": other.proxy_identifier if other else None,
                "body": None if voice else inbound.body}


# --- out of session --------------------------------------------------------------------------

async def _out_of_session(runtime: Runtime, token: str, service: ProxyService,
                          account_sid: str, inbound: Inbound) -> Route | dict:
    unroutable = TwilioError(404, E.OUT_OF_SESSION,
                             f"No open Session routes {inbound.sender} → {inbound.to}")
    url = service.out_of_session_callback_url
    if not url:
        raise unroutable
    response = await callbacks.send_signed_async(
        runtime, account_sid, token, url, inbound.webhook_params(account_sid, service.sid))
    if response is None or not 200 <= response.status_code < 300:
        raise TwilioError(502, E.OUT_OF_SESSION_CALLBACK_FAILED,
                          "The out-of-session callback failed")
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return await to_thread.run_sync(_auto_create, runtime, service, inbound, response.text)
    if content_type in ("application/xml", "text/xml"):
        return await to_thread.run_sync(_twiml, runtime, service, account_sid, inbound,
                                        response.text)
    raise unroutable


def _auto_create(runtime: Runtime, service: ProxyService, inbound: Inbound, text: str) -> Route:
    try:
        spec = json_value(text)
    except ValueError:
        spec = None
    if not isinstance(spec, dict) or not isinstance(spec.get("participantIdentifier"), str):
        raise TwilioError(404, E.OUT_OF_SESSION, "The out-of-session callback's JSON needs a "
                          "participantIdentifier to create a Session")
    params: dict[str, Any] = {"Participants": [
        {"Identifier": inbound.sender, "ProxyIdentifier": inbound.to},
        {k: v for k, v in (("Identifier", spec["participantIdentifier"]),
                           ("ProxyIdentifier", spec.get("participantProxyIdentifier")),
                           ("FriendlyName", spec.get("participantFriendlyName"))) if v}]}
    if spec.get("uniqueName") is not None:
        params["UniqueName"] = str(spec["uniqueName"])
    if spec.get("mode") is not None:
        if spec["mode"] not in svc.MODES:
            raise svc.invalid("Invalid mode in the out-of-session callback's JSON: must be one "
                              f"of {', '.join(svc.MODES)}")
        params["Mode"] = spec["mode"]
    if spec.get("ttl") is not None:
        try:
            params["Ttl"] = int(spec["ttl"])
        except (TypeError, ValueError):
            raise svc.invalid("Invalid ttl in the out-of-session callback's JSON") from None
    if spec.get("dateExpiry") is not None:
        params["DateExpiry"] = parse_datetime("dateExpiry", str(spec["dateExpiry"]))
    with runtime.db.write() as db:
        service = db.get_one(ProxyService, service.pk)
        session = svc.create_session(db, runtime, service, params)
        sender = svc.active_participants(db, session)[0]
        return Route(service.pk, session.pk, sender.pk, session.mode)


def _twiml(runtime: Runtime, service: ProxyService, account_sid: str, inbound: Inbound,
           text: str) -> dict:
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise TwilioError(404, E.OUT_OF_SESSION, "The out-of-session callback's TwiML is not "
                          "valid XML") from None
    replies = []
    with runtime.db.write() as db:
        now = runtime.clock.now()
        for verb in root.iter("Message"):
            body = "".join(verb.itertext()).strip()
            sid = new_sid("SM")
            carrier.carrier.send_message(db, carrier.Outbound(
                sid=sid, account_sid=account_sid, from_number=inbound.to,
                to_number=inbound.sender, body=body, service_sid=service.sid), now)
            replies.append({"sid": sid, "from": inbound.to, "to": inbound.sender, "body": body})
    return {"messages": replies}


# --- call progress ---------------------------------------------------------------------------

def call_status(runtime: Runtime, account_sid: str, call_sid: str, status: str,
                duration: str | None) -> dict:
    """A call leg's progress, by its CallSid; the end of one leg ends the other."""
    if status not in CALL_STATUSES:
        raise bad_request(f"Invalid CallStatus: {status!r} is not one of "
                          f"{', '.join(CALL_STATUSES)}")
    if duration is not None and not duration.isdigit():
        raise bad_request(f"Invalid CallDuration: {duration!r} is not a number of seconds")
    with runtime.db.write() as db:
        now = runtime.clock.now()
        i = None
        if looks_like_sid(call_sid, "CA"):
            i = db.scalar(select(ProxyInteraction).where(
                ProxyInteraction.account_sid == account_sid, ProxyInteraction.type == "voice",
                or_(ProxyInteraction.inbound_resource_sid == call_sid,
                    ProxyInteraction.outbound_resource_sid == call_sid)).limit(1)
                .with_for_update())  # read and changed as one, against concurrent reports
        if i is None:
            raise not_found("Call", call_sid)
        inbound_leg = i.inbound_resource_sid == call_sid
        mine, theirs = (("inbound", "outbound") if inbound_leg else ("outbound", "inbound"))
        current = getattr(i, f"{mine}_resource_status")
        if not inbound_leg and current in svc.PENDING and status not in svc.PENDING:
            # The carrier has not been handed this leg yet: it has no progress to report, and
            # taking one would keep the leg from ever being placed.
            raise conflict(f"Invalid CallStatus: call {call_sid} is {current}, not yet placed; "
                           f"its progress can be reported once the carrier has it",
                           E.BAD_STATUS)
        if moves_back(current, status):
            # Reported late or replayed: the leg stays where it is (a leg the carrier has is
            # never pending again, so it is never placed twice; an ended call stays ended).
            return _call_state(i, db.get_one(ProxySession, i.session_pk))
        setattr(i, f"{mine}_resource_status", status)
        other = getattr(i, f"{theirs}_resource_status")
        if status in CALL_ENDED and other is not None and other not in CALL_ENDED:
            answered = other in ("in-progress", "answered")
            setattr(i, f"{theirs}_resource_status", "completed" if answered else "canceled")
        if duration is not None:
            i.data = json.dumps({"duration": duration})
        i.date_updated = now
        session = db.get_one(ProxySession, i.session_pk)
        db.flush()
        webhooks.interaction(db, runtime, db.get_one(ProxyService, i.service_pk), session, i)
        return _call_state(i, session)


def _call_state(i: ProxyInteraction, session: ProxySession) -> dict:
    return {"interaction_sid": i.sid, "session_sid": session.sid,
            "inbound_resource_status": i.inbound_resource_status,
            "outbound_resource_status": i.outbound_resource_status}
