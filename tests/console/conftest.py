"""The console in a real browser: Debian's chromium driven by Playwright (Playwright's own
browser download is not used). Without chromium these tests skip, unless REQUIRE_BROWSER=1."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from simplane.core.accounts import FailureCounter
from tests.support import Server, TestAccount

CHROMIUM = os.environ.get("SIMPLANE_TEST_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """One chromium for the console's tests, closed after the last of them: Playwright's sync API
    runs an event loop in this thread while it is open, where later tests call asyncio.run."""
    missing = None
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        missing = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = missing or "the playwright package is not installed (pip install -e '.[test]')"
    if missing:
        if REQUIRE_BROWSER:
            pytest.fail(f"a browser is required (REQUIRE_BROWSER=1) but there is {missing}")
        pytest.skip(missing)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Console:
    """A browser tab on the console, with what the tests do over and over."""

    def __init__(self, page, server: Server, shots: Path) -> None:  # type: ignore[no-untyped-def]
        self.page = page
        self.server = server
        self.shots = shots
        self.problems: list[str] = []
        # Script errors and CSP violations, and any asset that failed to load (a page itself may
        # answer 4xx on purpose: a form refused, a SIM not found).
        page.on("console", lambda m: self.problems.append(m.text) if m.type == "error"
                and not m.text.startswith("Failed to load resource") else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        page.on("response", lambda r: self.problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and r.request.resource_type != "document" else None)

    def goto(self, path: str):  # type: ignore[no-untyped-def]
        return self.page.goto(self.server.base_url + path)

    def sign_in(self, username: str, secret: str) -> None:
        self.goto("/console/sign-in")
        self.page.get_by_label("Account SID").fill(username)
        self.page.get_by_label("Auth token").fill(secret)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r".*/console/overview$"))

    def screenshot(self, name: str) -> None:
        """The page at desktop and at phone width, kept under the test's output folder."""
        self.shots.mkdir(parents=True, exist_ok=True)
        size = self.page.viewport_size
        for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(viewport)
            width = self.page.evaluate("document.documentElement.scrollWidth")
            if width > viewport["width"]:  # usable at that width: nothing runs off the side
                self.problems.append(f"{name} is {width}px wide at {label} width")
            self.page.screenshot(path=str(self.shots / f"{name}-{label}.png"), full_page=True)
        if size:
            self.page.set_viewport_size(size)


@pytest.fixture
def console(browser, server: Server, tmp_path: Path) -> Iterator[Console]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(10_000)
    tab = Console(page, server, tmp_path / "screenshots")
    yield tab
    context.close()
    # No script error and no Content-Security-Policy violation on any page the test saw.
    assert not tab.problems, tab.problems


def forget_failures(server: Server) -> None:
    authenticator = server.runtime.authenticator
    authenticator.by_address = FailureCounter(authenticator.FAILURES_PER_ADDRESS,
                                              authenticator.WINDOW)
    authenticator.by_sid = FailureCounter(authenticator.FAILURES_PER_SID, authenticator.WINDOW)


@pytest.fixture(autouse=True)
def _fresh_failures(server: Server) -> Iterator[None]:
    """Failed sign-ins are counted per address, and every test signs in from 127.0.0.1."""
    forget_failures(server)
    yield
    forget_failures(server)


@pytest.fixture
def signed_in(console: Console, account: TestAccount) -> Console:
    console.sign_in(account.sid, account.token)
    return console
