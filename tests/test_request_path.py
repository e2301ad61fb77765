"""The direct way to product operations (core/dispatch.py) and the operations run on the event
loop (`inline`): the same answers as through the router, and never a wait on a lock there."""

from __future__ import annotations

import threading

import httpx
from sqlalchemy import update

from simplane.wireless.models import Sim


def test_methods_and_paths_the_dispatch_does_not_take_are_answered_as_before(server, account):
    [sid] = server.provision(account.sid, 1)
    auth = (account.sid, account.token)
    base = f"{server.base_url}/wireless/v1/Sims"
    assert httpx.get(f"{base}/{sid}", auth=auth).json()["sid"] == sid
    wrong = httpx.put(f"{base}/{sid}", auth=auth)
    assert (wrong.status_code, wrong.json()["code"]) == (405, 20004)
    for path in (f"{base}/{sid}/Nothing", "/wireless/v1/Nothing/x", "/nothing/v1/Sims/x"):
        missing = httpx.get(server.base_url + path if path[0] == "/" else path, auth=auth)
        assert (missing.status_code, missing.json()["code"]) == (404, 20404), path
    unauthenticated = httpx.get(f"{base}/{sid}")
    assert (unauthenticated.status_code, unauthenticated.json()["code"]) == (401, 20003)
    other = server.new_account()
    assert httpx.get(f"{base}/{sid}", auth=(other.sid, other.token)).status_code == 404


def test_host_routed_requests_are_dispatched_with_urls_as_addressed(server, account):
    [sid] = server.provision(account.sid, 1)
    answer = httpx.get(f"{server.base_url}/v1/Sims/{sid}", auth=(account.sid, account.token),
                       headers={"Host": "wireless.twilio.com"})
    assert answer.json()["url"] == f"http://wireless.twilio.com/v1/Sims/{sid}"
    page = httpx.get(f"{server.base_url}/v1/Sims?PageSize=1", auth=(account.sid, account.token),
                     headers={"Host": "wireless.twilio.com"}).json()
    assert page["sims"][0]["sid"] == sid
    assert page["meta"]["url"] == "http://wireless.twilio.com/v1/Sims?PageSize=1&Page=0"


def test_a_read_does_not_wait_for_a_writer_and_sees_what_is_committed(server, account):
    [sid] = server.provision(account.sid, 1)
    auth = (account.sid, account.token)
    with server.runtime.db.write() as db:  # holds SQLite's write lock, or the row's lock
        db.execute(update(Sim).where(Sim.sid == sid).values(friendly_name="uncommitted"))
        db.flush()
        fetched = httpx.get(f"{server.base_url}/wireless/v1/Sims/{sid}", auth=auth, timeout=20)
        listed = httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=auth, timeout=20)
    assert fetched.json()["friendly_name"] is None
    assert listed.json()["sims"][0]["friendly_name"] is None


def test_an_update_while_another_writer_holds_the_lock_waits_on_a_thread(server, account):
    """The update cannot take the lock on the event loop: it is run again on a thread, which
    waits; the event loop goes on answering (the fetch below) meanwhile."""
    [sid, other] = server.provision(account.sid, 2)
    auth = (account.sid, account.token)
    answers: list[httpx.Response] = []
    with server.runtime.db.write() as db:
        db.execute(update(Sim).where(Sim.sid == sid).values(friendly_name="first"))
        db.flush()
        request = threading.Thread(target=lambda: answers.append(httpx.post(
            f"{server.base_url}/wireless/v1/Sims/{sid}", data={"FriendlyName": "second"},
            auth=auth, timeout=30)))
        request.start()
        fetched = httpx.get(f"{server.base_url}/wireless/v1/Sims/{other}", auth=auth, timeout=20)
        assert fetched.status_code == 200
    request.join(30)
    assert answers[0].status_code == 200
    assert answers[0].json()["friendly_name"] == "second"
    assert account.client.wireless.v1.sims(sid).fetch().friendly_name == "second"


def test_an_update_of_own_fields_shows_the_sim_as_fetched(server, account):
    account.client.wireless.v1.rate_plans.create(unique_name="basic")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="basic")
    sims = account.client.wireless.v1.sims
    before = sims(sid).fetch()
    server.clock.advance(61)
    updated = sims(sid).update(friendly_name="n", unique_name="u", sms_url="https://x.test/s",
                               sms_method="GET")
    fetched = sims(sid).fetch()
    for field in ("sid", "unique_name", "friendly_name", "rate_plan_sid", "status", "sms_url",
                  "sms_method", "date_created", "date_updated", "url", "links", "iccid"):
        assert getattr(updated, field) == getattr(fetched, field), field
    assert (fetched.friendly_name, fetched.unique_name, fetched.sms_method) == ("n", "u", "GET")
    assert fetched.date_updated > before.date_updated
    assert fetched.rate_plan_sid is not None
    assert sims("u").fetch().sid == sid


def test_a_page_shows_each_sim_as_a_fetch_does(server, account):
    """A page's SIMs (written by the database in Twilio's flavour) are the fetched ones, field
    for field, names with quotes, controls and non-ASCII letters included."""
    account.client.wireless.v1.rate_plans.create(unique_name="basic")
    sids = server.provision(account.sid, 2, status="active", rate_plan="basic")
    sids += server.provision(account.sid, 1)  # no rate plan: its link is null
    sims = account.client.wireless.v1.sims
    sims(sids[0]).update(friendly_name='a "quoted"\\ name\n\x01 é ☃ </x>', unique_name="u-1",
                         voice_url="https://x.test/v?a=1&b=2")
    auth = (account.sid, account.token)
    page = httpx.get(f"{server.base_url}/wireless/v1/Sims", params={"PageSize": 2}, auth=auth,
                     timeout=20).json()
    listed = page["sims"] + httpx.get(page["meta"]["next_page_url"], auth=auth,
                                      timeout=20).json()["sims"]
    assert [sim["sid"] for sim in listed] == sids
    for sim in listed:
        fetched = httpx.get(sim["url"], auth=auth, timeout=20).json()
        assert list(sim.items()) == list(fetched.items())
    assert listed[0]["friendly_name"] == 'a "quoted"\\ name\n\x01 é ☃ </x>'
    assert listed[0]["links"]["rate_plan"].endswith("/v1/RatePlans/" + listed[0]["rate_plan_sid"])
    assert listed[2]["rate_plan_sid"] is None and listed[2]["links"]["rate_plan"] is None
