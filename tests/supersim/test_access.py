"""The hooks the network calls: SIM facts by IMSI in bulk, attach decisions, IP addresses."""

from __future__ import annotations

from simplane.supersim import access
from simplane.supersim.models import Sim
from tests.supersim.conftest import ATT, VODAFONE_UK, stock
from tests.support import statements_sent


def _imsi(server, sid: str) -> str:  # type: ignore[no-untyped-def]
    with server.runtime.db.read() as db:
        return db.query(Sim.imsi).filter(Sim.sid == sid).scalar()


def test_facts_in_two_queries_whatever_the_batch(server, twilio, fleet, active_sim):
    rows = stock(server, 30)
    for row in rows[:20]:
        twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                       registration_code=row["registration_code"])
    imsis = [_imsi(server, active_sim.sid)] + [r["imsi"] for r in rows] + ["001010000000000"]
    engine = server.runtime.db.read_engine
    with server.runtime.db.read() as db, statements_sent(engine) as statements:
        facts = access.sims_by_imsi(db, imsis)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) <= 2
    # Registered SIMs only: the 10 still in the inventory and unknown IMSIs are not there.
    assert len(facts) == 21
    mine = facts[_imsi(server, active_sim.sid)]
    assert mine.sid == active_sim.sid and mine.account_sid == twilio.account_sid
    assert mine.status == "active" and mine.fleet_sid == fleet.sid
    assert mine.iccid == active_sim.iccid and mine.data_enabled is True
    assert mine.data_limit == 1000 * 1_000_000
    assert ("310", "410") in mine.allowed_networks and set(ATT.identifiers) == mine.allowed_networks
    new = facts[rows[0]["imsi"]]
    assert new.status == "new" and new.fleet_sid is None and new.allowed_networks == frozenset()


def test_attach_decisions(server, twilio, fleet, nap, active_sim):
    imsi = _imsi(server, active_sim.sid)

    def decide(mcc: str, mnc: str):  # type: ignore[no-untyped-def]
        with server.runtime.db.read() as db:
            return access.attach_decision(access.sims_by_imsi(db, [imsi])[imsi], mcc, mnc)

    assert decide("310", "410") is None
    assert decide("310", "150") is None  # another MCC/MNC of the same network
    code, message = decide("234", "15")
    assert code == 83706 and "Vodafone UK" in message
    twilio.supersim.v1.network_access_profiles(nap.sid).networks.create(network=VODAFONE_UK.sid)
    assert decide("234", "15") is None
    twilio.supersim.v1.fleets(fleet.sid).update(
        network_access_profile=twilio.supersim.v1.network_access_profiles.create().sid)
    assert decide("310", "410")[0] == 83706

    # A SIM made inactive is rejected everywhere, and its data session is gone.
    with server.runtime.db.write() as db:
        access.set_ip_addresses(db, {active_sim.sid: "100.64.1.1"})
    twilio.supersim.v1.sims(active_sim.sid).update(status="inactive")
    server.drain()
    code, message = decide("234", "15")
    assert code == 83705 and "inactive" in message
    assert twilio.supersim.v1.sims(active_sim.sid).sim_ip_addresses.list() == []


def test_new_sims_are_rejected(server, twilio, registered):
    imsi = _imsi(server, registered.sid)
    with server.runtime.db.read() as db:
        facts = access.sims_by_imsi(db, [imsi])[imsi]
    assert access.attach_decision(facts, "310", "410")[0] == 83705


def test_data_disabled_fleet(server, twilio, nap, registered):
    quiet = twilio.supersim.v1.fleets.create(network_access_profile=nap.sid, data_enabled=False,
                                             data_limit=5)
    twilio.supersim.v1.sims(registered.sid).update(fleet=quiet.sid)
    imsi = _imsi(server, registered.sid)
    with server.runtime.db.read() as db:
        facts = access.sims_by_imsi(db, [imsi])[imsi]
    assert facts.data_enabled is False and facts.data_limit == 5_000_000


def test_usage_toward_the_data_limit_counts_from_the_billing_period(server, twilio, active_sim):
    from datetime import timedelta

    from simplane.supersim import usage
    from tests.supersim.conftest import ATT

    imsi = _imsi(server, active_sim.sid)
    activated = server.clock.now()
    with server.runtime.db.write() as db:
        usage.add_usage(db, [{"account_sid": twilio.account_sid, "sim_sid": active_sim.sid,
                              "fleet_sid": active_sim.fleet_sid, "network_sid": ATT.sid,
                              "iso_country": "US", "hour": activated, "data_upload": 7,
                              "data_download": 3}])
    with server.runtime.db.read() as db:
        facts = access.sims_by_imsi(db, [imsi])[imsi]
        now = server.clock.now()
        assert facts.period_start(now) == activated
        assert usage.data_used(db, facts.sid, facts.period_start(now)) == 10
        next_month = now + timedelta(days=32)
        assert facts.period_start(next_month) > activated
        assert usage.data_used(db, facts.sid, facts.period_start(next_month)) == 0
