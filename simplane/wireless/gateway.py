"""The device gateway: how a to-SIM command reaches a device once the network says it is attached
(`network_sim_states.attached`, kept by ingest). The delivery job asks the network, not the
gateway, whether a device is there.

`VirtualDevices` stands in for real devices: an attached device receives its commands at once and
acknowledges them.
"""

from __future__ import annotations

from typing import Protocol

from simplane.wireless.models import Command, Sim


class DeviceGateway(Protocol):
    def deliver(self, sim: Sim, command: Command) -> bool | None:
        """Hand the command to the attached device; True when the device acknowledged it, None
        when the device has not taken it yet (it stays queued and is offered again)."""

    def reset(self, sim: Sim) -> bool:
        """Reset the SIM's connectivity; True when done."""


class VirtualDevices:
    def deliver(self, sim: Sim, command: Command) -> bool:
        return True

    def reset(self, sim: Sim) -> bool:
        return True


gateway: DeviceGateway = VirtualDevices()
