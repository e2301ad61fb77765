"""Proxy v1 routes and representations, one handler per operation of the spec."""

from __future__ import annotations

from sqlalchemy import select

from simplane.core.api import Ctx, ProductAPI
from simplane.core.clock import iso
from simplane.core.paging import paginate
from simplane.proxy import operator
from simplane.proxy import service as svc
from simplane.proxy.models import (
    ProxyInteraction,
    ProxyParticipant,
    ProxyPhoneNumber,
    ProxyService,
    ProxySession,
)

api = ProductAPI("proxy")


# --- representations -------------------------------------------------------------------------

def service_json(ctx: Ctx, s: ProxyService) -> dict:
    url = ctx.url(f"/Services/{s.sid}")
    return {
        "sid": s.sid, "unique_name": s.unique_name, "account_sid": s.account_sid,
        "chat_instance_sid": s.chat_instance_sid, "callback_url": s.callback_url,
        "default_ttl": s.default_ttl, "number_selection_behavior": s.number_selection_behavior,
        "geo_match_level": s.geo_match_level, "intercept_callback_url": s.intercept_callback_url,
        "out_of_session_callback_url": s.out_of_session_callback_url,
        "date_created": iso(s.date_created), "date_updated": iso(s.date_updated), "url": url,
        "links": {"sessions": f"{url}/Sessions", "phone_numbers": f"{url}/PhoneNumbers"},
    }


def phone_number_json(ctx: Ctx, s: ProxyService, n: ProxyPhoneNumber,
                      usage: dict[str, int] | None = None) -> dict:
    """`usage`: the service's svc.usage(), when a page of numbers is rendered."""
    in_use = svc.in_use(ctx.db, s.pk, n.sid) if usage is None else usage.get(n.sid, 0)
    return {
        "sid": n.sid, "account_sid": n.account_sid, "service_sid": s.sid,
        "date_created": iso(n.date_created), "date_updated": iso(n.date_updated),
        "phone_number": n.phone_number, "friendly_name": n.friendly_name,
        "iso_country": n.iso_country, "capabilities": dict(n.capabilities),
        "url": ctx.url(f"/Services/{s.sid}/PhoneNumbers/{n.sid}"),
        "is_reserved": n.is_reserved, "in_use": in_use,
    }


def session_json(ctx: Ctx, x: ProxySession) -> dict:
    url = ctx.url(f"/Services/{x.service_sid}/Sessions/{x.sid}")
    return {
        "sid": x.sid, "service_sid": x.service_sid, "account_sid": x.account_sid,
        "date_started": iso(x.date_started), "date_ended": iso(x.date_ended),
        "date_last_interaction": iso(x.date_last_interaction), "date_expiry": iso(x.date_expiry),
        "unique_name": x.unique_name, "status": x.status, "closed_reason": x.closed_reason,
        "ttl": x.ttl, "mode": x.mode,
        "date_created": iso(x.date_created), "date_updated": iso(x.date_updated), "url": url,
        "links": {"interactions": f"{url}/Interactions", "participants": f"{url}/Participants"},
    }


def participant_json(ctx: Ctx, x: ProxySession, p: ProxyParticipant) -> dict:
    url = ctx.url(f"/Services/{x.service_sid}/Sessions/{x.sid}/Participants/{p.sid}")
    return {
        "sid": p.sid, "session_sid": x.sid, "service_sid": x.service_sid,
        "account_sid": p.account_sid, "friendly_name": p.friendly_name,
        "identifier": p.identifier, "proxy_identifier": p.proxy_identifier,
        "proxy_identifier_sid": p.proxy_identifier_sid, "date_deleted": iso(p.date_deleted),
        "date_created": iso(p.date_created), "date_updated": iso(p.date_updated), "url": url,
        "links": {"message_interactions": f"{url}/MessageInteractions"},
    }


def interaction_json(ctx: Ctx, x: ProxySession, i: ProxyInteraction,
                     participant_sid: str | None = None) -> dict:
    base = f"/Services/{x.service_sid}/Sessions/{x.sid}"
    url = (ctx.url(f"{base}/Participants/{participant_sid}/MessageInteractions/{i.sid}")
           if participant_sid else ctx.url(f"{base}/Interactions/{i.sid}"))
    body = {
        "sid": i.sid, "session_sid": x.sid, "service_sid": x.service_sid,
        "account_sid": i.account_sid, "data": i.data, "type": i.type,
        "inbound_participant_sid": i.inbound_participant_sid,
        "inbound_resource_sid": i.inbound_resource_sid,
        "inbound_resource_status": i.inbound_resource_status,
        "inbound_resource_type": i.inbound_resource_type,
        "inbound_resource_url": i.inbound_resource_url,
        "outbound_participant_sid": i.outbound_participant_sid,
        "outbound_resource_sid": i.outbound_resource_sid,
        "outbound_resource_status": i.outbound_resource_status,
        "outbound_resource_type": i.outbound_resource_type,
        "outbound_resource_url": i.outbound_resource_url,
        "date_created": iso(i.date_created), "date_updated": iso(i.date_updated), "url": url,
    }
    if participant_sid:
        body["participant_sid"] = participant_sid
    return body


