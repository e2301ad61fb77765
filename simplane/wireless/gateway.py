"""The device gateway: how a to-SIM command reaches a device.

`VirtualDevices` stands in for real devices until the network simulator drives them: every SIM
that may take commands is reachable, receives its commands at once and acknowledges them.
"""

from __future__ import annotations

from typing import Protocol

from simplane.wireless.models import Command, Sim


class DeviceGateway(Protocol):
    def reachable(self, sim: Sim) -> bool:
        """Whether the device is attached and a command sent now would reach it."""

    def deliver(self, sim: Sim, command: Command) -> bool:
        """Hand the command to the device; True when the device acknowledged it."""

    def reset(self, sim: Sim) -> bool:
        """Reset the SIM's connectivity; True when done."""


class VirtualDevices:
    def reachable(self, sim: Sim) -> bool:
        return sim.status in ("ready", "active")

    def deliver(self, sim: Sim, command: Command) -> bool:
        return True

    def reset(self, sim: Sim) -> bool:
        return True


gateway: DeviceGateway = VirtualDevices()
