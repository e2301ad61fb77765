"""RADIUS accounting throughput of `simplane serve --radius-port`, against a listener on the same
machine that answers every Accounting-Request without ingesting it, driven by the same load.

    .venv/bin/python bench/radius.py [--sims 10000] [--interims 2] [--parallel 128]
                                     [--rounds 3] [--workdir /tmp/simplane-bench-radius]

The load is Debian's `radclient` (FreeRADIUS 3), keeping `--parallel` requests in flight:
first an Accounting-Request Start for a data session on each of `--sims` provisioned SIMs
(3GPP-IMSI, Acct-Session-Id, 3GPP-SGSN-MCC-MNC, Framed-IP-Address, 3GPP-RAT-Type), then
`--interims` rounds of Interim-Update for each (cumulative octets and packets), then a Stop for
each. Every round starts a fresh server on a fresh copy of the provisioned database. A request
counts as answered when radclient got its Accounting-Response; radclient sends each request once
(no retransmission) and waits up to 10 s, so any request the listener dropped or never answered
shows as lost.

Ceilings, measured in the same run with the same files and radclient options:
  pyrad  this script as `--answer PORT SECRET`: one thread, one UDP socket, each request decoded
         and its authenticator checked by pyrad, turned into a NetworkEvent by
         `simplane.network.radius.to_event`, answered; nothing is ingested.
  plain  the same loop without pyrad: the Accounting-Response computed from the raw datagram.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, PYTHON, ServerProcess, free_port
from usage import kept_database, runtime

SECRET = "bench-radius-secret"
ACCOUNTING_RESPONSE = 5


# --- the ceiling listener ------------------------------------------------------------------

def answer(port: int, secret: bytes, plain: bool) -> None:
    """Answer every Accounting-Request on 127.0.0.1:port until killed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("127.0.0.1", port))
    if plain:
        while True:
            data, peer = sock.recvfrom(4096)
            if hashlib.md5(data[:4] + b"\0" * 16 + data[20:] + secret).digest() != data[4:20]:
                continue
            head = struct.pack("!BBH", ACCOUNTING_RESPONSE, data[1], 20)
            sock.sendto(head + hashlib.md5(head + data[4:20] + secret).digest(), peer)
    from pyrad import packet as radius_packet

    from simplane.network import radius

    dictionary = radius.dictionary()
    while True:
        data, peer = sock.recvfrom(4096)
        pkt = radius_packet.AcctPacket(packet=data, secret=secret, dict=dictionary)
        if not pkt.VerifyAcctRequest():
            continue
        radius.to_event(pkt, datetime.now(UTC))
        sock.sendto(pkt.CreateReply().ReplyPacket(), peer)


# --- load ----------------------------------------------------------------------------------

def request_files(workdir: Path, imsis: list[str], interims: int) -> list[tuple[str, Path]]:
    """radclient input files, one per phase: (name, path)."""
    files = []

    def write(name: str, status: str, counters) -> None:  # type: ignore[no-untyped-def]
        blocks = []
        for n, imsi in enumerate(imsis):
            lines = [f"Acct-Status-Type = {status}", f'Acct-Session-Id = "bench-{n}"',
                     f'3GPP-IMSI = "{imsi}"', 'Called-Station-Id = "iot.bench"',
                     '3GPP-SGSN-MCC-MNC = "90142"', "3GPP-RAT-Type = 6",
                     f"Framed-IP-Address = 10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"]
            if counters:
                up, down, p_up, p_down = counters(n)
                lines += [f"Acct-Input-Octets = {up}", f"Acct-Output-Octets = {down}",
                          f"Acct-Input-Packets = {p_up}", f"Acct-Output-Packets = {p_down}"]
            blocks.append("\n".join(lines))
        path = workdir / f"{name}.txt"
        path.write_text("\n\n".join(blocks) + "\n")
        files.append((name, path))

    write("start", "Start", None)
    for r in range(1, interims + 1):
        write(f"interim-{r}", "Interim-Update",
              lambda n, r=r: (1000 * r + n % 97, 4000 * r, 10 * r, 30 * r))
    write("stop", "Stop", lambda n: (1000 * interims + 500, 4000 * interims + 900,
                                     10 * interims + 5, 30 * interims + 9))
    return files


SUMMARY = re.compile(r"^\s*(Accepted|Rejected|Lost|Passed filter|Failed filter)\s*:\s*(\d+)",
                     re.MULTILINE)


def radclient(path: Path, port: int, parallel: int) -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        ["radclient", "-s", "-q", "-f", str(path), "-p", str(parallel), "-c", "1", "-r", "1",
         "-t", "10", f"127.0.0.1:{port}", "acct", SECRET],
        capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.perf_counter() - started
    counts = {k.lower(): int(v) for k, v in SUMMARY.findall(out.stdout + out.stderr)}
    sent = path.read_text().count("Acct-Status-Type")
    answered = counts.get("accepted", 0)
    if "accepted" not in counts:
        raise RuntimeError(f"no summary from radclient: {out.stdout[-500:]} {out.stderr[-500:]}")
    return {"sent": sent, "answered": answered, "lost": counts.get("lost", 0),
            "seconds": round(elapsed, 3), "rps": round(answered / elapsed, 1)}