# --- lookups ---------------------------------------------------------------------------------

def _service(ctx: Ctx, name: str = "ServiceSid") -> ProxyService:
    return svc.get_service(ctx.db, ctx.account_sid, ctx.path[name])


def _session(ctx: Ctx, name: str = "SessionSid") -> tuple[ProxyService, ProxySession]:
    service = _service(ctx)
    return service, svc.get_session(ctx.db, service, ctx.path[name])


# --- Services --------------------------------------------------------------------------------

@api.operation("CreateService")
def create_service(ctx: Ctx) -> dict:
    return service_json(ctx, svc.create_service(ctx.db, ctx.account_sid, ctx.params, ctx.now()))


@api.operation("FetchService")
def fetch_service(ctx: Ctx) -> dict:
    return service_json(ctx, _service(ctx, "Sid"))


@api.operation("ListService")
def list_services(ctx: Ctx) -> dict:
    stmt = select(ProxyService).where(ProxyService.account_sid == ctx.account_sid)
    return paginate(ctx, stmt, ProxyService.pk, lambda s: service_json(ctx, s))


@api.operation("UpdateService")
def update_service(ctx: Ctx) -> dict:
    service = _service(ctx, "Sid")
    return service_json(ctx, svc.update_service(ctx.db, service, ctx.params, ctx.now()))


@api.operation("DeleteService")
def delete_service(ctx: Ctx) -> None:
    svc.delete_service(ctx.db, _service(ctx, "Sid"))


# --- PhoneNumbers ----------------------------------------------------------------------------

@api.operation("CreatePhoneNumber")
def create_phone_number(ctx: Ctx) -> dict:
    service = _service(ctx)
    return phone_number_json(ctx, service, svc.add_phone_number(ctx.db, service, ctx.params,
                                                                ctx.now()))


@api.operation("FetchPhoneNumber")
def fetch_phone_number(ctx: Ctx) -> dict:
    service = _service(ctx)
    return phone_number_json(ctx, service, svc.get_phone_number(ctx.db, service, ctx.path["Sid"]))


@api.operation("ListPhoneNumber")
def list_phone_numbers(ctx: Ctx) -> dict:
    service = _service(ctx)
    stmt = select(ProxyPhoneNumber).where(ProxyPhoneNumber.service_pk == service.pk)
    usage = svc.usage(ctx.db, service.pk)
    return paginate(ctx, stmt, ProxyPhoneNumber.pk,
                    lambda n: phone_number_json(ctx, service, n, usage))


@api.operation("UpdatePhoneNumber")
def update_phone_number(ctx: Ctx) -> dict:
    service = _service(ctx)
    number = svc.get_phone_number(ctx.db, service, ctx.path["Sid"])
    if "IsReserved" in ctx.params:
        number.is_reserved = ctx.params["IsReserved"]
    number.date_updated = ctx.now()
    ctx.db.flush()
    return phone_number_json(ctx, service, number)


@api.operation("DeletePhoneNumber")
def delete_phone_number(ctx: Ctx) -> None:
    service = _service(ctx)
    ctx.db.delete(svc.get_phone_number(ctx.db, service, ctx.path["Sid"]))


# --- Sessions --------------------------------------------------------------------------------

@api.operation("CreateSession")
def create_session(ctx: Ctx) -> dict:
    return session_json(ctx, svc.create_session(ctx.db, ctx.runtime, _service(ctx), ctx.params))


@api.operation("FetchSession")
def fetch_session(ctx: Ctx) -> dict:
    return session_json(ctx, _session(ctx, "Sid")[1])


@api.operation("ListSession")
def list_sessions(ctx: Ctx) -> dict:
    service = _service(ctx)
    stmt = select(ProxySession).where(ProxySession.service_pk == service.pk)
    return paginate(ctx, stmt, ProxySession.pk, lambda x: session_json(ctx, x))


