"""KORE's OAuth: what a token costs to issue and what a bearer-verified request costs, against
Basic auth on the same handler and a bare FastAPI route outside simplane (the ceiling).

    .venv/bin/python bench/kore_auth.py [--requests 4000] [--concurrency 8] [--rounds 3]

`simplane serve` on a fresh SQLite database with the bootstrap account, one KORE API client of
it (made in-process, as `simplane kore clients create` makes one) and 20 Fleets. Each round runs,
back to back, with bench/_load.py (aiohttp, keep-alive connections, its own process):

- bare: `GET /bare` of a bare FastAPI app on uvicorn in a process of its own (no auth, no
  database, a constant JSON answer): the ceiling;
- basic: `GET /supersim/v1/Fleets?PageSize=1`, HTTP Basic (Twilio's flavour, the auth cache);
- bearer: `GET /kore/supersim/v1/Fleets?PageSize=1`, the same handler, a bearer token;
- token: `POST /kore/api-services/v1/auth/token` (client credentials in Basic, as Authlib's
  client_secret_basic sends them): each answer a new token.

Reported: req/s and p50 per variant (medians over rounds), server CPU per request (from
/proc/<pid>/stat), and the ratios bearer/basic and each to the ceiling. Then, in-process, the
cost of the checks alone: `Verifier.cached` plus the clock's now (the bearer fast path) and
`Authenticator.cached` (Basic's), and a full `Verifier.verify` (a cache miss: HMAC and one read).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    HERE,
    PYTHON,
    ServerProcess,
    free_port,
    simplane_serve,
    wait_for_port,
)

BARE_APP = """import sys, orjson, uvicorn
from fastapi import FastAPI
from fastapi.responses import Response
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
BODY = orjson.dumps({"fleets": [], "meta": {"page_size": 1}})
@app.get("/bare")
def bare() -> Response:
    return Response(BODY, media_type="application/json")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def setup(url: str) -> tuple[str, str]:
    """The bootstrap account's KORE client (id, secret) and 20 Fleets, in-process."""
    os.environ.update(SIMPLANE_ACCOUNT_SID=ACCOUNT_SID, SIMPLANE_AUTH_TOKEN=AUTH_TOKEN)
    from simplane.config import Settings
    from simplane.core.runtime import Runtime
    from simplane.kore import service

    rt = Runtime(Settings(database_url=url, run_workers=False))
    rt.ensure_bootstrap()
    with rt.db.write() as db:
        made, secret = service.create_client(db, rt.box, rt.clock, ACCOUNT_SID, name="bench",
                                             products=list(service.PRODUCTS),
                                             client_type="admin")
        client_id = made.client_id
    rt.close()
    return client_id, secret


def load(url: str, args: argparse.Namespace, workdir: Path, *, user: str = ACCOUNT_SID,
         password: str = AUTH_TOKEN, bearer: str | None = None,
         form: str | None = None) -> dict:
    (workdir / "urls.txt").write_text(url)
    argv = [PYTHON, str(HERE / "_load.py"), "--urls-file", str(workdir / "urls.txt"),
            "--user", user, "--password", password, "--concurrency", str(args.concurrency),
            "--requests", str(args.requests), "--warmup", "400"]
    if bearer:
        argv += ["--bearer", bearer]
    if form:
        (workdir / "forms.txt").write_text(form)
        argv += ["--forms-file", str(workdir / "forms.txt")]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} answers were not 200: {result}")
    return result


def measured(server: ServerProcess | None, run) -> dict:  # type: ignore[no-untyped-def]
    before = server.cpu_seconds() if server else 0.0
    result = run()
    if server:
        result["cpu_us"] = (server.cpu_seconds() - before) / result["sent"] * 1e6
    return result


def in_process(url: str, client_id: str, secret: str) -> None:
    """The checks alone, without HTTP."""
    from simplane.config import Settings
    from simplane.core.runtime import Runtime
    from simplane.kore import tokens
    from simplane.kore.models import ApiClient

    rt = Runtime(Settings(database_url=url, run_workers=False))
    with rt.db.read() as db:
        from sqlalchemy import select
        client = db.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    token = tokens.issue(rt.box, client, rt.clock.now())
    verifier = tokens.Verifier(rt.db, rt.box)
    verifier.verify(token)
    rt.authenticator.verify(ACCOUNT_SID, AUTH_TOKEN)
    n = 200_000

    def bearer_fast() -> None:
        grant = verifier.cached(token)
        if grant is None:  # the generation is read again every REFRESH seconds
            grant = verifier.verify(token)
        assert grant is not None and grant.expires > rt.clock.now()

    fast = min(timeit.repeat(bearer_fast, number=n, repeat=3)) / n * 1e6
    basic = min(timeit.repeat(lambda: rt.authenticator.cached(ACCOUNT_SID, AUTH_TOKEN),
                              number=n, repeat=3)) / n * 1e6
    issue = min(timeit.repeat(lambda: tokens.issue(rt.box, client, rt.clock.now()),
                              number=20_000, repeat=3)) / 20_000 * 1e6

    def miss() -> None:
        verifier.forget()
        verifier.verify(token)

    full = min(timeit.repeat(miss, number=2_000, repeat=3)) / 2_000 * 1e6
    print(f"in-process: bearer fast path (cache + clock) {fast:.2f} µs, Basic cache "
          f"{basic:.2f} µs, bearer/basic {fast / basic:.1f}; signing a token {issue:.1f} µs; "
          f"a cache miss (HMAC, generation and client read) {full:.0f} µs", flush=True)
    routing(rt)
    rt.close()