def drive(port: int, files: list[tuple[str, Path]], parallel: int) -> dict[str, dict]:
    return {name: radclient(path, port, parallel) for name, path in files}


# --- servers -------------------------------------------------------------------------------

class Listener:
    """A UDP listener subprocess; ready once it answers a Start."""

    def __init__(self, argv: list[str], port: int, probe: Path) -> None:
        self.port = port
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while radclient(probe, port, 1)["answered"] == 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("listener did not answer: "
                                   + self.proc.stderr.read().decode()[-2000:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


def simplane(db_file: Path, fresh: Path) -> tuple[ServerProcess, int]:
    """`simplane serve --radius-port` on a fresh copy of the provisioned database."""
    for suffix in ("", "-wal", "-shm"):
        if Path(str(fresh) + suffix).exists():
            Path(str(fresh) + suffix).unlink()
    shutil.copy(db_file, fresh)
    url = f"sqlite:///{fresh}"
    udp = free_port()
    http = free_port()
    argv = [PYTHON, "-m", "simplane.cli", "serve", "--database-url", url, "--port", str(http),
            "--log-level", "warning", "--radius-port", str(udp), "--radius-secret", SECRET]
    return ServerProcess(argv, url, http), udp


ACCEPTED = re.compile(r'^simplane_radius_packets_total\{outcome="accepted"\} (\S+)', re.MULTILINE)


def accepted_packets(server: ServerProcess) -> int:
    text = httpx.get(server.base_url + "/metrics", auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=10).text
    match = ACCEPTED.search(text)
    return int(float(match.group(1))) if match else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--interims", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/simplane-bench-radius")
    parser.add_argument("--answer", nargs=2, metavar=("PORT", "SECRET"),
                        help="run the ceiling listener (pyrad) on this port")
    parser.add_argument("--plain", action="store_true", help="with --answer: without pyrad")
    args = parser.parse_args()
    if args.answer:
        answer(int(args.answer[0]), args.answer[1].encode(), args.plain)
        return
    workdir = Path(args.workdir)
    db_file = kept_database(workdir, args.sims)
    rt = runtime(f"sqlite:///{db_file}")
    try:
        from sqlalchemy import select

        from simplane.wireless.models import Sim
        with rt.db.read() as db:
            imsis = list(db.scalars(select(Sim.imsi).order_by(Sim.pk)))
    finally:
        rt.close()
    files = request_files(workdir, imsis, args.interims)
    probe = workdir / "probe.txt"
    probe.write_text(f'Acct-Status-Type = Start\nAcct-Session-Id = "probe"\n'
                     f'3GPP-IMSI = "{imsis[-1]}"\n')
    results: dict[str, list[dict[str, dict]]] = {"simplane": [], "pyrad": [], "plain": []}
    for r in range(args.rounds):
        order = list(results) if r % 2 == 0 else list(reversed(results))
        for name in order:
            if name == "simplane":
                server, port = simplane(db_file, workdir / "serve.db")
                try:
                    radclient(probe, port, 1)  # the listener starts before /healthz answers
                    before = accepted_packets(server)
                    out = drive(port, files, args.parallel)
                    out["accepted (server metric)"] = accepted_packets(server) - before
                finally:
                    server.stop()
            else:
                port = free_port()
                argv = [PYTHON, __file__, "--answer", str(port), SECRET]
                listener = Listener(argv + (["--plain"] if name == "plain" else []), port, probe)
                try:
                    out = drive(port, files, args.parallel)
                finally:
                    listener.stop()
            results[name].append(out)
            print(f"round {r + 1} {name:8s} " + "  ".join(
                f"{phase} {v['rps']:,.0f}/s ({v['answered']}/{v['sent']}, lost {v['lost']})"
                if isinstance(v, dict) else f"{phase} {v}" for phase, v in out.items()),
                flush=True)
    print(f"{args.sims:,} SIMs, {args.parallel} requests in flight, {args.rounds} rounds; "
          "median (best) answered requests/s per phase:")
    for phase, _path in files:
        line = {}
        for name, runs in results.items():
            rates = [run[phase]["rps"] for run in runs]
            line[name] = (statistics.median(rates), max(rates))
        lost = sum(run[phase]["lost"] for run in results["simplane"])
        print(f"  {phase:10s} " + "  ".join(f"{n} {m:,.0f} ({b:,.0f})" for n, (m, b)
                                            in line.items())
              + f"  simplane/pyrad {line['simplane'][0] / line['pyrad'][0]:.2f}"
              + f"  simplane/plain {line['simplane'][0] / line['plain'][0]:.2f}"
              + f"  simplane lost {lost}")


if __name__ == "__main__":
    main()
