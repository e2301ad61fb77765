from __future__ import annotations

import pytest


def proxy(account):  # type: ignore[no-untyped-def]
    return account.client.proxy.v1


@pytest.fixture
def service(account):  # type: ignore[no-untyped-def]
    return account.client.proxy.v1.services.create(unique_name="rides")


def own(account, *numbers: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Give the account phone numbers for its pools, as `simplane proxy numbers add` does;
    returns their PN… SIDs."""
    from simplane.proxy import service

    server = account.server
    with server.runtime.db.write() as db:
        rows = service.add_account_numbers(db, account.sid, list(numbers), server.clock.now())
        return [row.sid for row in rows]


def raw(account, url: str, method: str = "GET",  # type: ignore[no-untyped-def]
        data: dict | None = None) -> dict:
    """The JSON body the server sent, fetched without the client (to see every field)."""
    import httpx

    response = httpx.request(method, url, data=data, auth=(account.sid, account.token))
    assert response.status_code < 300, response.text
    return response.json()


@pytest.fixture
def admin(server):  # type: ignore[no-untyped-def]
    """An operator's admin account (may read the carrier's outbox)."""
    return server.new_account(admin=True)


def signed(account, request) -> bool:  # type: ignore[no-untyped-def]
    """The request carries a valid X-Twilio-Signature, checked by the official validator."""
    from twilio.request_validator import RequestValidator

    return RequestValidator(account.token).validate(
        request.url, {k: v[0] for k, v in request.form.items()},
        request.headers["X-Twilio-Signature"])


def carrier_post(server, account, path: str, **data):  # type: ignore[no-untyped-def]
    """What the carrier hands over: an inbound message or call, or a call's progress."""
    import httpx

    return httpx.post(f"{server.base_url}/proxy/operator/{path}", data=data,
                      auth=(account.sid, account.token))


def outbox(server, admin, account, to: str) -> list[dict]:  # type: ignore[no-untyped-def]
    """What `to` received on the account's traffic, newest first, read by an operator."""
    import httpx

    response = httpx.get(f"{server.base_url}/proxy/operator/Outbox",
                         params={"To": to, "AccountSid": account.sid},
                         auth=(admin.sid, admin.token))
    assert response.status_code == 200, response.text
    return response.json()["outbox"]


def ride(account, mode="voice-and-message", **service_kwargs):  # type: ignore[no-untyped-def]
    """A service with two pool numbers and a rider/driver session: (session context, rider,
    driver)."""
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="rides", **service_kwargs)
    for sid in own(account, "+14155550100", "+14155550101"):
        proxy.services(svc.sid).phone_numbers.create(sid=sid)
    session = proxy.services(svc.sid).sessions.create(
        ttl=600, mode=mode,
        participants=[{"Identifier": "+14155550111"}, {"Identifier": "+14155550122"}])
    ctx = proxy.services(svc.sid).sessions(session.sid)
    rider, driver = ctx.participants.list()
    return ctx, rider, driver
