"""KORE's RatePlan fields, and the usage notifications they promise: sent KORE-style when ingest
counts the bytes that take a SIM to one of its plan's limits."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.wireless.models import Sim
from tests.kore.conftest import new_client, token_of
from tests.kore.hooks import create_secret, header, signed_by

MB = 1_000_000
HOME = ("901", "42")
NATIONAL = ("901", "43")


@pytest.fixture
def kore_wireless(server, account):  # type: ignore[no-untyped-def]
    token = token_of(server, new_client(server, account.sid))
    with httpx.Client(base_url=f"{server.base_url}/kore/programmable-wireless/v1",
                      headers={"Authorization": f"Bearer {token}"}) as http:
        yield http


def sim_on(server, account, plan: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    [sid] = server.provision(account.sid, 1, status="active", rate_plan=plan)
    with server.runtime.db.read() as db:
        return sid, db.scalar(select(Sim.imsi).where(Sim.sid == sid))


def usage(server, imsi, seconds, total, session="s1", network=HOME):  # type: ignore[no-untyped-def]
    kind = "session.started" if total is None else "session.updated"
    return NetworkEvent(kind=kind, imsi=imsi, time=server.clock.now() + timedelta(seconds=seconds),
                        session_id=session, mcc=network[0], mnc=network[1],
                        bytes_up=0, bytes_down=total or 0)


def test_kores_rate_plan_fields(server, account, kore_wireless, receiver):
    created = kore_wireless.post("/RatePlans", data={
        "UniqueName": "metered", "DataLimit": "5", "DataLimitStrategy": "throttle",
        "UsageNotificationUrl": f"{receiver.url}/usage", "UsageNotificationMethod": "get"})
    assert created.status_code == 200, created.text
    plan = created.json()
    # KORE's createRatePlans has no DataLimitStrategy parameter: the plan blocks at its limits.
    assert plan["data_limit_strategy"] == "block"
    assert plan["usage_notification_url"] == f"{receiver.url}/usage"
    assert plan["usage_notification_method"] == "GET"
    fetched = kore_wireless.get(f"/RatePlans/{plan['sid']}").json()
    assert {k: fetched[k] for k in ("data_limit_strategy", "usage_notification_url",
                                    "usage_notification_method")} == {
        "data_limit_strategy": "block", "usage_notification_url": f"{receiver.url}/usage",
        "usage_notification_method": "GET"}
    cleared = kore_wireless.post(f"/RatePlans/{plan['sid']}",
                                 data={"UsageNotificationUrl": ""}).json()
    assert cleared["usage_notification_url"] == "" and cleared["usage_notification_method"] == ""
    for bad in ({"UsageNotificationUrl": "not a url"}, {"UsageNotificationMethod": "PUT"}):
        response = kore_wireless.post(f"/RatePlans/{plan['sid']}", data=bad)
        assert response.status_code == 400 and next(iter(bad)) in response.json()["message"]
    # Twilio's flavour has none of them, and takes no notification URL.
    fetched = httpx.get(f"{server.base_url}/wireless/v1/RatePlans/{plan['sid']}",
                        auth=(account.sid, account.token)).json()
    assert not {"usage_notification_url", "data_limit_strategy"} & set(fetched)
    response = httpx.post(f"{server.base_url}/wireless/v1/RatePlans/{plan['sid']}",
                          auth=(account.sid, account.token),
                          data={"UsageNotificationUrl": f"{receiver.url}/usage"})
    assert response.status_code == 200 and "usage_notification_url" not in response.json()
    assert kore_wireless.get(f"/RatePlans/{plan['sid']}").json()["usage_notification_url"] == ""


def test_a_sim_reaching_its_data_limit_is_notified_once_kore_style(server, account,
                                                                   kore_wireless, receiver):
    secret = create_secret(server, account)["secret"]
    plan = kore_wireless.post("/RatePlans", data={
        "UniqueName": "one-mb", "DataLimit": "1",
        "UsageNotificationUrl": f"{receiver.url}/usage?plan=1"}).json()
    sid, imsi = sim_on(server, account, "one-mb")
    result = ingest(server.runtime, [usage(server, imsi, 0, None),
                                     usage(server, imsi, 60, MB // 2)])
    assert result.usage_notifications == 0
    result = ingest(server.runtime, [usage(server, imsi, 120, 2 * MB)])  # past the limit
    assert result.usage_notifications == 1 and result.sessions_blocked == 1
    server.drain()
    got = receiver.get()
    params = {k: v[0] for k, v in got.form.items()}
    assert got.method == "POST" and got.path == "/usage"
    assert params == {
        "AccountSid": account.sid, "SimSid": sid, "SimUniqueName": "",
        "SimIccid": params["SimIccid"], "RatePlanSid": plan["sid"],
        "DataLimitStrategy": "block", "Limit": "data_limit", "DataLimit": "1",
        "DataUsage": str(MB), "PeriodStart": params["PeriodStart"],
        "Timestamp": params["Timestamp"]}
    assert header(got, "User-Agent") == "KoreProxy/1.1" and header(got, "kore-idempotency-token")
    assert header(got, "X-Twilio-Signature") is None
    assert signed_by(got, secret)
    # Blocked: nothing more is counted, and nothing more is sent this period.
    result = ingest(server.runtime, [usage(server, imsi, 180, None, session="s2")])
    assert result.sessions_refused == 1 and result.usage_notifications == 0
    server.drain()
    assert receiver.requests.empty()


def test_throttled_plans_and_roaming_limits_are_notified_each_once(server, account,
                                                                   kore_wireless, receiver):
    account.client.wireless.v1.rate_plans.create(
        unique_name="slow", data_limit=1, data_limit_strategy="throttle",
        national_roaming_data_limit=2)
    plan = kore_wireless.post("/RatePlans/slow", data={
        "UsageNotificationUrl": f"{receiver.url}/usage", "UsageNotificationMethod": "GET"}).json()
    assert plan["data_limit_strategy"] == "throttle"
    _sid, imsi = sim_on(server, account, "slow")
    result = ingest(server.runtime, [
        usage(server, imsi, 0, None), usage(server, imsi, 60, 3 * MB),  # past the limit: on
        usage(server, imsi, 120, 5 * MB),
        usage(server, imsi, 180, None, session="r", network=NATIONAL),
        usage(server, imsi, 240, 1 * MB, session="r", network=NATIONAL),
        usage(server, imsi, 300, 4 * MB, session="r", network=NATIONAL)])
    assert result.sessions_blocked == 0 and result.usage_notifications == 2
    server.drain()
    got = [receiver.get(), receiver.get()]
    assert all(g.method == "GET" and header(g, "kore-signature") == "" for g in got)
    seen = sorted((g.form["Limit"][0], g.form["DataLimit"][0], g.form["DataUsage"][0])
                  for g in got)
    assert seen == [("data_limit", "1", str(3 * MB)),
                    ("national_roaming_data_limit", "2", str(4 * MB))]
    assert {g.form["DataLimitStrategy"][0] for g in got} == {"throttle"}
    assert receiver.requests.empty()


def test_plans_without_a_notification_url_notify_nobody(server, account, receiver):
    account.client.wireless.v1.rate_plans.create(unique_name="quiet", data_limit=1)
    _sid, imsi = sim_on(server, account, "quiet")
    result = ingest(server.runtime, [usage(server, imsi, 0, None),
                                     usage(server, imsi, 60, 2 * MB)])
    assert result.sessions_blocked == 1 and result.usage_notifications == 0
