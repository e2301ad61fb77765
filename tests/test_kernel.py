"""The Twilio conventions every product shares: auth, routing, URLs, errors, operations."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException

import simplane


def test_missing_or_wrong_credentials_are_401_20003(server, account):
    url = f"{server.base_url}/wireless/v1/Sims"
    for auth in (None, (account.sid, "wrong"), ("AC" + "0" * 32, account.token), ("bob", "x")):
        r = httpx.get(url, auth=auth)
        assert r.status_code == 401
        assert r.json() == {"code": 20003, "message": "Authenticate",
                            "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}
    r = httpx.get(url, headers={"Authorization": "Basic !!!notbase64"})
    assert r.status_code == 401
    with pytest.raises(TwilioRestException) as exc:
        server.client(account.sid, "wrong").wireless.v1.rate_plans.create()
    assert exc.value.status == 401 and exc.value.code == 20003


def test_api_key_authenticates_as_its_account(server, account):
    key_sid, secret = account.api_key()
    assert key_sid.startswith("SK") and len(key_sid) == 34
    [sid] = server.provision(account.sid, 1)
    client = server.client(key_sid, secret, account.sid)
    assert [s.sid for s in client.wireless.v1.sims.list()] == [sid]
    assert client.wireless.v1.rate_plans.create(unique_name="k").account_sid == account.sid
    assert httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=(key_sid, "nope")).status_code == 401


def test_secrets_are_not_stored_in_clear(server, account):
    from simplane.core.models import Account

    with server.runtime.db.read() as db:
        row = db.query(Account).filter_by(sid=account.sid).one()
    assert account.token not in row.auth_token_hash and account.token not in row.auth_token_sealed
    assert server.runtime.box.open(row.auth_token_sealed) == account.token


def test_host_header_routes_bare_v1_paths(server, account):
    [sid] = server.provision(account.sid, 1)
    r = httpx.get(f"{server.base_url}/v1/Sims/{sid}", auth=(account.sid, account.token),
                  headers={"Host": "wireless.twilio.com"})
    assert r.status_code == 200 and r.json()["url"] == f"http://wireless.twilio.com/v1/Sims/{sid}"
    r = httpx.get(f"{server.base_url}/v1/Sims/{sid}", auth=(account.sid, account.token))
    assert r.status_code == 404 and r.json()["code"] == 20404


def test_forwarded_headers_make_urls_absolute_for_the_client(server, account):
    [sid] = server.provision(account.sid, 1)
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=(account.sid, account.token),
                  headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sims.example.com"})
    body = r.json()
    assert body["sims"][0]["url"] == f"https://sims.example.com/wireless/v1/Sims/{sid}"
    assert body["meta"]["url"].startswith("https://sims.example.com/wireless/v1/Sims?")


def test_unknown_routes_and_methods_answer_in_twilio_shape(server, account):
    auth = (account.sid, account.token)
    r = httpx.get(f"{server.base_url}/wireless/v1/Nothing", auth=auth)
    assert r.status_code == 404 and r.json()["code"] == 20404
    r = httpx.put(f"{server.base_url}/wireless/v1/Sims", auth=auth)
    assert r.status_code == 405 and set(r.json()) == {"code", "message", "more_info", "status"}


def test_unknown_parameters_are_ignored(server, account):
    r = httpx.post(f"{server.base_url}/wireless/v1/RatePlans", auth=(account.sid, account.token),
                   data={"UniqueName": "u", "Bogus": "1"})
    assert r.status_code == 201 and r.json()["unique_name"] == "u"


def test_healthz_metrics_and_openapi(server, account):
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok", "database": "up"}
    account.client.wireless.v1.sims.list()
    metrics = server.metrics()
    assert 'simplane_http_requests_total{method="GET",route="/wireless/v1/Sims",status="200"}' in metrics
    assert "simplane_http_request_seconds_bucket" in metrics
    assert account.token not in metrics
    doc = httpx.get(f"{server.base_url}/openapi.json").json()
    assert "/wireless/v1/Sims/{Sid}" in doc["paths"]
    assert doc["components"]["schemas"]["wireless.v1.sim"]["properties"]["iccid"]


def test_async_client(server, account):
    [sid] = server.provision(account.sid, 1)
    client = simplane.async_client(server.base_url, account.sid, account.token)

    async def run() -> list[str]:
        sims = await client.wireless.v1.sims.list_async()
        plan = await client.wireless.v1.rate_plans.create_async(unique_name="async")
        await client.http_client.close()
        return [s.sid for s in sims] + [plan.unique_name]

    assert asyncio.run(run()) == [sid, "async"]


def test_client_adapter_rewrites_only_twilio_hosts():
    from simplane.client import rewrite

    base = "http://127.0.0.1:8080"
    assert rewrite(base, "https://wireless.twilio.com/v1/Sims?PageSize=5") == \
        "http://127.0.0.1:8080/wireless/v1/Sims?PageSize=5"
    assert rewrite(base, "http://127.0.0.1:8080/wireless/v1/Sims") == \
        "http://127.0.0.1:8080/wireless/v1/Sims"
    assert rewrite("http://h:1/prefix/", "https://proxy.twilio.com/v1/Services") == \
        "http://h:1/prefix/proxy/v1/Services"


def test_failed_callbacks_are_retried_with_backoff(server, account, receiver):
    from simplane.core.models import Callback

    account.client.wireless.v1.rate_plans.create(unique_name="p")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="p")
    server.network(sid, "attachment.accepted")  # the device is there to take the command
    receiver.statuses = [503]
    account.client.wireless.v1.commands.create(sim=sid, command="x", callback_url=receiver.url)
    server.drain()
    assert receiver.get().form["CommandStatus"] == ["delivered"]  # answered 503
    server.drain()
    assert receiver.requests.empty()  # not due yet
    server.clock.advance(600)
    server.drain()
    assert receiver.get().form["CommandStatus"] == ["delivered"]
    with server.runtime.db.read() as db:
        row = db.query(Callback).filter_by(account_sid=account.sid).one()
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 200)


def test_the_garbage_collector_waits_for_batches_and_comes_back():
    """bulk.gc_paused: off while any batch runs, on again after the last one; a collection
    still happens when batches keep overlapping past LONGEST_PAUSE."""
    import gc
    import threading

    from simplane.core import bulk

    assert gc.isenabled()
    with bulk.gc_paused():
        assert not gc.isenabled()
        with bulk.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()

    started, release = threading.Event(), threading.Event()

    def long_batch() -> None:
        with bulk.gc_paused():
            started.set()
            release.wait(5)

    other = threading.Thread(target=long_batch)
    other.start()
    started.wait(5)
    collections = gc.get_stats()[2]["collections"]
    bulk._off_since -= bulk.LONGEST_PAUSE + 1  # as if batches had overlapped that long
    with bulk.gc_paused():
        pass
    assert gc.get_stats()[2]["collections"] == collections + 1
    assert not gc.isenabled()  # the other batch still runs
    release.set()
    other.join()
    assert gc.isenabled()


def test_months_are_counted_to_the_same_day_clamped_to_shorter_months():
    from datetime import UTC, datetime, timedelta

    from simplane.core.clock import add_months, month_started, months_bound, months_passed

    jan31 = datetime(2027, 1, 31, 12, tzinfo=UTC)
    assert add_months(jan31, 1) == datetime(2027, 2, 28, 12, tzinfo=UTC)
    assert add_months(jan31, 2) == datetime(2027, 3, 31, 12, tzinfo=UTC)
    assert month_started(jan31, jan31) == jan31
    assert month_started(jan31, datetime(2027, 2, 28, 11, tzinfo=UTC)) == jan31
    assert month_started(jan31, datetime(2027, 3, 15, tzinfo=UTC)) == add_months(jan31, 1)
    assert month_started(jan31, datetime(2028, 1, 31, 12, tzinfo=UTC)) == add_months(jan31, 12)
    nov30 = datetime(2026, 11, 30, 10, tzinfo=UTC)
    feb28 = datetime(2027, 2, 28, 10, tzinfo=UTC)  # 90 days on
    assert not months_passed(nov30, 3, feb28 - timedelta(seconds=1))
    assert months_passed(nov30, 3, feb28)
    # The SQL bound lets through every moment three months have passed since.
    for day in range(365):
        since = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
        now = add_months(since, 3)
        assert months_passed(since, 3, now) and since <= months_bound(now, 3)


def test_callback_urls_the_sender_could_not_use_are_refused(server, account):
    [sid] = server.provision(account.sid, 1)
    sim = account.client.wireless.v1.sims(sid)
    for url in ("\x19http://example.com/cb", "http://example.com/a b", "http://example.com/\t"):
        with pytest.raises(TwilioRestException) as exc:
            sim.update(commands_callback_url=url)
        assert exc.value.status == 400 and "CommandsCallbackUrl" in exc.value.msg, url
    assert sim.fetch().commands_callback_url is None


def test_a_callback_that_cannot_be_sent_holds_up_no_other(server, account, receiver):
    from simplane.core import callbacks
    from simplane.core.models import Callback

    with server.runtime.db.write() as db:  # a URL stored before URLs were checked
        callbacks.enqueue(db, server.runtime, account.sid, "\x19http://example.com/cb", "POST",
                          {"n": "1"})
        callbacks.enqueue(db, server.runtime, account.sid, receiver.url, "POST", {"n": "2"})
    server.drain()
    assert receiver.get().form["n"] == ["2"]
    with server.runtime.db.read() as db:
        bad = db.query(Callback).filter_by(account_sid=account.sid, url="\x19http://example.com/cb"
                                           ).one()
    assert (bad.status, bad.attempts, bad.last_status_code) == ("pending", 1, None)


def test_page_tokens_and_dates_out_of_range_are_400(server, account):
    auth = (account.sid, account.token)
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=auth,
                  params={"PageToken": "PA9999999999999999999"})
    assert r.status_code == 400 and r.json()["code"] == 21481, r.text
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=auth,
                  params={"PageToken": "PA9223372036854775807"})  # the largest key there is
    assert r.status_code == 200 and r.json()["sims"] == []
    r = httpx.get(f"{server.base_url}/wireless/v1/UsageRecords", auth=auth,
                  params={"End": "0001-01-01T00:00:00+01:00"})
    assert r.status_code == 400 and "End" in r.json()["message"], r.text


def test_dates_are_written_with_four_digit_years():
    from datetime import UTC, datetime

    from simplane.core.clock import iso

    assert iso(datetime(1, 2, 3, 4, 5, 6, tzinfo=UTC)) == "0001-02-03T04:05:06Z"
    assert iso(datetime(2026, 11, 24, 0, 58, 1, 999, tzinfo=UTC)) == "2026-11-24T00:58:01Z"


def test_json_nested_past_what_the_parser_follows_is_a_400(server, account):
    deep = "[" * 100_000 + "]" * 100_000
    r = httpx.post(f"{server.base_url}/events/v1/Sinks", auth=(account.sid, account.token),
                   data={"Description": "deep", "SinkType": "webhook",
                         "SinkConfiguration": deep})
    assert r.status_code == 400 and "SinkConfiguration" in r.json()["message"], r.text
    sink = account.client.events.v1.sinks.create(
        description="d", sink_type="webhook",
        sink_configuration={"destination": "http://127.0.0.1:9/events", "method": "POST",
                            "batch_events": False})
    r = httpx.post(f"{server.base_url}/events/v1/Subscriptions",
                   auth=(account.sid, account.token),
                   data={"Description": "deep", "SinkSid": sink.sid, "Types": deep})
    assert r.status_code == 400 and "Types" in r.json()["message"], r.text


def test_numbers_are_ascii_digits_only(server, account):
    auth = (account.sid, account.token)
    for value in ("١٢", "1_000", "１２"):
        r = httpx.post(f"{server.base_url}/wireless/v1/RatePlans", auth=auth,
                       data={"UniqueName": "n", "DataLimit": value})
        assert r.status_code == 400 and "DataLimit" in r.json()["message"], (value, r.text)
        r = httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=auth, params={"PageSize": value})
        assert r.status_code == 400 and "PageSize" in r.json()["message"], (value, r.text)
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims", auth=auth, params={"PageToken": "PA١"})
    assert r.status_code == 400 and r.json()["code"] == 21481, r.text
    assert account.client.wireless.v1.rate_plans.list() == []
    r = httpx.post(f"{server.base_url}/wireless/v1/RatePlans", auth=auth,
                   data={"UniqueName": "n", "DataLimit": " 12 "})
    assert r.status_code == 201 and r.json()["data_limit"] == 12, r.text


def test_unique_names_must_be_fetchable_by_name(server, account):
    """A resource is fetched by its unique name where its SID goes in the URL, and the official
    client puts it there unescaped, so a name that looks like a SID, or holds a '/' (or a '?',
    '#' or '%', which the URL reads otherwise too), could never be: every resource with a
    UniqueName refuses them, at create and at update, with a 400 naming the parameter, and
    keeps what it had."""
    from tests.supersim.conftest import ATT, stock

    c = account.client
    plan = c.wireless.v1.rate_plans.create(unique_name="plan")
    [sim] = server.provision(account.sid, 1)
    nap = c.supersim.v1.network_access_profiles.create(unique_name="nap", networks=[ATT.sid])
    fleet = c.supersim.v1.fleets.create(network_access_profile=nap.sid, unique_name="fleet")
    [row] = stock(server)
    super_sim = c.supersim.v1.sims.create(iccid=row["iccid"],
                                          registration_code=row["registration_code"])
    service = c.proxy.v1.services.create(unique_name="service")
    sessions = c.proxy.v1.services(service.sid).sessions
    session = sessions.create(unique_name="session")
    resources = {  # what refuses the name, and the resources it must leave as they were
        "rate plan": (lambda n: c.wireless.v1.rate_plans.create(unique_name=n),
                      c.wireless.v1.rate_plans.list),
        "rate plan update": (lambda n: c.wireless.v1.rate_plans(plan.sid).update(unique_name=n),
                             c.wireless.v1.rate_plans.list),
        "sim update": (lambda n: c.wireless.v1.sims(sim).update(unique_name=n),
                       c.wireless.v1.sims.list),
        "network access profile": (
            lambda n: c.supersim.v1.network_access_profiles.create(unique_name=n),
            c.supersim.v1.network_access_profiles.list),
        "network access profile update": (
            lambda n: c.supersim.v1.network_access_profiles(nap.sid).update(unique_name=n),
            c.supersim.v1.network_access_profiles.list),
        "fleet": (lambda n: c.supersim.v1.fleets.create(network_access_profile=nap.sid,
                                                        unique_name=n), c.supersim.v1.fleets.list),
        "fleet update": (lambda n: c.supersim.v1.fleets(fleet.sid).update(unique_name=n),
                         c.supersim.v1.fleets.list),
        "super sim update": (lambda n: c.supersim.v1.sims(super_sim.sid).update(unique_name=n),
                             c.supersim.v1.sims.list),
        "proxy service": (lambda n: c.proxy.v1.services.create(unique_name=n),
                          c.proxy.v1.services.list),
        "proxy service update": (lambda n: c.proxy.v1.services(service.sid).update(unique_name=n),
                                 c.proxy.v1.services.list),
        "proxy session": (lambda n: sessions.create(unique_name=n), sessions.list),
    }
    for what, (send, listing) in resources.items():
        before = [(r.sid, r.unique_name) for r in listing()]
        codes = set()
        for bad in ("XX" + "0" * 32, "a/b", "/", "fleet/", "a?b", "a#b", "a%41b"):
            with pytest.raises(TwilioRestException) as exc:
                send(bad)
            assert exc.value.status == 400, (what, bad, exc.value.msg)
            assert "UniqueName" in exc.value.msg, (what, bad, exc.value.msg)
            codes.add(exc.value.code)
        assert len(codes) == 1, (what, codes)  # a '/' is refused as a SID look-alike is
        assert [(r.sid, r.unique_name) for r in listing()] == before, what
    assert c.proxy.v1.services(service.sid).sessions(session.sid).fetch().unique_name == "session"
