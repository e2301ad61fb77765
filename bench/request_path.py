"""The request path against its ceilings: fetch, list and update a Wireless SIM with `wrk`,
on SQLite and PostgreSQL with 100,000 provisioned SIMs, beside a bare FastAPI app on the same
uvicorn (the ceiling, bench/_bare.py) and Prism's stateless mock of the official spec.

    .venv/bin/python bench/request_path.py [--db sqlite,postgresql] [--sims 100000]
        [--duration 10] [--connections 16] [--rounds 2] [--samples 1,0.01]
        [--prism DIR] [--postgres-url postgresql://127.0.0.1:5432/test]

Every load is `wrk -t1 -cC -dDs --latency` with a Lua script (bench/_wrk/): fetch goes round
robin over 2,000 random SIMs; list asks for the first page of 50; update POSTs a new
FriendlyName to one of those SIMs each time. `simplane serve` is the real command (log level
info, lines written to a file) once per SIMPLANE_LOG_SAMPLE given in `--samples`. Each server is
started once per round and database; the ratio is req/s over the bare app's fetch req/s in the
same round. Prism (`npm install @stoplight/prism-cli` in `--prism DIR`, default
$TMPDIR/simplane-bench/prism) is skipped when it is not installed there.

Targets (issue 18): fetch ≥ 0.5×, list of 50 ≥ 0.2×, update ≥ 0.25× the bare app, and faster
than Prism on each.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, HERE, PYTHON, free_port, server_env, wait_for_port

ROOT = HERE.parent
SPEC = ROOT / "simplane" / "specs" / "twilio_wireless_v1.json"
AUTH = (ACCOUNT_SID, AUTH_TOKEN)
BASIC = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
TARGETS = {"fetch": 0.5, "list": 0.2, "update": 0.25}
ENDPOINTS = ("fetch", "list", "update")


# --- the database ------------------------------------------------------------------------------

def provision(url: str, count: int) -> None:
    """`count` active SIMs on one rate plan of the bench account, unless the database has them."""
    os.environ.update(server_env(url))
    from sqlalchemy import func, select, text

    from simplane.config import Settings
    from simplane.core.runtime import Runtime
    from simplane.core.sids import new_sid
    from simplane.wireless import inventory
    from simplane.wireless.models import RatePlan, Sim

    rt = Runtime(Settings(database_url=url, run_workers=False))
    try:
        rt.ensure_bootstrap()
        with rt.db.read() as db:
            have = db.scalar(select(func.count()).select_from(Sim)
                             .where(Sim.account_sid == ACCOUNT_SID))
        if have == count:
            if not rt.db.is_sqlite:  # statistics, as a bulk provisioning leaves them
                with rt.db.write() as db:
                    db.execute(text("ANALYZE wireless_sims"))
            return
        started = time.perf_counter()
        with rt.db.write() as db:
            db.execute(Sim.__table__.delete())
            now = rt.clock.now()
            plan = RatePlan(sid=new_sid("WP"), account_sid=ACCOUNT_SID, unique_name="bench",
                            friendly_name="bench", data_enabled=True, data_metering="payg",
                            data_limit=1000, data_limit_strategy="block",
                            messaging_enabled=True, voice_enabled=False,
                            national_roaming_enabled=True, national_roaming_data_limit=1000,
                            international_roaming=["data"],
                            international_roaming_data_limit=1000, date_created=now,
                            date_updated=now)
            existing = db.scalar(select(RatePlan).where(RatePlan.account_sid == ACCOUNT_SID,
                                                        RatePlan.unique_name == "bench"))
            if existing is None:
                db.add(plan)
                db.flush()
            else:
                plan = existing
            inventory.add_sims(db, ACCOUNT_SID, inventory.generated_rows(count, "active"), now,
                               rate_plan_pk=plan.pk)
            if not rt.db.is_sqlite:  # as `simplane sims provision` does after a bulk load
                db.execute(text("ANALYZE wireless_sims"))
        print(f"provisioned {count} SIMs in {time.perf_counter() - started:.1f}s", flush=True)
    finally:
        rt.close()


def database_url(kind: str, workdir: Path, postgres_url: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'request_path.db'}"
    import psycopg

    name = "simplane_bench_request_path"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() \
                is None:
            admin.execute(f'CREATE DATABASE "{name}"')
    return "postgresql+psycopg://" + postgres_url.split("://", 1)[1].rsplit("/", 1)[0] + "/" + name


# --- servers -------------------------------------------------------------------------------------

class Server:
    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str],
                 log: Path, ready_path: str, cwd: str | None = None) -> None:
        self.name, self.port, self.log = name, port, log
        self.base = f"http://127.0.0.1:{port}"
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log_file,
                                     stderr=subprocess.STDOUT)
        wait_for_port(self.proc, port, name, timeout=120)
        deadline = time.monotonic() + 60
        while httpx.get(self.base + ready_path, auth=AUTH, timeout=10).status_code != 200:
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} does not answer {ready_path}")
            time.sleep(0.2)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (Prism: of its node process)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


def start_bare(workdir: Path, sid: str) -> Server:
    port = free_port()
    return Server("bare FastAPI", [PYTHON, str(HERE / "_bare.py"), "--port", str(port)], port,
                  dict(os.environ), workdir / "bare.log", f"/wireless/v1/Sims/{sid}")


def start_simplane(url: str, workdir: Path, sample: str, sid: str) -> Server:
    port = free_port()
    env = server_env(url)
    env["SIMPLANE_LOG_SAMPLE"] = sample
    env.pop("SIMPLANE_LOG_LEVEL", None)
    argv = [PYTHON, "-m", "simplane.cli", "serve", "--database-url", url, "--port", str(port)]
    return Server(f"simplane (LOG_SAMPLE={sample})", argv, port, env,
                  workdir / f"simplane-{sample}.log", f"/wireless/v1/Sims/{sid}")


def start_prism(prism_dir: Path, workdir: Path, sid: str) -> Server | None:
    binary = prism_dir / "node_modules" / ".bin" / "prism"
    if not binary.exists():
        return None
    port = free_port()
    argv = [str(binary), "mock", "-h", "127.0.0.1", "-p", str(port), str(SPEC)]
    return Server("Prism mock", argv, port, dict(os.environ), workdir / "prism.log",
                  f"/v1/Sims/{sid}", cwd=str(prism_dir))


# --- load ----------------------------------------------------------------------------------------

LUA = {
    "fetch": """
