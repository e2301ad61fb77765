"""One account's slow Proxy callbacks vs another account's latency, on SQLite, one server.

    .venv/bin/python bench/callback_isolation.py [--attackers 48] [--delay 4.5]
                                                 [--requests 400] [--concurrency 4]
                                                 [--rounds 3] [--cap 16] [--pause 1]
                                                 [--workdir DIR]

The attack: an account whose Proxy Service has an out-of-session callback that answers after
`--delay` seconds (a receiver on loopback, in this process, allowed with
SIMPLANE_OUTBOUND_ALLOW=loopback). `--attackers` clients each post inbound messages to
`POST /proxy/operator/Messages` one after the other, so that many callbacks are awaited at once
all the time. `--cap` is SIMPLANE_CALLBACK_CONCURRENCY for the server: above `--attackers`,
every message's callback is awaited (the most callbacks awaited at once); below it, the
messages over the cap are turned away at once (429), and their attackers post again after
`--pause` seconds (0: at once, a flood of requests).

Measured, each with bench/_load.py (`--requests` GETs at `--concurrency`):

- `victim`: the bootstrap account's `GET /wireless/v1/Sims` (50 SIMs, first page), without and
  during the attack;
- `ceiling`: `GET /bench/plain`, an `async def` FastAPI route with no simplane in it, during the
  attack: what the framework and the machine give while the attack runs.

Printed: p50/p99 of each, and victim p99 during the attack over the ceiling's p99 and over the
victim's own p99 without the attack.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import bench_serve, free_port, load, provision

POOL = "+14155550100"


class Attack:
    """The slow callback receiver and the attacking clients, on an event loop of their own."""

    def __init__(self, delay: float, pause: float) -> None:
        self.delay = delay
        self.pause = pause
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.answers: dict[int, int] = {}
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def callback(_request: web.Request) -> web.Response:
            await asyncio.sleep(self.delay)
            return web.Response(text="<Response/>", content_type="text/xml")

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/oos", callback)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port, backlog=1024).start()
            self._ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/oos"

    def start(self, base_url: str, sid: str, token: str, clients: int) -> None:
        self._task = asyncio.run_coroutine_threadsafe(
            self._attack(base_url, sid, token, clients), self.loop)

    async def _attack(self, base_url: str, sid: str, token: str, clients: int) -> None:
        self._stop = asyncio.Event()
        auth = {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()}
        timeout = aiohttp.ClientTimeout(total=120)
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(headers=auth, connector=connector,
                                         timeout=timeout) as s:
            async def client(n: int) -> None:
                form = {"From": f"+1415600{n:04d}", "To": POOL, "Body": "hello?"}
                while not self._stop.is_set():
                    async with s.post(f"{base_url}/proxy/operator/Messages", data=form) as r:
                        await r.read()
                        self.answers[r.status] = self.answers.get(r.status, 0) + 1
                    if r.status == 429 and self.pause:
                        await asyncio.sleep(self.pause)

            await asyncio.gather(*(client(n) for n in range(clients)))

    def stop(self) -> dict[int, int]:
        """Ends the attack once every attacker's message has been answered; what they were
        answered, by status."""
        self.loop.call_soon_threadsafe(self._stop.set)
        self._task.result(timeout=600)
        answers, self.answers = self.answers, {}
        return answers

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def attacker(database_url: str, callback_url: str) -> tuple[str, str]:
    """A second account with a Proxy Service whose out-of-session callback is `callback_url`
    and one pool number it owns."""
    from simplane.config import Settings
    from simplane.core.accounts import create_account
    from simplane.core.runtime import Runtime
    from simplane.proxy import service

    rt = Runtime(Settings(database_url=database_url, run_workers=False))
    with rt.db.write() as db:
        creds = create_account(db, rt.box, rt.clock)
        service.add_account_numbers(db, creds.sid, [POOL], rt.clock.now())
    rt.close()
    return creds.sid, creds.secret


def setup_service(base_url: str, sid: str, token: str, callback_url: str) -> None:
    import httpx

    with httpx.Client(auth=(sid, token), base_url=f"{base_url}/proxy/v1", timeout=30) as c:
        svc = c.post("/Services", data={"UniqueName": "slow",
                                        "OutOfSessionCallbackUrl": callback_url})
        svc.raise_for_status()
        c.post(f"/Services/{svc.json()['sid']}/PhoneNumbers",
               data={"PhoneNumber": POOL}).raise_for_status()


def figure(run: dict) -> str:
    return f"p50 {run['p50_ms']:.1f} ms, p99 {run['p99_ms']:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attackers", type=int, default=48)
    parser.add_argument("--delay", type=float, default=4.5)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="each: the victim without the attack, then the ceiling and the "
                        "victim during it")
    parser.add_argument("--cap", type=int, default=16,
                        help="SIMPLANE_CALLBACK_CONCURRENCY of the server (its default: 16)")
    parser.add_argument("--pause", type=float, default=1.0,
                        help="seconds an attacker turned away (429) waits before posting again")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir())
                                                 / "simplane-bench-callbacks"))
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("bench.*"):
        old.unlink()
    (workdir / "count").unlink(missing_ok=True)
    os.environ.pop("SIMPLANE_SECRET_KEY", None)
    os.environ.update(SIMPLANE_OUTBOUND_ALLOW="loopback",
                      SIMPLANE_CALLBACK_CONCURRENCY=str(args.cap))
    database_url = provision(workdir, 50)  # the victim's SIMs, on the bootstrap account
    attack = Attack(args.delay, args.pause)
    sid, token = attacker(database_url, attack.url)
    server = bench_serve(database_url)
    try:
        setup_service(server.base_url, sid, token, attack.url)
        victim_url = f"{server.base_url}/wireless/v1/Sims"
        plain_url = f"{server.base_url}/bench/plain"

        def measure(url: str) -> dict:
            return load(server, [url], args.requests, args.concurrency, workdir,
                        warmup=50, timeout=1800)

        runs: dict[str, list[dict]] = {"victim_quiet": [], "ceiling_attack": [],
                                       "victim_attack": []}
        answers: dict[int, int] = {}
        for i in range(args.rounds):
            runs["victim_quiet"].append(measure(victim_url))
            attack.start(server.base_url, sid, token, args.attackers)
            time.sleep(args.delay + 1)  # every attacker has a callback under way
            runs["ceiling_attack"].append(measure(plain_url))
            runs["victim_attack"].append(measure(victim_url))
            for status, count in attack.stop().items():
                answers[status] = answers.get(status, 0) + count
            print(f"round {i + 1}: victim without the attack "
                  f"{figure(runs['victim_quiet'][-1])}; during it: ceiling "
                  f"{figure(runs['ceiling_attack'][-1])}, victim "
                  f"{figure(runs['victim_attack'][-1])}", flush=True)
    finally:
        server.stop()
        attack.close()
    median = {name: {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms")}
              for name, rs in runs.items()}
    quiet, ceiling, loud = (median[k] for k in ("victim_quiet", "ceiling_attack",
                                                "victim_attack"))
    print(json.dumps({
        "attackers": args.attackers, "delay_s": args.delay, "cap": args.cap,
        "pause_s": args.pause,
        "attack_answers": answers, "medians": median,
        "victim_p99_over_ceiling_p99": round(loud["p99_ms"] / ceiling["p99_ms"], 2),
        "victim_p99_attack_over_quiet": round(loud["p99_ms"] / quiet["p99_ms"], 2)}))


if __name__ == "__main__":
    main()
