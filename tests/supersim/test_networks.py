"""Networks catalogue, Network Access Profiles and their Networks, Fleets."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException

from simplane.supersim import networks
from tests.supersim.conftest import ATT, VODAFONE_UK


def test_catalogue_is_real_operator_data_with_stable_sids(twilio):
    assert ATT.friendly_name == "AT&T" and ATT.iso_country == "US"
    assert ("310", "410") in ATT.identifiers
    assert ATT.sid == networks.network_sid("US", "AT&T")  # derived, the same in every database
    fetched = twilio.supersim.v1.networks(ATT.sid).fetch()
    assert fetched.friendly_name == "AT&T" and fetched.iso_country == "US"
    assert {"mcc": "310", "mnc": "410"} in fetched.identifiers
    assert fetched.url.endswith(f"/Networks/{ATT.sid}")
    with pytest.raises(TwilioRestException) as exc:
        twilio.supersim.v1.networks("HW" + "0" * 32).fetch()
    assert exc.value.status == 404


def test_network_filters(twilio):
    british = twilio.supersim.v1.networks.list(iso_country="GB")
    assert british and all(n.iso_country == "GB" for n in british)
    assert VODAFONE_UK.sid in {n.sid for n in british}
    by_code = twilio.supersim.v1.networks.list(mcc="234", mnc="15")
    assert [n.sid for n in by_code] == [VODAFONE_UK.sid]
    assert all(any(i["mcc"] == "310" for i in n.identifiers)
               for n in twilio.supersim.v1.networks.list(mcc="310", limit=20))
    assert twilio.supersim.v1.networks.list(iso_country="ZZ") == []


def test_catalogue_pages(twilio):
    page = twilio.supersim.v1.networks.page(page_size=7)
    first = list(page)
    second = list(page.next_page())
    assert len(first) == len(second) == 7
    assert not {n.sid for n in first} & {n.sid for n in second}
    total = len(twilio.supersim.v1.networks.list(iso_country="US", page_size=25))
    assert total == len(networks.search("US"))


def test_network_access_profile_and_its_networks(twilio):
    naps = twilio.supersim.v1.network_access_profiles
    nap = naps.create(unique_name="europe", networks=[VODAFONE_UK.sid])
    assert nap.sid.startswith("HA") and nap.unique_name == "europe"
    assert nap.links["networks"].endswith(f"/NetworkAccessProfiles/{nap.sid}/Networks")
    assert naps("europe").fetch().sid == nap.sid
    assert [n.sid for n in naps(nap.sid).networks.list()] == [VODAFONE_UK.sid]

    added = naps(nap.sid).networks.create(network=ATT.sid)
    assert added.sid == ATT.sid and added.network_access_profile_sid == nap.sid
    assert added.friendly_name == "AT&T" and {"mcc": "310", "mnc": "410"} in added.identifiers
    assert naps(nap.sid).networks(ATT.sid).fetch().iso_country == "US"
    assert {n.sid for n in naps("europe").networks.list()} == {ATT.sid, VODAFONE_UK.sid}
    with pytest.raises(TwilioRestException) as exc:
        naps(nap.sid).networks.create(network=ATT.sid)
    assert exc.value.status == 409

    assert naps(nap.sid).networks(ATT.sid).delete() is True
    assert [n.sid for n in naps(nap.sid).networks.list()] == [VODAFONE_UK.sid]
    with pytest.raises(TwilioRestException) as exc:
        naps(nap.sid).networks(ATT.sid).fetch()
    assert exc.value.status == 404

    renamed = naps(nap.sid).update(unique_name="emea")
    assert renamed.unique_name == "emea"
    assert [n.sid for n in naps.list()] == [nap.sid]


def test_network_access_profile_refuses_unknown_networks(twilio):
    naps = twilio.supersim.v1.network_access_profiles
    with pytest.raises(TwilioRestException) as exc:
        naps.create(unique_name="bad", networks=[ATT.sid, "HW" + "1" * 32])
    assert exc.value.status == 400 and "Networks" in exc.value.msg
    assert naps.list() == []  # nothing half-made
    nap = naps.create()
    assert nap.unique_name is None
    with pytest.raises(TwilioRestException) as exc:
        naps(nap.sid).networks.create(network="nope")
    assert exc.value.status == 400 and "Network" in exc.value.msg


def test_fleet_defaults_and_update(twilio, nap):
    fleets = twilio.supersim.v1.fleets
    fleet = fleets.create(network_access_profile=nap.sid)
    assert fleet.sid.startswith("HF") and fleet.network_access_profile_sid == nap.sid
    assert fleet.data_enabled is True and fleet.data_limit == 1000
    assert fleet.data_metering == "payg" and fleet.sms_commands_enabled is True
    assert fleet.sms_commands_method == "POST" and fleet.ip_commands_method == "POST"
    assert fleet.sms_commands_url is None and fleet.ip_commands_url is None

    other = twilio.supersim.v1.network_access_profiles.create(unique_name="other")
    updated = fleets(fleet.sid).update(
        unique_name="trackers", data_limit=5000, network_access_profile="other",
        ip_commands_url="https://example.com/ip", ip_commands_method="GET",
        sms_commands_url="https://example.com/sms", sms_commands_method="GET")
    assert updated.unique_name == "trackers" and updated.data_limit == 5000
    assert updated.network_access_profile_sid == other.sid
    assert updated.ip_commands_url == "https://example.com/ip"
    assert updated.ip_commands_method == "GET" and updated.sms_commands_method == "GET"
    assert fleets("trackers").fetch().sid == fleet.sid
    assert [f.sid for f in fleets.list(network_access_profile="other")] == [fleet.sid]
    assert fleets.list(network_access_profile=nap.sid) == []
    assert fleets.list(network_access_profile="missing") == []


def test_fleet_validation(twilio, nap):
    fleets = twilio.supersim.v1.fleets
    for kwargs, name in ((dict(network_access_profile="nope"), "NetworkAccessProfile"),
                         (dict(network_access_profile=nap.sid, data_limit=0), "DataLimit"),
                         (dict(network_access_profile=nap.sid, data_limit=2_000_001), "DataLimit"),
                         (dict(network_access_profile=nap.sid, ip_commands_url="ftp://x"),
                          "IpCommandsUrl")):
        with pytest.raises(TwilioRestException) as exc:
            fleets.create(**kwargs)
        assert exc.value.status == 400 and name in exc.value.msg
    fleets.create(network_access_profile=nap.sid, unique_name="one", data_enabled=False,
                  sms_commands_enabled=False)
    with pytest.raises(TwilioRestException) as exc:
        fleets.create(network_access_profile=nap.sid, unique_name="one")
    assert exc.value.status == 409
    assert len(fleets.list()) == 1


def test_accounts_do_not_see_each_others_profiles_and_fleets(server, twilio, fleet, nap):
    stranger = server.new_account().client.supersim.v1
    for call in (lambda: stranger.fleets(fleet.sid).fetch(),
                 lambda: stranger.network_access_profiles(nap.sid).fetch(),
                 lambda: stranger.network_access_profiles(nap.sid).networks(ATT.sid).fetch()):
        with pytest.raises(TwilioRestException) as exc:
            call()
        assert exc.value.status == 404
    with pytest.raises(TwilioException) as listing:
        stranger.network_access_profiles(nap.sid).networks.list()
    assert listing.value.args[1].status_code == 404
    assert stranger.fleets.list() == [] and stranger.network_access_profiles.list() == []
    with pytest.raises(TwilioRestException) as exc:
        stranger.fleets.create(network_access_profile=nap.sid)
    assert exc.value.status == 400
