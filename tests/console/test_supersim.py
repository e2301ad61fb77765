"""The console on Super SIMs: the list, a SIM's lifecycle through the scheduled change the API
makes, its SMS Commands, and its Connection Events arriving live."""

from __future__ import annotations

from playwright.sync_api import expect
from sqlalchemy import select

from simplane.network.events import NetworkEvent
from simplane.network.ingest import ingest
from simplane.supersim.models import Sim
from tests.console.conftest import Console
from tests.supersim.conftest import ATT, stock
from tests.support import Server, TestAccount


def on_network(server: Server, sid: str, kind: str, **facts: object) -> None:
    with server.runtime.db.read() as db:
        imsi = db.scalar(select(Sim.imsi).where(Sim.sid == sid))
    ingest(server.runtime, [NetworkEvent(kind=kind, imsi=imsi, time=server.clock.now(),
                                         mcc="310", mnc="410", **facts)])  # AT&T, in the profile


def test_a_super_sims_page(signed_in: Console, server: Server, account: TestAccount) -> None:
    client = account.client.supersim.v1
    client.network_access_profiles.create(unique_name="us-only", networks=[ATT.sid])
    client.fleets.create(network_access_profile="us-only", unique_name="trackers")
    [row] = stock(server)
    sid = client.sims.create(iccid=row["iccid"], registration_code=row["registration_code"]).sid
    client.sims(sid).update(fleet="trackers", unique_name="pallet-7")

    page = signed_in.page
    signed_in.goto("/console/sims?product=supersim")
    page.get_by_label("Search").fill("pallet")
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.get_by_role("table").locator("tbody tr")).to_have_count(1)
    page.get_by_role("link", name=sid).click()
    expect(page.get_by_role("button", name="Suspend", exact=True)).to_have_count(0)  # no such
    page.get_by_role("button", name="Activate", exact=True).click()
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("under way")
    assert client.sims(sid).fetch().status == "scheduled"
    server.drain()
    assert client.sims(sid).fetch().status == "active"
    page.reload()
    expect(page.locator("#sim-status")).to_have_text("active")
    expect(page.get_by_role("button", name="Deactivate", exact=True)).to_be_visible()

    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    events = page.locator("#connection-events")
    expect(events).to_contain_text("No connection events yet")
    on_network(server, sid, "attachment.accepted")
    expect(events.locator("tbody tr")).to_have_count(1, timeout=5000)
    expect(events).to_contain_text("attachment.accepted")

    page.get_by_label("Command").fill("hello device")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("queued")
    assert [c.payload for c in client.sms_commands.list(sim=sid)] == ["hello device"]
    signed_in.screenshot("super-sim")

    on_network(server, sid, "session.started", session_id="s1")
    on_network(server, sid, "session.updated", session_id="s1", bytes_up=300, bytes_down=700)
    page.reload()
    today = server.clock.now().strftime("%Y-%m-%d")
    expect(page.locator("table.points tbody tr").filter(has_text=today).locator("td")).to_have_text(
        [today, "1000"])
    expect(page.get_by_role("region", name="Data sessions").locator("li")).to_have_count(1)

    signed_in.goto("/console/overview")
    expect(page.locator("#super-sim-month")).to_have_text("1.0 kB")
    expect(page.locator("#latest-events")).to_contain_text("attachment.accepted")
    expect(page.locator("#latest-events")).to_contain_text(sid)
