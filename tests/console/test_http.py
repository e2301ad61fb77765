"""The console's sign-in, sessions and forms as HTTP: cookies, CSRF, throttling, headers."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import delete

from simplane.core.accounts import Authenticator
from simplane.core.models import ApiKey
from tests.support import Server, TestAccount


def sign_in_form(client: httpx.Client) -> str:
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def test_session_cookie_and_headers(server: Server, account: TestAccount) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        token = sign_in_form(client)
        signed = client.post("/console/sign-in", data={
            "csrf": token, "username": account.sid, "password": account.token})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        assert account.token not in cookie and account.sid not in cookie  # sealed
        page = client.get("/console/overview")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "<script>" not in page.text and " style=" not in page.text


def test_secure_cookie_behind_https(server: Server, account: TestAccount) -> None:
    with httpx.Client(base_url=server.base_url, headers={"X-Forwarded-Proto": "https"}) as client:
        token = sign_in_form(client)
        signed = client.post("/console/sign-in", data={
            "csrf": token, "username": account.sid, "password": account.token})
        assert "Secure" in signed.headers["set-cookie"]


def test_forms_need_the_sessions_token(server: Server, account: TestAccount) -> None:
    sid = server.provision(account.sid, 1, status="new")[0]
    with httpx.Client(base_url=server.base_url) as client:
        missing = client.post("/console/sign-in", data={"username": account.sid,
                                                        "password": account.token})
        assert missing.status_code == 403 and "set-cookie" not in {
            k for k, v in missing.headers.items() if v.startswith("simplane_console=")}
        token = sign_in_form(client)
        client.post("/console/sign-in", data={"csrf": token, "username": account.sid,
                                              "password": account.token})
        forged = client.post(f"/console/sims/{sid}/status", data={"status": "deactivated",
                                                                  "csrf": "guess"})
        assert forged.status_code == 403
        assert "expired" in forged.text and "Traceback" not in forged.text
    assert account.client.wireless.v1.sims(sid).fetch().status == "new"


def test_failed_sign_ins_are_throttled(server: Server, account: TestAccount) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        token = sign_in_form(client)
        statuses = [client.post("/console/sign-in", data={
            "csrf": token, "username": account.sid, "password": "not the token"}).status_code
            for _ in range(Authenticator.FAILURES_PER_ADDRESS)]
        assert statuses == [401] * Authenticator.FAILURES_PER_ADDRESS
        refused = client.post("/console/sign-in", data={
            "csrf": token, "username": account.sid, "password": account.token})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in refused.text


def test_unknown_console_path_is_a_page(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/console/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no such page" in response.text


def test_a_link_cannot_put_words_on_a_page(server: Server, account: TestAccount) -> None:
    """Messages after a change come with a signature of the session's own: one in a link made
    elsewhere is not shown."""
    with httpx.Client(base_url=server.base_url) as client:
        token = sign_in_form(client)
        client.post("/console/sign-in", data={"csrf": token, "username": account.sid,
                                              "password": account.token})
        forged = client.get("/console/overview?error=Call+0800+now&sig=0")
        assert "Call 0800 now" not in forged.text
        made = client.post("/console/rate-plans", data={"csrf": _csrf(client),
                                                        "unique_name": "p1", "data_limit": "5"},
                           follow_redirects=True)
        assert made.status_code == 200 and "Saved WP" in made.text


def test_a_deleted_api_key_ends_its_sessions(server: Server, account: TestAccount) -> None:
    key, secret = account.api_key()
    with httpx.Client(base_url=server.base_url) as client:
        token = sign_in_form(client)
        client.post("/console/sign-in", data={"csrf": token, "username": key, "password": secret})
        assert client.get("/console/overview").status_code == 200
        with server.runtime.db.write() as db:  # the key revoked
            db.execute(delete(ApiKey).where(ApiKey.sid == key))
        gone = client.get("/console/overview")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/console/sign-in")


def _csrf(client: httpx.Client) -> str:
    page = client.get("/console/rate-plans")
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def test_assets_ship_with_the_package(server: Server) -> None:
    """Scripts and their licences are served from the package: no CDN, no build step."""
    for path, kind in (("vendor/htmx.min.js", "javascript"), ("vendor/uPlot.iife.min.js",
                       "javascript"), ("vendor/htmx.LICENSE", ""), ("vendor/uPlot.LICENSE", ""),
                       ("world.svg", "svg"), ("console.css", "css")):
        got = httpx.get(f"{server.base_url}/console/static/{path}")
        assert got.status_code == 200 and kind in got.headers["content-type"], path
        assert httpx.head(f"{server.base_url}/console/static/{path}").status_code == 200
    assert httpx.get(f"{server.base_url}/console/static/../views.py").status_code == 404


def test_an_oversized_form_is_refused(server: Server) -> None:
    refused = httpx.post(f"{server.base_url}/console/sign-in", content=b"a=" + b"x" * 70_000,
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert refused.status_code == 413 and "too large" in refused.text


def test_fleets_are_created_and_edited_through_the_service(server: Server,
                                                           account: TestAccount) -> None:
    nap = account.client.supersim.v1.network_access_profiles.create(unique_name="everywhere")
    with httpx.Client(base_url=server.base_url, follow_redirects=True) as client:
        token = sign_in_form(client)
        client.post("/console/sign-in", data={"csrf": token, "username": account.sid,
                                              "password": account.token})
        page = client.get("/console/fleets")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        made = client.post("/console/fleets", data={
            "csrf": csrf, "unique_name": "trucks", "data_limit": "50", "data_enabled": "on",
            "network_access_profile": nap.sid})
        assert "Saved HF" in made.text
        [fleet] = account.client.supersim.v1.fleets.list()
        assert (fleet.unique_name, fleet.data_limit, fleet.network_access_profile_sid) == (
            "trucks", 50, nap.sid)
        edited = client.post("/console/fleets", data={
            "csrf": csrf, "sid": fleet.sid, "unique_name": "lorries", "data_limit": "75"})
        assert "Saved " + fleet.sid in edited.text
        fleet = account.client.supersim.v1.fleets(fleet.sid).fetch()
        assert (fleet.unique_name, fleet.data_limit, fleet.data_enabled) == ("lorries", 75, True)
        refused = client.post("/console/fleets", data={
            "csrf": csrf, "sid": fleet.sid, "unique_name": "lorries", "data_limit": "lots"})
        assert refused.status_code == 400 and "Invalid Data limit" in refused.text
