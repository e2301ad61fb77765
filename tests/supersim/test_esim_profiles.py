"""eSIM Profiles: ordered, reserved on the SM-DP+, downloaded and installed by a device."""

from __future__ import annotations

import httpx
import pytest
from stdnum.iso7064 import mod_97_10
from twilio.base.exceptions import TwilioRestException

from simplane.core.errors import TwilioError
from simplane.supersim import devices

EID = "89049032005008882600033489123440"  # its check digits (the last two) hold


def test_profile_for_an_eid_is_reserved_then_available_with_a_callback(server, account, twilio,
                                                                      receiver):
    profiles = twilio.supersim.v1.esim_profiles
    profile = profiles.create(eid=EID, callback_url=f"{receiver.url}/esim")
    assert profile.sid.startswith("HP") and profile.status == "new" and profile.eid == EID
    assert profile.sim_sid is None and profile.iccid is None and profile.smdp_plus_address is None
    server.drain()
    ready = profiles(profile.sid).fetch()
    assert ready.status == "available" and ready.smdp_plus_address == "sm-dp-plus.twilio.com"
    assert ready.matching_id is None and ready.activation_code is None
    got = receiver.get()
    assert got.form["Status"] == ["available"] and got.form["EsimProfileSid"] == [profile.sid]
    # The profile's Super SIM is registered to the account.
    sim = twilio.supersim.v1.sims(ready.sim_sid).fetch()
    assert sim.iccid == ready.iccid and sim.status == "new"
    assert [p.sid for p in profiles.list(sim_sid=sim.sid)] == [profile.sid]
    assert [p.sid for p in profiles.list(eid=EID, status="available")] == [profile.sid]

    device = devices.SimulatedDevice()
    try:
        assert device.install_esim(server.runtime, EID) == profile.sid
    finally:
        device.close()
    assert profiles(profile.sid).fetch().status == "installed"
    assert profiles.list(status="available") == []


def test_profile_with_a_matching_id(server, twilio):
    profile = twilio.supersim.v1.esim_profiles.create(generate_matching_id=True)
    assert profile.eid is None
    server.drain()
    ready = twilio.supersim.v1.esim_profiles(profile.sid).fetch()
    assert len(ready.matching_id) == 29 and ready.matching_id.count("-") == 4
    assert ready.activation_code == f"1$SM-DP-PLUS.TWILIO.COM${ready.matching_id}"
    device = devices.SimulatedDevice()
    try:
        device.install_esim(server.runtime, EID, ready.matching_id)
    finally:
        device.close()
    installed = twilio.supersim.v1.esim_profiles(profile.sid).fetch()
    assert installed.status == "installed" and installed.eid == EID


def test_profile_needs_an_eid_or_a_matching_id(server, twilio):
    profiles = twilio.supersim.v1.esim_profiles
    with pytest.raises(TwilioRestException) as exc:
        profiles.create()
    assert exc.value.status == 400 and "Eid" in exc.value.msg
    for eid in ("1234", "\u0663" * 32):  # 32 digits, but Arabic-Indic ones
        with pytest.raises(TwilioRestException) as exc:
            profiles.create(eid=eid)
        assert exc.value.status == 400 and "Eid" in exc.value.msg
    for url in ("not a url", "ftp://example.com/esim"):  # a CallbackUrl no callback can reach
        with pytest.raises(TwilioRestException) as exc:
            profiles.create(eid=EID, callback_url=url)
        assert exc.value.status == 400 and "CallbackUrl" in exc.value.msg
    assert profiles.list() == []
    stranger = server.new_account().client.supersim.v1
    mine = profiles.create(eid=EID)
    with pytest.raises(TwilioRestException) as exc:
        stranger.esim_profiles(mine.sid).fetch()
    assert exc.value.status == 404


def test_profile_is_downloaded_then_installed(server, twilio):
    eid = "89049032005008882600033489654321"  # no other test orders a profile for it
    profiles = twilio.supersim.v1.esim_profiles
    profile = profiles.create(eid=eid)
    server.drain()
    device = devices.SimulatedDevice()
    try:
        assert device.download_esim(server.runtime, eid) == profile.sid
        downloaded = profiles(profile.sid).fetch()
        assert downloaded.status == "downloaded" and downloaded.eid == eid
        assert [p.sid for p in profiles.list(status="downloaded")] == [profile.sid]
        assert device.install_esim(server.runtime, eid) == profile.sid
    finally:
        device.close()
    assert profiles(profile.sid).fetch().status == "installed"
    assert profiles.list(status="downloaded") == []


def test_profile_ordered_for_an_eid_is_bound_to_that_euicc(server, twilio):
    eid = "89049032005008882600033489777705"  # no other test orders a profile for it
    profiles = twilio.supersim.v1.esim_profiles
    profile = profiles.create(eid=eid, generate_matching_id=True)
    server.drain()
    matching_id = profiles(profile.sid).fetch().matching_id
    device = devices.SimulatedDevice()
    try:
        with pytest.raises(TwilioError) as exc:
            device.download_esim(server.runtime, "1" * 32, matching_id)
        assert exc.value.status == 409 and "another eUICC" in str(exc.value)
        assert profiles(profile.sid).fetch().status == "available"
        assert device.download_esim(server.runtime, eid, matching_id) == profile.sid
    finally:
        device.close()
    assert profiles(profile.sid).fetch().status == "downloaded"


