"""UsageRecords, read from the hourly rollups that add_usage writes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from twilio.base.exceptions import TwilioException

from simplane.core.clock import iso
from simplane.supersim import usage
from tests.supersim.conftest import ATT, VODAFONE_UK, stock


@pytest.fixture
def traffic(server, twilio, fleet, active_sim):  # type: ignore[no-untyped-def]
    """Two SIMs of the account, two networks, two days; and another account's usage."""
    [row] = stock(server)
    other = twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                           registration_code=row["registration_code"])
    day = server.clock.now().replace(hour=0, minute=0, second=0) - timedelta(days=5)

    def use(sim_sid, network, hour, up, down, account=None, fleet_sid=fleet.sid):  # type: ignore[no-untyped-def]
        return {"account_sid": account or twilio.account_sid, "sim_sid": sim_sid,
                "fleet_sid": fleet_sid, "network_sid": network.sid,
                "iso_country": network.iso_country, "hour": hour, "data_upload": up,
                "data_download": down}

    with server.runtime.db.write() as db:
        usage.add_usage(db, [
            use(active_sim.sid, ATT, day + timedelta(hours=1, minutes=5), 100, 1000),
            use(active_sim.sid, ATT, day + timedelta(hours=1, minutes=50), 10, 0),  # same hour
            use(active_sim.sid, VODAFONE_UK, day + timedelta(hours=3), 200, 2000),
            use(other.sid, ATT, day + timedelta(days=1, hours=2), 1, 2, fleet_sid=None),
            use("HS" + "0" * 32, ATT, day + timedelta(hours=1), 10**6, 10**6,
                account="AC" + "0" * 32),
        ])
        usage.add_usage(db, [use(active_sim.sid, ATT, day + timedelta(hours=1), 5, 5)])
    return active_sim, other, day


def _totals(records):  # type: ignore[no-untyped-def]
    return [(r.data_upload, r.data_download, r.data_total) for r in records]


def test_all_usage_of_the_account_in_one_record(server, twilio, traffic):
    [record] = twilio.supersim.v1.usage_records.list()
    assert _totals([record]) == [(316, 3007, 3323)]
    assert record.account_sid == twilio.account_sid
    assert record.sim_sid is None and record.fleet_sid is None
    assert record.network_sid is None and record.iso_country is None
    now = server.clock.now()
    assert record.period["end_time"] == iso(now)
    start = datetime.fromisoformat(record.period["start_time"])  # a month before by default
    assert 28 <= (now - start).days <= 31
    assert float(record.data_total_billed) == 0 and record.billed_unit is None


def test_day_and_hour_buckets_newest_first(twilio, traffic):
    day = traffic[2]
    days = twilio.supersim.v1.usage_records.list(granularity="day", start_time=day,
                                                 end_time=day + timedelta(days=2))
    assert [r.period["start_time"] for r in days] == [iso(day + timedelta(days=1)), iso(day)]
    assert _totals(days) == [(1, 2, 3), (315, 3005, 3320)]
    hours = twilio.supersim.v1.usage_records.list(granularity="hour", start_time=day,
                                                  end_time=day + timedelta(hours=4))
    assert [r.period["start_time"][11:13] for r in hours] == ["03", "02", "01", "00"]
    assert _totals(hours) == [(200, 2000, 2200), (0, 0, 0), (115, 1005, 1120), (0, 0, 0)]
    page = twilio.supersim.v1.usage_records.page(granularity="hour", start_time=day,
                                                 end_time=day + timedelta(hours=4), page_size=3)
    assert len(list(page)) == 3 and len(list(page.next_page())) == 1


def test_groups_and_filters(twilio, fleet, traffic):
    sim, other, day = traffic
    records = twilio.supersim.v1.usage_records
    by_sim = {r.sim_sid: r.data_total for r in records.list(group="sim")}
    assert by_sim == {sim.sid: 3320, other.sid: 3}
    by_network = {r.network_sid: r.data_total for r in records.list(group="network")}
    assert by_network == {ATT.sid: 1123, VODAFONE_UK.sid: 2200}
    by_country = {r.iso_country: r.data_total for r in records.list(group="isoCountry")}
    assert by_country == {"US": 1123, "GB": 2200}
    by_fleet = {r.fleet_sid: r.data_total for r in records.list(group="fleet")}
    assert by_fleet == {fleet.sid: 3320, None: 3}  # usage counts in the fleet of its time

    [r] = records.list(sim="tracker")
    assert r.sim_sid == sim.sid and r.data_total == 3320
    [r] = records.list(fleet="fleet")
    assert r.fleet_sid == fleet.sid and r.data_total == 3320
    [r] = records.list(network=VODAFONE_UK.sid)
    assert r.network_sid == VODAFONE_UK.sid and r.data_total == 2200
    [r] = records.list(iso_country="US")
    assert r.iso_country == "US" and r.data_total == 1123
    grouped = records.list(iso_country="US", group="sim")
    assert {(x.sim_sid, x.iso_country, x.data_total) for x in grouped} == {
        (sim.sid, "US", 1120), (other.sid, "US", 3)}
    [r] = records.list(start_time=day + timedelta(hours=2), end_time=day + timedelta(hours=4))
    assert r.data_total == 2200


def test_bad_windows_and_filters(twilio, traffic):
    day = traffic[2]
    records = twilio.supersim.v1.usage_records
    for kwargs in (dict(start_time=day, end_time=day), dict(sim="nope"),
                   dict(network="HW" + "0" * 32), dict(iso_country="USA"),
                   dict(iso_country="ß"), dict(iso_country="ÄÖ"),  # "ß".upper() is "SS"
                   dict(start_time=day - timedelta(days=600), end_time=day)):
        with pytest.raises(TwilioException) as exc:
            records.list(**kwargs)
        assert exc.value.args[1].status_code == 400


def test_data_used_reads_the_rollups(server, traffic):
    sim, _other, day = traffic
    with server.runtime.db.read() as db:
        assert usage.data_used(db, sim.sid, day) == 3320
        assert usage.data_used(db, sim.sid, day + timedelta(hours=2, minutes=30)) == 2200


def test_windows_at_the_ends_of_time_are_answered(twilio):
    records = twilio.supersim.v1.usage_records
    last = datetime(9999, 12, 31, 23, 59, 59)
    for granularity in ("hour", "day"):
        [newest] = records.list(end_time=last, granularity=granularity, limit=1)
        assert newest.period["end_time"] == iso(last) and newest.data_total == 0
    with pytest.raises(TwilioException) as exc:  # no month before it for the default StartTime
        records.list(end_time=datetime(1, 1, 15))
    assert exc.value.args[1].status_code == 400 and "EndTime" in exc.value.args[1].text
