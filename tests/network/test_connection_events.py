"""Super SIM Connection Events written by ingest: every type, the exact shapes, and the rules of
the Connection Events page (rejections, windows, cumulative totals, the data limit)."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from simplane.core.clock import iso
from simplane.events import catalogue
from simplane.events.models import OutboxEvent
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.supersim import networks
from tests.supersim.conftest import stock
from tests.support import statements_sent

ATT = networks.network_for("310", "410")
PREFIX = "com.twilio.iot.supersim.connection."
DATA_KEYS = {"data_session_sid", "data_session_start_time", "data_session_end_time",
             "data_session_update_start_time", "data_session_update_end_time", "data_upload",
             "data_download", "data_total", "data_session_data_upload",
             "data_session_data_download", "data_session_data_total", "apn", "ip_address"}


@pytest.fixture
def super_sim(server, twilio):
    """An active Super SIM in a Fleet whose Network Access Profile allows AT&T (310-410)."""
    supersim = twilio.supersim.v1
    supersim.network_access_profiles.create(unique_name="us", networks=[ATT.sid])
    supersim.fleets.create(network_access_profile="us", unique_name="f", data_limit=1)
    [row] = stock(server)
    sim = supersim.sims.create(iccid=row["iccid"], registration_code=row["registration_code"])
    supersim.sims(sim.sid).update(fleet="f", status="active", unique_name="tracker")
    server.drain()
    assert supersim.sims(sim.sid).fetch().status == "active"
    return sim.sid, row["imsi"], row["iccid"]


def emitted(server, sim_sid):
    with server.runtime.db.read() as db:
        rows = db.execute(select(OutboxEvent.type, OutboxEvent.data, OutboxEvent.id)
                          .where(OutboxEvent.subject == sim_sid).order_by(OutboxEvent.pk)).all()
    events = []
    for type_, data, id_ in rows:
        data = orjson.loads(data)
        catalogue.validate(type_, data)  # every emitted event matches its JSON Schema
        assert data["event_sid"] == id_ and data["event_type"] == type_
        events.append(data)
    return events


def at(server, imsi, kind, minutes, up=0, down=0, network=("310", "410"), **facts):
    return NetworkEvent(kind=kind, imsi=imsi, time=server.clock.now() + timedelta(minutes=minutes),
                        mcc=network[0], mnc=network[1], bytes_up=up, bytes_down=down, **facts)


def test_a_session_emits_started_updated_and_ended_with_windows_and_totals(server, super_sim):
    sid, imsi, iccid = super_sim
    radio = {"rat": "LTE", "imei": "490154203237518", "cell_id": "47322374", "lac": "15170",
             "lat": 34.16, "lon": -118.57, "apn": "super", "ip_address": "100.68.56.159"}
    ingest(server.runtime, [
        at(server, imsi, "attachment.accepted", 0, **radio),
        at(server, imsi, "session.started", 0, session_id="g1", **radio),
        at(server, imsi, "session.updated", 6, 100, 400, session_id="g1"),
        at(server, imsi, "session.updated", 6, 100, 400, session_id="g1"),  # retransmitted
        at(server, imsi, "session.updated", 12, 150, 900, session_id="g1"),
    ])
    ingest(server.runtime, [at(server, imsi, "session.ended", 15, 170, 1000, session_id="g1")])
    events = emitted(server, sid)
    assert [e["event_type"].removeprefix(PREFIX) for e in events] == [
        "attachment.accepted", "data-session.started", "data-session.updated",
        "data-session.updated", "data-session.ended"]
    accepted, started, first, second, ended = events
    assert accepted["sim_sid"] == sid and accepted["sim_iccid"] == iccid
    assert accepted["network"] == {"mcc": "310", "mnc": "410", "sid": ATT.sid,
                                   "friendly_name": ATT.friendly_name, "iso_country": "US"}
    assert accepted["location"] == {"cell_id": "47322374", "lac": "15170", "lat": 34.16,
                                    "lon": -118.57}
    assert accepted["rat_type"] == "4G LTE" and accepted["imei"] == "490154203237518"
    assert not DATA_KEYS & set(accepted) and "error" not in accepted
    assert started["apn"] == "super" and started["ip_address"] == "100.68.56.159"
    assert "data_total" not in started and "data_modifier" not in started
    t = server.clock.now()
    stamp = lambda minutes: (t + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    assert (first["data_session_update_start_time"], first["data_session_update_end_time"]) == (
        stamp(0), stamp(6))
    assert (second["data_session_update_start_time"], second["data_session_update_end_time"]) == (
        stamp(6), stamp(12))
    assert (first["data_upload"], first["data_download"], first["data_total"]) == (100, 400, 500)
    assert (second["data_upload"], second["data_download"]) == (50, 500)
    assert second["data_session_data_total"] == 1050
    assert ended["data_session_end_time"] == stamp(15) and ended["data_total"] == 120
    assert ended["data_session_data_total"] == 1170
    assert sum(e["data_total"] for e in (first, second, ended)) == ended["data_session_data_total"]
    assert len({e["data_session_sid"] for e in events[1:]}) == 1
    assert ended["data_session_sid"].startswith("PI")


def test_every_counted_byte_lies_in_a_window(server, super_sim):
    """Bytes a Start reports, and growth reported at the same second as the window's start, are
    in the windows too: their data_total adds up to the session's."""
    sid, imsi, _iccid = super_sim
    ingest(server.runtime, [
        at(server, imsi, "session.started", 0, 300, 500, session_id="w1", apn="super"),
        at(server, imsi, "session.updated", 6, 600, 900, session_id="w1"),
        at(server, imsi, "session.updated", 6, 700, 1000, session_id="w1"),  # the same second
        at(server, imsi, "session.ended", 9, 800, 1200, session_id="w1"),
    ])
    events = [e for e in emitted(server, sid) if e.get("data_session_sid")]
    windows = [e for e in events if "data_total" in e]
    ended = events[-1]
    assert ended["event_type"].endswith("data-session.ended")
    assert ended["data_session_data_total"] == 2000
    assert sum(e["data_total"] for e in windows) == 2000


