"""`simplane.device(sim)`: the device a SIM sits in, as the network reports it. Every step goes
through the real ingest path (`POST /network/v1/Events`, as a packet gateway without RADIUS
posts it), so sessions, usage, the SIM's network state and Super SIM Connection Events are
what a real network would leave.

    device = simplane.device(sim_sid)
    device.attach()                    # on its home network (a Super SIM: one its Fleet allows)
    device.use(up=1200, down=5300)     # bytes in a data session (opened on first use)
    device.send("hello")               # a from-SIM command (SMS)
    device.received()                  # the commands the device got
    device.detach()
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select

from simplane.core.clock import iso, utc
from simplane.network.events import home_network
from simplane.testing.faults import Faults

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime
    from simplane.wireless.models import Command


class DeviceError(RuntimeError):
    """A step the device cannot take in its state (using data or sending while detached)."""


@dataclass
class Delivery:
    text: str
    queued_at: datetime


class Devices:
    """The devices of every SIM, and what reached them: the gateway Wireless Commands and
    Super SIM SMS Commands are delivered through while the plugin runs."""

    def __init__(self, runtime: Runtime, base_url: str, admin: tuple[str, str],
                 faults: Faults) -> None:
        self.runtime = runtime
        self.faults = faults
        self.http = httpx.Client(base_url=base_url, auth=admin, timeout=30)
        self.lock = threading.Lock()
        self.devices: dict[str, Device] = {}
        self.inbox: dict[str, list[str]] = {}  # SIM SID → texts delivered, in order

    def device(self, sim: str, run_due: Callable[[], None]) -> Device:
        with self.lock:
            found = self.devices.get(sim)
            if found is None:
                found = self.devices[sim] = Device(self, sim, run_due)
            return found

    def report(self, events: list[dict[str, Any]]) -> None:
        """Tell ingest what the network saw, as a gateway does."""
        response = self.http.post("/network/v1/Events", json={"events": events})
        if response.status_code != 202:
            raise DeviceError(f"ingest refused the events ({response.status_code}): "
                              f"{response.text}")

    # -- the gateway the delivery jobs call (Wireless, then Super SIM SMS)
    def deliver(self, sim: Any, command: Command) -> bool | None:
        delay = self.faults.delays.get(sim.sid)
        if delay is not None and delay.after(utc(command.date_created)) > self.runtime.clock.now():
            return None  # the device has not taken it yet
        self._received(sim.sid, command.command)
        return True

    def reset(self, sim: Any) -> bool:
        return True

    def next_delivery(self, runtime: Runtime, now: datetime) -> datetime | None:
        """When the first command a delay holds back becomes deliverable (for the clock, which
        stops there on its way)."""
        from simplane.wireless.models import Command

        delays = dict(self.faults.delays)
        if not delays:
            return None
        with runtime.db.read() as db:
            rows = db.execute(select(Command.sim_sid, Command.date_created).where(
                Command.status == "queued", Command.direction == "to_sim",
                Command.sim_sid.in_(delays))).all()
        due = [when for sim_sid, created in rows
               if (when := delays[sim_sid].after(utc(created))) > now]
        return min(due, default=None)

    def deliver_sms(self, sim_sid: str, payload: str) -> bool:
        self._received(sim_sid, payload)
        return True

    def _received(self, sim_sid: str, text: str) -> None:
        with self.lock:
            self.inbox.setdefault(sim_sid, []).append(text)

    def clear(self) -> None:
        with self.lock:
            self.devices.clear()
            self.inbox.clear()

    def close(self) -> None:
        self.http.close()


@dataclass
class _Session:
    session_id: str
    up: int = 0
    down: int = 0


@dataclass
class Device:
    devices: Devices
    sim: str
    run_due: Callable[[], None]
    network: tuple[str, str] | None = None  # MCC, MNC while attached
    session: _Session | None = None
    _facts: tuple[str, bool, tuple[str, str]] | None = field(default=None, repr=False)

    def _identity(self) -> tuple[str, bool, tuple[str, str]]:
        """IMSI, whether a Super SIM, and the network it attaches to unless told."""
        if self._facts is None:
            from simplane.supersim.access import sims_by_imsi
            from simplane.supersim.models import Sim as SuperSim
            from simplane.wireless.models import Sim

            with self.devices.runtime.db.read() as db:
                imsi = db.scalar(select(Sim.imsi).where(Sim.sid == self.sim))
                if imsi is not None:
                    self._facts = (imsi, False, home_network(imsi))
                    return self._facts
                imsi = db.scalar(select(SuperSim.imsi).where(SuperSim.sid == self.sim))
                facts = sims_by_imsi(db, [imsi]).get(imsi) if imsi else None
            if imsi is None or facts is None:
                raise DeviceError(f"{self.sim} is not a SIM of this server (a Super SIM must "
                                  "be registered to an account)")
            self._facts = (imsi, True, min(facts.allowed_networks, default=home_network(imsi)))
        return self._facts

    def _event(self, kind: str, **facts: Any) -> dict[str, Any]:
        imsi = self._identity()[0]
        event = {"kind": kind, "imsi": imsi, "time": iso(self.devices.runtime.clock.now())}
        if self.network:
            event.update(mcc=self.network[0], mnc=self.network[1])
        event.update(facts)
        return event

    @property
    def attached(self) -> bool:
        """Whether the network has the device attached (as ingest recorded it)."""
        from simplane.network.models import SimState

        with self.devices.runtime.db.read() as db:
            return bool(db.scalar(select(SimState.attached).where(SimState.sim_sid == self.sim)))

    def attach(self, mcc: str | None = None, mnc: str | None = None) -> bool:
        """Attach to the network `mcc`/`mnc` (by default the SIM's home network; a Super SIM's,
        the first its Fleet allows). Returns whether the network let it on: a Super SIM's Fleet
        may not allow the network, and `simplane.faults.refuse_attachment` refuses it."""
        _imsi, _super, default = self._identity()
        if (mcc is None) != (mnc is None):
            raise ValueError("give both mcc and mnc, or neither")
        network = (mcc, mnc) if mcc is not None and mnc is not None else default
        if self.session is not None and network != self.network:
            self.detach()  # a move to another network ends the session on the old one
        self.network = network
        if self.devices.faults.refuses(self.sim):
            self.devices.report([self._event("attachment.rejected",
                                             error="Attachment refused by the network")])
        else:
            self.devices.report([self._event("attachment.accepted")])
        if not self.attached:
            self.network, self.session = None, None
            return False
        self.run_due()  # commands waiting for the device
        return True

    def use(self, up: int = 0, down: int = 0) -> None:
        """Move `up` bytes from the device and `down` to it, in a data session opened on first
        use (the network reports the session's counters, cumulative, as a gateway does)."""
        if up < 0 or down < 0:
            raise ValueError("bytes cannot be negative")
        if self.network is None:
            raise DeviceError(f"the device of {self.sim} is not attached: attach() first")
        events = []
        if self.session is None:
            self.session = _Session(f"simplane-{secrets.token_hex(8)}")
            events.append(self._event("session.started", session_id=self.session.session_id,
                                      apn="super" if self._identity()[1] else "iot"))
        self.session.up += up
        self.session.down += down
        events.append(self._event("session.updated", session_id=self.session.session_id,
                                  bytes_up=self.session.up, bytes_down=self.session.down))
        self.devices.report(events)

    def detach(self) -> None:
        """End the data session, if one is open, and leave the network."""
        if self.network is None:
            return
        if self.session is not None:
            self.devices.report([self._event(
                "session.ended", session_id=self.session.session_id,
                bytes_up=self.session.up, bytes_down=self.session.down)])
        else:
            self.devices.report([self._event("session.ended")])
        self.network, self.session = None, None

    def send(self, text: str) -> str | None:
        """A from-SIM command (an SMS to the platform): its SID (`DC…`, a Super SIM's `HC…`),
        or None when the network takes none from this SIM (its status, or its Fleet's SMS
        Commands off)."""
        from simplane.network.policy import CAN_USE_DATA
        from simplane.supersim.models import Sim as SuperSim
        from simplane.supersim.service import receive_sms
        from simplane.wireless.models import Sim
        from simplane.wireless.service import receive_from_sim

        if self.network is None:
            raise DeviceError(f"the device of {self.sim} is not attached: attach() first")
        runtime = self.devices.runtime
        with runtime.db.write() as db:
            if self._identity()[1]:
                sim = db.scalar(select(SuperSim).where(SuperSim.sid == self.sim))
                if sim is None or sim.status not in CAN_USE_DATA:
                    return None
                command = receive_sms(db, runtime, sim, text)
                return command.sid if command else None
            wireless = db.scalar(select(Sim).where(Sim.sid == self.sim))
            if wireless is None or wireless.status not in CAN_USE_DATA:
                return None
            return receive_from_sim(db, runtime, wireless, text).sid

    def received(self) -> list[str]:
        """The commands delivered to the device so far, oldest first (what was due is
        delivered first)."""
        self.run_due()
        with self.devices.lock:
            return list(self.devices.inbox.get(self.sim, []))