def test_download_by_an_euicc_whose_eid_fails_its_check_digits_fails_the_profile(server, twilio,
                                                                                receiver):
    profiles = twilio.supersim.v1.esim_profiles
    profile = profiles.create(generate_matching_id=True, callback_url=f"{receiver.url}/esim")
    server.drain()
    assert receiver.get().form["Status"] == ["available"]
    matching_id = profiles(profile.sid).fetch().matching_id
    bad_eid = "89049032005008882600033489123456"  # 56: the check digits are 40
    device = devices.SimulatedDevice()
    try:
        with pytest.raises(devices.EsimDownloadFailed) as exc:
            device.download_esim(server.runtime, bad_eid, matching_id)
        assert profile.sid in str(exc.value)
        with pytest.raises(TwilioError):  # a failed profile is never downloaded again
            device.download_esim(server.runtime, EID, matching_id)
    finally:
        device.close()
    failed = profiles(profile.sid).fetch()
    assert failed.status == "failed" and failed.eid == bad_eid
    assert failed.error_code == "EID_INVALID" and bad_eid in failed.error_message
    assert [p.sid for p in profiles.list(status="failed")] == [profile.sid]
    server.drain()
    assert receiver.requests.empty()  # the CallbackUrl hears only of `available`


def test_an_eid_that_fails_its_check_digits_fails_at_reservation(server, twilio, receiver):
    """The SM-DP+ checks an EID when a profile is reserved for it. Twilio's create answers at
    once (`new`) and reserves asynchronously, so the order is taken and the reservation fails:
    the profile is `failed` with error_code and error_message (as the resource documents them),
    and no Super SIM is made. Twilio documents that the CallbackUrl is called only when a profile
    goes from `reserving` to `available`, so it hears nothing of this."""
    bad_eid = "89049032005008882600033489123456"  # 56: the check digits are 40
    profiles = twilio.supersim.v1.esim_profiles
    profile = profiles.create(eid=bad_eid, callback_url=f"{receiver.url}/esim")
    assert profile.status == "new"
    sims_before = twilio.supersim.v1.sims.list()
    server.drain()
    failed = profiles(profile.sid).fetch()
    assert failed.status == "failed" and failed.eid == bad_eid
    assert failed.sim_sid is None and failed.iccid is None and failed.smdp_plus_address is None
    assert failed.error_code == "EID_INVALID"
    assert bad_eid in failed.error_message and "reservation" in failed.error_message
    assert twilio.supersim.v1.sims.list() == sims_before
    assert receiver.requests.empty()


def operator(server, account, path, **form):
    return httpx.post(f"{server.base_url}/supersim/operator/{path}", data=form,
                      auth=(account.sid, account.token))


def test_a_device_downloads_and_installs_through_the_operator_endpoints(server, account,
                                                                       twilio, receiver):
    eid = "89049032005008882600033489888867"
    assert mod_97_10.is_valid(eid)
    profiles = twilio.supersim.v1.esim_profiles
    profile = profiles.create(eid=eid, callback_url=f"{receiver.url}/esim")
    coded = profiles.create(generate_matching_id=True)
    server.drain()
    assert receiver.get().form["Status"] == ["available"]

    stranger = server.new_account()  # another account's credentials find nothing
    assert operator(server, stranger, "EsimDownloads", Eid=eid).status_code == 404
    answer = operator(server, account, "EsimDownloads", Eid=eid)
    assert answer.status_code == 200, answer.text
    assert answer.json()["sid"] == profile.sid and answer.json()["status"] == "downloaded"
    assert profiles(profile.sid).fetch().status == "downloaded"
    installed = operator(server, account, "EsimInstalls", Eid=eid)
    assert installed.status_code == 200 and installed.json()["status"] == "installed"
    assert profiles(profile.sid).fetch().status == "installed"
    again = operator(server, account, "EsimInstalls", Eid=eid)
    assert again.status_code == 404 and again.json()["code"] == 20404

    # By matching ID, with an eUICC the SM-DP+ refuses: the profile is failed, and said so.
    matching_id = profiles(coded.sid).fetch().matching_id
    refused = operator(server, account, "EsimDownloads", Eid="89049032005008882600033489123456",
                       MatchingId=matching_id)
    assert refused.status_code == 200 and refused.json()["status"] == "failed"
    assert refused.json()["error_code"] == "EID_INVALID"
    assert profiles(coded.sid).fetch().status == "failed"
    for form in ({}, {"Eid": "1234"}):
        bad = operator(server, account, "EsimDownloads", **form)
        assert bad.status_code == 400 and "Eid" in bad.json()["message"]
    assert httpx.post(f"{server.base_url}/supersim/operator/EsimDownloads",
                      data={"Eid": eid}).status_code == 401
    server.drain()
    assert receiver.requests.empty()  # only `available` is called back


def test_the_fleet_simulator_downloads_and_installs_available_profiles(server):
    from simplane.network.simulator import simulate

    account = server.new_account()
    profiles = account.client.supersim.v1.esim_profiles
    by_eid = profiles.create(eid="89049032005008882600033489999932")
    coded = profiles.create(generate_matching_id=True)
    server.drain()
    result = simulate(server.runtime, account.sid, sims=1, hours=1, product="supersim")
    assert result.esim_profiles == {by_eid.sid: "installed", coded.sid: "installed"}
    installed = profiles(coded.sid).fetch()
    assert installed.status == "installed" and mod_97_10.is_valid(installed.eid)
    assert profiles(by_eid.sid).fetch().status == "installed"
    # The profiles' Super SIMs join the simulated fleet once their owner activates them.
    sims = account.client.supersim.v1.sims
    fleet = sims.list(status="active")[0].fleet_sid
    sims(installed.sim_sid).update(fleet=fleet, status="active")
    server.drain()
    again = simulate(server.runtime, account.sid, hours=1, product="supersim")
    assert installed.sim_sid in {s.sid for s in again.sims}
