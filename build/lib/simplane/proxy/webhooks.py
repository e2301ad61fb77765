"""What Proxy tells a service's callback_url, through the durable, signed callback queue.

Twilio documents the interaction callback (form-encoded, one request per interaction); simplane
also sends it again whenever an interaction's resource status changes (a message delivered, a
call answered or ended), so the latest request always carries the current statuses.

When a Session closes (by update or on expiry) callback_url also gets one request; Twilio does
not document its parameters, so simplane sends the Session in the same style: `sessionSid`,
`sessionServiceSid`, `sessionAccountSid`, `sessionUniqueName`, `sessionStatus`,
`sessionClosedReason`, `sessionDateEnded`, `sessionDateLastInteraction`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from simplane.core import callbacks
from simplane.core.clock import iso
from simplane.proxy.models import ProxyInteraction, ProxyService, ProxySession

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime


def interaction_params(session: ProxySession, i: ProxyInteraction) -> dict[str, str | None]:
    return {
        "interactionSid": i.sid, "interactionSessionSid": session.sid,
        "interactionServiceSid": session.service_sid, "interactionAccountSid": i.account_sid,
        "interactionType": i.type, "interactionData": i.data or "",
        "interactionDateCreated": iso(i.date_created),
        "interactionDateUpdated": iso(i.date_updated),
        "inboundParticipantSid": i.inbound_participant_sid,
        "inboundResourceSid": i.inbound_resource_sid,
        "inboundResourceStatus": i.inbound_resource_status,
        "inboundResourceType": i.inbound_resource_type,
        "inboundResourceUrl": i.inbound_resource_url,
        "outboundParticipantSid": i.outbound_participant_sid,
        "outboundResourceSid": i.outbound_resource_sid,
        "outboundResourceStatus": i.outbound_resource_status,
        "outboundResourceType": i.outbound_resource_type,
        "outboundResourceUrl": i.outbound_resource_url,
    }


def interaction(db: Session, runtime: Runtime, service: ProxyService, session: ProxySession,
                i: ProxyInteraction) -> None:
    """Owe callback_url the interaction as it is now."""
    callbacks.enqueue(db, runtime, session.account_sid, service.callback_url, "POST",
                      interaction_params(session, i))


def session_closed(db: Session, runtime: Runtime, service: ProxyService,
                   session: ProxySession) -> None:
    callbacks.enqueue(db, runtime, session.account_sid, service.callback_url, "POST", {
        "sessionSid": session.sid, "sessionServiceSid": session.service_sid,
        "sessionAccountSid": session.account_sid, "sessionUniqueName": session.unique_name,
        "sessionStatus": session.status, "sessionClosedReason": session.closed_reason,
        "sessionDateEnded": iso(session.date_ended),
        "sessionDateLastInteraction": iso(session.date_last_interaction),
    })
