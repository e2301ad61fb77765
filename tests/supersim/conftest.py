"""Super SIM fixtures: SIMs from the operator's inventory, a profile, a fleet."""

from __future__ import annotations

import pytest

from simplane.supersim import inventory, networks

# Networks of the catalogue the tests attach to.
ATT = networks.network_for("310", "410")
VODAFONE_UK = networks.network_for("234", "15")


def stock(server, count: int = 1) -> list[dict]:  # type: ignore[no-untyped-def]
    """SIMs put into the operator's inventory, as `simplane sims provision --product supersim`
    does: unregistered, each with its ICCID and registration code."""
    with server.runtime.db.write() as db:
        return inventory.add_sims(db, inventory.generated_rows(count), server.clock.now())


@pytest.fixture
def nap(twilio):  # type: ignore[no-untyped-def]
    return twilio.supersim.v1.network_access_profiles.create(unique_name="us-only",
                                                             networks=[ATT.sid])


@pytest.fixture
def fleet(twilio, nap):  # type: ignore[no-untyped-def]
    return twilio.supersim.v1.fleets.create(network_access_profile="us-only", unique_name="fleet")


@pytest.fixture
def registered(server, twilio):  # type: ignore[no-untyped-def]
    """A new SIM registered to the test's account."""
    [row] = stock(server)
    return twilio.supersim.v1.sims.create(iccid=row["iccid"],
                                          registration_code=row["registration_code"])


@pytest.fixture
def active_sim(server, twilio, fleet, registered):  # type: ignore[no-untyped-def]
    sim = twilio.supersim.v1.sims(registered.sid).update(fleet=fleet.sid, status="active",
                                                        unique_name="tracker")
    assert sim.status == "scheduled"
    server.drain()
    return twilio.supersim.v1.sims(registered.sid).fetch()
