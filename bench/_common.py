"""Shared helpers for the benchmarks: a provisioned SQLite database, a server subprocess and
load runs against it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-token-" + "0" * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(proc: subprocess.Popen, port: int, what: str, timeout: float = 60) -> None:
    """Return once `proc` accepts connections on loopback `port`; exit if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.05)


@contextmanager
def postgres_database(server_url: str, name: str, keep: bool = False) -> Iterator[str]:
    """A database `name` on the PostgreSQL server of `server_url` (made afresh unless `keep`
    and it exists), as a simplane database URL; dropped at the end unless `keep`."""
    import psycopg

    base = server_url.rsplit("/", 1)[0]
    with psycopg.connect(server_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not keep:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not keep:
            admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{base}/{name}"
    finally:
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SIMPLANE_ACCOUNT_SID=ACCOUNT_SID, SIMPLANE_AUTH_TOKEN=AUTH_TOKEN,
               SIMPLANE_DATABASE_URL=database_url)
    env.pop("SIMPLANE_SECRET_KEY", None)
    return env


def provision(workdir: Path, count: int) -> str:
    """A fresh SQLite database in workdir with `count` SIMs on the bootstrap account."""
    db_file = workdir / "bench.db"
    url = f"sqlite:///{db_file}"
    if db_file.exists():  # reuse a database provisioned by an earlier run with the same count
        marker = workdir / "count"
        if marker.exists() and marker.read_text() == str(count):
            return url
        for p in workdir.glob("bench.*"):
            p.unlink()
    os.environ.update(server_env(url))
    from simplane.config import Settings
    from simplane.core.runtime import Runtime
    from simplane.wireless import inventory

    started = time.perf_counter()
    rt = Runtime(Settings(database_url=url, run_workers=False))
    rt.ensure_bootstrap()
    with rt.db.write() as db:
        inventory.add_sims(db, ACCOUNT_SID, inventory.generated_rows(count), rt.clock.now())
    rt.close()
    (workdir / "count").write_text(str(count))
    print(f"provisioned {count} SIMs in {time.perf_counter() - started:.1f}s ({db_file})",
          flush=True)
    return url


class ServerProcess:
    def __init__(self, argv: list[str], database_url: str, port: int) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(argv, env=server_env(database_url),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stderr.read().decode()[-2000:])
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.1)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User + system CPU time used by the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def simplane_serve(database_url: str) -> ServerProcess:
    """The real `simplane serve` command."""
    port = free_port()
    argv = [PYTHON, "-m", "simplane.cli", "serve", "--database-url", database_url,
            "--port", str(port), "--log-level", "warning"]
    return ServerProcess(argv, database_url, port)


def bench_serve(database_url: str, experiment: str | None = None) -> ServerProcess:
    """`simplane serve` plus a bare endpoint (bench/_server.py)."""
    port = free_port()
    argv = [PYTHON, str(HERE / "_server.py"), "--database-url", database_url, "--port", str(port)]
    if experiment:
        argv += ["--experiment", experiment]
    return ServerProcess(argv, database_url, port)


def load(server: ServerProcess, urls: list[str], requests: int, concurrency: int, workdir: Path,
         warmup: int, timeout: float, forms: list[str] | None = None, expect: int = 200
         ) -> dict:
    """One bench/_load.py run in its own process, so the load generator does not share the
    server's interpreter; server CPU per request from /proc."""
    urls_file = workdir / "urls.txt"
    urls_file.write_text("\n".join(urls))
    argv = [PYTHON, str(HERE / "_load.py"), "--urls-file", str(urls_file), "--user", ACCOUNT_SID,
            "--password", AUTH_TOKEN, "--concurrency", str(concurrency),
            "--requests", str(requests), "--warmup", str(warmup), "--expect", str(expect)]
    if forms is not None:
        forms_file = workdir / "forms.txt"
        forms_file.write_text("\n".join(forms))
        argv += ["--forms-file", str(forms_file)]
    cpu_before = server.cpu_seconds()
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=timeout)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["server_cpu_us"] = round((server.cpu_seconds() - cpu_before) / result["sent"] * 1e6)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} answers were not {expect}: {result}")
    return result