@api.operation("UpdateSession")
def update_session(ctx: Ctx) -> dict:
    service, session = _session(ctx, "Sid")
    svc.update_session(ctx.db, ctx.runtime, service, session, ctx.params)
    ctx.db.flush()
    return session_json(ctx, session)


@api.operation("DeleteSession")
def delete_session(ctx: Ctx) -> None:
    svc.delete_session(ctx.db, _session(ctx, "Sid")[1])


# --- Participants ----------------------------------------------------------------------------

@api.operation("CreateParticipant")
def create_participant(ctx: Ctx) -> dict:
    service, session = _session(ctx)
    spec = {k: ctx.params[k] for k in ("Identifier", "FriendlyName", "ProxyIdentifier",
                                       "ProxyIdentifierSid") if k in ctx.params}
    participant = svc.add_participant(ctx.db, ctx.runtime, service, session, spec)
    return participant_json(ctx, session, participant)


@api.operation("FetchParticipant")
def fetch_participant(ctx: Ctx) -> dict:
    _, session = _session(ctx)
    return participant_json(ctx, session, svc.get_participant(ctx.db, session, ctx.path["Sid"]))


@api.operation("ListParticipant")
def list_participants(ctx: Ctx) -> dict:
    _, session = _session(ctx)
    stmt = select(ProxyParticipant).where(ProxyParticipant.session_pk == session.pk)
    return paginate(ctx, stmt, ProxyParticipant.pk, lambda p: participant_json(ctx, session, p))


@api.operation("DeleteParticipant")
def delete_participant(ctx: Ctx) -> dict:
    _, session = _session(ctx)
    participant = svc.get_participant(ctx.db, session, ctx.path["Sid"])
    svc.remove_participant(ctx.db, participant, ctx.now())
    ctx.db.flush()
    return participant_json(ctx, session, participant)


# --- Interactions ----------------------------------------------------------------------------

@api.operation("FetchInteraction")
def fetch_interaction(ctx: Ctx) -> dict:
    _, session = _session(ctx)
    return interaction_json(ctx, session, svc.get_interaction(ctx.db, session, ctx.path["Sid"]))


@api.operation("ListInteraction")
def list_interactions(ctx: Ctx) -> dict:
    _, session = _session(ctx)
    stmt = select(ProxyInteraction).where(ProxyInteraction.session_pk == session.pk)
    return paginate(ctx, stmt, ProxyInteraction.pk, lambda i: interaction_json(ctx, session, i),
                    descending=True)


@api.operation("DeleteInteraction")
def delete_interaction(ctx: Ctx) -> None:
    _, session = _session(ctx)
    ctx.db.delete(svc.get_interaction(ctx.db, session, ctx.path["Sid"]))


@api.operation("CreateMessageInteraction")
def create_message_interaction(ctx: Ctx) -> dict:
    service, session = _session(ctx)
    participant = svc.get_participant(ctx.db, session, ctx.path["ParticipantSid"])
    interaction = svc.create_message_interaction(ctx.db, ctx.runtime, service, session,
                                                 participant, ctx.params)
    return interaction_json(ctx, session, interaction, participant.sid)


@api.operation("FetchMessageInteraction")
def fetch_message_interaction(ctx: Ctx) -> dict:
    _, session = _session(ctx)
    participant = svc.get_participant(ctx.db, session, ctx.path["ParticipantSid"])
    interaction = svc.get_interaction(ctx.db, session, ctx.path["Sid"], participant.sid)
    return interaction_json(ctx, session, interaction, participant.sid)


@api.operation("ListMessageInteraction")
def list_message_interactions(ctx: Ctx) -> dict:
    _, session = _session(ctx)
    participant = svc.get_participant(ctx.db, session, ctx.path["ParticipantSid"])
    stmt = select(ProxyInteraction).where(ProxyInteraction.session_pk == session.pk,
                                          ProxyInteraction.participant_sid == participant.sid)
    return paginate(ctx, stmt, ProxyInteraction.pk,
                    lambda i: interaction_json(ctx, session, i, participant.sid), descending=True)


# --- the simulated carrier (operator endpoints) -----------------------------------------------

api.operator("POST", "/operator/Messages", status=201, own_transactions=True)(operator.messages)
api.operator("POST", "/operator/Calls", status=201, own_transactions=True)(operator.calls)
api.operator("POST", "/operator/Calls/{CallSid}", own_transactions=True)(operator.call_status)
api.operator("GET", "/operator/Outbox")(operator.outbox)
