"""Request logs: JSON lines written by one listener thread, sampled for successful requests
(SIMPLANE_LOG_SAMPLE), always written for failed ones, never carrying a credential."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from twilio.base.exceptions import TwilioRestException

from simplane.config import ConfigError, Settings
from simplane.core import logs
from tests.support import Server, TestAccount


class NoLock:
    def __enter__(self) -> None:
        raise AssertionError("a handler lock was taken in the logging thread")

    def __exit__(self, *exc: object) -> None:
        pass

    def acquire(self) -> None:
        self.__enter__()

    def release(self) -> None:
        pass


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    root = logging.getLogger("simplane")
    saved = root.handlers[:], root.level, root.propagate
    stream = io.StringIO()
    logs.configure("info", stream)
    for handler in root.handlers:
        handler.lock = NoLock()  # type: ignore[assignment]
    yield stream
    logs.stop()
    root.handlers[:], root.level, root.propagate = saved[0], saved[1], saved[2]


def requests(stream: io.StringIO) -> list[dict]:
    logs.stop()  # writes what is queued
    entries = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in entries if e["logger"] == "simplane.http"]


def call(server: Server, account: TestAccount) -> None:
    account.client.wireless.v1.sims.list(limit=1)  # 200
    with pytest.raises(TwilioRestException) as found:  # 404
        account.client.wireless.v1.sims("DE" + "0" * 32).fetch()
    assert found.value.status == 404
    wrong = server.client(account.sid, "x" * 32)
    with pytest.raises(TwilioRestException) as denied:  # 401
        wrong.wireless.v1.sims(account.sid).fetch()
    assert denied.value.status == 401


def test_every_request_has_a_json_line_without_credentials(server: Server, account: TestAccount,
                                                           lines: io.StringIO) -> None:
    call(server, account)
    entries = requests(lines)
    assert [e["status"] for e in entries] == [200, 404, 401]
    assert all(e["method"] == "GET" and e["path"].startswith("/wireless/v1/Sims")
               for e in entries)
    assert entries[0]["account_sid"] == account.sid and entries[2]["code"] == 20003
    assert account.token not in lines.getvalue() and "x" * 32 not in lines.getvalue()


def test_a_sample_of_zero_logs_only_failed_requests(server: Server, account: TestAccount,
                                                    lines: io.StringIO,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.runtime.settings, "log_sample", 0.0)
    call(server, account)
    assert [e["status"] for e in requests(lines)] == [404, 401]


def test_the_sample_is_a_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMPLANE_LOG_SAMPLE", "0.1")
    assert Settings().log_sample == 0.1
    monkeypatch.setenv("SIMPLANE_LOG_SAMPLE", "2")
    with pytest.raises(ConfigError, match="SIMPLANE_LOG_SAMPLE"):
        Settings()
