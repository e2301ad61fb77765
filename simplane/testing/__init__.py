"""A pytest plugin for code that calls Twilio's IoT and Proxy APIs: `pip install simplane` and
ask for the `simplane` fixture (registered through the `pytest11` entry point).

    def test_sim_activates_on_its_own(simplane):
        sim = simplane.sims.provision(status="ready")[0]
        simplane.clock.advance("95d")
        assert simplane.client.wireless.v1.sims(sim).fetch().status == "active"

See `Simplane` for the handle: `url`, `account_sid`, `auth_token`, `client`, `clock`, `sims`,
`device(sim)`, `webhooks`, `faults`, `reset()`. Loading the plugin imports no more than pytest:
the server's modules are imported when a test first asks for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simplane.testing.plugin import pytest_addoption, simplane, simplane_server

if TYPE_CHECKING:
    from simplane.testing.handle import Simplane, Webhooks

__all__ = ["Simplane", "Webhooks", "pytest_addoption", "simplane", "simplane_server"]


def __getattr__(name: str) -> Any:
    if name in ("Simplane", "Webhooks"):
        from simplane.testing import handle

        return getattr(handle, name)
    raise AttributeError(f"module 'simplane.testing' has no attribute {name!r}")
