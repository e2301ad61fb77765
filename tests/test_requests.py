"""What the server reads of a request: credentials before the body, a body up to a limit, and
text only when it is UTF-8."""

from __future__ import annotations

import base64
import socket
from urllib.parse import urlsplit

import httpx
import orjson

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def send_partly(server, head: str, body: bytes) -> tuple[int, dict[str, str], dict]:  # type: ignore[no-untyped-def]
    """Send a request's head and the first bytes of its body, never the rest, and read the answer:
    it can only come if the server answers without waiting for the whole body."""
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < int(
                _headers(received).get("content-length", "0")):
            chunk = sock.recv(65536)  # a timeout here fails the test: the server waited
            assert chunk, f"the server hung up without an answer: {received!r}"
            received += chunk
        rest = b""
        while chunk := sock.recv(65536):  # and then it hangs up
            rest += chunk
    status = int(received.split(b" ", 2)[1])
    return status, _headers(received), orjson.loads(received.split(b"\r\n\r\n", 1)[1])


def _headers(raw: bytes) -> dict[str, str]:
    lines = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def basic(account) -> str:  # type: ignore[no-untyped-def]
    return base64.b64encode(f"{account.sid}:{account.token}".encode()).decode()


def test_a_caller_without_credentials_is_answered_before_its_body_is_read(server):
    head = ("POST /wireless/v1/RatePlans HTTP/1.1\nHost: x\n"
            "Content-Type: application/x-www-form-urlencoded\nContent-Length: 100000000\n")
    status, headers, body = send_partly(server, head, b"UniqueName=a&FriendlyName=" + b"x" * 8000)
    assert (status, body["code"]) == (401, 20003)
    assert headers["connection"] == "close"
    chunked = ("POST /wireless/v1/RatePlans HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n"
               "Authorization: Basic " + base64.b64encode(b"AC" + b"0" * 32 + b":nope").decode()
               + "\n")
    status, _, body = send_partly(server, chunked, b"1f40\r\n" + b"x" * 8000 + b"\r\n")
    assert (status, body["code"]) == (401, 20003)


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(server, account,
                                                                     monkeypatch):
    monkeypatch.setattr(server.runtime.settings, "max_body", 4096)
    head = ("POST /wireless/v1/RatePlans HTTP/1.1\nHost: x\n"
            "Content-Type: application/x-www-form-urlencoded\n"
            f"Authorization: Basic {basic(account)}\n")
    # Announced: refused from Content-Length alone.
    status, headers, body = send_partly(server, head + "Content-Length: 100000000\n",
                                        b"UniqueName=big&FriendlyName=" + b"x" * 8000)
    assert (status, body["code"], body["status"]) == (413, 20413, 413)
    assert "4096" in body["message"] and headers["connection"] == "close"
    # Chunked: refused once more than the limit has come, without waiting for the last chunk.
    chunk = b"UniqueName=big&FriendlyName=" + b"x" * 2000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3))
    status, _, body = send_partly(server, head + "Transfer-Encoding: chunked\n", chunks)
    assert (status, body["code"]) == (413, 20413)
    assert account.client.wireless.v1.rate_plans.list() == []  # nothing was stored
    # Up to the limit, a body is read as ever.
    form = b"UniqueName=fits&FriendlyName="
    r = httpx.post(f"{server.base_url}/wireless/v1/RatePlans", auth=(account.sid, account.token),
                   headers=FORM, content=form + b"y" * (4096 - len(form)))
    assert r.status_code == 400 and "FriendlyName" in r.json()["message"]  # too long a name,
    r = httpx.post(f"{server.base_url}/wireless/v1/RatePlans", auth=(account.sid, account.token),
                   headers=FORM, content=form + b"y" * 10 + b"&Padding=" + b"z" * 4000)
    assert r.status_code == 201 and r.json()["unique_name"] == "fits"  # but not too long a body


def test_an_ingest_batch_may_be_larger_than_a_form(server, monkeypatch):
    monkeypatch.setattr(server.runtime.settings, "max_body", 1024)
    admin = server.new_account(admin=True)
    events = [{"kind": "session.updated", "imsi": "001010000000001", "time": "2026-01-01T00:00:00Z",
               "session_id": f"s{i}", "bytes_up": 1} for i in range(40)]
    r = httpx.post(f"{server.base_url}/network/v1/Events", auth=(admin.sid, admin.token),
                   json={"events": events})
    assert r.status_code == 202 and r.json()["accepted"] == 0  # read whole: the IMSI is unknown


def test_a_form_that_is_not_utf8_is_a_400_naming_the_parameter(server, account):
    url = f"{server.base_url}/wireless/v1/RatePlans"
    auth = (account.sid, account.token)
    for body, name in ((b"UniqueName=%FF%FE", "UniqueName"),
                       (b"UniqueName=ok&FriendlyName=caf\xe9", "FriendlyName")):
        r = httpx.post(url, auth=auth, headers=FORM, content=body)
        assert r.status_code == 400 and r.json()["code"] == 20001
        assert r.json()["message"] == f"Invalid {name}: not UTF-8 text (in the post body)"
    r = httpx.post(url, auth=auth, headers=FORM, content=b"%C0=1")
    assert r.status_code == 400 and "parameter name is not UTF-8" in r.json()["message"]
    assert account.client.wireless.v1.rate_plans.list() == []  # nothing was stored
    r = httpx.get(f"{server.base_url}/wireless/v1/Sims?Status=%FF", auth=auth)
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid Status: not UTF-8 text (in the query string)"
    # UTF-8, percent-encoded or not, is text as ever.
    for body, name in ((b"UniqueName=a&FriendlyName=caf%C3%A9", "a"),
                       (b"UniqueName=b&FriendlyName=caf\xc3\xa9", "b")):
        r = httpx.post(url, auth=auth, headers=FORM, content=body)
        assert r.status_code == 201 and r.json()["friendly_name"] == "café", r.text
        assert r.json()["unique_name"] == name