def test_updates_come_about_every_6_minutes_whatever_the_interim_interval(server, super_sim):
    """A gateway sending interim updates every minute gives a data-session.updated about every
    6 minutes, each window holding what its minutes counted; the ended event has the rest."""
    sid, imsi, _iccid = super_sim
    ingest(server.runtime, [at(server, imsi, "session.started", 0, session_id="m")])
    for minute in range(1, 15):  # each batch one interim record, as they arrive
        ingest(server.runtime, [at(server, imsi, "session.updated", minute, 10 * minute,
                                   100 * minute, session_id="m")])
    ingest(server.runtime, [at(server, imsi, "session.ended", 15, 150, 1500, session_id="m")])
    events = [e for e in emitted(server, sid) if "data_total" in e]
    assert [e["event_type"].removeprefix(PREFIX) for e in events] == [
        "data-session.updated", "data-session.updated", "data-session.ended"]
    start = server.clock.now()
    windows = [(e["data_session_update_start_time"], e["data_session_update_end_time"],
                e["data_upload"], e["data_download"]) for e in events]
    assert windows == [(iso(start), iso(start + timedelta(minutes=6)), 60, 600),
                       (iso(start + timedelta(minutes=6)), iso(start + timedelta(minutes=12)),
                        60, 600),
                       (iso(start + timedelta(minutes=12)), iso(start + timedelta(minutes=15)),
                        30, 300)]
    assert sum(e["data_total"] for e in events) == events[-1]["data_session_data_total"] == 1650


def test_a_window_a_little_short_of_6_minutes_still_closes(server, super_sim):
    """A gateway whose 6-minute interval runs a few seconds early still gives an update each
    time, not one every 12 minutes."""
    sid, imsi, _iccid = super_sim
    ingest(server.runtime, [at(server, imsi, "session.started", 0, session_id="j")])
    for n in (1, 2, 3):
        ingest(server.runtime, [at(server, imsi, "session.updated", n * 5.95, n * 100, n * 100,
                                   session_id="j")])
    kinds = [e["event_type"].removeprefix(PREFIX) for e in emitted(server, sid)]
    assert kinds == ["data-session.started"] + ["data-session.updated"] * 3


def test_inactive_sims_and_networks_outside_the_profile_are_rejected(server, twilio, super_sim):
    sid, imsi, _ = super_sim
    ingest(server.runtime, [
        at(server, imsi, "attachment.accepted", 0, network=("234", "15")),  # not in the profile
        at(server, imsi, "attachment.failed", 1, error="NETWORK_FAILURE"),
    ])
    twilio.supersim.v1.sims(sid).update(status="inactive")
    server.drain()
    result = ingest(server.runtime, [
        at(server, imsi, "attachment.accepted", 2),
        at(server, imsi, "session.started", 2, session_id="nope"),
        at(server, imsi, "session.updated", 8, 10, 10, session_id="nope"),
    ])
    assert result.sessions_refused == 1 and result.bytes_counted == 0
    kinds = [(e["event_type"].removeprefix(PREFIX), e.get("error", {}).get("code"))
             for e in emitted(server, sid)]
    assert kinds == [("attachment.rejected", 83706), ("attachment.failed", 83709),
                     ("attachment.rejected", 83705)]


