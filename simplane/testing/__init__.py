"""A pytest plugin for code that calls Twilio's IoT and Proxy APIs: `pip install simplane` and
ask for the `simplane` fixture (registered through the `pytest11` entry point).

    def test_sim_activates_on_its_own(simplane):
        sim = simplane.sims.provision(status="ready")[0]
        simplane.clock.advance("95d")
        assert simplane.client.wireless.v1.sims(sim).fetch().status == "active"

See `Simplane` for the handle: `url`, `account_sid`, `auth_token`, `client`, `clock`, `sims`,
`device(sim)`, `webhooks`, `faults`, `reset()`.
"""

from simplane.testing.plugin import Simplane, Webhooks, pytest_addoption, simplane, simplane_server

__all__ = ["Simplane", "Webhooks", "pytest_addoption", "simplane", "simplane_server"]