def routing(rt) -> None:  # type: ignore[no-untyped-def]
    """What finding the route costs (FastAPI matches the app's routes in order, KORE's last)."""
    from starlette.routing import Match

    from simplane.app import create_app

    routes = create_app(rt).router.routes

    def find(path: str) -> None:
        scope = {"type": "http", "path": path, "method": "GET", "root_path": "",
                 "path_params": {}}
        for route in routes:
            if route.matches(scope)[0] == Match.FULL:
                return

    costs = {path: min(timeit.repeat(lambda p=path: find(p), number=2_000, repeat=3)) / 2_000
             * 1e6 for path in ("/supersim/v1/Fleets", "/kore/supersim/v1/Fleets")}
    print("route matching: " + ", ".join(f"{p} {c:.0f} µs" for p, c in costs.items()),
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "simplane-bench-kore")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for old in args.workdir.glob("kore.*"):
        old.unlink()
    url = f"sqlite:///{args.workdir / 'kore.db'}"
    os.environ.pop("SIMPLANE_SECRET_KEY", None)
    client_id, secret = setup(url)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) before the run", flush=True)
    server = simplane_serve(url)
    port = free_port()
    bare = subprocess.Popen([PYTHON, "-c", BARE_APP, str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(bare, port, "the bare FastAPI app")
        base = server.base_url
        token_url = f"{base}/kore/api-services/v1/auth/token"
        token = httpx.post(token_url, data={"grant_type": "client_credentials"},
                           auth=(client_id, secret)).json()["access_token"]
        httpx.post(f"{base}/supersim/v1/NetworkAccessProfiles", data={"UniqueName": "nap"},
                   auth=(ACCOUNT_SID, AUTH_TOKEN)).raise_for_status()
        for i in range(20):
            httpx.post(f"{base}/supersim/v1/Fleets", auth=(ACCOUNT_SID, AUTH_TOKEN),
                       data={"UniqueName": f"f{i}", "NetworkAccessProfile": "nap"}
                       ).raise_for_status()
        runs: dict[str, list[dict]] = {"bare": [], "basic": [], "bearer": [], "token": []}
        for _ in range(args.rounds):
            runs["bare"].append(measured(None, lambda: load(
                f"http://127.0.0.1:{port}/bare", args, args.workdir)))
            runs["basic"].append(measured(server, lambda: load(
                f"{base}/supersim/v1/Fleets?PageSize=1", args, args.workdir)))
            runs["bearer"].append(measured(server, lambda: load(
                f"{base}/kore/supersim/v1/Fleets?PageSize=1", args, args.workdir,
                bearer=token)))
            runs["token"].append(measured(server, lambda: load(
                token_url, args, args.workdir, user=client_id, password=secret,
                form="grant_type=client_credentials")))
        med = {k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50_ms")}
               for k, v in runs.items()}
        for k in ("basic", "bearer", "token"):
            med[k]["cpu_us"] = statistics.median(r["cpu_us"] for r in runs[k])
        for k, v in med.items():
            cpu = f", server CPU {v['cpu_us']:.0f} µs/request" if "cpu_us" in v else ""
            print(f"{k:>6}: {v['rps']:.0f} req/s, p50 {v['p50_ms']:.2f} ms{cpu}", flush=True)
        print(f"ratios (req/s): bearer/basic {med['bearer']['rps'] / med['basic']['rps']:.2f}, "
              f"basic/bare {med['basic']['rps'] / med['bare']['rps']:.2f}, "
              f"bearer/bare {med['bearer']['rps'] / med['bare']['rps']:.2f}, "
              f"token/bare {med['token']['rps'] / med['bare']['rps']:.2f}; server CPU "
              f"bearer/basic {med['bearer']['cpu_us'] / med['basic']['cpu_us']:.2f}", flush=True)
    finally:
        bare.terminate()
        bare.wait()
        server.stop()
    in_process(url, client_id, secret)
    print(f"load: {os.getloadavg()[0]:.2f} (1 min) after the run", flush=True)


if __name__ == "__main__":
    main()
