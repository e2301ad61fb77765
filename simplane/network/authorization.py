"""RADIUS authorisation (RFC 2865): may this SIM use data now?

A packet gateway asks with an Access-Request naming the SIM by its IMSI (3GPP-IMSI, or an IMSI
as User-Name) and the network serving it (3GPP-SGSN-MCC-MNC, else 3GPP-User-Location-Info). The
answer is the one policy's (`simplane.network.policy.decide`), the same that ingest applies when
a session starts: the SIM's status, its rate plan (data enabled, national and international
roaming, the limits left in its billing period) or, for a Super SIM, its Fleet (data enabled, the
data limit, the networks of its Network Access Profile).

An Access-Accept carries Framed-IP-Address (the SIM's address, as the API shows it, when it has
one), Acct-Interim-Interval, and where a limit applies a Session-Timeout that ends the session
when the billing period its limit counts in does, so that the gateway asks again for the next.
An Access-Reject carries a Reply-Message naming the reason (`SIM_NOT_ACTIVE: …`), and the refusal
is recorded as ingest records a refused session: a refused data session (for a Super SIM with
its data-session.failed event, as Twilio documents), never listed.

The SIM's identity is its IMSI: a User-Password or CHAP-Password, if any, is not checked (the
gateway's shared secret authenticates the request). As on the accounting port, requests from
unknown clients or with a bad authenticator are dropped unanswered; an Access-Request with an
EAP-Message must carry a Message-Authenticator (RFC 3579 section 3.2), and one that carries it
must hold; retransmissions get the answer already sent; Status-Server is answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import Counter
from pyrad import packet as radius_packet
from pyrad import tools

from simplane.core.bulk import BulkSql
from simplane.core.metrics import REGISTRY
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.network.models import SimState
from simplane.network.policy import (
    DATA_DISABLED,
    DATA_LIMIT_REACHED,
    NETWORK_NOT_ALLOWED,
    NO_RATE_PLAN,
    ROAMING_DISABLED,
    SIM_NOT_ACTIVE,
    decide,
    period_of,
    plans_of,
)
from simplane.network.radius import (
    LENGTHS,
    STATUS_SERVER,
    Dropped,
    RadiusListener,
    _first,
    _text,
    gateway_of,
    imsi_of,
    rat_type,
    serving_network,
    user_location,
)
from simplane.supersim.models import Sim as SuperSim
from simplane.wireless.models import Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "simplane_radius_auth_requests", "RADIUS Access-Requests received, by outcome", ["outcome"],
    registry=REGISTRY,
)
OUTCOMES = ("accepted", "rejected", "duplicate", "status", "bad_authenticator",
            "unknown_client", "malformed", "error")
for _outcome in OUTCOMES:
    REQUESTS.labels(_outcome)

INTERIM_INTERVAL = 300  # seconds between the gateway's Interim-Updates
UNKNOWN_SIM = "UNKNOWN_SIM"
REASONS = {
    UNKNOWN_SIM: "no SIM of an account has this IMSI",
    SIM_NOT_ACTIVE: "the SIM is not ready or active",
    NO_RATE_PLAN: "the SIM has no rate plan",
    DATA_DISABLED: "data is disabled by the SIM's rate plan or Fleet",
    ROAMING_DISABLED: "the SIM's rate plan does not allow data on this network's roaming class",
    NETWORK_NOT_ALLOWED: "the network is not in the Network Access Profile of the SIM's Fleet",
    DATA_LIMIT_REACHED: "the SIM has used its data limit for this billing period",
}


@dataclass(slots=True)
class AccessRequest:
    imsi: str
    session_id: str  # Acct-Session-Id, else one made of the Request Authenticator
    mcc: str | None = None
    mnc: str | None = None
    gateway: str | None = None
    apn: str | None = None
    rat: str | None = None
    user_name: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    refusal: str | None  # None: accept
    ip_address: str | None = None  # the SIM's
    session_timeout: int | None = None  # seconds


def access_request(pkt: radius_packet.Packet) -> AccessRequest:
    """What an Access-Request asks (Dropped when it is malformed)."""
    try:
        imsi = imsi_of(pkt)
        mcc, mnc = serving_network(pkt, user_location(_first(pkt, "3GPP-User-Location-Info")))
        request = AccessRequest(
            imsi=imsi, session_id=_text(pkt, "Acct-Session-Id") or f"access-{pkt.authenticator.hex()}",
            mcc=mcc, mnc=mnc, gateway=gateway_of(pkt), apn=_text(pkt, "Called-Station-Id"),
            rat=rat_type(_first(pkt, "3GPP-RAT-Type")), user_name=_text(pkt, "User-Name"))
    except (TypeError, ValueError) as exc:
        raise Dropped("malformed", str(exc)) from None
    for name in TEXT_FIELDS:
        value = getattr(request, name)
        if value is not None and len(value) > LENGTHS[name]:
            raise Dropped("malformed", f"{name} is longer than {LENGTHS[name]} characters")
    return request


TEXT_FIELDS = tuple(name for name in AccessRequest.__slots__ if name in LENGTHS)


# Each SIM's address and its usage this period (if it has a state), Wireless SIMs and Super SIMs
# alike: one statement per product for a batch.
STATE_COLUMNS = [SimState.__table__.c[name] for name in (
    "period", "used_home", "used_national", "used_international")]
STATES_FROM = {
    model: (f"{model.__tablename__} LEFT OUTER JOIN {SimState.__tablename__} "
            f"ON {SimState.__tablename__}.sim_sid = {model.__tablename__}.sid")
    for model in (Sim, SuperSim)}


def authorize(runtime: Runtime, requests: list[AccessRequest]) -> list[Answer]:
    """The answers to a batch of Access-Requests, in order; the refusals are recorded as ingest
    records refused sessions (raises if they cannot be: nothing is to be answered then).

    One read for the batch: the facts version and the SIMs' facts not kept by the process
    (`plans_of`, which drops what it keeps when any SIM's facts changed, in any process), then
    one statement for the SIMs' addresses and usage."""
    now = runtime.clock.now()
    imsis = {r.imsi for r in requests}
    with runtime.db.read() as db:
        plans = plans_of(db, imsis)
        wanted = {(sid,) for sid, _a, _p in plans.values()}
        states: dict[str, tuple] = {}
        bulk = BulkSql(db)
        for model in (Sim, SuperSim):
            if wanted:
                for row in bulk.select_in([model.__table__.c.sid, model.__table__.c.ip_address,
                                           *STATE_COLUMNS], STATES_FROM[model],
                                          [model.__table__.c.sid], wanted, processed=False):
                    states[row[0]] = row
                wanted -= {(sid,) for sid in states}
    answers: list[Answer] = []
    refused: list[NetworkEvent] = []
    for request in requests:
        found = plans.get(request.imsi)
        if found is None:
            answers.append(Answer(UNKNOWN_SIM))
            continue
        sid, _account, plan = found
        state = states.get(sid)
        period, period_end = period_of(plan, now)
        used = None
        if state is not None and state[2] == period:
            used = {"home": state[3], "national": state[4], "international": state[5]}
        decision = decide(plan, request.imsi, request.mcc, request.mnc, used)
        if decision.refusal:
            answers.append(Answer(decision.refusal))
            refused.append(NetworkEvent(
                "session.failed", request.imsi, now, session_id=request.session_id,
                apn=request.apn, rat=request.rat, mcc=request.mcc, mnc=request.mnc,
                error=decision.refusal, gateway=request.gateway, user_name=request.user_name))
            continue
        timeout = None
        if decision.room is not None:  # a limit: ask again when it renews
            timeout = max(int((period_end - now).total_seconds()), 1)
        answers.append(Answer(None, state[1] if state is not None else None, timeout))
    if refused:
        ingest(runtime, refused)
    return answers


class AuthServer(RadiusListener):
    """The authorisation listener: Access-Requests answered by the one policy."""

    NAME = "radius-auth"
    REQUEST = radius_packet.AccessRequest
    STATUS_REPLY = radius_packet.AccessAccept

    def handle(self, datagrams: list[tuple[bytes, tuple]]) -> list[tuple[tuple, bytes]]:
        answers: list[tuple[tuple, bytes]] = []
        pending: list[tuple[tuple, tuple, radius_packet.Packet, AccessRequest]] = []
        copies: list[tuple[tuple, tuple]] = []  # retransmitted within the batch
        seen: set[tuple] = set()
        for data, peer in datagrams:
            try:
                if data[:1] == STATUS_SERVER:
                    answers.append((peer, self._status(data, peer)))
                    REQUESTS.labels("status").inc()
                    continue
                key, found = self._decode(data, peer)
            except Dropped as exc:
                log.info("radius: dropped an Access-Request from %s (%s): %s", peer[0],
                         exc.outcome, exc)
                REQUESTS.labels(exc.outcome).inc()
                continue
            except Exception:  # a bug: this packet goes unanswered, the batch goes on
                log.exception("radius: cannot decode an Access-Request from %s", peer[0])
                REQUESTS.labels("error").inc()
                continue
            if isinstance(found, bytes):
                answers.append((peer, found))
                REQUESTS.labels("duplicate").inc()
            elif key in seen:
                copies.append((peer, key))
            else:
                seen.add(key)
                pending.append((peer, key, *found))
        if not pending:
            return answers
        try:
            decided = authorize(self.runtime, [request for *_k, request in pending])
        except Exception:  # unanswered: the gateways retransmit
            log.exception("radius: cannot authorise %d Access-Requests", len(pending))
            REQUESTS.labels("error").inc(len(pending))
            return answers
        replies: dict[tuple, bytes] = {}
        rejected = 0
        for (peer, key, pkt, request), answer in zip(pending, decided, strict=True):
            replies[key] = self._remember(key, self._reply(pkt, answer))
            answers.append((peer, replies[key]))
            if answer.refusal:
                rejected += 1
                log.info("radius: rejected IMSI %s: %s", request.imsi, answer.refusal)
        REQUESTS.labels("accepted").inc(len(pending) - rejected)
        REQUESTS.labels("rejected").inc(rejected)
        for peer, key in copies:
            answers.append((peer, replies[key]))
            REQUESTS.labels("duplicate").inc()
        return answers

    def _decode(self, data: bytes, peer: tuple
                ) -> tuple[tuple, bytes | tuple[radius_packet.Packet, AccessRequest]]:
        if len(data) < 20 or data[0] != radius_packet.AccessRequest:
            raise Dropped("malformed", "not an Access-Request")
        key = (peer[0], peer[1], data[1], data[4:20])
        cached = self._replies.get(key)
        if cached is not None:  # a retransmission (RFC 5080 section 2.2.2): the same answer
            return key, cached
        pkt = self._packet(radius_packet.AuthPacket, data, peer)  # Message-Authenticator checked
        if not pkt.message_authenticator and _first(pkt, "EAP-Message") is not None:
            raise Dropped("bad_authenticator", "an EAP-Message without a Message-Authenticator")
        return key, (pkt, access_request(pkt))

    def _reply(self, pkt: radius_packet.Packet, answer: Answer) -> bytes:
        # pyrad signs every answer to an Access-Request with a Message-Authenticator (RFC 3579
        # where the request was signed; RFC 5080's advice against forged answers otherwise).
        # Values go in encoded by pyrad's codecs, under their attribute codes: the constant ones
        # once and for all (`REPLY_VALUES`).
        reply = pkt.CreateReply()
        if answer.refusal:
            reply.code = radius_packet.AccessReject
            reply[REPLY_MESSAGE] = [REPLY_VALUES[answer.refusal]]
        else:
            reply.code = radius_packet.AccessAccept
            if answer.ip_address and ":" not in answer.ip_address:
                reply[FRAMED_IP_ADDRESS] = [tools.EncodeAddress(answer.ip_address)]
            reply[ACCT_INTERIM_INTERVAL] = [REPLY_VALUES[ACCT_INTERIM_INTERVAL]]
            if answer.session_timeout is not None:
                reply[SESSION_TIMEOUT] = [tools.EncodeInteger(answer.session_timeout)]
        if not reply.message_authenticator:  # (pyrad's CreateReply asks for it already)
            reply.add_message_authenticator()
        return bytes(reply.ReplyPacket())


# The codes of the attributes of an answer (RFC 2865, RFC 2869), as in the dictionary.
REPLY_MESSAGE, FRAMED_IP_ADDRESS, SESSION_TIMEOUT, ACCT_INTERIM_INTERVAL = 18, 8, 27, 85
REPLY_VALUES: dict[str | int, bytes] = {
    **{refusal: tools.EncodeString(f"{refusal}: {reason}") for refusal, reason in REASONS.items()},
    ACCT_INTERIM_INTERVAL: tools.EncodeInteger(INTERIM_INTERVAL)}
