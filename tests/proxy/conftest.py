from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException


def proxy(account):  # type: ignore[no-untyped-def]
    return account.client.proxy.v1


@pytest.fixture
def service(account):  # type: ignore[no-untyped-def]
    return account.client.proxy.v1.services.create(unique_name="rides")


def raises(code: int, status: int | None = None):  # type: ignore[no-untyped-def]
    """Context manager: the call fails with this Twilio error code (and HTTP status)."""

    class _Check:
        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, kind, exc, tb):  # type: ignore[no-untyped-def]
            assert kind is not None, f"expected error {code}, but the call succeeded"
            assert issubclass(kind, TwilioRestException), exc
            assert exc.code == code, (exc.code, exc.msg)
            if status is not None:
                assert exc.status == status, (exc.status, exc.msg)
            self.error = exc
            return True

    return _Check()


def raw(account, url: str, method: str = "GET", data: dict | None = None) -> dict:  # type: ignore[no-untyped-def]
    """The JSON body the server sent, fetched without the client (to see every field)."""
    import httpx

    response = httpx.request(method, url, data=data, auth=(account.sid, account.token))
    assert response.status_code < 300, response.text
    return response.json()
