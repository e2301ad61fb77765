"""Authentication and request bodies under attack, against `simplane serve` on SQLite.

    .venv/bin/python bench/auth.py [--tries 200] [--seconds 6] [--only timing|attack|memory]

1. timing: the median time of a 401 for an Account SID or API key that does not exist and for
   one that does with a wrong secret, `--tries` each, interleaved over one keep-alive connection.
   The ceiling is the other path: the ratio slower/faster should stay under 1.2, so that the
   answer's timing does not tell which SIDs exist. The server answers failed logins after a
   fixed delay (0.25 s), the same for both, which would narrow the ratio by itself: here it is
   started with that delay set to 0, so the ratio compares the work of each path. Each try comes
   from an address of its own (X-Forwarded-For, which the server trusts from loopback), so the
   back-off after failed logins does not answer in its place.
2. attack: a normal client's median latency (GET Sims with its verified credentials, one request
   at a time) alone, which is the ceiling, then while 8 threads of another process send wrong
   secrets as fast as they can: (a) from one address, for the bootstrap account; (b) from a new
   address each time, for 50 known accounts in turn (each stays under the back-off's limits, so
   every guess is checked against the database). `--rounds` rounds of each, alone measured
   just before each attack.
3. memory: the server's VmRSS before and after 3 concurrent 100 MB POSTs without credentials
   (Content-Length announced), then 3 concurrent chunked 100 MB POSTs with credentials (over
   SIMPLANE_MAX_BODY, 1 MiB); the ceiling is the RSS before, the target within 20 MB of it.

Run it with PYTHONPATH pointing at another checkout to measure that code instead (the server
is started with the same environment).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, PYTHON, ServerProcess, free_port, simplane_serve

AUTH = (ACCOUNT_SID, AUTH_TOKEN)
SIMS = "/wireless/v1/Sims?PageSize=1"


def fresh_server(workdir: Path, name: str, delay: bool = True) -> tuple[ServerProcess, str]:
    """`simplane serve` on a new database; without `delay`, failed logins are answered at once."""
    for old in workdir.glob(f"{name}.*"):
        old.unlink()
    os.environ.pop("SIMPLANE_SECRET_KEY", None)  # the key file beside the database, as the server
    url = f"sqlite:///{workdir / name}.db"
    if delay:
        return simplane_serve(url), url
    port = free_port()
    return ServerProcess([PYTHON, "-c", NO_DELAY, "serve", "--database-url", url, "--port",
                          str(port), "--log-level", "warning"], url, port), url


NO_DELAY = """import sys
from simplane.cli import app
from simplane.core.accounts import Authenticator
Authenticator.DELAY = 0.0
sys.argv[0] = "simplane"
app()
"""


def accounts(url: str, count: int) -> list[tuple[str, str]]:
    """(account SID, auth token) and (API key SID, secret) of `count` new accounts, made in a
    process of their own as `simplane accounts create` / `key` do."""
    out = subprocess.run([PYTHON, "-c", f"""
import inspect, json
from simplane.config import Settings
from simplane.core import accounts
from simplane.core.runtime import Runtime
rt = Runtime(Settings(database_url={url!r}, run_workers=False))
takes_box = "box" in inspect.signature(accounts.create_api_key).parameters
made = []
with rt.db.write() as db:
    for _ in range({count}):
        a = accounts.create_account(db, rt.box, rt.clock)
        k = (accounts.create_api_key(db, rt.box, rt.clock, a.sid) if takes_box
             else accounts.create_api_key(db, rt.clock, a.sid))
        made += [(a.sid, a.secret), (k.sid, k.secret)]
