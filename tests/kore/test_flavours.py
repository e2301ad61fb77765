"""One fleet, two flavours: what is made through Twilio's API is the same resource through
KORE's, shaped as KORE's specs say (and only where they differ)."""

from __future__ import annotations

import json

import httpx

from simplane.core.spec import SPECS
from tests.supersim.conftest import stock

WIRELESS = json.loads((SPECS / "kore/kore-programmable-wireless-v1.json").read_text())


def kore_get(server, headers, path, **params):  # type: ignore[no-untyped-def]
    return httpx.get(f"{server.base_url}/kore{path}", headers=headers, params=params)


def test_a_super_sim_registered_through_twilio_is_the_same_sim_through_kore(
        server, twilio, bearer):
    [row] = stock(server)
    sim = twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                         registration_code=row["registration_code"])
    through_kore = kore_get(server, bearer, f"/supersim/v1/Sims/{sim.sid}")
    assert through_kore.status_code == 200
    body = through_kore.json()
    assert (body["sid"], body["iccid"], body["status"], body["account_sid"]) == (
        sim.sid, sim.iccid, sim.status, sim.account_sid)
    assert body["url"].endswith(f"/kore/supersim/v1/Sims/{sim.sid}")
    # A change through KORE is seen through Twilio.
    changed = httpx.post(f"{server.base_url}/kore/supersim/v1/Sims/{sim.sid}", headers=bearer,
                         data={"UniqueName": "renamed-by-kore"})
    assert changed.status_code == 200
    assert twilio.supersim.v1.sims(sim.sid).fetch().unique_name == "renamed-by-kore"
    assert kore_get(server, bearer, "/supersim/v1/Sims", Status="new").json()["sims"][0][
        "sid"] == sim.sid


def test_a_wireless_sim_in_kores_shape(server, twilio, account, bearer):
    twilio.wireless.v1.rate_plans.create(unique_name="plan")
    [sid] = server.provision(account.sid, 1, status="active", rate_plan="plan")
    theirs = twilio.wireless.v1.sims(sid).fetch()
    answer = kore_get(server, bearer, f"/programmable-wireless/v1/Sims/{sid}")
    assert answer.status_code == 200
    body = answer.json()
    assert "eid" in body and "e_id" not in body and body["eid"] == theirs.e_id
    assert set(WIRELESS["components"]["schemas"]["Sim"]["properties"]) <= set(body)
    assert body["reset_status"] is None and body["status"] == "active"
    assert body["rate_plan_sid"] == theirs.rate_plan_sid
    listed = kore_get(server, bearer, "/programmable-wireless/v1/Sims", EId="x")
    assert listed.json()["sims"] == []
    # Twilio's flavour is unchanged.
    raw = httpx.get(f"{server.base_url}/wireless/v1/Sims/{sid}",
                    auth=(account.sid, account.token)).json()
    assert "e_id" in raw and "eid" not in raw


def test_rate_plans_answer_200_and_take_no_data_limit_strategy(server, twilio, bearer):
    made = httpx.post(f"{server.base_url}/kore/programmable-wireless/v1/RatePlans",
                      headers=bearer, data={"UniqueName": "k", "DataLimitStrategy": "throttle"})
    assert made.status_code == 200
    plan = made.json()
    rate_plan = WIRELESS["components"]["schemas"]["RatePlan"]["properties"]
    assert {k for k, v in rate_plan.items() if v.get("nullable")} <= set(plan)
    # Not a parameter of KORE's: the plan keeps the default.
    assert twilio.wireless.v1.rate_plans(plan["sid"]).fetch().sid == plan["sid"]
    listed = kore_get(server, bearer, "/programmable-wireless/v1/RatePlans").json()
    assert [p["sid"] for p in listed["rate_plans"]] == [plan["sid"]]
    deleted = httpx.delete(f"{server.base_url}/kore/programmable-wireless/v1/RatePlans/"
                           f"{plan['sid']}", headers=bearer)
    assert deleted.status_code == 204


def test_usage_records_in_kores_shape(server, account, bearer):
    [sid] = server.provision(account.sid, 1)
    for path in (f"/Sims/{sid}/UsageRecords", "/UsageRecords"):
        answer = kore_get(server, bearer, f"/programmable-wireless/v1{path}")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["meta"]["list_key"] == "usage_records" and "direct_token" in body["meta"]
        [record] = body["usage_records"]
        assert {"start", "end"} <= set(record["period"])
        assert {"download", "upload", "total", "units", "billed", "billing_units"} <= set(
            record["data"]["home"])
    sessions = kore_get(server, bearer, f"/programmable-wireless/v1/Sims/{sid}/DataSessions")
    assert sessions.status_code == 200 and sessions.json()["data_sessions"] == []


def test_page_size_caps_of_ip_commands_and_usage_records(server, account, bearer):
    for path, cap in (("/IpCommands", 100), ("/UsageRecords", 249)):
        at_cap = kore_get(server, bearer, f"/supersim/v1{path}", PageSize=cap)
        assert at_cap.status_code == 200, at_cap.text
        over = kore_get(server, bearer, f"/supersim/v1{path}", PageSize=cap + 1)
        assert over.status_code == 400
        assert "PageSize" in over.json()["message"] and over.json()["status"] == 400
        twilio = httpx.get(f"{server.base_url}/supersim/v1{path}", params={"PageSize": cap + 1},
                           auth=(account.sid, account.token))
        assert twilio.status_code == 200
    assert kore_get(server, bearer, "/supersim/v1/Fleets", PageSize=1000).status_code == 200


