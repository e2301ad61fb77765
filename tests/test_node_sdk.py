"""The official Node.js SDK (`twilio` on npm) drives simplane through Wireless, Super SIM, Event
Streams and Proxy, with paging and errors, pointed at it as the README shows
(tests/node/scenario.js). Needs node and npm; `npm install twilio` runs once into pytest's
cache. Skipped without them, unless REQUIRE_NODE=1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.proxy.conftest import own
from tests.support import raises

SDK = "twilio@5"
SCENARIO = Path(__file__).parent / "node" / "scenario.js"
REQUIRE_NODE = os.environ.get("REQUIRE_NODE") == "1"


def unavailable(reason: str) -> None:
    if REQUIRE_NODE:
        pytest.fail(f"the Node.js SDK is required (REQUIRE_NODE=1) but {reason}")
    pytest.skip(f"{reason} (REQUIRE_NODE=1 fails instead)")


@pytest.fixture(scope="session")
def node_modules(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Path:
    """A folder with the SDK installed, kept in pytest's cache between runs (a temporary one
    when the cache is off, `-p no:cacheprovider`)."""
    if not shutil.which("node") or not shutil.which("npm"):
        unavailable("node and npm are not on PATH")
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir(f"node-{SDK}") if cache else tmp_path_factory.mktemp("node")
    if not (folder / "node_modules" / "twilio" / "package.json").exists():
        try:
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-save", "--silent",
                            "--prefix", str(folder), SDK], check=True, capture_output=True,
                           timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            unavailable(f"`npm install {SDK}` failed: {getattr(exc, 'stderr', b'')!r}")
    return folder / "node_modules"


def test_the_node_sdk_drives_every_product(server, account, node_modules):
    sims = server.provision(account.sid, 3)
    own(account, "+14155550100", "+14155550101")  # for the Proxy pool
    done = subprocess.run(
        ["node", str(SCENARIO)], check=False, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NODE_PATH": str(node_modules), "SIMPLANE_URL": server.base_url,
             "TWILIO_ACCOUNT_SID": account.sid, "TWILIO_AUTH_TOKEN": account.token})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    python = account.client

    assert sorted(seen["simSids"]) == sorted(sims)  # listed a page of one at a time
    assert seen["activated"] == {"status": "active", "uniqueName": "tracker-1",
                                 "ratePlanSid": python.wireless.v1.rate_plans("fleet").fetch().sid}
    assert python.wireless.v1.sims("tracker-1").fetch().status == "active"
    assert seen["command"] == "queued"
    assert seen["pages"] == [2, 1]

    assert seen["fleet"] == {"nap": True, "dataLimit": 100}
    assert seen["fleets"] == ["trackers"]

    types = [t.type for t in python.events.v1.event_types.list()]
    assert seen["eventTypes"] == types and len(types) > 3  # paged three at a time
    sink = python.events.v1.sinks(seen["sink"]["sid"]).fetch()
    assert (sink.description, sink.status) == ("fleet events", seen["sink"]["status"])

    assert seen["proxy"] == {"session": "ride-1", "participants": ["+14155550111", "+14155550122"],
                             "proxyNumbers": 2, "interaction": "KI"}

    # Errors: the Node SDK reads the status, code and link the Python one does.
    assert seen["notFound"] == {
        "status": 404, "code": 20404, "moreInfo": "https://www.twilio.com/docs/errors/20404",
        "message": seen["notFound"]["message"]}
    with raises(seen["badParameter"]["code"], seen["badParameter"]["status"]) as bad:
        python.wireless.v1.rate_plans.create(data_limit=-5)
    assert seen["badParameter"]["status"] == 400 and "DataLimit" in seen["badParameter"]["message"]
    assert bad.error.msg.endswith(seen["badParameter"]["message"])  # Python prefixes its own
    with raises(seen["duplicate"]["code"], seen["duplicate"]["status"]):
        python.proxy.v1.services.create(unique_name="rides")
