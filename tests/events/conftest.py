from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cloudevents.core.formats.json import JSONFormat

from simplane.core.sids import new_sid
from simplane.events import catalogue
from tests.support import Received

CONNECTION = "com.twilio.iot.supersim.connection."


def events_api(account):  # type: ignore[no-untyped-def]
    return account.client.events.v1


def webhook_sink(account, url: str, **config):  # type: ignore[no-untyped-def]
    return events_api(account).sinks.create(
        description="fleet events", sink_type="webhook",
        sink_configuration={"destination": url, "method": "POST", **config})


def activate(account, server, receiver, sink) -> dict:  # type: ignore[no-untyped-def]
    """Twilio's validation flow: Test, read the test event the sink got, Validate."""
    ev = events_api(account)
    assert ev.sinks(sink.sid).sink_test.create().result == "submitted"
    server.drain()
    [test_event] = deliveries(receiver.get())
    ev.sinks(sink.sid).sink_validate.create(test_id=test_event["data"]["test_id"])
    return test_event


def active_webhook(account, server, receiver, path: str = "/events", **config):  # type: ignore[no-untyped-def]
    sink = webhook_sink(account, receiver.url + path, **config)
    activate(account, server, receiver, sink)
    return sink


def subscribe(account, sink, types: list[str], version: int | None = None):  # type: ignore[no-untyped-def]
    return events_api(account).subscriptions.create(
        description="all connection events", sink_sid=sink.sid,
        types=[{"type": t, **({"schema_version": version} if version else {})} for t in types])


def deliveries(request: Received) -> list[dict]:
    """The CloudEvents of one webhook request, each parsed by the cloudevents SDK."""
    events = json.loads(request.body)
    assert isinstance(events, list)
    parsed = []
    for raw in events:
        event = JSONFormat().read(None, json.dumps(raw))
        attributes = event.get_attributes()
        assert attributes["specversion"] == "1.0"
        # Twilio's time: UTC with milliseconds and a Z
        assert raw["time"].endswith("Z") and len(raw["time"]) == 24, raw["time"]
        parsed.append({**attributes, "time": raw["time"], "data": event.get_data()})
    return parsed


def posting_a_test_during_the_next_send(monkeypatch, events, sink) -> list:  # type: ignore[no-untyped-def]
    """POST /Test once, between the dispatcher reading the sink and recording the outcome of
    its next send."""
    from simplane.events import dispatcher

    send, posted = dispatcher._send, []

    def send_while_testing(*args):  # type: ignore[no-untyped-def]
        if not posted:
            posted.append(events.sinks(sink.sid).sink_test.create())
        return send(*args)

    monkeypatch.setattr(dispatcher, "_send", send_while_testing)
    return posted


def drain_received(receiver) -> list[Received]:  # type: ignore[no-untyped-def]
    got = []
    while not receiver.requests.empty():
        got.append(receiver.requests.get_nowait())
    return got


class Fleet:
    """Super SIM connection events as a fleet produces them: per SIM, an attachment, a data
    session started, updates every six minutes, then the session ended. Valid against the
    catalogue's schemas. (Stands in for the network simulator in these tests.)"""

    def __init__(self, account_sid: str, sims: int, start: datetime | None = None) -> None:
        self.account_sid = account_sid
        self.sims = [(new_sid("HS"), "8988307" + f"{random.randrange(10**12):012d}")
                     for _ in range(sims)]
        self.when = start or datetime(2026, 1, 1, tzinfo=UTC)

    def _base(self, kind: str, sim: tuple[str, str], at: datetime) -> dict:
        return {
            "event_sid": new_sid("EZ"), "event_type": CONNECTION + kind,
            "account_sid": self.account_sid, "sim_sid": sim[0], "sim_iccid": sim[1],
            "sim_unique_name": None, "fleet_sid": None,
            "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "imsi": "732123200563187",
            "imei": "358600842867678", "rat_type": "4G LTE",
            "network": {"mcc": "310", "mnc": "260", "friendly_name": "T-Mobile",
                        "iso_country": "US", "sid": None},
            "location": {"cell_id": "47322374", "lac": "15170", "lat": 34.17, "lon": -118.57},
        }

    def session(self, sim: tuple[str, str], updates: int) -> Iterator[dict]:
        at = self.when
        yield self._base("attachment.accepted", sim, at)
        started = at + timedelta(seconds=2)
        common = {"data_session_sid": new_sid("PI"),
                  "data_session_start_time": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "apn": "super", "ip_address": "100.68.56.159"}
        yield {**self._base("data-session.started", sim, started), **common}
        up = down = 0
        window = started
        for i in range(updates + 1):
            end = window + timedelta(minutes=6)
            du, dd = 1000 * (i + 1), 5000 * (i + 1)
            up, down = up + du, down + dd
            kind = "data-session.updated" if i < updates else "data-session.ended"
            data = {**self._base(kind, sim, end), **common,
                    "data_session_update_start_time": window.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "data_session_update_end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "data_upload": du, "data_download": dd, "data_total": du + dd,
                    "data_session_data_upload": up, "data_session_data_download": down,
                    "data_session_data_total": up + down}
            if kind.endswith("ended"):
                data["data_session_end_time"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
            yield data
            window = end

    def rows(self, updates: int = 2) -> list[dict]:
        """Every SIM's session, interleaved SIM by SIM as a network reports them."""
        streams = [list(self.session(sim, updates)) for sim in self.sims]
        rows = []
        for step in range(max(len(s) for s in streams)):
            for stream in streams:
                if step < len(stream):
                    data = stream[step]
                    catalogue.validate(data["event_type"], data)
                    rows.append({"account_sid": self.account_sid, "type": data["event_type"],
                                 "data": data, "subject": data["sim_sid"],
                                 "time": datetime.strptime(data["timestamp"], "%Y-%m-%dT%H:%M:%SZ"
                                                           ).replace(tzinfo=UTC)})
        return rows


ALL_CONNECTION_TYPES = [t for t in catalogue.TYPES if t.startswith(CONNECTION)]


@pytest.fixture
def events(account):  # type: ignore[no-untyped-def]
    return events_api(account)
