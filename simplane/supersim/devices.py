"""Simulated devices: the far end of SMS and IP Commands, for tests and the fleet simulator.

    device = SimulatedDevice()                      # a UDP socket on its own loopback address
    device.attach(runtime, sim_sid)                 # on the network, in a session with its IP
    data, source = device.receive()                 # a to-SIM IP Command, as a real datagram
    device.send(b"hello", udp.address(runtime))     # a from-SIM IP Command
    device.sms                                      # SMS Commands delivered to it
    device.send_sms(runtime, "hello")               # a from-SIM SMS Command
    device.download_esim(runtime, eid)              # an available eSIM Profile, downloaded
    device.install_esim(runtime, eid)               # …then installed

SMS Commands wait until the network says the SIM's device is attached, then reach it through
`gateway`: a simulated device gets them in `device.sms`; a device attached by other means (the
fleet simulator, a real gateway) is a virtual one that acknowledges them.

The fleet simulator's devices answer each IP Command with `answer_ip_command(payload)`, from the
port they got it on (see simplane.supersim.udp for how they are reached).
"""

from __future__ import annotations

import itertools
import random
import secrets
import socket
import threading
from typing import TYPE_CHECKING

from sqlalchemy import select

from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.supersim import access, service
from simplane.supersim.models import EsimProfile, Sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

_next_host = itertools.count(random.randrange(1, 60000))
_lock = threading.Lock()


class DeviceRefused(Exception):
    """The network refused the device (the SIM's status, or a network its Fleet does not
    allow)."""


class EsimDownloadFailed(Exception):
    """The SM-DP+ refused an eUICC's download: the profile is `failed`."""


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
        self.session_id: str | None = None
        self._imsi = ""
        self._network = ("", "")
        self.esim_profile_sid: str | None = None

    def attach(self, runtime: Runtime, sim_sid: str, network: tuple[str, str] | None = None
               ) -> None:
        """Become the device of a SIM: attach to a network its Fleet allows (or `network`, an
        MCC/MNC) and open a data session with this device's address, through ingest as the
        network would report it. Raises DeviceRefused when the network says no."""
        with runtime.db.read() as db:
            imsi = db.scalar(select(Sim.imsi).where(Sim.sid == sim_sid))
            facts = access.sims_by_imsi(db, [imsi]).get(imsi) if imsi else None
        if facts is None or not imsi:
            raise DeviceRefused(f"{sim_sid} is not a registered Super SIM")
        mcc, mnc = network or min(facts.allowed_networks, default=("", ""))
        refusal = access.attach_decision(facts, mcc, mnc)
        if refusal is not None:
            raise DeviceRefused(f"{refusal[0]}: {refusal[1]}")
        self.session_id = f"device-{secrets.token_hex(8)}"
        now = runtime.clock.now()
        ingest(runtime, [
            NetworkEvent("attachment.accepted", imsi, now, mcc=mcc, mnc=mnc),
            NetworkEvent("session.started", imsi, now, session_id=self.session_id, apn="super",
                         mcc=mcc, mnc=mnc, ip_address=self.ip),
        ])
        self.sim_sid, self._imsi, self._network = sim_sid, imsi, (mcc, mnc)
        gateway.register(sim_sid, self)

    def detach(self, runtime: Runtime) -> None:
        """End the data session and leave the network."""
        if self.sim_sid:
            ingest(runtime, [NetworkEvent(
                "session.ended", self._imsi, runtime.clock.now(), session_id=self.session_id,
                mcc=self._network[0], mnc=self._network[1])])
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

    def download_esim(self, runtime: Runtime, eid: str, matching_id: str | None = None) -> str:
        """Download an available eSIM Profile into this device's eUICC (by its matching ID, or
        the one reserved for `eid`); returns the profile's SID, now `downloaded`. A download the
        SM-DP+ refuses leaves the profile `failed` and raises EsimDownloadFailed."""
        with runtime.db.write() as db:
            profile = service.available_esim_profile(db, eid, matching_id)
            downloaded = service.esim_downloaded(db, runtime, profile, eid)
            sid, error = profile.sid, profile.error_message
        if not downloaded:
            raise EsimDownloadFailed(f"eSIM Profile {sid}: {error}")
        self.esim_profile_sid = sid
        return sid

    def install_esim(self, runtime: Runtime, eid: str, matching_id: str | None = None) -> str:
        """Install the profile this device downloaded (downloading it first if it has not);
        returns the profile's SID, now `installed`."""
        if self.esim_profile_sid is None:
            self.download_esim(runtime, eid, matching_id)
        with runtime.db.write() as db:
            profile = db.execute(select(EsimProfile).where(
                EsimProfile.sid == self.esim_profile_sid)).scalar_one()
            service.esim_installed(db, runtime, profile)
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


def answer_ip_command(data: bytes) -> bytes:
    """What a device of the fleet simulator answers to an IP Command: `ack <payload>`."""
    return (b"ack " + data)[:service.MAX_IP_PAYLOAD]


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