def test_fleet_and_profile_changes_reach_the_next_batch(server, twilio, super_sim):
    """Ingest keeps what it read of a SIM between batches; a change to the Network Access
    Profile of its Fleet, or a move to another Fleet, is seen by the very next batch, and until
    then nothing is read again."""
    sid, imsi, _ = super_sim
    supersim = twilio.supersim.v1
    engine = server.runtime.db.engine

    def sim_reads(sent: list[str]) -> int:
        return len([statement for statement in sent if "FROM supersim_sims" in statement])

    ingest(server.runtime, [at(server, imsi, "attachment.accepted", 0)])
    with statements_sent(engine) as sent:
        ingest(server.runtime, [at(server, imsi, "attachment.accepted", 1)])
    assert sim_reads(sent) == 0  # kept from the batch before
    supersim.network_access_profiles("us").networks(ATT.sid).delete()
    with statements_sent(engine) as sent:
        ingest(server.runtime, [at(server, imsi, "attachment.accepted", 2)])
    assert sim_reads(sent) == 1
    supersim.network_access_profiles("us").networks.create(network=ATT.sid)
    supersim.fleets.create(network_access_profile="us", unique_name="off", data_enabled=False)
    supersim.sims(sid).update(fleet="off")
    ingest(server.runtime, [at(server, imsi, "attachment.accepted", 3),
                            at(server, imsi, "session.started", 3, session_id="off")])
    supersim.sims(sid).update(fleet="f")
    ingest(server.runtime, [at(server, imsi, "session.started", 4, session_id="on")])
    kinds = [(e["event_type"].removeprefix(PREFIX), e.get("error", {}).get("code"))
             for e in emitted(server, sid)]
    assert kinds == [("attachment.accepted", None), ("attachment.accepted", None),
                     ("attachment.rejected", 83706), ("attachment.accepted", None),
                     ("data-session.failed", 83707), ("data-session.started", None)]


def test_past_the_data_limit_data_is_blocked(server, super_sim):
    sid, imsi, _ = super_sim  # the Fleet allows 1 MB
    ingest(server.runtime, [
        at(server, imsi, "session.started", 0, session_id="h"),
        at(server, imsi, "session.updated", 6, 200_000, 300_000, session_id="h"),
        at(server, imsi, "session.updated", 12, 400_000, 900_000, session_id="h"),
        at(server, imsi, "session.updated", 18, 500_000, 1_500_000, session_id="h"),
        at(server, imsi, "session.started", 20, session_id="h2"),
    ])
    events = emitted(server, sid)
    kinds = [e["event_type"].removeprefix(PREFIX) for e in events]
    assert kinds == ["data-session.started", "data-session.updated", "data-session.ended",
                     "data-session.failed"]
    updated, ended, failed = events[1:]
    assert "data_modifier" not in updated
    assert ended["data_modifier"] == "blocked" and ended["data_session_data_total"] == 1_000_000
    assert failed["data_modifier"] == "blocked" and failed["error"]["code"] == 83708


def test_usage_while_ready_does_not_count_toward_the_first_active_period(server, twilio):
    """The ready period and the first active period are two billing periods even when both
    start in the same month: the limit starts afresh at activation."""
    supersim = twilio.supersim.v1
    supersim.network_access_profiles.create(unique_name="us", networks=[ATT.sid])
    supersim.fleets.create(network_access_profile="us", unique_name="f", data_limit=1)
    [row] = stock(server)
    sid = supersim.sims.create(iccid=row["iccid"], registration_code=row["registration_code"]).sid
    supersim.sims(sid).update(fleet="f", status="ready")
    server.drain()
    imsi = row["imsi"]
    ingest(server.runtime, [at(server, imsi, "session.started", 0, session_id="r"),
                            at(server, imsi, "session.ended", 6, 100_000, 500_000, session_id="r")])
    server.clock.advance(timedelta(minutes=10))
    supersim.sims(sid).update(status="active")
    server.drain()
    assert supersim.sims(sid).fetch().status == "active"
    ingest(server.runtime, [at(server, imsi, "session.started", 1, session_id="a"),
                            at(server, imsi, "session.ended", 7, 200_000, 500_000, session_id="a")])
    ended = emitted(server, sid)[-1]
    assert ended["event_type"] == PREFIX + "data-session.ended"
    assert ended["data_session_data_total"] == 700_000 and "data_modifier" not in ended