print(json.dumps(made))
"""], check=True, capture_output=True, text=True)
    return [(sid, secret) for sid, secret in json.loads(out.stdout)]


def address(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def timing(workdir: Path, tries: int) -> None:
    server, url = fresh_server(workdir, "auth-timing", delay=False)
    try:
        known = accounts(url, 10)
        unknown = [(sid[:2] + "f" * 32, secret) for sid, secret in known]
        times: dict[str, list[float]] = {"unknown": [], "known": []}
        n = itertools.count(1)
        with httpx.Client(base_url=server.base_url) as client:
            def once(kind: str, sid: str) -> None:
                headers = {"X-Forwarded-For": address(next(n))}
                started = time.perf_counter()
                r = client.get(SIMS, auth=(sid, "wrong-secret-0123456789"), headers=headers)
                times[kind].append(time.perf_counter() - started)
                assert r.status_code == 401, r.text
            for _ in range(20):  # warm-up
                once("unknown", unknown[0][0])
            times["unknown"].clear()
            for i in range(tries):
                pairs = [("unknown", unknown[i % len(unknown)][0]), ("known", known[i % len(known)][0])]
                for kind, sid in pairs if i % 2 else reversed(pairs):
                    once(kind, sid)
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        ratio = max(med.values()) / min(med.values())
        print(f"timing ({tries} tries each): unknown SID {med['unknown']:.2f} ms, known SID with a "
              f"wrong secret {med['known']:.2f} ms; slower/faster {ratio:.2f} (target ≤ 1.20), "
              f"known - unknown {med['known'] - med['unknown']:+.2f} ms", flush=True)
    finally:
        server.stop()


def attack_process(url: str, mode: str, sids: list[str], seconds: float) -> None:
    """8 threads sending wrong secrets until `seconds` have passed; prints answers by status."""
    counts: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    n = itertools.count(1_000_000)

    def run(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in itertools.count(offset):
                if time.monotonic() > deadline:
                    return
                headers = {"X-Forwarded-For": address(next(n))} if mode == "spread" else {}
                r = client.get(SIMS, auth=(sids[i % len(sids)], f"guess-{i:020d}"),
                               headers=headers)
                with lock:
                    counts[r.status_code] = counts.get(r.status_code, 0) + 1

    threads = [threading.Thread(target=run, args=(k * 7,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(counts), flush=True)


def normal_client(url: str, seconds: float) -> float:
    with httpx.Client(base_url=url, auth=AUTH, timeout=30) as client:
        for _ in range(20):
            client.get(SIMS).raise_for_status()
        times = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            client.get(SIMS).raise_for_status()
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def attack(workdir: Path, seconds: float, rounds: int) -> None:
    server, url = fresh_server(workdir, "auth-attack")
    try:
        known = [sid for sid, _ in accounts(url, 50) if sid.startswith("AC")]
        for round_ in range(rounds):
            for mode, sids in (("one-address", [ACCOUNT_SID]), ("spread", known)):
                alone = normal_client(server.base_url, seconds)
                proc = subprocess.Popen(
                    [PYTHON, __file__, "--attacker", mode, "--url", server.base_url,
                     "--seconds", str(seconds + 2), "--sids", ",".join(sids)],
                    stdout=subprocess.PIPE, text=True)
                time.sleep(1.0)  # the attack is under way
                under = normal_client(server.base_url, seconds)
                answers = proc.communicate(timeout=seconds * 4 + 60)[0].strip()
                print(f"attack round {round_ + 1} ({mode}): normal client alone {alone:.2f} ms, "
                      f"under attack {under:.2f} ms (medians), {under / alone:.2f}× alone; the "
                      f"attackers' answers by status: {answers}", flush=True)
    finally:
        server.stop()


def post_100mb(server: ServerProcess, head: str, chunked: bool, results: list[str]) -> None:
    size, chunk = 100_000_000, b"x" * 65536
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    try:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        sent = 0
        while sent < size:
            data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
            sock.sendall(data)
            sent += len(chunk)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server hung up early, as it should
    try:
        results.append(sock.recv(65536).split(b"\r\n", 1)[0].decode() or "(closed)")
    except OSError as exc:
        results.append(f"({exc.__class__.__name__})")
    finally:
        sock.close()


FORM_POST = ("POST /wireless/v1/RatePlans HTTP/1.1\nHost: x\n"
             "Content-Type: application/x-www-form-urlencoded\n")


def sample_rss(server: ServerProcess, done: threading.Event, peak: list[float]) -> None:
    while not done.wait(0.05):
        peak[0] = max(peak[0], server.rss_mb())


def memory(workdir: Path) -> None:
    server, _ = fresh_server(workdir, "auth-memory")
    try:
        with httpx.Client(base_url=server.base_url, auth=AUTH) as client:
            for _ in range(200):
                client.get(SIMS).raise_for_status()
                client.post("/wireless/v1/RatePlans", data={"FriendlyName": "warm-up"})
        token = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        cases = {
            "3 × 100 MB, no credentials, Content-Length": (
                FORM_POST + "Content-Length: 100000000\n", False),
            "3 × 100 MB, credentials, chunked": (
                FORM_POST + f"Transfer-Encoding: chunked\nAuthorization: Basic {token}\n", True),
        }
        for name, (head, chunked) in cases.items():
            time.sleep(1.0)
            before = server.rss_mb()
            results: list[str] = []
            peak = [before]
            done = threading.Event()
            sampler = threading.Thread(target=sample_rss, args=(server, done, peak))
            sampler.start()
            started = time.perf_counter()
            posts = [threading.Thread(target=post_100mb, args=(server, head, chunked, results))
                     for _ in range(3)]
            for t in posts:
                t.start()
            for t in posts:
                t.join()
            took = time.perf_counter() - started
            time.sleep(1.0)
            done.set()
            sampler.join()
            after = server.rss_mb()
            print(f"memory ({name}): VmRSS {before:.0f} MB before, {peak[0]:.0f} MB at most, "
                  f"{after:.0f} MB after (+{after - before:.0f} MB; target ≤ +20); "
                  f"{took:.1f} s; answers {sorted(set(results))}", flush=True)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=3, help="of the attack figures")
    parser.add_argument("--only", choices=["timing", "attack", "memory"])
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "simplane-bench-auth"))
    parser.add_argument("--attacker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--sids", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attacker:
        return attack_process(args.url, args.attacker, args.sids.split(","), args.seconds)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "timing"):
        timing(workdir, args.tries)
    if args.only in (None, "attack"):
        attack(workdir, args.seconds, args.rounds)
    if args.only in (None, "memory"):
        memory(workdir)


if __name__ == "__main__":
    main()
