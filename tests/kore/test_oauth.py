"""A real OAuth 2.0 client (Authlib's client-credentials support) gets tokens from simplane's
token endpoint and drives Super SIM and Programmable Wireless through KORE's hosts: by Host
header, as KORE serves them, and under /kore/, for clients that change only their base URL."""

from __future__ import annotations

from authlib.integrations.requests_client import OAuth2Session

from tests.kore.conftest import new_client
from tests.supersim.conftest import ATT, stock

SUPERSIM_HOST = "supersim.api.korewireless.com"
WIRELESS_HOST = "programmable-wireless.api.korewireless.com"


def session(client, url: str, method: str) -> OAuth2Session:  # type: ignore[no-untyped-def]
    """Authlib's client, which fetches a new token by itself when its token has expired."""
    return OAuth2Session(client.client_id, client.client_secret, token_endpoint=url,
                         grant_type="client_credentials", token_endpoint_auth_method=method)


def test_authlib_drives_both_products_under_kore_paths(server, account, kore):
    base = f"{server.base_url}/kore"
    oauth = session(kore, f"{base}/api-services/v1/auth/token", "client_secret_post")
    token = oauth.fetch_token()
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert token["scope"] == "SuperSIM ProgrammableWireless"

    # Super SIM: a profile, a Fleet, a SIM registered and put in the Fleet, an IP Command.
    ss = f"{base}/supersim/v1"
    nap = oauth.post(f"{ss}/NetworkAccessProfiles", data={"UniqueName": "nap",
                                                          "Networks": ATT.sid})
    assert nap.status_code == 201, nap.text
    fleet = oauth.post(f"{ss}/Fleets", data={"NetworkAccessProfile": "nap", "UniqueName": "f"})
    assert fleet.status_code == 201, fleet.text
    assert fleet.json()["url"] == f"{ss}/Fleets/{fleet.json()['sid']}"
    [row] = stock(server)
    sim = oauth.post(f"{ss}/Sims", data={"Iccid": row["iccid"],
                                         "RegistrationCode": row["registration_code"]})
    assert sim.status_code == 201, sim.text
    sid = sim.json()["sid"]
    moved = oauth.post(f"{ss}/Sims/{sid}", data={"Fleet": "f", "UniqueName": "tracker"})
    assert moved.status_code == 200 and moved.json()["fleet_sid"] == fleet.json()["sid"]
    listed = oauth.get(f"{ss}/Sims", params={"PageSize": 10}).json()
    assert [s["sid"] for s in listed["sims"]] == [sid]
    assert listed["meta"]["url"].startswith(f"{ss}/Sims?")

    # Programmable Wireless: a rate plan (200, as KORE answers), a SIM on it, a Command (202).
    pw = f"{base}/programmable-wireless/v1"
    plan = oauth.post(f"{pw}/RatePlans", data={"UniqueName": "plan", "DataLimit": 500})
    assert plan.status_code == 200, plan.text
    assert plan.json()["data_limit"] == 500
    [wsid] = server.provision(account.sid, 1)
    updated = oauth.post(f"{pw}/Sims/{wsid}", data={"RatePlan": "plan", "Status": "active"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["rate_plan_sid"] == plan.json()["sid"]
    command = oauth.post(f"{pw}/Commands", data={"Sim": wsid, "Command": "ping"})
    assert command.status_code == 202, command.text
    assert command.json()["url"] == f"{pw}/Commands/{command.json()['sid']}"
    assert oauth.delete(f"{pw}/Commands/{command.json()['sid']}").status_code == 204
    assert oauth.get(f"{pw}/Commands/{command.json()['sid']}").status_code == 404


def test_authlib_with_basic_client_auth_through_kore_hosts(server, account):
    """Host-routed: the token from api.korewireless.com (client_secret_basic), the products
    from their hosts, and every URL in the answers on the host the client used."""
    kore = new_client(server, account.sid)
    oauth = session(kore, f"{server.base_url}/api-services/v1/auth/token", "client_secret_basic")
    token = oauth.fetch_token(headers={"Host": "api.korewireless.com"})
    assert token["access_token"]

    nap = oauth.post(f"{server.base_url}/v1/NetworkAccessProfiles", data={"UniqueName": "n"},
                     headers={"Host": SUPERSIM_HOST})
    assert nap.json()["links"]["networks"] == (
        f"http://{SUPERSIM_HOST}/v1/NetworkAccessProfiles/{nap.json()['sid']}/Networks")
    fleet = oauth.post(f"{server.base_url}/v1/Fleets",
                       data={"UniqueName": "hosted", "NetworkAccessProfile": "n"},
                       headers={"Host": SUPERSIM_HOST})
    assert fleet.status_code == 201, fleet.text
    assert fleet.json()["url"] == f"http://{SUPERSIM_HOST}/v1/Fleets/{fleet.json()['sid']}"
    fleets = oauth.get(f"{server.base_url}/v1/Fleets", headers={"Host": SUPERSIM_HOST}).json()
    assert fleets["meta"]["first_page_url"].startswith(f"http://{SUPERSIM_HOST}/v1/Fleets?")

    [sid] = server.provision(account.sid, 1)
    sim = oauth.get(f"{server.base_url}/v1/Sims/{sid}", headers={"Host": WIRELESS_HOST})
    assert sim.status_code == 200, sim.text
    body = sim.json()
    assert body["url"] == f"http://{WIRELESS_HOST}/v1/Sims/{sid}"
    assert body["links"]["usage_records"] == f"http://{WIRELESS_HOST}/v1/Sims/{sid}/UsageRecords"
    usage = oauth.get(f"{server.base_url}/v1/Sims/{sid}/UsageRecords",
                      headers={"Host": WIRELESS_HOST})
    assert usage.status_code == 200, usage.text
    assert usage.json()["meta"]["url"].startswith(f"http://{WIRELESS_HOST}/v1/Sims/{sid}/")
    clients = oauth.get(f"{server.base_url}/v1/clients", params={"page_size": 10,
                                                                   "page_number": 1},
                        headers={"Host": "client.api.korewireless.com"})
    assert [c["client_id"] for c in clients.json()["clients"]] == [kore.client_id]


def test_authlib_fetches_a_new_token_when_the_server_says_it_expired(server, account):
    """Expiry is the server's clock: moved past the token's hour, the token is refused; the
    client fetches another one and goes on."""
    kore = new_client(server, account.sid, lifetime="1h")
    url = f"{server.base_url}/kore/supersim/v1/Fleets"
    oauth = session(kore, f"{server.base_url}/kore/api-services/v1/auth/token",
                    "client_secret_post")
    oauth.fetch_token()
    assert oauth.get(url).status_code == 200
    server.clock.advance("PT1H")
    refused = oauth.get(url)
    assert refused.status_code == 401
    assert set(refused.json()) == {"code", "message", "more_info", "status"}
    assert "expired" in refused.json()["message"]
    oauth.fetch_token()
    assert oauth.get(url).status_code == 200
