"""RatePlans: create with Twilio's defaults, fetch by SID or unique name, update, delete."""

from __future__ import annotations

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from simplane.core import spec


def test_create_with_defaults_and_every_field(account):
    plan = account.client.wireless.v1.rate_plans.create()
    assert plan.sid.startswith("WP") and len(plan.sid) == 34
    assert plan.data_limit == 1000 and plan.data_enabled is True
    assert plan.data_metering == "payg" and plan.messaging_enabled is True
    assert plan.national_roaming_enabled is True and plan.international_roaming == []
    raw = httpx.get(plan.url, auth=(account.sid, account.token)).json()
    assert set(raw) == set(spec.resource_fields("wireless", "wireless.v1.rate_plan"))


def test_create_with_every_parameter(account):
    plan = account.client.wireless.v1.rate_plans.create(
        unique_name="global", friendly_name="Global", data_enabled=False, data_limit=250,
        data_metering="quota-10", messaging_enabled=False, voice_enabled=False,
        national_roaming_enabled=False, international_roaming=["data", "messaging"],
        national_roaming_data_limit=50, international_roaming_data_limit=25,
        data_limit_strategy="throttle")
    fetched = account.client.wireless.v1.rate_plans("global").fetch()
    assert fetched.sid == plan.sid and fetched.friendly_name == "Global"
    assert (fetched.data_enabled, fetched.data_limit, fetched.data_metering) == (False, 250, "quota-10")
    assert fetched.international_roaming == ["data", "messaging"]
    assert fetched.national_roaming_data_limit == 50
    assert fetched.international_roaming_data_limit == 25


@pytest.mark.parametrize("kwargs, name", [
    ({"data_limit": -1}, "DataLimit"), ({"data_limit": 3_000_000}, "DataLimit"),
    ({"data_metering": "free"}, "DataMetering"), ({"international_roaming": ["voice"]},
                                                  "InternationalRoaming"),
    ({"data_limit_strategy": "drop"}, "DataLimitStrategy"), ({"data_enabled": "maybe"}, "DataEnabled"),
])
def test_invalid_values_are_refused_and_nothing_is_written(account, kwargs, name):
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.rate_plans.create(unique_name="x", **kwargs)
    assert exc.value.status == 400 and name in exc.value.msg
    assert account.client.wireless.v1.rate_plans.list() == []


def test_unique_name_is_unique_per_account(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="fleet")
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.rate_plans.create(unique_name="fleet")
    assert exc.value.status == 409 and "fleet" in exc.value.msg
    other = server.new_account()
    assert other.client.wireless.v1.rate_plans.create(unique_name="fleet").unique_name == "fleet"


def test_update_list_and_delete(server, account):
    plans = account.client.wireless.v1.rate_plans
    a = plans.create(unique_name="a")
    b = plans.create(unique_name="b")
    updated = plans(a.sid).update(unique_name="a2", friendly_name="renamed")
    assert (updated.unique_name, updated.friendly_name) == ("a2", "renamed")
    assert updated.date_updated >= a.date_updated
    assert [p.sid for p in plans.list()] == [a.sid, b.sid]
    [sid] = server.provision(account.sid, 1)
    account.client.wireless.v1.sims(sid).update(rate_plan="b")
    with pytest.raises(TwilioRestException) as exc:
        plans("b").delete()
    assert exc.value.status == 409 and "1 SIM" in exc.value.msg
    account.client.wireless.v1.sims(sid).update(rate_plan="a2")
    assert plans("b").delete() is True
    assert [p.sid for p in plans.list()] == [a.sid]
    with pytest.raises(TwilioRestException) as exc:
        plans(b.sid).fetch()
    assert exc.value.status == 404


def test_plans_of_other_accounts_are_invisible(server, account):
    other = server.new_account()
    plan = other.client.wireless.v1.rate_plans.create(unique_name="theirs")
    for key in (plan.sid, "theirs"):
        with pytest.raises(TwilioRestException) as exc:
            account.client.wireless.v1.rate_plans(key).fetch()
        assert exc.value.status == 404
    [sid] = server.provision(account.sid, 1)
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.sims(sid).update(rate_plan=plan.sid)
    assert exc.value.code == 33108


def test_friendly_name_too_long_is_a_400_and_writes_nothing(account):
    plans = account.client.wireless.v1.rate_plans
    with pytest.raises(TwilioRestException) as exc:
        plans.create(unique_name="long", friendly_name="x" * 256)
    assert (exc.value.status, exc.value.code) == (400, 33101) and "FriendlyName" in exc.value.msg
    assert plans.list() == []
    plan = plans.create(unique_name="short", friendly_name="é" * 255)
    with pytest.raises(TwilioRestException) as exc:
        plans(plan.sid).update(unique_name="renamed", friendly_name="x" * 256)
    assert (exc.value.status, exc.value.code) == (400, 33101) and "FriendlyName" in exc.value.msg
    assert (plans(plan.sid).fetch().unique_name, plans(plan.sid).fetch().friendly_name) == (
        "short", "é" * 255)
