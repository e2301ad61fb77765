"""One ingest path: sessions and hourly usage from normalised events, counted once."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from simplane.core import spec
from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.wireless.models import Sim

HOME = ("901", "42")  # the network that issued the generated IMSIs


@pytest.fixture
def sim(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="p", international_roaming=["data"])
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    with server.runtime.db.read() as db:
        imsi = db.scalar(select(Sim.imsi).where(Sim.sid == sid))
    return sid, imsi


def event(server, imsi, kind, offset, up=0, down=0, session="s1", mcc=HOME[0], mnc=HOME[1],
          **extra):
    return NetworkEvent(kind=kind, imsi=imsi, time=server.clock.now() + timedelta(seconds=offset),
                        session_id=session, mcc=mcc, mnc=mnc, bytes_up=up, bytes_down=down,
                        **extra)


def test_a_session_becomes_a_data_session_with_every_field(server, account, sim):
    sid, imsi = sim
    ingest(server.runtime, [
        event(server, imsi, "session.started", 0, rat="LTE", mcc="234", mnc="15",
              imei="490154203237518", cell_id="1234", lat=51.5, lon=-0.12, packets_up=1),
        event(server, imsi, "session.updated", 360, 1000, 5000, mcc="234", mnc="15",
              packets_up=10, packets_down=20),
    ])
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.sim_sid == sid and session.account_sid == account.sid
    assert (session.operator_mcc, session.operator_mnc) == ("234", "15")
    assert session.operator_country == "GB" and session.operator_name == "Vodafone UK"
    assert session.radio_link == "LTE" and session.imei == "490154203237518"
    assert session.cell_id == "1234" and session.cell_location_estimate == {"lat": 51.5, "lon": -0.12}
    assert (session.packets_uploaded, session.packets_downloaded) == (10, 20)
    assert session.end is None and session.last_updated > session.start
    raw = httpx.get(f"{server.base_url}/wireless/v1/Sims/{sid}/DataSessions",
                    auth=(account.sid, account.token)).json()["data_sessions"][0]
    assert set(raw) == set(spec.resource_fields("wireless", "wireless.v1.sim.data_session"))


def test_repeated_and_late_counters_count_once(server, account, sim):
    sid, imsi = sim
    start = event(server, imsi, "session.started", 0)
    update = event(server, imsi, "session.updated", 360, 1000, 2000)
    late = event(server, imsi, "session.updated", 300, 500, 700)  # older, smaller counters
    stop = event(server, imsi, "session.ended", 720, 1500, 4000)
    for batch in ([start, update], [update, late], [stop], [stop, update]):
        ingest(server.runtime, batch)
    [record] = account.client.wireless.v1.sims(sid).usage_records.list(
        start=server.clock.now() - timedelta(hours=1), end=server.clock.now() + timedelta(hours=2))
    assert record.data["upload"] == 1500 and record.data["download"] == 4000
    assert record.data["home"]["total"] == 5500 and record.data["total"] == 5500
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.end is not None


def test_unknown_imsis_are_dropped_and_a_failed_batch_writes_nothing(server, account, sim):
    sid, imsi = sim
    result = ingest(server.runtime, [event(server, "001019999999999", "session.started", 0)])
    assert result.unknown_imsi == 1 and result.accepted == 0
    with pytest.raises(ValueError):
        ingest(server.runtime, [event(server, imsi, "session.started", 0),
                                event(server, imsi, "no.such.kind", 1)])
    assert account.client.wireless.v1.sims(sid).data_sessions.list() == []


def test_hourly_records_add_up_to_the_all_record(server, account, sim):
    sid, imsi = sim
    t0 = server.clock.now().replace(minute=0, second=0)  # windows of whole hours
    events = [event(server, imsi, "session.started", 0)]
    total_up = total_down = 0
    for i in range(1, 30):  # 29 interim updates every 6 minutes: about three hours
        total_up, total_down = total_up + 100 * i, total_down + 300 * i
        events.append(event(server, imsi, "session.updated", 360 * i, total_up, total_down))
    roam = [event(server, imsi, "session.started", 100, session="s2", mcc="262", mnc="01"),
            event(server, imsi, "session.ended", 4000, 70, 30, session="s2", mcc="262", mnc="01")]
    ingest(server.runtime, events + roam)
    usage = account.client.wireless.v1.sims(sid).usage_records
    window = {"start": t0, "end": t0 + timedelta(hours=4)}
    hourly = usage.list(granularity="hourly", **window)
    [whole] = usage.list(granularity="all", **window)
    assert len(hourly) == 4
    for key in ("upload", "download", "total"):
        assert sum(r.data[key] for r in hourly) == whole.data[key]
    assert whole.data["upload"] == total_up + 70 and whole.data["download"] == total_down + 30
    [abroad] = whole.data["international_roaming"]
    assert abroad["country"] == "DE" and abroad["total"] == 100
    assert whole.data["home"]["total"] + abroad["total"] == whole.data["total"]
    [daily] = usage.list(granularity="daily", **window)
    assert daily.data["total"] == whole.data["total"]
    accounts = account.client.wireless.v1.usage_records.list(granularity="all", **window)
    assert accounts[0].data["total"] == whole.data["total"]
    assert hourly[0].period["start"] == t0.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_usage_records_of_another_account_are_not_found(server, account, sim):
    sid, _ = sim
    other = server.new_account()
    for path in ("UsageRecords", "DataSessions"):
        r = httpx.get(f"{server.base_url}/wireless/v1/Sims/{sid}/{path}",
                      auth=(other.sid, other.token))
        assert r.status_code == 404 and r.json()["code"] == 20404


def test_http_ingest_is_for_admin_accounts_and_all_or_nothing(server, account, sim):
    sid, imsi = sim
    admin = server.new_account(admin=True)
    url = f"{server.base_url}/network/v1/Events"
    t = server.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    batch = {"events": [
        {"kind": "session.started", "imsi": imsi, "time": t, "session_id": "h1", "mcc": "901",
         "mnc": "42", "rat": "LTE"},
        {"kind": "session.updated", "imsi": imsi, "time": t, "session_id": "h1",
         "bytes_up": 10, "bytes_down": 20},
    ]}
    assert httpx.post(url, json=batch, auth=(account.sid, account.token)).status_code == 403
    assert httpx.post(url, json=batch).status_code == 401
    bad = {"events": [batch["events"][0], {**batch["events"][1], "bytes_up": -5}]}
    r = httpx.post(url, json=bad, auth=(admin.sid, admin.token))
    assert r.status_code == 400 and "events[1].bytes_up" in r.json()["message"]
    assert account.client.wireless.v1.sims(sid).data_sessions.list() == []
    r = httpx.post(url, json=batch, auth=(admin.sid, admin.token))
    assert r.status_code == 202
    assert r.json()["accepted"] == 2 and r.json()["bytes_counted"] == 30
    r = httpx.post(url, json=batch, auth=(admin.sid, admin.token))  # replayed: counted once
    assert r.json()["bytes_counted"] == 0
    [session] = account.client.wireless.v1.sims(sid).data_sessions.list()
    assert session.radio_link == "LTE"
    for body in (b"not json", b"{}", b'{"events": [{"kind": "session.started"}]}'):
        r = httpx.post(url, content=body, auth=(admin.sid, admin.token))
        assert r.status_code == 400 and r.json()["code"] == 20001


def test_usage_windows_are_bounded(server, account, sim):
    sid, _ = sim
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims/{sid}/UsageRecords",
                  params={"Start": "0001-01-01T00:00:00Z", "Granularity": "hourly"},
                  auth=(account.sid, account.token))
    assert r.status_code == 400 and "Start" in r.json()["message"]
    # At the end of the calendar: the last hour is cut short at End, not overflowing past it.
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims/{sid}/UsageRecords",
                  params={"Start": "9999-12-31T20:00:00Z", "End": "9999-12-31T23:30:00Z",
                          "Granularity": "hourly"}, auth=(account.sid, account.token))
    assert r.status_code == 200, r.text
    assert [u["period"]["end"] for u in r.json()["usage_records"]] == [
        "9999-12-31T21:00:00Z", "9999-12-31T22:00:00Z", "9999-12-31T23:00:00Z",
        "9999-12-31T23:30:00Z"]


def usage_total(server, account, sid):
    [record] = account.client.wireless.v1.sims(sid).usage_records.list(
        start=server.clock.now() - timedelta(hours=1), end=server.clock.now() + timedelta(hours=2))
    return record.data["total"]


def test_a_rate_plan_change_reaches_the_next_batch(server, account, sim):
    """What ingest keeps of a SIM between batches is dropped when the SIM changes: moved to a
    plan without data, its next session is refused."""
    sid, imsi = sim
    wireless = account.client.wireless.v1
    ingest(server.runtime, [event(server, imsi, "session.started", 0)])
    wireless.rate_plans.create(unique_name="no-data", data_enabled=False)
    wireless.sims(sid).update(rate_plan="no-data")
    result = ingest(server.runtime, [event(server, imsi, "session.started", 60, session="s2")])
    assert result.sessions_refused == 1 and result.sessions_started == 0
    wireless.sims(sid).update(status="suspended")
    result = ingest(server.runtime, [event(server, imsi, "session.updated", 360, 1000, 0)])
    assert result.sessions_ended == 1 and result.bytes_counted == 0


def test_ingest_by_another_process_is_seen(server, account, sim):
    """Each process keeps what it ingested; a batch ingested by another one in between makes
    it read the database again instead of counting from what it kept."""
    from simplane.core.runtime import Runtime

    sid, imsi = sim
    other = Runtime(server.runtime.settings, clock=server.clock)
    try:
        ingest(server.runtime, [event(server, imsi, "session.started", 0)])
        ingest(server.runtime, [event(server, imsi, "session.updated", 360, 1000, 0)])
        ingest(other, [event(server, imsi, "session.updated", 720, 3000, 0)])
        # The gateway sends the last record again to the first process: nothing new.
        ingest(server.runtime, [event(server, imsi, "session.updated", 720, 3000, 0)])
        assert usage_total(server, account, sid) == 3000
        ingest(other, [event(server, imsi, "session.updated", 1080, 4000, 0)])
        ingest(server.runtime, [event(server, imsi, "session.updated", 1440, 4500, 0)])
        assert usage_total(server, account, sid) == 4500
    finally:
        other.close()


def test_a_batch_that_fails_leaves_nothing_behind_in_memory(server, account, sim, monkeypatch):
    """A batch that fails after counting (here: writing the rollups) writes nothing, and what
    it counted in memory is forgotten: sent again, it counts once."""
    from simplane.network import ingest as ingest_module

    sid, imsi = sim
    ingest(server.runtime, [event(server, imsi, "session.started", 0)])
    ingest(server.runtime, [event(server, imsi, "session.updated", 360, 1000, 0)])

    def broken(*_args, **_kwargs):
        raise RuntimeError("the disk is full")

    with monkeypatch.context() as patch:
        patch.setattr(ingest_module, "add_usage", broken)
        with pytest.raises(RuntimeError):
            ingest(server.runtime, [event(server, imsi, "session.updated", 720, 3000, 0)])
    assert usage_total(server, account, sid) == 1000
    ingest(server.runtime, [event(server, imsi, "session.updated", 720, 3000, 0)])
    assert usage_total(server, account, sid) == 3000
