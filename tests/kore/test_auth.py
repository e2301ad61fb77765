"""KORE's authentication: the token endpoint's answers and errors, bearer tokens only for their
client's products and account, until they expire on the server's clock or the client is
revoked; Basic refused on KORE's APIs and bearer tokens on Twilio's."""

from __future__ import annotations

import base64

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from simplane.cli import app
from simplane.kore.models import ApiClient
from tests.kore.conftest import new_client, token_of

TOKEN = "/kore/api-services/v1/auth/token"
KORE_ERROR = {"code", "message", "more_info", "status"}
# Failures the tests make on purpose count against this address, not the suite's (loopback).
ELSEWHERE = {"X-Forwarded-For": "192.0.2.99"}
runner = CliRunner()


def fleets(server, headers):  # type: ignore[no-untyped-def]
    return httpx.get(f"{server.base_url}/kore/supersim/v1/Fleets", headers=headers)


def test_the_token_endpoint_answers_as_kore_does(server, kore):
    form = {"grant_type": "client_credentials", "client_id": kore.client_id,
            "client_secret": kore.client_secret}
    ok = httpx.post(f"{server.base_url}{TOKEN}", data=form)
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) == {"access_token", "expires_in", "token_type", "scope"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert ok.headers["cache-control"] == "no-store"

    wrong = httpx.post(f"{server.base_url}{TOKEN}", data={**form, "client_secret": "x" * 43},
                       headers=ELSEWHERE)
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid_client",
                            "error_description": "Invalid client or Invalid client credentials"}
    unknown = httpx.post(f"{server.base_url}{TOKEN}", data={**form, "client_id": "apiclient_x"},
                         headers=ELSEWHERE)
    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    grant = httpx.post(f"{server.base_url}{TOKEN}", data={**form, "grant_type": "password"})
    assert grant.status_code == 400
    assert set(grant.json()) == {"code", "message"} and "grant_type" in grant.json()["message"]
    missing = httpx.post(f"{server.base_url}{TOKEN}", data={"grant_type": "client_credentials"})
    assert missing.status_code == 401 and missing.json()["error"] == "invalid_client"
    # HTTP Basic client authentication (client_secret_basic) works too.
    basic = base64.b64encode(f"{kore.client_id}:{kore.client_secret}".encode()).decode()
    by_basic = httpx.post(f"{server.base_url}{TOKEN}", data={"grant_type": "client_credentials"},
                          headers={"Authorization": f"Basic {basic}"})
    assert by_basic.status_code == 200
    assert fleets(server, {"Authorization": f"Bearer {by_basic.json()['access_token']}"}) \
        .status_code == 200
    preflight = httpx.options(f"{server.base_url}{TOKEN}")
    assert preflight.status_code == 200 and "POST" in preflight.headers[
        "access-control-allow-methods"]


def test_client_secrets_are_stored_as_keyed_hashes(server, kore):
    with server.runtime.db.read() as db:
        stored = db.scalar(select(ApiClient.secret_hash)
                           .where(ApiClient.client_id == kore.client_id))
    assert stored == server.runtime.box.digest(kore.client_id, kore.client_secret)
    assert kore.client_secret not in stored


def test_a_token_works_until_it_expires_on_the_servers_clock(server, account):
    kore = new_client(server, account.sid, lifetime="1d")
    headers = {"Authorization": f"Bearer {token_of(server, kore)}"}
    server.clock.advance("PT23H59M")
    assert fleets(server, headers).status_code == 200
    server.clock.advance("PT1M")
    expired = fleets(server, headers)
    assert expired.status_code == 401 and set(expired.json()) == KORE_ERROR
    assert "expired" in expired.json()["message"]


def test_wrong_tokens_are_401_and_count_as_failed_logins(server, kore):
    before = server.runtime.authenticator.by_address._counts.get("192.0.2.41", (0, 0))[1]
    for token in ("nonsense", token_of(server, kore)[:-2] + "00", "a.b.c.d"):
        answer = fleets(server, {"Authorization": f"Bearer {token}",
                                 "X-Forwarded-For": "192.0.2.41"})
        assert answer.status_code == 401 and set(answer.json()) == KORE_ERROR
        assert answer.json()["code"] == 20003
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert server.runtime.authenticator.by_address._counts["192.0.2.41"][1] == before + 3


