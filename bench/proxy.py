"""Proxy figures on SQLite, one server process: inbound message routing vs a bare endpoint.

    .venv/bin/python bench/proxy.py [--sessions 500] [--requests 3000] [--concurrency 16]
                                    [--rounds 5] [--workdir /tmp/simplane-bench-proxy]
                                    [--no-worker]

route: POST /proxy/operator/Messages (From, To, Body), as the carrier hands over an inbound SMS:
find the open Session for the sender and proxy number, record the Interaction, queue the
outbound leg (the background worker hands it to the simulated carrier, in the same process).
Senders rotate over `--sessions` two-participant Sessions.

bare: POST /proxy/operator/BenchBare with the same form, through the same kernel path
(`ProductAPI.operator`, own transactions: Basic auth, form parsing, JSON rendering, metrics,
logs) but a handler that returns a constant without touching the database. It is the ceiling.

Runs alternate bare/route; the script prints the median of the per-round ratios route/bare
(throughput) and the server CPU per request of each. `--no-worker` starts the server without
its background worker, so nothing is delivered: it isolates the cost of routing itself from
the worker's (which runs every product's jobs on each pass).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, PYTHON, ServerProcess, free_port, load

AUTH = (ACCOUNT_SID, AUTH_TOKEN)
BARE_PATH = "/operator/BenchBare"
POOL = ["+14155550100", "+14155550101"]


# --- the server: `simplane serve` plus the bare endpoint -------------------------------------

def serve(database_url: str, port: int, worker: bool) -> None:
    import uvicorn

    from simplane.app import create_app
    from simplane.config import Settings
    from simplane.core import logs
    from simplane.core.api import Ctx, ProductAPI
    from simplane.core.runtime import Runtime
    from simplane.proxy.service import add_account_numbers

    api = ProductAPI("proxy")

    def bare(ctx: Ctx) -> dict:
        return {"interaction_sid": "KI" + "0" * 32, "session_sid": "KC" + "0" * 32,
                "to": "+14155550000", "from": POOL[0], "body": "bare"}

    api.operator("POST", BARE_PATH, status=201, own_transactions=True)(bare)
    logs.configure("warning")
    runtime = Runtime(Settings(database_url=database_url, run_workers=worker))
    runtime.ensure_bootstrap()
    with runtime.db.write() as db:  # the pool's numbers, as `simplane proxy numbers add` gives
        add_account_numbers(db, ACCOUNT_SID, POOL, runtime.clock.now())
    app = create_app(runtime)
    app.include_router(api.router)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def start(database_url: str, worker: bool) -> ServerProcess:
    port = free_port()
    argv = [PYTHON, str(Path(__file__).resolve()), "--serve", "--database-url", database_url,
            "--port", str(port)] + ([] if worker else ["--no-worker"])
    return ServerProcess(argv, database_url, port)


# --- setup -----------------------------------------------------------------------------------

def provision(base_url: str, sessions: int) -> list[str]:
    """A service, its pool and `sessions` rider/driver Sessions; returns one inbound message
    form per rider (From the rider, To the rider's proxy number)."""
    forms = []
    with httpx.Client(auth=AUTH, timeout=60, base_url=f"{base_url}/proxy/v1") as client:
        svc = client.post("/Services", data={"UniqueName": "bench"}).raise_for_status().json()
        for number in POOL:
            client.post(f"/Services/{svc['sid']}/PhoneNumbers",
                        data={"PhoneNumber": number}).raise_for_status()
        for n in range(sessions):
            rider, driver = f"+1415600{n:04d}", f"+1415700{n:04d}"
            s = client.post(f"/Services/{svc['sid']}/Sessions", data={"Participants": [
                json.dumps({"Identifier": rider}), json.dumps({"Identifier": driver})]}
            ).raise_for_status().json()
            parts = client.get(f"/Services/{svc['sid']}/Sessions/{s['sid']}/Participants"
                               ).raise_for_status().json()["participants"]
            sender = next(p for p in parts if p["identifier"] == rider)
            forms.append(urlencode({"From": rider, "To": sender["proxy_identifier"],
                                    "Body": "on my way"}))
    return forms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--requests", type=int, default=3000, help="per load run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="bare/route load run pairs")
    parser.add_argument("--workdir",
                        default=str(Path(tempfile.gettempdir()) / "simplane-bench-proxy"))
    parser.add_argument("--no-worker", action="store_true",
                        help="no background worker in the server: routing only, no delivery")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.database_url, args.port, not args.no_worker)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("proxy.db*"):
        old.unlink()
    database_url = f"sqlite:///{workdir / 'proxy.db'}"
    started = time.perf_counter()
    server = start(database_url, not args.no_worker)
    bare_runs, route_runs = [], []
    try:
        forms = provision(server.base_url, args.sessions)
        route_url = f"{server.base_url}/proxy/operator/Messages"
        bare_url = f"{server.base_url}/proxy{BARE_PATH}"
        print(f"{args.sessions} sessions; {args.rounds} rounds × {args.requests} requests, "
              f"concurrency {args.concurrency}", flush=True)
        for i in range(args.rounds):
            pair = [(bare_url, bare_runs), (route_url, route_runs)]
            for url, runs in pair if i % 2 == 0 else pair[::-1]:
                runs.append(load(server, [url], args.requests, args.concurrency, workdir,
                                 warmup=max(200, args.requests // 10), timeout=600,
                                 forms=forms, expect=201))
            b, r = bare_runs[-1], route_runs[-1]
            print(f"  round {i + 1}: bare {b['rps']:.0f} req/s ({b['server_cpu_us']} us CPU/req), "
                  f"route {r['rps']:.0f} req/s ({r['server_cpu_us']} us CPU/req, "
                  f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms); ratio {r['rps'] / b['rps']:.2f}",
                  flush=True)
        with httpx.Client(auth=AUTH) as client:  # were the routed messages delivered?
            delivered = client.get(f"{server.base_url}/proxy/operator/Outbox",
                                   params={"PageSize": 1}).raise_for_status().json()["outbox"]
    finally:
        server.stop()
    med = statistics.median
    results = {
        "sessions": args.sessions,
        "bare_rps": round(med(r["rps"] for r in bare_runs)),
        "route_rps": round(med(r["rps"] for r in route_runs)),
        "ratio": round(med(r["rps"] / b["rps"] for b, r in zip(bare_runs, route_runs, strict=True)), 3),
        "bare_cpu_us": round(med(r["server_cpu_us"] for r in bare_runs)),
        "route_cpu_us": round(med(r["server_cpu_us"] for r in route_runs)),
        "route_p50_ms": round(med(r["p50_ms"] for r in route_runs), 1),
        "route_p99_ms": round(med(r["p99_ms"] for r in route_runs), 1),
        "bare_p50_ms": round(med(r["p50_ms"] for r in bare_runs), 1),
        "worker": not args.no_worker, "delivered": bool(delivered),
    }
    results["cpu_ratio"] = round(results["bare_cpu_us"] / results["route_cpu_us"], 3)
    print(f"route  {results['route_rps']:>6} req/s  p50 {results['route_p50_ms']} ms  "
          f"p99 {results['route_p99_ms']} ms")
    print(f"bare   {results['bare_rps']:>6} req/s  p50 {results['bare_p50_ms']} ms")
    print(f"ratio route/bare = {results['ratio']:.2f} (median of per-round ratios)")
    print(f"server CPU per request: bare {results['bare_cpu_us']} us, route "
          f"{results['route_cpu_us']} us; capacity ratio on an idle core = "
          f"{results['cpu_ratio']:.2f}")
    results["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
