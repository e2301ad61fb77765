"""Super SIMs: registration from the inventory, status lifecycle, fleets, transfers."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from simplane.core.clock import add_months
from simplane.supersim import access, usage
from tests.supersim.conftest import ATT, stock


def test_register_with_iccid_and_registration_code(server, twilio):
    [row] = stock(server)
    sim = twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                         registration_code=row["registration_code"])
    assert sim.sid == row["sid"] and sim.sid.startswith("HS")
    assert sim.status == "new" and sim.fleet_sid is None and sim.iccid == row["iccid"]
    assert sim.account_sid == twilio.account_sid and sim.unique_name is None
    assert sim.links["billing_periods"].endswith(f"/Sims/{sim.sid}/BillingPeriods")
    assert sim.links["sim_ip_addresses"].endswith(f"/Sims/{sim.sid}/IpAddresses")
    assert twilio.supersim.v1.sims(sim.sid).fetch().iccid == row["iccid"]
    assert [s.sid for s in twilio.supersim.v1.sims.list(iccid=row["iccid"])] == [sim.sid]

    with pytest.raises(TwilioRestException) as exc:
        twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                       registration_code=row["registration_code"])
    assert exc.value.code == 83003 and sim.sid in exc.value.msg


def test_registration_refusals(server, twilio):
    [row, other] = stock(server, 2)
    sims = twilio.supersim.v1.sims
    with pytest.raises(TwilioRestException) as exc:
        sims.create(iccid=row["iccid"], registration_code="WRONG")
    assert exc.value.code == 83002 and exc.value.status == 400
    with pytest.raises(TwilioRestException) as exc:
        sims.create(iccid="8988307000000000000", registration_code=row["registration_code"])
    assert exc.value.code == 83002
    with pytest.raises(TwilioRestException) as exc:
        sims.create(iccid=row["iccid"], registration_code="")
    assert exc.value.code == 83001 and "RegistrationCode" in exc.value.msg
    for missing, body in (("Iccid", {"RegistrationCode": row["registration_code"]}),
                          ("RegistrationCode", {"Iccid": row["iccid"]})):
        answer = httpx.post(f"{server.base_url}/supersim/v1/Sims", data=body,
                            auth=(twilio.username, twilio.password))
        assert answer.status_code == 400
        assert answer.json()["code"] == 83001 and missing in answer.json()["message"]
    # A SIM registered by another account cannot be claimed, and stays invisible.
    stranger = server.new_account().client.supersim.v1
    stranger.sims.create(iccid=other["iccid"], registration_code=other["registration_code"])
    with pytest.raises(TwilioRestException) as exc:
        sims.create(iccid=other["iccid"], registration_code=other["registration_code"])
    assert exc.value.code == 83002
    with pytest.raises(TwilioRestException) as exc:
        sims(other["sid"]).fetch()
    assert exc.value.status == 404
    assert sims.list() == []


def test_status_change_is_scheduled_then_completed_with_a_signed_callback(
        server, twilio, account, fleet, registered, receiver):
    sims = twilio.supersim.v1.sims
    with pytest.raises(TwilioRestException) as exc:
        sims(registered.sid).update(status="active")
    assert exc.value.code == 83010 and "Fleet" in exc.value.msg

    sims(registered.sid).update(fleet="fleet")
    scheduled = sims(registered.sid).update(status="ready", callback_url=f"{receiver.url}/done")
    assert scheduled.status == "scheduled" and scheduled.fleet_sid == fleet.sid
    assert [s.sid for s in sims.list(status="scheduled")] == [registered.sid]
    with pytest.raises(TwilioRestException) as exc:
        sims(registered.sid).update(status="active")
    assert exc.value.code == 83010
    server.drain()
    assert sims(registered.sid).fetch().status == "ready"
    got = receiver.get()
    params = {k: v[0] for k, v in got.form.items()}
    assert params["SimSid"] == registered.sid and params["SimStatus"] == "ready"
    assert params["FleetSid"] == fleet.sid
    assert RequestValidator(account.token).validate(got.url, params,
                                                    got.headers["X-Twilio-Signature"])


def test_update_returns_202_only_for_a_status_change(server, account, fleet, registered):
    import httpx

    url = f"{server.base_url}/supersim/v1/Sims/{registered.sid}"
    auth = (account.sid, account.token)
    assert httpx.post(url, data={"Fleet": fleet.sid}, auth=auth).status_code == 200
    response = httpx.post(url, data={"Status": "active"}, auth=auth)
    assert response.status_code == 202 and response.json()["status"] == "scheduled"


@pytest.mark.parametrize("path,allowed", [
    (["ready", "active", "inactive", "active"], True),
    (["active", "inactive", "active"], True),
    (["inactive", "active", "inactive"], True),
])
def test_allowed_transitions(server, twilio, fleet, registered, path, allowed):
    sims = twilio.supersim.v1.sims
    sims(registered.sid).update(fleet=fleet.sid)
    for status in path:
        assert sims(registered.sid).update(status=status).status == "scheduled"
        server.drain()
        assert sims(registered.sid).fetch().status == status


@pytest.mark.parametrize("first,then", [("active", "ready"), ("inactive", "ready"),
                                        ("ready", "ready")])
def test_refused_transitions(server, twilio, fleet, registered, first, then):
    sims = twilio.supersim.v1.sims
    sims(registered.sid).update(fleet=fleet.sid, status=first)
    server.drain()
    if first == then:  # asking for the status it has is no change at all
        assert sims(registered.sid).update(status=then).status == first
        return
    with pytest.raises(TwilioRestException) as exc:
        sims(registered.sid).update(status=then)
    assert exc.value.code == 83010 and exc.value.status == 400
    assert sims(registered.sid).fetch().status == first


def test_ready_sim_becomes_active_after_250kb(server, twilio, fleet, registered):
    sims = twilio.supersim.v1.sims
    sims(registered.sid).update(fleet=fleet.sid, status="ready")
    server.drain()
    row = {"account_sid": twilio.account_sid, "sim_sid": registered.sid, "fleet_sid": fleet.sid,
           "network_sid": ATT.sid, "iso_country": "US", "hour": server.clock.now(),
           "data_upload": 100_000, "data_download": 100_000}
    with server.runtime.db.write() as db:
        usage.add_usage(db, [row])
    server.drain()
    assert sims(registered.sid).fetch().status == "ready"
    with server.runtime.db.write() as db:
        usage.add_usage(db, [dict(row, data_upload=50_000, data_download=0)])
    server.drain()
    assert sims(registered.sid).fetch().status == "active"


def test_ready_sim_becomes_active_after_three_months(server, twilio, fleet, registered):
    sims = twilio.supersim.v1.sims
    sims(registered.sid).update(fleet=fleet.sid, status="ready")
    ready = server.clock.now()
    server.drain()
    server.clock.set(add_months(ready, 3) - timedelta(seconds=1))
    server.drain()
    assert sims(registered.sid).fetch().status == "ready"
    server.clock.advance(timedelta(seconds=1))  # to the same day and time 3 months on
    server.drain()
    assert sims(registered.sid).fetch().status == "active"
    periods = sims(registered.sid).billing_periods.list()
    assert [p.period_type for p in periods] == ["ready", "active"]
    assert (periods[0].start_time, periods[0].end_time, periods[1].start_time) == (
        ready, add_months(ready, 3), add_months(ready, 3))


def test_billing_periods_are_monthly_from_activation(server, twilio, active_sim):
    sims = twilio.supersim.v1.sims
    [period] = sims(active_sim.sid).billing_periods.list()
    assert period.period_type == "active" and period.sim_sid == active_sim.sid
    assert period.sid.startswith("HB")
    assert (period.end_time - period.start_time).days in (28, 29, 30, 31)
    server.clock.advance(timedelta(days=40))
    periods = sims(active_sim.sid).billing_periods.list()
    assert [p.period_type for p in periods] == ["active", "active"]
    assert periods[0].sid == period.sid and periods[1].start_time == period.end_time
    assert sims(active_sim.sid).billing_periods.list(page_size=1, limit=1)[0].sid == period.sid


def test_fleet_filter_unique_names_and_moving_between_fleets(server, twilio, nap, fleet,
                                                            active_sim):
    sims = twilio.supersim.v1.sims
    assert [s.sid for s in sims.list(fleet="fleet")] == [active_sim.sid]
    assert [s.sid for s in sims.list(fleet=fleet.sid)] == [active_sim.sid]
    assert sims.list(fleet="missing") == []
    assert sims("tracker").fetch().sid == active_sim.sid
    other = twilio.supersim.v1.fleets.create(network_access_profile=nap.sid, unique_name="b")
    assert sims("tracker").update(fleet="b").fleet_sid == other.sid
    assert sims.list(fleet="fleet") == []
    with pytest.raises(TwilioRestException) as exc:
        sims("tracker").update(fleet="")
    assert exc.value.status == 400 and "Fleet" in exc.value.msg
    with pytest.raises(TwilioRestException) as exc:
        sims("tracker").update(fleet="nope")
    assert exc.value.status == 400 and "Fleet" in exc.value.msg


def test_transfer_to_a_subaccount_only_while_new(server, account, twilio, fleet, registered):
    child = server.new_account(parent=account.sid)
    moved = twilio.supersim.v1.sims(registered.sid).update(account_sid=child.sid)
    assert moved.account_sid == child.sid
    assert child.client.supersim.v1.sims(registered.sid).fetch().status == "new"
    with pytest.raises(TwilioRestException) as exc:
        twilio.supersim.v1.sims(registered.sid).fetch()
    assert exc.value.status == 404

    [row] = stock(server)
    sim = twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                         registration_code=row["registration_code"])
    stranger = server.new_account()
    with pytest.raises(TwilioRestException) as exc:
        twilio.supersim.v1.sims(sim.sid).update(account_sid=stranger.sid)
    assert exc.value.status == 400 and "AccountSid" in exc.value.msg
    twilio.supersim.v1.sims(sim.sid).update(fleet=fleet.sid, status="active")
    server.drain()
    with pytest.raises(TwilioRestException) as exc:
        twilio.supersim.v1.sims(sim.sid).update(account_sid=child.sid)
    assert exc.value.status == 400 and "new" in exc.value.msg


def test_ip_addresses_come_from_the_data_session(server, twilio, active_sim):
    sims = twilio.supersim.v1.sims
    assert sims(active_sim.sid).sim_ip_addresses.list() == []
    with server.runtime.db.write() as db:
        access.set_ip_addresses(db, {active_sim.sid: "100.64.0.7"})
    [ip] = sims(active_sim.sid).sim_ip_addresses.list()
    assert ip.ip_address == "100.64.0.7" and ip.ip_address_version == "IPv4"
    with server.runtime.db.write() as db:
        access.set_ip_addresses(db, {active_sim.sid: "fd00::7"})
    assert sims(active_sim.sid).sim_ip_addresses.list()[0].ip_address_version == "IPv6"
    sims(active_sim.sid).update(status="inactive")
    server.drain()
    assert sims(active_sim.sid).sim_ip_addresses.list() == []


def test_sims_of_other_accounts_are_not_found(server, twilio, active_sim):
    stranger = server.new_account().client.supersim.v1
    with pytest.raises(TwilioRestException) as exc:
        stranger.sims(active_sim.sid).update(status="inactive")
    assert exc.value.status == 404
    with pytest.raises(TwilioException):
        stranger.sims(active_sim.sid).billing_periods.list()
    assert twilio.supersim.v1.sims(active_sim.sid).fetch().status == "active"


def test_settings_update_pushed_when_a_sim_first_connects(server, twilio, active_sim):
    [update] = twilio.supersim.v1.settings_updates.list(sim="tracker")
    assert update.sid.startswith("OB") and update.sim_sid == active_sim.sid
    assert update.iccid == active_sim.iccid and update.status == "successful"
    assert update.packages[0]["name"] == "base-settings" and update.date_completed is not None
    assert twilio.supersim.v1.settings_updates.list(status="scheduled") == []
    assert [u.sid for u in twilio.supersim.v1.settings_updates.list(status="successful")] == [
        update.sid]


def test_a_nul_in_the_path_names_nothing(server, account):
    import httpx

    for path in ("/supersim/v1/Sims/a%00b", "/supersim/v1/Fleets/%00",
                 "/supersim/v1/NetworkAccessProfiles/x%00/Networks"):
        response = httpx.get(server.base_url + path, auth=(account.sid, account.token))
        assert response.status_code == 404 and response.json()["code"] == 20404


def test_bare_v1_paths_routed_by_the_supersim_host(server, account, registered):
    import httpx

    response = httpx.get(f"{server.base_url}/v1/Sims/{registered.sid}",
                         auth=(account.sid, account.token),
                         headers={"Host": "supersim.twilio.com"})
    assert response.status_code == 200
    body = response.json()
    assert body["sid"] == registered.sid
    assert body["url"] == f"http://supersim.twilio.com/v1/Sims/{registered.sid}"


def test_a_sim_on_its_way_to_active_keeps_its_fleet(server, twilio, fleet, registered):
    sims = twilio.supersim.v1.sims
    sims(registered.sid).update(fleet=fleet.sid, status="active")
    with pytest.raises(TwilioRestException) as exc:
        sims(registered.sid).update(fleet="")
    assert exc.value.status == 400 and "Fleet" in exc.value.msg
    server.drain()
    assert sims(registered.sid).fetch().fleet_sid == fleet.sid
