"""Inbound traffic to the number pool, as the carrier would hand it to Proxy.

`receive_message` routes a message from a participant's real number to their proxy number:
the service's intercept callback may block it (a 403), otherwise it is recorded as an
Interaction, forwarded to the other participant (from that participant's proxy number) and the
service's callback_url is told. A message that matches no open session goes to the service's
out_of_session_callback_url instead.

Operators (and tests) reach it at `POST /proxy/operator/Messages` with the account's
credentials and `From`, `To`, `Body`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from simplane.core import callbacks
from simplane.core.api import Ctx
from simplane.core.errors import TwilioError, bad_request
from simplane.core.models import Account
from simplane.core.sids import new_sid
from simplane.core.signature import sign_form
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

OUT_OF_SESSION = 80905  # no open session for this sender and proxy number
BLOCKED = 80909  # the intercept callback answered 403


@dataclass
class Route:
    service_pk: int
    session_pk: int
    participant_pk: int


def _find_route(db: Session, account_sid: str, sender: str, proxy_number: str
                ) -> tuple[Route | None, ProxyService | None]:
    row = db.execute(
        select(ProxyParticipant.pk, ProxySession.pk, ProxyService.pk)
        .join(ProxySession, ProxySession.pk == ProxyParticipant.session_pk)
        .join(ProxyService, ProxyService.pk == ProxyParticipant.service_pk)
        .where(ProxyParticipant.account_sid == account_sid,
               ProxyParticipant.identifier == sender,
               ProxyParticipant.proxy_identifier == proxy_number,
               ProxyParticipant.date_deleted.is_(None),
               ProxySession.status.in_(svc.ACTIVE),
               ProxySession.mode != "voice-only")
        .order_by(ProxySession.pk.desc()).limit(1)).first()
    if row is not None:
        return Route(row[2], row[1], row[0]), db.get(ProxyService, row[2])
    service = db.scalar(select(ProxyService).join(
        ProxyPhoneNumber, ProxyPhoneNumber.service_pk == ProxyService.pk).where(
        ProxyPhoneNumber.account_sid == account_sid,
        ProxyPhoneNumber.phone_number == proxy_number).order_by(ProxyService.pk).limit(1))
    return None, service


def _token(db: Session, runtime: Runtime, account_sid: str) -> str:
    sealed = db.scalar(select(Account.auth_token_sealed).where(Account.sid == account_sid))
    return runtime.box.open(sealed)


def _intercepted(runtime: Runtime, token: str, url: str, params: dict[str, str]) -> bool:
    """Ask the intercept callback; only a 403 blocks (errors and timeouts let it through)."""
    headers = {"User-Agent": "TwilioProxy/1.1", "X-Twilio-Signature": sign_form(token, url, params)}
    try:
        return runtime.http.post(url, data=params, headers=headers).status_code == 403
    except httpx.HTTPError:
        return False


def receive_message(runtime: Runtime, account_sid: str, sender: str, to: str, body: str) -> dict:
    with runtime.db.read() as db:
        route, service = _find_route(db, account_sid, sender, to)
        if service is None:
            raise TwilioError(404, 20404, f"{to} is not a proxy number of this account")
        token = _token(db, runtime, account_sid)
        intercept_url = service.intercept_callback_url
    base = {"From": sender, "To": to, "Body": body, "AccountSid": account_sid,
            "interactionServiceSid": service.sid, "interactionType": "message",
            "interactionData": json.dumps({"body": body})}
    if route is None:
        with runtime.db.write() as db:
            callbacks.enqueue(db, runtime, account_sid, service.out_of_session_callback_url,
                              "POST", base)
        raise TwilioError(404, OUT_OF_SESSION, f"No open Session routes {sender} → {to}")
    if intercept_url and _intercepted(runtime, token, intercept_url, base):
        raise TwilioError(403, BLOCKED, "The intercept callback blocked the interaction")
    with runtime.db.write() as db:
        now = runtime.clock.now()
        session = db.get(ProxySession, route.session_pk)
        inbound = db.get(ProxyParticipant, route.participant_pk)
        if session is None or inbound is None or session.status not in svc.ACTIVE:
            raise TwilioError(404, OUT_OF_SESSION, f"No open Session routes {sender} → {to}")
        other = next((p for p in svc.active_participants(db, session) if p.pk != inbound.pk),
                     None)
        interaction = ProxyInteraction(
            sid=new_sid("KI"), account_sid=account_sid, service_pk=session.service_pk,
            session_pk=session.pk, participant_sid=None, data=json.dumps({"body": body}),
            type="message", inbound_participant_sid=inbound.sid,
            inbound_resource_sid=new_sid("SM"), inbound_resource_status="delivered",
            inbound_resource_type="Message",
            outbound_participant_sid=other.sid if other else None,
            outbound_resource_sid=new_sid("SM") if other else None,
            outbound_resource_status="queued" if other else None,
            outbound_resource_type="Message" if other else None,
            date_created=now, date_updated=now)
        db.add(interaction)
        svc.touch(session, now)
        db.flush()
        notify(db, runtime, service, session, interaction)
        runtime.worker.wake_after_commit(db)
        return {"interaction_sid": interaction.sid, "session_sid": session.sid,
                "to": other.identifier if other else None,
                "from": other.proxy_identifier if other else None, "body": body}


def notify(db: Session, runtime: Runtime, service: ProxyService, session: ProxySession,
           interaction: ProxyInteraction) -> None:
    """Owe the service's callback_url the interaction (sent by the durable callback queue)."""
    i = interaction
    callbacks.enqueue(db, runtime, session.account_sid, service.callback_url, "POST", {
        "interactionSid": i.sid, "interactionSessionSid": session.sid,
        "interactionServiceSid": service.sid, "interactionAccountSid": session.account_sid,
        "interactionType": i.type, "interactionData": i.data or "",
        "inboundParticipantSid": i.inbound_participant_sid,
        "inboundResourceSid": i.inbound_resource_sid,
        "inboundResourceStatus": i.inbound_resource_status,
        "inboundResourceType": i.inbound_resource_type,
        "outboundParticipantSid": i.outbound_participant_sid,
        "outboundResourceSid": i.outbound_resource_sid,
        "outboundResourceStatus": i.outbound_resource_status,
        "outboundResourceType": i.outbound_resource_type,
    })


def operator_messages(ctx: Ctx) -> dict:
    """POST /proxy/operator/Messages: From, To, Body, as a carrier hands over an inbound SMS."""
    form = {k: v[-1] for k, v in ctx.params.raw.items()}
    for name in ("From", "To", "Body"):
        if name not in form:
            raise bad_request(f"Missing required parameter {name} in the post body")
    return receive_message(ctx.runtime, ctx.account_sid, form["From"], form["To"], form["Body"])
