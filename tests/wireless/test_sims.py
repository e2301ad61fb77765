"""Sims through the official client: fetch, list and filters, paging, updates, isolation."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

from simplane.core import spec
from simplane.core.clock import add_months

SIM_FIELDS = spec.resource_fields("wireless", "wireless.v1.sim")


def test_fetch_by_sid_and_unique_name_carries_every_field(server, account):
    [sid] = server.provision(account.sid, 1)
    sims = account.client.wireless.v1.sims
    sims(sid).update(unique_name="tracker-1", friendly_name="Tracker")
    by_sid, by_name = sims(sid).fetch(), sims("tracker-1").fetch()
    assert by_sid.sid == by_name.sid == sid
    assert by_sid.unique_name == "tracker-1" and by_sid.friendly_name == "Tracker"
    assert len(by_sid.iccid) in (19, 20) and by_sid.status == "new"
    assert by_sid.url == f"{server.base_url}/wireless/v1/Sims/{sid}"
    assert by_sid.links["data_sessions"] == f"{by_sid.url}/DataSessions"
    assert by_sid.links["rate_plan"] is None
    raw = httpx.get(by_sid.url, auth=(account.sid, account.token)).json()
    assert set(raw) == set(SIM_FIELDS)
    assert by_sid.date_created.tzinfo is not None  # parsed: Twilio's exact date format


def test_unknown_sim_is_404_with_twilio_error(account):
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.sims("DE" + "0" * 32).fetch()
    assert exc.value.status == 404 and exc.value.code == 20404


def test_another_accounts_sim_is_not_found(server, account):
    other = server.new_account()
    [sid] = server.provision(other.sid, 1)
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.sims(sid).fetch()
    assert exc.value.status == 404
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.sims(sid).update(friendly_name="mine now")
    assert exc.value.status == 404
    assert other.client.wireless.v1.sims(sid).fetch().friendly_name is None
    assert account.client.wireless.v1.sims.list() == []


def test_list_filters(server, account):
    plan = account.client.wireless.v1.rate_plans.create(unique_name="basic")
    new = server.provision(account.sid, 3)
    active = server.provision(account.sid, 2, status="active", rate_plan="basic")
    sims = account.client.wireless.v1.sims
    assert [s.sid for s in sims.list(status="new")] == new
    assert [s.sid for s in sims.list(status="active")] == active
    assert [s.sid for s in sims.list(rate_plan="basic")] == active
    assert [s.sid for s in sims.list(rate_plan=plan.sid)] == active
    assert sims.list(rate_plan="no-such-plan") == []
    target = sims(active[0]).fetch()
    assert [s.sid for s in sims.list(iccid=target.iccid)] == [target.sid]
    with server.runtime.db.read() as db:
        from simplane.wireless.models import Sim

        code = db.query(Sim.registration_code).filter(Sim.sid == new[1]).scalar()
    assert [s.sid for s in sims.list(sim_registration_code=code)] == [new[1]]


def test_paging_yields_every_sim_exactly_once(server, account):
    sids = server.provision(account.sid, 2500)
    sims = account.client.wireless.v1.sims
    assert [s.sid for s in sims.list()] == sids
    assert [s.sid for s in sims.stream(page_size=1000)] == sids
    assert len(sims.list(limit=120)) == 120
    page = sims.page(page_size=1000)
    seen = [s.sid for s in page]
    while (page := page.next_page()) is not None:
        seen += [s.sid for s in page]
    assert seen == sids


def test_paging_envelope_and_previous_page(server, account):
    sids = server.provision(account.sid, 5)
    auth = (account.sid, account.token)
    first = httpx.get(f"{server.base_url}/wireless/v1/Sims", params={"PageSize": 2, "Status": "new"},
                      auth=auth).json()
    meta = first["meta"]
    assert meta["key"] == "sims" and meta["page"] == 0 and meta["page_size"] == 2
    assert meta["previous_page_url"] is None
    assert meta["first_page_url"] == f"{server.base_url}/wireless/v1/Sims?Status=new&PageSize=2&Page=0"
    second = httpx.get(meta["next_page_url"], auth=auth).json()
    assert [s["sid"] for s in second["sims"]] == sids[2:4] and second["meta"]["page"] == 1
    back = httpx.get(second["meta"]["previous_page_url"], auth=auth).json()
    assert [s["sid"] for s in back["sims"]] == sids[:2]
    third = httpx.get(second["meta"]["next_page_url"], auth=auth).json()
    assert [s["sid"] for s in third["sims"]] == sids[4:]
    assert third["meta"]["next_page_url"] is None


@pytest.mark.parametrize("query, code", [
    ({"PageSize": "0"}, 20001), ({"PageSize": "1001"}, 20001), ({"PageSize": "many"}, 20001),
    ({"PageToken": "garbage"}, 21481), ({"Status": "sleeping"}, 20001),
])
def test_bad_list_parameters_are_400_naming_them(server, account, query, code):
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims", params=query,
                  auth=(account.sid, account.token))
    body = r.json()
    assert r.status_code == 400 and body["code"] == code and body["status"] == 400
    assert next(iter(query)) in body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"


def test_status_lifecycle_and_transition_errors(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1)
    sim = account.client.wireless.v1.sims(sid)
    with pytest.raises(TwilioRestException) as exc:
        sim.update(status="active")
    assert exc.value.code == 33104 and "rate plan" in exc.value.msg
    assert sim.update(rate_plan="p", status="ready").status == "ready"
    assert sim.fetch().rate_plan_sid is not None
    assert sim.update(status="active").status == "active"
    with pytest.raises(TwilioRestException) as exc:
        sim.update(status="new")
    assert exc.value.status == 400 and exc.value.code == 33105
    assert "from active to new" in exc.value.msg
    assert sim.update(status="suspended").status == "suspended"
    assert sim.update(status="active").status == "active"
    with pytest.raises(TwilioRestException) as exc:
        sim.update(status="active", reset_status="resetting")
    assert exc.value.code == 33121
    with pytest.raises(TwilioRestException) as exc:
        sim.update(rate_plan="")
    assert exc.value.code == 33101
    assert sim.fetch().status == "active"


def test_failed_update_writes_nothing(server, account):
    [sid] = server.provision(account.sid, 1)
    sim = account.client.wireless.v1.sims(sid)
    with pytest.raises(TwilioRestException):
        sim.update(friendly_name="changed", unique_name="u1", status="active")  # no rate plan
    after = sim.fetch()
    assert after.friendly_name is None and after.unique_name is None


def test_update_every_field(server, account):
    plan = account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1)
    url = "https://example.com/hook"
    sim = account.client.wireless.v1.sims(sid).update(
        unique_name="u", friendly_name="f", rate_plan=plan.sid, commands_callback_url=url,
        commands_callback_method="GET", sms_url=url, sms_method="GET", sms_fallback_url=url,
        sms_fallback_method="GET", voice_url=url, voice_method="GET", voice_fallback_url=url,
        voice_fallback_method="GET")
    for name in ("commands_callback", "sms", "sms_fallback", "voice", "voice_fallback"):
        assert getattr(sim, f"{name}_url") == url and getattr(sim, f"{name}_method") == "GET"
    assert sim.rate_plan_sid == plan.sid and sim.links["rate_plan"].endswith(plan.sid)
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.sims(sid).update(commands_callback_url="not a url")
    assert exc.value.status == 400 and "CommandsCallbackUrl" in exc.value.msg


def test_unique_names_are_unique_and_not_sid_shaped(server, account):
    a, b = server.provision(account.sid, 2)
    sims = account.client.wireless.v1.sims
    sims(a).update(unique_name="same")
    with pytest.raises(TwilioRestException) as exc:
        sims(b).update(unique_name="same")
    assert exc.value.status == 409
    with pytest.raises(TwilioRestException) as exc:
        sims(b).update(unique_name="DE" + "a" * 32)
    assert exc.value.code == 33101


def test_move_sim_to_a_subaccount_only_while_new(server, account):
    sub = server.new_account(parent=account.sid)
    stranger = server.new_account()
    a, b = server.provision(account.sid, 2)
    sims = account.client.wireless.v1.sims
    with pytest.raises(TwilioRestException) as exc:
        sims(a).update(account_sid=stranger.sid)
    assert exc.value.code == 33201
    assert sims(a).update(account_sid=sub.sid).account_sid == sub.sid
    assert sub.client.wireless.v1.sims(a).fetch().sid == a
    with pytest.raises(TwilioRestException):
        sims(a).fetch()
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    sims(b).update(rate_plan="p", status="active")
    with pytest.raises(TwilioRestException) as exc:
        sims(b).update(account_sid=sub.sid)
    assert exc.value.code == 33201


def test_reset_connectivity(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    sim = account.client.wireless.v1.sims(sid)
    assert sim.update(reset_status="resetting").reset_status == "resetting"
    server.drain()
    assert sim.fetch().reset_status is None


def test_delete_sim(server, account):
    [sid] = server.provision(account.sid, 1)
    assert account.client.wireless.v1.sims(sid).delete() is True
    with pytest.raises(TwilioRestException) as exc:
        account.client.wireless.v1.sims(sid).fetch()
    assert exc.value.status == 404


def test_status_callbacks_for_two_stage_changes(server, account, receiver):
    from twilio.request_validator import RequestValidator

    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1)
    sim = account.client.wireless.v1.sims(sid)
    sim.update(rate_plan="p", status="ready", callback_url=f"{receiver.url}/sim")
    server.drain()
    first = receiver.get()
    assert first.value("SimSid") == sid and first.value("SimStatus") == "ready"
    validator = RequestValidator(account.token)
    assert validator.validate(first.url, {k: v[0] for k, v in first.form.items()},
                              first.headers["X-Twilio-Signature"])
    ready = server.clock.now()
    server.clock.set(add_months(ready, 3) - timedelta(seconds=1))
    server.drain()
    assert sim.fetch().status == "ready" and receiver.requests.empty()
    server.clock.advance(1)  # ready turns active three months on, to the second
    server.drain()
    second = receiver.get()
    assert second.value("SimStatus") == "active" and sim.fetch().status == "active"

    sim.update(status="deactivated", callback_url=f"{receiver.url}/sim")
    server.drain()
    assert receiver.get().value("SimStatus") == "deactivated"
    server.clock.advance(72 * 3600)
    server.drain()
    assert receiver.get().value("SimStatus") == "canceled"
    assert sim.fetch().status == "canceled"


def test_friendly_name_too_long_is_a_400_and_writes_nothing(server, account):
    [sid] = server.provision(account.sid, 1)
    sim = account.client.wireless.v1.sims(sid)
    with pytest.raises(TwilioRestException) as exc:
        sim.update(friendly_name="x" * 256, unique_name="u")
    assert (exc.value.status, exc.value.code) == (400, 33101) and "FriendlyName" in exc.value.msg
    assert (sim.fetch().friendly_name, sim.fetch().unique_name) == (None, None)
    assert sim.update(friendly_name="é" * 255).friendly_name == "é" * 255


def test_a_moved_sim_takes_a_rate_plan_of_its_new_account(server, account):
    sub = server.new_account(parent=account.sid)
    account.client.wireless.v1.rate_plans.create(unique_name="parents")
    own = sub.client.wireless.v1.rate_plans.create(unique_name="subs")
    a, b, c = server.provision(account.sid, 3, rate_plan="parents")
    sims = account.client.wireless.v1.sims
    with pytest.raises(TwilioRestException) as exc:  # the parent's plan stays behind
        sims(a).update(account_sid=sub.sid, status="ready")
    assert exc.value.code == 33104
    with pytest.raises(TwilioRestException) as exc:  # not a plan of the subaccount
        sims(a).update(account_sid=sub.sid, rate_plan="parents")
    assert exc.value.code == 33108 and "parents" in exc.value.msg
    assert sims(a).fetch().account_sid == account.sid
    moved = sims(b).update(account_sid=sub.sid, rate_plan="subs", status="ready")
    assert (moved.account_sid, moved.rate_plan_sid, moved.status) == (sub.sid, own.sid, "ready")
    assert sub.client.wireless.v1.rate_plans(moved.rate_plan_sid).fetch().sid == own.sid
    assert sims(c).update(account_sid=sub.sid).rate_plan_sid is None