local sids = {%(sids)s}
local i = 0
wrk.headers["Authorization"] = "%(auth)s"
request = function()
  i = i + 1
  return wrk.format("GET", "%(prefix)s/v1/Sims/" .. sids[(i %% #sids) + 1])
end
""",
    "list": """
wrk.headers["Authorization"] = "%(auth)s"
request = function()
  return wrk.format("GET", "%(prefix)s/v1/Sims?PageSize=50")
end
""",
    "update": """
local sids = {%(sids)s}
local i = 0
wrk.headers["Authorization"] = "%(auth)s"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
request = function()
  i = i + 1
  return wrk.format("POST", "%(prefix)s/v1/Sims/" .. sids[(i %% #sids) + 1], nil,
                    "FriendlyName=bench-" .. i)
end
""",
}


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(server: Server, endpoint: str, sids: list[str], args: argparse.Namespace,
        workdir: Path, prefix: str = "/wireless") -> dict:
    script = workdir / f"{endpoint}.lua"
    script.write_text(LUA[endpoint] % {"sids": ",".join(f'"{s}"' for s in sids),
                                      "auth": BASIC, "prefix": prefix})
    argv = ["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration}s", "--latency",
            "-s", str(script), server.base]
    cpu_before = server.cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, check=True,
                         timeout=args.duration + 60).stdout
    cpu = server.cpu_seconds() - cpu_before
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {p: _ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$", out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses:\s+([0-9]+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = int(re.search(r"([0-9]+) requests in", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"),
            "cpu_us": cpu / max(total, 1) * 1e6,
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else "",
            "load": Path("/proc/loadavg").read_text().split()[0]}


# --- the run -------------------------------------------------------------------------------------

def sample_sids(url: str, count: int, seed: int = 1) -> list[str]:
    from sqlalchemy import create_engine, text

    from simplane.config import normalise_database_url

    engine = create_engine(normalise_database_url(url))
    with engine.connect() as conn:
        sids = list(conn.scalars(text("SELECT sid FROM wireless_sims WHERE account_sid = :a"),
                                 {"a": ACCOUNT_SID}))
    engine.dispose()
    return random.Random(seed).sample(sids, count)


def run_database(kind: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    url = database_url(kind, workdir, args.postgres_url)
    provision(url, args.sims)
    sids = sample_sids(url, 2000)
    rows: list[dict] = []
    for round_no in range(1, args.rounds + 1):
        print(f"\n{kind}, round {round_no}", flush=True)
        bare = start_bare(workdir, sids[0])
        try:
            ceiling = wrk(bare, "fetch", sids, args, workdir)
        finally:
            bare.stop()
        rows.append({"db": kind, "round": round_no, "server": "bare FastAPI",
                     "endpoint": "fetch", **ceiling, "ratio": 1.0, "cpu_ratio": 1.0})
        report(rows[-1])
        servers = [("simplane", sample) for sample in args.samples.split(",")]
        if args.prism:
            servers.append(("prism", ""))
        for what, sample in servers:
            if what == "simplane":
                server = start_simplane(url, workdir, sample, sids[0])
                prefix = "/wireless"
            else:
                found = start_prism(Path(args.prism), workdir, sids[0])
                if found is None:
                    print(f"Prism is not installed in {args.prism}: skipped")
                    args.prism = None
                    continue
                server, prefix = found, ""
            try:
                for endpoint in args.endpoints.split(","):
                    result = wrk(server, endpoint, sids, args, workdir, prefix)
                    rows.append({"db": kind, "round": round_no, "server": server.name,
                                 "endpoint": endpoint, **result,
                                 "ratio": result["rps"] / ceiling["rps"],
                                 "cpu_ratio": ceiling["cpu_us"] / result["cpu_us"]})
                    report(rows[-1])
            finally:
                server.stop()
    return rows


def report(row: dict) -> None:
    warn = f"  NON-2xx {row['non2xx']}" if row["non2xx"] else ""
    print(f"  {row['server']:28s} {row['endpoint']:7s} {row['rps']:8.0f} req/s  "
          f"p50 {row['p50']:7.2f} ms  p99 {row['p99']:7.2f} ms  ratio {row['ratio']:.3f}  "
          f"CPU {row['cpu_us']:5.0f} us/req (ratio {row['cpu_ratio']:.3f})  "
          f"load {row['load']}{warn}", flush=True)


def summary(rows: list[dict]) -> None:
    """Medians over rounds, as a Markdown table, with each target's verdict."""
    print("\n| db | server | endpoint | req/s | p50 ms | p99 ms | ratio vs bare | target | "
          "server CPU µs/req | CPU ratio | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    keys: dict[tuple, list[dict]] = {}
    for row in rows:
        keys.setdefault((row["db"], row["server"], row["endpoint"]), []).append(row)
    prism = {(k[0], k[2]): statistics.median(r["rps"] for r in v)
             for k, v in keys.items() if k[1] == "Prism mock"}
    for (db, server, endpoint), group in keys.items():
        rps = statistics.median(r["rps"] for r in group)
        ratio = statistics.median(r["ratio"] for r in group)
        verdict = ""
        if server.startswith("simplane"):
            ok = ratio >= TARGETS[endpoint]
            beat = prism.get((db, endpoint))
            verdict = f"≥ {TARGETS[endpoint]}: {'met' if ok else 'MISSED'}"
            if beat is not None:
                verdict += f"; vs Prism {rps / beat:.1f}×"
        loads = "/".join(r["load"] for r in group)
        print(f"| {db} | {server} | {endpoint} | {rps:,.0f} | "
              f"{statistics.median(r['p50'] for r in group):.1f} | "
              f"{statistics.median(r['p99'] for r in group):.1f} | {ratio:.2f} | {verdict} | "
              f"{statistics.median(r['cpu_us'] for r in group):.0f} | "
              f"{statistics.median(r['cpu_ratio'] for r in group):.2f} | {loads} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--sims", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", default="1,0.01",
                        help="SIMPLANE_LOG_SAMPLE values, one simplane server each")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--prism", default=str(Path(tempfile.gettempdir()) / "simplane-bench"
                                               / "prism"))
    parser.add_argument("--no-prism", action="store_true")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "SIMPLANE_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test"))
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "simplane-bench"))
    parser.add_argument("--json", help="also write every run's figures here")
    args = parser.parse_args()
    if args.no_prism:
        args.prism = None
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for kind in args.db.split(","):
        rows += run_database(kind, args, workdir)
    summary(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
