"""KORE's Webhook API: an account's signing secrets, as KORE documents their rotation."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from simplane.kore.webhook_models import WebhookSecret
from tests.kore.hooks import create_secret, webhook_api

ID = re.compile(r"^whs_[0-9a-hjkmnp-tv-z]{26}$")
ERROR_KEYS = {"status", "code", "message", "info"}


def test_the_first_secret_is_active_and_told_once(server, account):
    created = create_secret(server, account, "first")
    assert ID.match(created["id"]) and created["name"] == "first"
    assert created["status"] == "active" and re.fullmatch(r"[0-9a-f]{64}", created["secret"])
    assert created["last_modified"].endswith("Z")
    with webhook_api(server, account) as api:
        listed = api.get("/secrets").json()
    assert listed["data"] == [{k: v for k, v in created.items() if k != "secret"}]
    assert listed["meta_data"] == {"count": 1, "page_size": 10, "page_number": 1,
                                   "previous_page_url": "", "next_page_url": ""}


def test_the_secret_is_kept_sealed(server, account):
    created = create_secret(server, account)
    with server.runtime.db.read() as db:
        sealed = db.scalar(select(WebhookSecret.secret_sealed)
                           .where(WebhookSecret.id == created["id"]))
    assert sealed and created["secret"] not in sealed
    assert server.runtime.box.open(sealed) == created["secret"]


def test_later_secrets_are_pending_and_replace_the_pending_one(server, account):
    active = create_secret(server, account, "a")
    pending = create_secret(server, account, "b")
    assert pending["status"] == "pending"
    again = create_secret(server, account, "c")
    assert again["status"] == "pending"
    with webhook_api(server, account) as api:
        data = api.get("/secrets").json()["data"]
        assert [(s["id"], s["status"]) for s in data] == [(active["id"], "active"),
                                                          (again["id"], "pending")]
        assert api.get("/secrets", params={"status": "pending"}).json()["data"][0]["id"] == \
            again["id"]
        assert api.patch(f"/secrets/{pending['id']}", json={"Name": "x"}).status_code == 404


def test_activating_the_pending_secret_retires_the_active_one(server, account):
    old = create_secret(server, account, "old")
    new = create_secret(server, account, "new")
    with webhook_api(server, account) as api:
        response = api.patch(f"/secrets/{new['id']}", json={"Status": "active"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "active" and "secret" not in response.json()
        data = api.get("/secrets").json()["data"]
        assert [(s["id"], s["status"]) for s in data] == [(new["id"], "active")]
        # No way back: the old secret is gone, and an active secret cannot become pending.
        assert api.patch(f"/secrets/{old['id']}", json={"Status": "active"}).status_code == 404
        refused = api.patch(f"/secrets/{new['id']}", json={"Status": "pending"})
        assert refused.status_code == 400 and set(refused.json()) == ERROR_KEYS
        renamed = api.patch(f"/secrets/{new['id']}", json={"Name": "renamed"}).json()
        assert renamed["name"] == "renamed" and renamed["status"] == "active"


def test_paging(server, account):
    first = create_secret(server, account, "a")
    second = create_secret(server, account, "b")
    with webhook_api(server, account) as api:
        page = api.get("/secrets", params={"page_size": 1}).json()
        assert [s["id"] for s in page["data"]] == [first["id"]]
        meta = page["meta_data"]
        assert meta["count"] == 1 and meta["previous_page_url"] == ""
        assert meta["next_page_url"] == (f"{server.base_url}/kore/webhook/v1/secrets?"
                                         "page_size=1&page_number=2")
        page = api.get(meta["next_page_url"]).json()
        assert [s["id"] for s in page["data"]] == [second["id"]]
        assert page["meta_data"]["next_page_url"] == ""
        assert page["meta_data"]["previous_page_url"].endswith("page_size=1&page_number=1")
        assert api.get("/secrets", params={"page_number": 9}).json()["data"] == []


def test_mistakes_are_400s_in_the_apis_shape(server, account):
    with webhook_api(server, account) as api:
        for response in (
            api.post("/secrets", json={}),
            api.post("/secrets", json={"Name": ""}),
            api.post("/secrets", json={"Name": 7}),
            api.post("/secrets", json=["Name"]),
            api.post("/secrets", content=b"{", headers={"Content-Type": "application/json"}),
            api.post("/secrets", json={"Name": "x" * 256}),
            api.get("/secrets", params={"status": "retired"}),
            api.get("/secrets", params={"page_size": 0}),
            api.get("/secrets", params={"page_size": 101}),
            api.get("/secrets", params={"page_number": "one"}),
        ):
            body = response.json()
            assert response.status_code == 400, response.text
            assert set(body) == ERROR_KEYS and body["status"] == 400
        created = create_secret(server, account)
        for payload in ({}, {"Status": "retired"}, {"Name": ""}):
            response = api.patch(f"/secrets/{created['id']}", json=payload)
            assert response.status_code == 400 and set(response.json()) == ERROR_KEYS
        missing = api.patch("/secrets/whs_00000000000000000000000000", json={"Name": "x"})
        assert missing.status_code == 404 and set(missing.json()) == ERROR_KEYS


def test_another_accounts_secrets_are_out_of_sight(server, account):
    mine = create_secret(server, account)
    other = server.new_account()
    with webhook_api(server, other) as api:
        assert api.get("/secrets").json()["data"] == []
        assert api.patch(f"/secrets/{mine['id']}", json={"Name": "x"}).status_code == 404
    assert create_secret(server, other)["status"] == "active"  # one active secret per account


def test_only_a_bearer_token_opens_it(server, account):
    url = f"{server.base_url}/kore/webhook/v1/secrets"
    for response in (httpx.get(url), httpx.get(url, auth=(account.sid, account.token)),
                     httpx.get(url, headers={"Authorization": "Bearer nonsense"}),
                     httpx.post(url, json={"Name": "x"}, auth=(account.sid, account.token))):
        assert response.status_code == 401 and set(response.json()) == ERROR_KEYS


def test_served_on_kores_host_with_urls_back_to_it(server, account):
    create_secret(server, account, "a")
    create_secret(server, account, "b")
    with webhook_api(server, account) as api:
        response = api.get(f"{server.base_url}/v1/secrets", params={"page_size": 1},
                           headers={"Host": "webhook.api.korewireless.com"})
    assert response.status_code == 200, response.text
    assert response.json()["meta_data"]["next_page_url"] == (
        "http://webhook.api.korewireless.com/v1/secrets?page_size=1&page_number=2")