def test_a_token_is_only_for_its_clients_products(server, account):
    only_super = new_client(server, account.sid, products=["SuperSIM"])
    headers = {"Authorization": f"Bearer {token_of(server, only_super)}"}
    assert fleets(server, headers).status_code == 200
    refused = httpx.get(f"{server.base_url}/kore/programmable-wireless/v1/Sims", headers=headers)
    assert refused.status_code == 403 and set(refused.json()) == KORE_ERROR
    assert "ProgrammableWireless" in refused.json()["message"]


def test_basic_is_refused_on_kore_and_bearer_on_twilio(server, account, bearer):
    bearer = {**bearer, **ELSEWHERE}
    basic = httpx.get(f"{server.base_url}/kore/supersim/v1/Fleets",
                      auth=(account.sid, account.token))
    assert basic.status_code == 401 and set(basic.json()) == KORE_ERROR
    hosted = httpx.get(f"{server.base_url}/v1/Sims", auth=(account.sid, account.token),
                       headers={"Host": "programmable-wireless.api.korewireless.com"})
    assert hosted.status_code == 401
    for path in ("/supersim/v1/Fleets", "/wireless/v1/Sims"):
        assert httpx.get(f"{server.base_url}{path}", headers=bearer).status_code == 401
    twilio_host = httpx.get(f"{server.base_url}/v1/Sims",
                            headers={**bearer, "Host": "wireless.twilio.com"})
    assert twilio_host.status_code == 401
    assert httpx.get(f"{server.base_url}/kore/supersim/v1/Fleets").status_code == 401


def test_another_accounts_resources_are_404(server, account, bearer):
    other = server.new_account()
    [theirs] = server.provision(other.sid, 1)
    plan = other.client.wireless.v1.rate_plans.create(unique_name="theirs")
    for path in (f"/Sims/{theirs}", f"/RatePlans/{plan.sid}", f"/Sims/{theirs}/UsageRecords"):
        answer = httpx.get(f"{server.base_url}/kore/programmable-wireless/v1{path}",
                           headers=bearer)
        assert answer.status_code == 404, (path, answer.text)
        assert set(answer.json()) == KORE_ERROR
    mine = httpx.get(f"{server.base_url}/kore/programmable-wireless/v1/Sims", headers=bearer)
    assert mine.json()["sims"] == []