def test_the_client_api(server, account, kore, bearer):
    base = f"{server.base_url}/kore/client/v1"
    assert httpx.get(f"{base}/ping", headers=bearer).json() == {"status": "ok"}
    made = httpx.post(f"{base}/clients", headers=bearer, json={
        "name": "device fleet", "locked": False, "scopes": {"products": ["SuperSIM"]}})
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["client_type"] == "standard"
    assert created["account_id"] == "acct_" + account.sid[2:].lower()
    listed = httpx.get(f"{base}/clients", headers=bearer,
                       params={"page_size": 1, "page_number": 1}).json()
    assert listed["meta"]["count"] == 2 and len(listed["clients"]) == 1
    assert "page_number=2" in listed["meta"]["next_page_url"]
    one = httpx.get(f"{base}/clients/{created['client_id']}", headers=bearer).json()["client"]
    assert one["name"] == "device fleet" and one["date_created"].endswith("GMT")
    # The new client's token is for Super SIM only; a standard client may not create clients.
    token = httpx.post(f"{server.base_url}/kore/api-services/v1/auth/token", data={
        "grant_type": "client_credentials", "client_id": created["client_id"],
        "client_secret": created["client_secret"]}).json()["access_token"]
    theirs = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.base_url}/kore/supersim/v1/Fleets",
                     headers=theirs).status_code == 200
    refused = httpx.post(f"{base}/clients", headers=theirs, json={
        "name": "x", "locked": False, "scopes": {"products": ["SuperSIM"]}})
    assert refused.status_code == 403
    assert set(refused.json()) == {"status", "code", "message", "info"}
    # Mistakes are 400s naming what is wrong, in the client API's shape.
    for body, word in (({"locked": False, "scopes": {"products": ["SuperSIM"]}}, "name"),
                       ({"name": "x", "locked": False, "scopes": {"products": ["Voice"]}},
                        "products"),
                       ({"name": "x", "locked": False, "scopes": {}, "extra": 1}, "extra")):
        bad = httpx.post(f"{base}/clients", headers=bearer, json=body)
        assert bad.status_code == 400 and word in bad.json()["message"], bad.text
    missing = httpx.get(f"{base}/clients", headers=bearer)
    assert missing.status_code == 400 and "page_size" in missing.json()["message"]
    other = server.new_account()
    elsewhere = httpx.post(f"{base}/clients", headers=bearer, json={
        "account_id": "acct_" + other.sid[2:].lower(), "name": "x", "locked": False,
        "scopes": {"products": ["SuperSIM"]}})
    assert elsewhere.status_code == 404
    assert httpx.get(f"{base}/clients/apiclient_nope", headers=bearer).status_code == 404
    locked = httpx.post(f"{base}/clients", headers=bearer, json={
        "name": "locked", "locked": True, "scopes": {"products": ["SuperSIM"]}}).json()
    assert locked["locked"] is True
    assert httpx.post(f"{server.base_url}/kore/api-services/v1/auth/token", data={
        "grant_type": "client_credentials", "client_id": locked["client_id"],
        "client_secret": locked["client_secret"]},
        headers={"X-Forwarded-For": "192.0.2.98"}).status_code == 401


def test_super_sim_answers_carry_every_field_of_kores_schemas(server, account, bearer):
    from tests.supersim.conftest import ATT

    spec = json.loads((SPECS / "kore/kore-supersim-v1.json").read_text())["components"]["schemas"]
    ss = f"{server.base_url}/kore/supersim/v1"

    def post(path: str, **data: str) -> dict:
        answer = httpx.post(ss + path, headers=bearer, data=data)
        assert answer.status_code in (200, 201, 202), answer.text
        return dict(answer.json())

    made = {"network_access_profile": post("/NetworkAccessProfiles", UniqueName="n",
                                           Networks=ATT.sid),
            "fleet": post("/Fleets", NetworkAccessProfile="n", UniqueName="f")}
    [row] = stock(server)
    sim = post("/Sims", Iccid=row["iccid"], RegistrationCode=row["registration_code"])
    post(f"/Sims/{sim['sid']}", Fleet="f", Status="active")
    server.drain()
    made["sim"] = kore_get(server, bearer, f"/supersim/v1/Sims/{sim['sid']}").json()
    made["sms_command"] = post("/SmsCommands", Sim=sim["sid"], Payload="hi")
    made["ip_command"] = post("/IpCommands", Sim=sim["sid"], Payload="hi", DevicePort="100")
    made["network"] = kore_get(server, bearer, f"/supersim/v1/Networks/{ATT.sid}").json()
    made["usage_record"] = kore_get(server, bearer, "/supersim/v1/UsageRecords").json()[
        "usage_records"][0]
    for name, body in made.items():
        assert set(spec[f"supersim.v1.{name}"]["properties"]) <= set(body), name
