"""The handle the `simplane` fixture gives each test: a simplane server in this process with
the test's account, clock, SIMs, devices, webhook receiver and faults."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twilio.rest import Client

from simplane.core.runtime import Runtime
from simplane.testing.clock import TestClock
from simplane.testing.devices import Device, Devices
from simplane.testing.faults import FailingTransport, Faults
from simplane.testing.reset import Reset, empty
from simplane.testing.schema import migrated
from simplane.testing.server import Serving, new_account, runtime, serve
from simplane.testing.sims import Sims
from simplane.testing.webhooks import Receiver, Request


class Webhooks:
    """`simplane.webhooks`: a receiver on loopback for the test's callbacks and sinks."""

    def __init__(self, receiver: Receiver, run_due: Callable[[], None]) -> None:
        self.receiver = receiver
        self._run_due = run_due

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT/webhooks; any path under it (`url + "/status"`) reaches the
        receiver too. (It has a path: a bare origin is requested as `/`, and a signature made
        over the URL without that slash would not hold.)"""
        return self.receiver.url + "/webhooks"

    @property
    def requests(self) -> list[Request]:
        """Every request received in this test, in order."""
        return self.receiver.requests

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[Request]:
        """The first `n` requests, once they have come: what is due is sent first, so only a
        delivery still in flight is waited for (at most `timeout` seconds, then the test
        fails)."""
        self._run_due()
        return self.receiver.wait(n, timeout)


class Simplane:
    """The handle the `simplane` fixture gives each test."""

    def __init__(self, database_url: str, start: datetime | None = None,
                 schema_cache: Path | None = None) -> None:
        """A server on `database_url` whose clock starts at `start` (default: now). With
        `schema_cache`, a new SQLite file is a copy of a migrated one kept there."""
        self.started_at = (start or datetime.now(UTC)).replace(microsecond=0)
        migrate = True
        if schema_cache is not None and database_url.startswith("sqlite:///"):
            database = Path(database_url.removeprefix("sqlite:///"))
            if not database.exists():
                migrated(database, schema_cache)
                migrate = False  # it is: asking alembic again costs a second or two
        self._transport = FailingTransport()
        self.runtime: Runtime = runtime(database_url, self.started_at,
                                        transport=self._transport, migrate=migrate)
        try:
            empty(self.runtime)  # a database an earlier session left behind
            user = new_account(self.runtime)
            admin = new_account(self.runtime, admin=True)
            self.account_sid, self.auth_token = user.sid, user.secret
            self._reset = Reset(self.runtime, [user.sid, admin.sid])
            self.faults = Faults(self._transport, self._sink_url)
            self._serving: Serving = serve(self.runtime)
        except BaseException:
            self.runtime.close()
            raise
        self.url = self._serving.url
        self.client: Client = self.new_client(self.account_sid, self.auth_token)
        self.clock = TestClock(self.runtime)
        self.sims = Sims(self.runtime, self.account_sid)
        self.webhooks = Webhooks(Receiver(lambda: self.auth_token), self.run_due)
        self._devices = Devices(self.runtime, self.url, (admin.sid, admin.secret), self.faults)
        self._gateways = _install(self._devices)
        self.runtime.worker.add([], next_due=[self._devices.next_delivery])

    def new_client(self, username: str, password: str, account_sid: str | None = None
                   ) -> Client:
        """Another official client on this server (an API key, a subaccount's credentials)."""
        import simplane

        return simplane.client(self.url, username, password, account_sid)

    def device(self, sim: str) -> Device:
        """The device of a SIM (the same one each time it is asked for in a test)."""
        return self._devices.device(sim, self.run_due)

    def run_due(self) -> None:
        """Run the background work that is due now (deliveries, callbacks, timers) until none
        is left; the clock, the devices and the receiver do this themselves."""
        self.runtime.worker.drain()

    def reset(self) -> None:
        """Back to a clean server: no data but the test's account, the clock where the session
        started it, no faults, no webhooks received, no devices."""
        with self.runtime.worker._run_lock:  # no job runs meanwhile
            self.faults.clear()
            self._devices.clear()
            self.webhooks.receiver.clear()
            self._reset(clock_at=self.started_at)

    def close(self) -> None:
        _uninstall(self._gateways)
        self._serving.stop()
        self.webhooks.receiver.close()
        self._devices.close()
        self.runtime.close()

    def _sink_url(self, sink_sid: str) -> str:
        from sqlalchemy import select

        from simplane.events.models import EventSink
        from simplane.events.service import configuration

        with self.runtime.db.read() as db:
            sink = db.scalar(select(EventSink).where(EventSink.sid == sink_sid,
                                                     EventSink.account_sid == self.account_sid))
            if sink is None:
                raise ValueError(f"no sink {sink_sid} on the test's account")
            if sink.sink_type != "webhook":
                raise ValueError(f"{sink_sid} is a {sink.sink_type} sink: only webhook sinks' "
                                 "deliveries can be made to fail")
            return str(configuration(self.runtime.box, sink)["destination"])


def _install(devices: Devices) -> tuple[Any, Any]:
    """Deliver Wireless Commands and Super SIM SMS Commands to the plugin's devices (and on to
    any SimulatedDevice registered, as before)."""
    from simplane.supersim import devices as super_devices
    from simplane.wireless import gateway

    before = gateway.gateway, super_devices.gateway
    sms = before[1]

    class Sms:
        register, unregister = sms.register, sms.unregister

        def deliver(self, sim_sid: str, payload: str) -> bool:
            devices.deliver_sms(sim_sid, payload)
            return sms.deliver(sim_sid, payload)

    gateway.gateway = devices
    super_devices.gateway = Sms()  # type: ignore[assignment]
    return before


def _uninstall(before: tuple[Any, Any]) -> None:
    from simplane.supersim import devices as super_devices
    from simplane.wireless import gateway

    gateway.gateway, super_devices.gateway = before