def test_a_simulated_super_sim_fleet_emits_every_type_by_the_rules(server):
    from collections import defaultdict

    from simplane.network.models import DataSession
    from simplane.network.simulator import simulate

    account = server.new_account()
    start = (server.clock.now() - timedelta(hours=36)).replace(minute=0, second=0)
    simulate(server.runtime, account.sid, sims=30, hours=24, seed=7, start=start, data_limit=5,
             product="supersim", batch_size=2000)
    supersim = account.client.supersim.v1
    [fleet] = supersim.fleets.list()
    assert fleet.unique_name == "simulator" and fleet.data_limit == 5
    sims = supersim.sims.list()
    assert len(sims) == 30 and {s.status for s in sims} == {"active"}
    events = [e for s in sims for e in emitted(server, s.sid)]
    kinds = {e["event_type"].removeprefix(PREFIX) for e in events}
    assert kinds == {"attachment.accepted", "attachment.rejected", "attachment.failed",
                     "data-session.started", "data-session.updated", "data-session.ended",
                     "data-session.failed"}
    windows = defaultdict(int)
    for e in events:
        if e["event_type"].endswith(("data-session.updated", "data-session.ended")):
            windows[e["data_session_sid"]] += e["data_total"]
    ended = [e for e in events if e["event_type"].endswith("data-session.ended")]
    for e in ended:
        assert windows[e["data_session_sid"]] == e["data_session_data_total"]
    assert any(e.get("data_modifier") == "blocked" for e in ended), "a heavy user hits 5 MB"
    rejected = [e for e in events if e["event_type"].endswith("attachment.rejected")]
    assert {e["error"]["code"] for e in rejected} == {83706}

    quiet = sims[0].sid
    supersim.sims(quiet).update(status="inactive")
    server.drain()
    before = len(emitted(server, quiet))
    simulate(server.runtime, account.sid, hours=12, seed=7, start=start + timedelta(days=1),
             product="supersim", batch_size=2000)
    # Only SIMs that may attach are simulated: the inactive one stays off the network.
    assert emitted(server, quiet)[before:] == []
    assert len(emitted(server, sims[1].sid)) > 0
    with server.runtime.db.read() as db:
        assert not db.scalars(select(DataSession).where(
            DataSession.sim_sid == quiet, DataSession.status != "refused",
            DataSession.start >= start + timedelta(days=1))).all()


def test_simulated_super_sims_are_activated_as_a_status_update_would(server):
    from simplane.network.simulator import simulate

    account = server.new_account()
    simulate(server.runtime, account.sid, sims=3, hours=1, seed=2, product="supersim")
    supersim = account.client.supersim.v1
    sims = supersim.sims.list()
    assert {s.status for s in sims} == {"active"}
    assert {u.sim_sid for u in supersim.settings_updates.list()} == {s.sid for s in sims}
    for sim in sims:
        assert [p.period_type for p in supersim.sims(sim.sid).billing_periods.list()] == ["active"]


def test_a_restarted_gateway_ends_its_super_sim_sessions_with_data_session_ended(server,
                                                                                 super_sim):
    from simplane.network.ingest import gateway_restarted

    sid, imsi, _iccid = super_sim
    ingest(server.runtime, [
        at(server, imsi, "session.started", 0, session_id="r1", gateway="pgw-9"),
        at(server, imsi, "session.updated", 2, 100, 300, session_id="r1", gateway="pgw-9"),
        at(server, imsi, "session.started", 0, session_id="r2", gateway="pgw-8")])
    result = gateway_restarted(server.runtime, "pgw-9", server.clock.now() + timedelta(minutes=3))
    assert result.sessions_ended == 1 and result.bytes_counted == 0
    events = emitted(server, sid)
    assert [e["event_type"].removeprefix(PREFIX) for e in events] == [
        "data-session.started", "data-session.started", "data-session.ended"]
    ended = events[-1]
    t = server.clock.now()
    assert (ended["data_session_update_start_time"], ended["data_session_end_time"]) == (
        iso(t), iso(t + timedelta(minutes=3)))
    assert (ended["data_upload"], ended["data_download"], ended["data_session_data_total"]) == (
        100, 300, 400)
    assert "error" not in ended
    assert gateway_restarted(server.runtime, "pgw-9", t + timedelta(minutes=4)).sessions_ended == 0
