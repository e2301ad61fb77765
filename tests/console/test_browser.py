"""The console in a browser, on SQLite and PostgreSQL: sign in, find a SIM, read its usage chart,
change its status and send it a command (both seen through the official twilio client), watch
live updates arrive, and never see another account's SIM."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from tests.console.conftest import Console
from tests.support import Server, TestAccount

HOME = {}  # no serving network named: the SIM's own
INTERNATIONAL = {"mcc": "234", "mnc": "15"}  # Vodafone UK, abroad for a 901/42 SIM


def fleet(server: Server, account: TestAccount, count: int = 3) -> list[str]:
    account.client.wireless.v1.rate_plans.create(
        unique_name="everywhere", international_roaming=["data"], messaging_enabled=True)
    sids = server.provision(account.sid, count, status="active", rate_plan="everywhere")
    for n, sid in enumerate(sids):
        account.client.wireless.v1.sims(sid).update(unique_name=f"tracker-{n:02d}")
    return sids


def data(server: Server, sid: str, session: str, up: int, down: int, **where: object) -> None:
    """A data session that moved `up` and `down` bytes, as a packet gateway reports it."""
    server.network(sid, "attachment.accepted", **where)
    server.network(sid, "session.started", session_id=session, **where)
    server.network(sid, "session.updated", session_id=session, bytes_up=up, bytes_down=down,
                   **where)


def test_sign_in_search_and_read_a_sims_usage(signed_in: Console, server: Server,
                                              account: TestAccount) -> None:
    sids = fleet(server, account)
    data(server, sids[1], "s-home", 1000, 5000, lat=52.52, lon=13.40, cell_id="4711")
    data(server, sids[1], "s-abroad", 500, 2000, lat=51.5, lon=-0.12, **INTERNATIONAL)
    page = signed_in.page
    for name in ("Overview", "SIMs", "Event Streams", "Proxy"):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    page.get_by_role("link", name="Overview", exact=True).click()
    expect(page.locator("#open-sessions .big")).to_have_text("2")
    hour = server.clock.now().strftime("%Y-%m-%d %H:00")
    today_points = page.locator('table[data-points="chart-today"] tbody tr').filter(has_text=hour)
    expect(today_points.locator("td")).to_have_text([hour, "6000", "0", "2500"])
    expect(page.locator("#chart-today canvas").first).to_be_visible()
    signed_in.screenshot("overview")

    page.get_by_role("link", name="SIMs", exact=True).click()
    table = page.get_by_role("table")
    for header in ("SID", "ICCID", "Unique name", "Status"):
        expect(table.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(3)
    page.get_by_label("Search").fill("tracker-01")
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table.locator("tbody tr")).to_contain_text(sids[1])
    signed_in.screenshot("sims")

    page.get_by_role("link", name=sids[1]).click()
    usage = page.get_by_role("region", name="Usage")
    expect(usage.locator("canvas").first).to_be_visible()
    # The chart's data points, as the page gives them to the chart: today's bytes by roaming.
    today = server.clock.now().strftime("%Y-%m-%d")
    row = usage.locator("table.points tbody tr").filter(has_text=today)
    expect(row.locator("td")).to_have_text([today, "6000", "0", "2500"])
    sessions = page.get_by_role("region", name="Data sessions")
    expect(sessions.locator("li")).to_have_count(2)
    expect(page.locator("svg.map circle")).to_have_count(2)
    signed_in.screenshot("sim")

    page.get_by_role("link", name="Hourly, last 48 hours").click()
    hour = server.clock.now().strftime("%Y-%m-%d %H:00")
    expect(usage.locator("table.points tbody tr").filter(has_text=hour).locator("td")).to_have_text(
        [hour, "6000", "0", "2500"])


def test_suspend_and_command_go_through_the_api_rules(signed_in: Console, server: Server,
                                                      account: TestAccount) -> None:
    sid = fleet(server, account, 1)[0]
    page = signed_in.page
    signed_in.goto(f"/console/sims/{sid}")
    expect(page.get_by_role("button", name="Activate", exact=True)).to_have_count(0)  # already active
    page.get_by_role("button", name="Suspend", exact=True).click()
    expect(page.get_by_role("alertdialog")).to_contain_text("from active to suspended")
    signed_in.screenshot("confirm")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.locator("#sim-status")).to_have_text("suspended")
    assert account.client.wireless.v1.sims(sid).fetch().status == "suspended"
    expect(page.get_by_role("button", name="Activate", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Suspend", exact=True)).to_have_count(0)

    # A suspended SIM takes no command: the service's own words, on the page.
    page.get_by_label("Command").fill("ping")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("commands can only be sent to SIMs that are "
                                                      "ready or active")
    assert account.client.wireless.v1.commands.list(sim=sid) == []

    page.get_by_role("button", name="Activate", exact=True).click()
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.locator("#sim-status")).to_have_text("active")
    page.get_by_label("Command").fill("reboot now")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("queued")
    sent = account.client.wireless.v1.commands.list(sim=sid)
    assert [c.command for c in sent] == ["reboot now"]
    expect(page.locator("#commands tbody tr")).to_contain_text(["reboot now"])


def test_live_updates_reach_the_sim_page_and_the_overview(signed_in: Console, server: Server,
                                                          account: TestAccount) -> None:
    sid = fleet(server, account, 1)[0]
    page = signed_in.page
    signed_in.goto(f"/console/sims/{sid}")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    sessions = page.get_by_role("region", name="Data sessions")
    expect(sessions).to_contain_text("No data sessions yet")
    data(server, sid, "live-1", 10, 20)
    expect(sessions.locator("li")).to_have_count(1, timeout=5000)
    account.client.wireless.v1.commands.create(sim=sid, command="from the API")
    expect(page.locator("#commands")).to_contain_text("from the API", timeout=5000)

    signed_in.goto("/console/overview")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    expect(page.locator("#open-sessions .big")).to_have_text("1")
    server.clock.advance(timedelta(minutes=1))
    server.network(sid, "session.started", session_id="live-2")
    expect(page.locator("#open-sessions .big")).to_have_text("2", timeout=5000)


def test_another_accounts_sim_is_not_found(signed_in: Console, server: Server) -> None:
    other = server.new_account()
    theirs = server.provision(other.sid, 1)[0]
    response = signed_in.goto(f"/console/sims/{theirs}")
    assert response.status == 404
    expect(signed_in.page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(signed_in.page.get_by_role("region", name="Usage")).to_have_count(0)
    iccid = other.client.wireless.v1.sims(theirs).fetch().iccid
    assert iccid not in signed_in.page.content()
    live = signed_in.page.request.get(f"{server.base_url}/console/sims/{theirs}/live")
    assert live.status == 404
    signed_in.screenshot("not-found")


def test_api_key_sign_in_and_switching_into_a_subaccount(console: Console, server: Server,
                                                         account: TestAccount) -> None:
    child = server.new_account(parent=account.sid)
    theirs = server.provision(child.sid, 1)[0]
    key, secret = account.api_key()
    console.sign_in(key, secret)
    page = console.page
    signed = console.goto(f"/console/sims/{theirs}")
    assert signed.status == 404  # the parent's own view holds only its own SIMs
    console.goto("/console/overview")
    page.get_by_label("Account").select_option(child.sid)
    page.get_by_role("button", name="Switch", exact=True).click()
    console.goto(f"/console/sims/{theirs}")
    expect(page.get_by_role("heading", level=1)).to_have_text(theirs)
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page).to_have_url(re.compile(r".*/console/sign-in$"))
    console.goto(f"/console/sims/{theirs}")
    expect(page).to_have_url(re.compile(r".*/console/sign-in\?next=.*"))


def test_other_pages_render(signed_in: Console, server: Server, account: TestAccount) -> None:
    page = signed_in.page
    page.get_by_role("link", name="Rate plans").click()
    page.get_by_label("Unique name").fill("bulk-plan")
    page.get_by_label("Data limit (MB per month)").fill("250")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Saved WP")
    plans = account.client.wireless.v1.rate_plans.list()
    assert [(p.unique_name, p.data_limit) for p in plans] == [("bulk-plan", 250)]
    # The same rules as the API: a unique name is unique.
    page.get_by_label("Unique name").fill("bulk-plan")
    page.get_by_role("button", name="Create", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()
    signed_in.screenshot("rate-plans")
    for name in ("Event Streams", "Proxy", "Fleets", "Network Access Profiles"):
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text(name)
        signed_in.screenshot(name.lower().replace(" ", "-"))


def test_bulk_suspend_says_how_many_and_uses_the_rules(signed_in: Console, server: Server,
                                                       account: TestAccount) -> None:
    sids = fleet(server, account, 4)
    new = server.provision(account.sid, 2, status="new")  # a new SIM cannot be suspended
    page = signed_in.page
    signed_in.goto("/console/sims")
    page.get_by_text("Bulk action on the SIMs this list matches").click()
    page.get_by_label("Bulk action").select_option("suspend")
    page.get_by_role("button", name="Review", exact=True).click()
    review = page.get_by_role("alertdialog")
    expect(review).to_contain_text("This touches 4 SIMs")
    signed_in.screenshot("bulk")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("4 SIM(s) changed")
    statuses = {s.sid: s.status for s in account.client.wireless.v1.sims.list()}
    assert statuses == {**dict.fromkeys(sids, "suspended"), **dict.fromkeys(new, "new")}

    # Moving the SIMs a search matches to another rate plan.
    account.client.wireless.v1.rate_plans.create(unique_name="second")
    signed_in.goto("/console/sims?q=tracker-0")
    page.get_by_text("Bulk action on the SIMs this list matches").click()
    page.get_by_label("Bulk action").select_option("plan")
    page.get_by_label("New rate plan (for a change)").select_option(label="second")
    page.get_by_role("button", name="Review", exact=True).click()
    expect(page.get_by_role("alertdialog")).to_contain_text("This touches 4 SIMs")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("4 SIM(s) changed")
    second = [p.sid for p in account.client.wireless.v1.rate_plans.list() if p.unique_name == "second"]
    assert {account.client.wireless.v1.sims(sid).fetch().rate_plan_sid for sid in sids} == set(second)


def test_keyboard_alone_signs_in_and_suspends(console: Console, server: Server,
                                              account: TestAccount) -> None:
    sid = fleet(server, account, 1)[0]
    page = console.page
    console.goto(f"/console/sims/{sid}")  # sends to the sign-in page, then back here
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    page.keyboard.type(account.sid)
    page.keyboard.press("Tab")
    page.keyboard.type(account.token)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("tracker-00")
    page.get_by_role("button", name="Suspend", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Confirm", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#sim-status")).to_have_text("suspended")
    assert account.client.wireless.v1.sims(sid).fetch().status == "suspended"


def test_search_narrows_the_list_as_one_types(signed_in: Console, server: Server,
                                              account: TestAccount) -> None:
    sids = fleet(server, account, 3)
    page = signed_in.page
    signed_in.goto("/console/sims")
    rows = page.get_by_role("table").locator("tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label("Search").press_sequentially("tracker-02")  # no Apply: htmx fetches
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text(sids[2])
    expect(page).to_have_url(re.compile(r".*q=tracker-02.*"))
    page.get_by_label("Status").select_option("suspended")
    expect(page.get_by_text("No SIMs match.")).to_be_visible()
