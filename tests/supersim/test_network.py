"""A Super SIM on the simulated network, end to end through ingest: an active SIM gets a data
session, an address and usage; made inactive, it gets rejections and no sessions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from simplane.events.models import OutboxEvent
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.supersim import devices, udp


def _event(server, imsi, kind, minutes, **facts):  # type: ignore[no-untyped-def]
    return NetworkEvent(kind=kind, imsi=imsi, time=server.clock.now() + timedelta(minutes=minutes),
                        mcc="310", mnc="410", **facts)


def test_an_inactive_sim_gets_rejections_and_no_sessions(server, twilio, fleet, active_sim):
    from simplane.supersim.models import Sim

    with server.runtime.db.read() as db:
        imsi = db.query(Sim.imsi).filter(Sim.sid == active_sim.sid).scalar()
    device = devices.SimulatedDevice()
    try:
        result = ingest(server.runtime, [
            _event(server, imsi, "attachment.accepted", 0),
            _event(server, imsi, "session.started", 0, session_id="s1", apn="super",
                   ip_address=device.ip),
            _event(server, imsi, "session.updated", 6, session_id="s1", bytes_up=300,
                   bytes_down=700),
        ])
        assert result.sessions_started == 1 and result.sessions_refused == 0
        sims = twilio.supersim.v1.sims
        assert [a.ip_address for a in sims(active_sim.sid).sim_ip_addresses.list()] == [device.ip]
        end = server.clock.now() + timedelta(hours=1)
        [record] = twilio.supersim.v1.usage_records.list(sim="tracker", end_time=end)
        assert record.data_total == 1000

        # The session's address is where IP Commands go.
        twilio.supersim.v1.ip_commands.create(sim="tracker", payload="hi", device_port=device.port)
        server.drain()
        assert device.receive()[0] == b"hi"

        sims(active_sim.sid).update(status="inactive")
        server.drain()
        assert sims(active_sim.sid).sim_ip_addresses.list() == []
        # The open session's next record ends it, counting nothing more; a new one is refused.
        result = ingest(server.runtime, [
            _event(server, imsi, "session.updated", 8, session_id="s1", bytes_up=5300,
                   bytes_down=5700),
            _event(server, imsi, "attachment.accepted", 10),
            _event(server, imsi, "session.started", 10, session_id="s2", apn="super",
                   ip_address=device.ip),
            _event(server, imsi, "session.updated", 16, session_id="s2", bytes_up=5000,
                   bytes_down=5000),
        ])
        assert result.sessions_started == 0 and result.sessions_refused == 1
        assert result.sessions_ended == 1 and result.bytes_counted == 0
        with server.runtime.db.read() as db:
            types = [t.rsplit(".", 2)[-2:] for t in db.scalars(
                select(OutboxEvent.type).where(OutboxEvent.subject == active_sim.sid)
                .order_by(OutboxEvent.pk))]
        assert types[-2:] == [["data-session", "ended"], ["attachment", "rejected"]]
        assert sims(active_sim.sid).sim_ip_addresses.list() == []
        [record] = twilio.supersim.v1.usage_records.list(sim="tracker", end_time=end)
        assert record.data_total == 1000  # nothing counted while inactive
        device.send(b"still there?", udp.address(server.runtime))
        server.drain()
        assert twilio.supersim.v1.ip_commands.list(direction="from_sim") == []
    finally:
        device.close()
