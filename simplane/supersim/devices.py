"""Simulated devices: the far end of SMS and IP Commands, for tests and the fleet simulator.

    device = SimulatedDevice()                      # a UDP socket on its own loopback address
    device.attach(runtime, sim_sid)                 # its IP is the SIM's (access.set_ip_address)
    data, source = device.receive()                 # a to-SIM IP Command, as a real datagram
    device.send(b"hello", udp.address(runtime))     # a from-SIM IP Command
    device.sms                                      # SMS Commands delivered to it
    device.send_sms(runtime, "hello")               # a from-SIM SMS Command
    device.install_esim(runtime, eid, matching_id)  # claim an available eSIM Profile

SMS Commands reach devices through `gateway`: a SIM with an attached simulated device gets them
in `device.sms`; any other connected SIM stands for a virtual device that acknowledges them.
"""

from __future__ import annotations

import itertools
import random
import socket
import threading
from typing import TYPE_CHECKING

from sqlalchemy import select

from simplane.supersim import access, service
from simplane.supersim.models import Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

_next_host = itertools.count(random.randrange(1, 60000))
_lock = threading.Lock()


def _loopback_host() -> str:
    """A loopback address of its own (127.x.y.z), so that the device is recognised by its IP as
    a SIM is; 127.0.0.1 where only that one answers."""
    n = next(_next_host) % 65000 + 256
    return f"127.{100 + n // 65536}.{n // 256 % 256}.{n % 256}"


class SimulatedDevice:
    def __init__(self, port: int = 0, host: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.bind((host or _loopback_host(), port))
        except OSError:
            if host:
                raise
            self.sock.bind(("127.0.0.1", port))
        self.ip, self.port = self.sock.getsockname()[:2]
        self.sms: list[str] = []
        self.sim_sid: str | None = None

    def attach(self, runtime: Runtime, sim_sid: str) -> None:
        """Become the device of a SIM: its data session now has this device's IP address."""
        with runtime.db.write() as db:
            access.set_ip_address(db, sim_sid, self.ip)
        self.sim_sid = sim_sid
        gateway.register(sim_sid, self)

    def detach(self, runtime: Runtime) -> None:
        if self.sim_sid:
            with runtime.db.write() as db:
                access.set_ip_address(db, self.sim_sid, None)
            gateway.unregister(self.sim_sid)
            self.sim_sid = None

    def send_sms(self, runtime: Runtime, payload: str) -> str | None:
        """Send an SMS to the SMS Commands number; returns the `received` SMS Command's SID, or
        None when the SIM may not send (not connected, or its Fleet has SMS Commands off)."""
        if self.sim_sid is None:
            raise RuntimeError("attach the device to a SIM first")
        with runtime.db.write() as db:
            sim = db.scalar(select(Sim).where(Sim.sid == self.sim_sid))
            command = service.receive_sms(db, runtime, sim, payload) if sim else None
            return command.sid if command else None

    def install_esim(self, runtime: Runtime, eid: str, matching_id: str | None = None) -> str:
        """Download and install an available eSIM Profile into this device's eUICC (by its
        matching ID, or the one reserved for `eid`); returns the profile's SID."""
        with runtime.db.write() as db:
            profile = service.available_esim_profile(db, eid, matching_id)
            service.esim_installed(db, runtime, profile, eid)
            return profile.sid

    def send(self, data: bytes, to: tuple[str, int]) -> None:
        self.sock.sendto(data, to)

    def receive(self, timeout: float = 5.0) -> tuple[bytes, tuple[str, int]]:
        """The next datagram; socket.timeout if none comes within `timeout` seconds."""
        self.sock.settimeout(timeout)
        data, source = self.sock.recvfrom(65535)
        return data, source[:2]

    def close(self) -> None:
        if self.sim_sid:
            gateway.unregister(self.sim_sid)
        self.sock.close()


class SmsGateway:
    """Where to-SIM SMS Commands go; only connected SIMs are offered to it."""

    def __init__(self) -> None:
        self._devices: dict[str, SimulatedDevice] = {}

    def register(self, sim_sid: str, device: SimulatedDevice) -> None:
        with _lock:
            self._devices[sim_sid] = device

    def unregister(self, sim_sid: str) -> None:
        with _lock:
            self._devices.pop(sim_sid, None)

    def deliver(self, sim_sid: str, payload: str) -> bool:
        """Hand an SMS to the SIM's device; True when the device acknowledged it."""
        with _lock:
            device = self._devices.get(sim_sid)
        if device is not None:
            device.sms.append(payload)
        return True


gateway = SmsGateway()
