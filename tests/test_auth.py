"""Credentials: how they are stored and checked, failed logins, and who reads /metrics."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from simplane.core.accounts import FailureCounter
from simplane.core.models import Account, ApiKey
from simplane.core.secrets import SecretBox
from tests.support import free_port


def stored_hashes(server, account_sid: str) -> list[str]:  # type: ignore[no-untyped-def]
    with server.runtime.db.read() as db:
        return [db.scalar(select(Account.auth_token_hash).where(Account.sid == account_sid)),
                *db.scalars(select(ApiKey.secret_hash).where(ApiKey.account_sid == account_sid))]


def pbkdf2(secret: str) -> str:
    """A hash as earlier versions stored it."""
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, 60_000)
    return f"pbkdf2_sha256$60000${salt.hex()}${digest.hex()}"


def test_credentials_are_stored_as_hashes_keyed_with_the_server_key(server, account):
    key_sid, secret = account.api_key()
    token_hash, key_hash = stored_hashes(server, account.sid)
    assert token_hash.startswith("hmac-sha256$") and key_hash.startswith("hmac-sha256$")
    assert account.token not in token_hash and secret not in key_hash
    box = server.runtime.box
    assert box.check(account.sid, account.token, token_hash)
    assert box.check(key_sid, secret, key_hash)
    assert not box.check(key_sid, account.token, key_hash)  # bound to its SID
    other = SecretBox(Fernet.generate_key())
    assert not other.check(account.sid, account.token, token_hash)  # and to the server key


def test_an_unknown_sid_is_checked_with_the_same_work_as_a_wrong_secret(server, account,
                                                                        monkeypatch):
    """Timing is not measured here (bench/auth.py does): the work done is counted. Either way one
    keyed hash is computed and no slow key derivation runs."""
    key_sid, _ = account.api_key()
    box = server.runtime.box
    digests: list[str] = []
    real_digest = box.digest
    monkeypatch.setattr(box, "digest", lambda sid, secret: digests.append(sid) or
                        real_digest(sid, secret))
    monkeypatch.setattr(hashlib, "pbkdf2_hmac", lambda *a: pytest.fail("PBKDF2 ran"))
    url = f"{server.base_url}/wireless/v1/Sims"
    tries = [(account.sid, "wrong" * 4), ("AC" + "0" * 32, account.token),
             (key_sid, "wrong" * 4), ("SK" + "0" * 32, "wrong" * 4), ("bob", "x")]
    for username, password in tries:
        digests.clear()
        r = httpx.get(url, auth=(username, password))
        assert r.status_code == 401 and r.json()["code"] == 20003
        assert digests == [username]


def test_hashes_of_earlier_versions_are_replaced_on_the_next_login(server, account):
    key_sid, secret = account.api_key()
    with server.runtime.db.write() as db:
        db.execute(Account.__table__.update().where(Account.sid == account.sid)
                   .values(auth_token_hash=pbkdf2(account.token)))
        db.execute(ApiKey.__table__.update().where(ApiKey.sid == key_sid)
                   .values(secret_hash=pbkdf2(secret)))
    url = f"{server.base_url}/wireless/v1/Sims"
    assert httpx.get(url, auth=(account.sid, "wrong" * 4)).status_code == 401
    assert all(h.startswith("pbkdf2_sha256$") for h in stored_hashes(server, account.sid))
    assert account.client.wireless.v1.sims.list() == []
    assert server.client(key_sid, secret, account.sid).wireless.v1.sims.list() == []
    token_hash, key_hash = stored_hashes(server, account.sid)
    assert token_hash == server.runtime.box.digest(account.sid, account.token)
    assert key_hash == server.runtime.box.digest(key_sid, secret)
    assert httpx.get(url, auth=(account.sid, "wrong" * 4)).status_code == 401


def test_the_bootstrap_account_hash_is_replaced_on_start(server):
    """SIMPLANE_ACCOUNT_SID / SIMPLANE_AUTH_TOKEN name the bootstrap account: on start its hash
    of an earlier version is replaced, as is one of another token (the operator rotated it)."""
    from simplane.core.accounts import ensure_bootstrap_account

    account = server.new_account()
    box = server.runtime.box
    for stored in (pbkdf2(account.token), box.digest(account.sid, "an-older-token-0123")):
        with server.runtime.db.write() as db:
            db.execute(Account.__table__.update().where(Account.sid == account.sid)
                       .values(auth_token_hash=stored))
        with server.runtime.db.write() as db:
            assert ensure_bootstrap_account(db, box, server.clock, account.sid,
                                            account.token) is None
        assert stored_hashes(server, account.sid) == [box.digest(account.sid, account.token)]


def test_failed_logins_from_an_address_back_off_with_429(server, account, monkeypatch):
    """Past the limit, credentials from that address are not checked until the window is over
    (Twilio's 20429, with Retry-After); credentials that held before are still checked (they are
    remembered for 0 s here, so each request checks them again), and other addresses are not
    affected. The address is the client's, as uvicorn reads it from X-Forwarded-For sent by a
    proxy on loopback."""
    monkeypatch.setattr(server.runtime.authenticator.by_address, "limit", 3)
    monkeypatch.setattr(server.runtime.authenticator, "TTL", 0.0)
    url = f"{server.base_url}/wireless/v1/Sims"
    known = server.new_account()
    assert httpx.get(url, auth=(known.sid, known.token),
                     headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 200
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    for i in range(3):
        r = httpx.get(url, auth=("AC" + f"{i}" * 32, "guess" * 4), headers=attacker)
        assert r.status_code == 401
    r = httpx.get(url, auth=(account.sid, "guess" * 4), headers=attacker)
    assert r.status_code == 429 and r.json()["code"] == 20429
    assert 0 < int(r.headers["Retry-After"]) <= 60
    # Right credentials not verified yet wait too: nothing is checked for that address.
    assert httpx.get(url, auth=(account.sid, account.token), headers=attacker).status_code == 429
    assert httpx.get(url, auth=(known.sid, known.token), headers=attacker).status_code == 200
    assert httpx.get(url, auth=(known.sid, "guess" * 4), headers=attacker).status_code == 429
    other = {"X-Forwarded-For": "198.51.100.4"}
    assert httpx.get(url, auth=(account.sid, "guess" * 4), headers=other).status_code == 401
    assert httpx.get(url, auth=(account.sid, account.token), headers=other).status_code == 200


def test_failed_logins_for_an_account_back_off_from_any_address(server, account, monkeypatch):
    """Past the limit for one SID, its credentials are not checked, from any address, unless
    they held before (remembered for 0 s here, so each request checks them again)."""
    monkeypatch.setattr(server.runtime.authenticator.by_sid, "limit", 3)
    monkeypatch.setattr(server.runtime.authenticator, "TTL", 0.0)
    url = f"{server.base_url}/wireless/v1/Sims"
    key_sid, secret = account.api_key()
    sub = server.new_account(parent=account.sid)
    assert sub.client.wireless.v1.sims.list() == []
    for sid in (account.sid, sub.sid):
        for i in range(3):
            r = httpx.get(url, auth=(sid, "guess" * 4),
                          headers={"X-Forwarded-For": f"192.0.2.{i + 1}"})
            assert r.status_code == 401
        r = httpx.get(url, auth=(sid, "guess" * 4), headers={"X-Forwarded-For": "192.0.2.99"})
        assert r.status_code == 429 and r.json()["code"] == 20429 and "Retry-After" in r.headers
    r = httpx.get(url, auth=(account.sid, account.token),
                  headers={"X-Forwarded-For": "192.0.2.200"})
    assert r.status_code == 429  # never verified in this process: not checked either
    assert sub.client.wireless.v1.sims.list() == []  # verified before: checked, and it holds
    # The account's API key is a credential of its own.
    assert server.client(key_sid, secret, account.sid).wireless.v1.sims.list() == []


def test_failure_counts_are_bounded_and_expire():
    counter = FailureCounter(limit=2, window=60.0, size=3)
    for key in ("a", "b", "c", "d"):
        counter.add(key, 0.0)
        counter.add(key, 1.0)
    assert counter.retry_after("a", 2.0) == 0  # forgotten: only the last 3 keys are kept
    assert counter.retry_after("d", 2.0) == 58
    assert counter.retry_after("d", 60.0) == 0  # the window is over
    counter.add("d", 61.0)
    assert counter.retry_after("d", 61.5) == 0  # a new window, one failure in it
    assert len(counter._counts) == 3


def test_metrics_are_for_admins_and_the_metrics_token(server, account, monkeypatch):
    url = f"{server.base_url}/metrics"
    r = httpx.get(url)
    assert r.status_code == 401 and r.json()["code"] == 20003
    r = httpx.get(url, auth=(account.sid, account.token))
    assert r.status_code == 403 and r.json()["code"] == 20403
    admin = server.new_account(admin=True)
    r = httpx.get(url, auth=(admin.sid, admin.token))
    assert r.status_code == 200 and "simplane_http_requests_total" in r.text
    assert httpx.get(url, headers={"Authorization": "Bearer anything"}).status_code == 401
    monkeypatch.setattr(server.runtime.settings, "metrics_token", "scrape-" + "x" * 20)
    r = httpx.get(url, headers={"Authorization": "Bearer scrape-" + "x" * 20})
    assert r.status_code == 200 and "simplane_http_requests_total" in r.text
    r = httpx.get(url, headers={"Authorization": "Bearer scrape-" + "y" * 20})
    assert r.status_code == 401 and r.json()["code"] == 20003


def test_metrics_on_an_address_of_their_own_need_no_credentials(server, account):
    from simplane.core.metrics import serve_metrics

    account.client.wireless.v1.sims.list()
    port = free_port()
    metrics = serve_metrics(f"127.0.0.1:{port}")
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert r.status_code == 200
        assert 'route="/wireless/v1/Sims"' in r.text
    finally:
        metrics.shutdown()
        metrics.server_close()
    for bad in ("8080", "localhost:http", ":9100", "[::1]:99999"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            serve_metrics(bad)