def test_revoking_a_client_stops_its_tokens_at_once(server, account, database_url, monkeypatch):
    monkeypatch.setenv("SIMPLANE_SECRET_KEY", server.runtime.settings.secret_key)
    made = runner.invoke(app, ["kore", "clients", "create", "--account", account.sid,
                               "--products", "SuperSIM", "--lifetime", "30d",
                               "--database-url", database_url])
    assert made.exit_code == 0, made.output
    values = dict(line.split("=", 1) for line in made.stdout.split())
    client_id, secret = values["KORE_CLIENT_ID"], values["KORE_CLIENT_SECRET"]
    assert values["TWILIO_ACCOUNT_SID"] == account.sid
    token = httpx.post(f"{server.base_url}{TOKEN}", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert token.json()["expires_in"] == 30 * 86400 and token.json()["scope"] == "SuperSIM"
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert fleets(server, headers).status_code == 200

    listed = runner.invoke(app, ["kore", "clients", "list", "--account", account.sid,
                                 "--database-url", database_url])
    assert client_id in listed.stdout
    revoked = runner.invoke(app, ["kore", "clients", "revoke", client_id,
                                  "--database-url", database_url])
    assert revoked.exit_code == 0, revoked.output
    assert fleets(server, {**headers, **ELSEWHERE}).status_code == 401
    again = httpx.post(f"{server.base_url}{TOKEN}", headers=ELSEWHERE, data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert again.status_code == 401
    listed = runner.invoke(app, ["kore", "clients", "list", "--account", account.sid,
                                 "--database-url", database_url])
    assert client_id not in listed.stdout
    twice = runner.invoke(app, ["kore", "clients", "revoke", client_id,
                                "--database-url", database_url])
    assert twice.exit_code == 1


def test_a_revocation_by_another_process_is_seen_through_the_generation(server, account):
    """The server's verifier reads the revocation generation again when its last read is
    older than REFRESH: here it is made old, as another process's revocation would find it."""
    from simplane.kore import service, tokens

    kore = new_client(server, account.sid)
    headers = {"Authorization": f"Bearer {token_of(server, kore)}"}
    assert fleets(server, headers).status_code == 200
    with server.runtime.db.write() as db:  # what `simplane kore clients revoke` writes
        service.revoke_client(db, server.clock, kore.client_id)
    tokens.verifier(server.runtime)._checked = -1e9  # its last read is old now
    assert fleets(server, {**headers, **ELSEWHERE}).status_code == 401


def test_the_cli_refuses_unknown_products_and_lifetimes(account, database_url):
    for option, value in (("--products", "Voice"), ("--lifetime", "2h")):
        result = runner.invoke(app, ["kore", "clients", "create", "--account", account.sid,
                                     option, value, "--database-url", database_url])
        assert result.exit_code == 1 and value in result.output


def test_failed_tokens_back_off_as_failed_logins_do(server, account, monkeypatch):
    """Past the limit of failures from an address, tokens not verified before are not checked
    (429, Twilio's 20429), while a token that held before goes on working, as Basic
    credentials that held do."""
    from simplane.kore import tokens

    monkeypatch.setattr(server.runtime.authenticator.by_address, "limit", 3)
    address = {"X-Forwarded-For": "198.51.100.77"}
    kore = new_client(server, account.sid)
    known = {"Authorization": f"Bearer {token_of(server, kore, '198.51.100.79')}", **address}
    assert fleets(server, known).status_code == 200
    fresh = {"Authorization": f"Bearer {token_of(server, kore, '198.51.100.79')}", **address}
    for _ in range(3):
        bad = fleets(server, {"Authorization": "Bearer guess", **address})
        assert bad.status_code == 401
    refused = fleets(server, {"Authorization": "Bearer guess", **address})
    assert refused.status_code == 429 and refused.json()["code"] == 20429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert fleets(server, fresh).status_code == 429
    tokens.verifier(server.runtime)._checked = -1e9  # past REFRESH: checked again, not held back
    assert fleets(server, known).status_code == 200
    elsewhere = {**fresh, "X-Forwarded-For": "198.51.100.78"}
    assert fleets(server, elsewhere).status_code == 200


def test_revocation_moves_the_generation_even_after_a_restore_took_its_row(server, account):
    from sqlalchemy import delete

    from simplane.kore import service
    from simplane.kore.models import AuthState

    kore = new_client(server, account.sid)
    with server.runtime.db.write() as db:
        db.execute(delete(AuthState))
    with server.runtime.db.write() as db:
        assert service.generation(db) == 0
        service.revoke_client(db, server.clock, kore.client_id)
    with server.runtime.db.read() as db:
        assert service.generation(db) == 1


def test_handlers_on_kores_apis_see_the_flavour_and_the_account(server, account, kore):
    """What a handler bound on one of KORE's APIs gets: `ctx.flavour` "kore", the account of
    the token; on Twilio's, "twilio"."""
    import asyncio

    from fastapi import FastAPI

    from simplane.core.api import ProductAPI
    from simplane.kore.auth import bearer

    seen = []
    kore_api = ProductAPI("kore/probe", flavour="kore", auth=bearer(None))
    twilio_api = ProductAPI("probe")
    for each in (kore_api, twilio_api):
        each.operator("GET", "/v1/Probe")(lambda ctx: seen.append(
            (ctx.flavour, ctx.account_sid, ctx.url("/x"))) or {})
    probe = FastAPI()
    probe.state.runtime = server.runtime
    probe.include_router(kore_api.router)
    probe.include_router(twilio_api.router)

    async def call() -> None:
        transport = httpx.ASGITransport(app=probe)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            token = {"Authorization": f"Bearer {token_of(server, kore)}"}
            assert (await client.get("/kore/probe/v1/Probe", headers=token)).status_code == 200
            assert (await client.get("/probe/v1/Probe",
                                     auth=(account.sid, account.token))).status_code == 200

    asyncio.run(call())
    assert seen == [("kore", account.sid, "http://t/kore/probe/v1/x"),
                    ("twilio", account.sid, "http://t/probe/v1/x")]
