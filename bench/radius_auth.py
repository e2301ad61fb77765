"""RADIUS authorisation and Dynamic Authorization of `simplane serve`.

    .venv/bin/python bench/radius_auth.py [--sims 10000] [--parallel 128] [--rounds 3]
                                          [--suspends 200] [--workdir /tmp/simplane-bench-radius]

1. Access-Requests answered per second by `serve --radius-auth-port`, driven by Debian's
   `radclient` (FreeRADIUS 3) with `--parallel` requests in flight: one Access-Request for each
   of `--sims` active SIMs (User-Name, 3GPP-IMSI, 3GPP-SGSN-MCC-MNC, User-Password), every one
   of which simplane accepts after asking the policy. radclient runs twice against each
   listener: `cold` (the server keeps no SIM's facts yet) and `warm`. In the same run, with the
   same file and options, two ceilings (this script as `--answer PORT SECRET KIND`):
     pyrad  pyrad's own server (`pyrad.server.Server`, simplane's dictionary and the secret),
            answering each request with an Access-Accept (Acct-Interim-Interval and the
            Message-Authenticator pyrad adds) as fast as its loop goes; no simplane code runs.
     pyrad-loop  the least a server on pyrad does: one socket, each request decoded by pyrad,
            `CheckMessageAuthenticator`, `CreateReply`, `ReplyPacket` (no poll, no host look-up)
     plain  no RADIUS library: the same Access-Accept made from the raw datagram with hashlib;
            what radclient reaches against it is radclient's own limit (with the machine's).
2. Suspend → Disconnect-Request: `serve --radius-port --radius-dae-port` with a data session
   open on each of `--suspends` SIMs (radclient Starts naming NAS-IP-Address 127.0.0.1); each
   SIM is suspended in turn through the API (the official twilio client), and a pyrad-decoding
   DAE listener in this process notes when its Disconnect-Request arrives and ACKs it. Latency
   is from just before the API call to the arrival; printed beside it, the API call's own time.
3. In one process, without UDP, radclient or the server's other threads (`--in-process`): the
   CPU time of `AuthServer.handle` per Access-Request, on batches of `--parallel` datagrams
   (made by pyrad's client with a Message-Authenticator) whose SIMs' facts are kept, against
   what pyrad's server does per request (decode, `CheckMessageAuthenticator`,
   `CreateReplyPacket`, `ReplyPacket`); the best of 7 alternating passes each. Less moved by
   the machine's load than the rates above.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ACCOUNT_SID, AUTH_TOKEN, PYTHON, ServerProcess, free_port
from usage import kept_database, runtime

import simplane

SECRET = "bench-radius-secret"
SUMMARY = re.compile(r"^\s*(Accepted|Rejected|Lost)\s*:\s*(\d+)", re.MULTILINE)
HOME = "90142"


def answer(port: int, secret: bytes, kind: str) -> None:
    """A ceiling listener on 127.0.0.1:port until killed: every Access-Request is answered with an
    Access-Accept (Acct-Interim-Interval, Message-Authenticator), as simplane answers it.

    pyrad   pyrad's own server (`pyrad.server.Server`, simplane's dictionary and the same secret):
            its loop decodes each request, checks its Message-Authenticator, and the handler
            answers with `CreateReplyPacket`; nothing of simplane runs.
    plain   no RADIUS library: the reply computed from the raw datagram with hashlib and hmac,
            the fastest a Python loop answers; what radclient reaches against it is the limit of
            the load generator (and the machine) rather than of any server.
    """
    if kind == "plain":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.bind(("127.0.0.1", port))
        interim = struct.pack("!BBI", 85, 6, 300)
        while True:
            data, peer = sock.recvfrom(4096)
            if data[0] != 1:
                continue
            head = struct.pack("!BBH", 2, data[1], 20 + 18 + 6)
            body = b"\x50\x12" + b"\0" * 16 + interim
            mac = hmac.new(secret, head + data[4:20] + body, "md5").digest()
            body = b"\x50\x12" + mac + interim
            sock.sendto(head + hashlib.md5(head + data[4:20] + body + secret).digest() + body,
                        peer)
    from pyrad import packet as radius_packet
    from pyrad import server as radius_server
    from pyrad.dictionary import Dictionary

    dictionary = Dictionary(str(Path(simplane.__file__).parent / "network" / "radius.dictionary"))
    if kind == "pyrad-loop":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        sock.bind(("127.0.0.1", port))
        while True:
            data, peer = sock.recvfrom(4096)
            try:
                pkt = radius_packet.AuthPacket(packet=data, secret=secret, dict=dictionary)
                radius_server.CheckMessageAuthenticator(pkt)
            except radius_packet.PacketError:
                continue
            reply = pkt.CreateReply(Acct_Interim_Interval=300)
            reply.code = radius_packet.AccessAccept
            sock.sendto(reply.ReplyPacket(), peer)

    class Server(radius_server.Server):
        def HandleAuthPacket(self, pkt: radius_packet.AuthPacket) -> None:
            reply = self.CreateReplyPacket(pkt, Acct_Interim_Interval=300)
            reply.code = radius_packet.AccessAccept
            self.SendReplyPacket(pkt.fd, reply)

    srv = Server(dict=dictionary, authport=port, acct_enabled=False, coa_enabled=False)
    srv.hosts["127.0.0.1"] = radius_server.RemoteHost("127.0.0.1", secret, "radclient")
    srv.BindToAddress("127.0.0.1")
    for sock in srv.authfds:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    srv.Run()


def radclient(path: Path, port: int, parallel: int, command: str = "auth") -> dict:
    started = time.perf_counter()
    out = subprocess.run(
        ["radclient", "-s", "-q", "-f", str(path), "-p", str(parallel), "-c", "1", "-r", "1",
         "-t", "10", f"127.0.0.1:{port}", command, SECRET],
        capture_output=True, text=True, timeout=900, check=False)
    elapsed = time.perf_counter() - started
    counts = {k.lower(): int(v) for k, v in SUMMARY.findall(out.stdout + out.stderr)}
    if "accepted" not in counts:
        raise RuntimeError(f"no summary from radclient: {out.stdout[-500:]} {out.stderr[-500:]}")
    return {"answered": counts["accepted"] + counts.get("rejected", 0),
            "accepted": counts["accepted"], "lost": counts.get("lost", 0),
            "seconds": round(elapsed, 3), "rps": round(counts["accepted"] / elapsed, 1)}


def wait_for(port: int, probe: Path, command: str = "auth") -> None:
    deadline = time.monotonic() + 30
    while radclient(probe, port, 1, command)["answered"] == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the listener does not answer")


def serve(db_file: Path, fresh: Path, *options: str) -> ServerProcess:
    for suffix in ("", "-wal", "-shm"):
        if Path(str(fresh) + suffix).exists():
            Path(str(fresh) + suffix).unlink()
    shutil.copy(db_file, fresh)
    url = f"sqlite:///{fresh}"
    http = free_port()
    argv = [PYTHON, "-m", "simplane.cli", "serve", "--database-url", url, "--port", str(http),
            "--log-level", "warning", "--radius-secret", SECRET, *options]
    return ServerProcess(argv, url, http)


class DaeListener:
    """A gateway's DAE server: notes when each Disconnect-Request arrives, and ACKs it."""

    def __init__(self, port: int) -> None:
        from pyrad import packet as radius_packet

        from simplane.network import radius

        self.arrived: dict[str, float] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        dictionary = radius.dictionary()

        def serve() -> None:
            while True:
                try:
                    data, peer = self.sock.recvfrom(4096)
                except OSError:
                    return
                when = time.perf_counter()
                pkt = radius_packet.CoAPacket(packet=data, secret=SECRET.encode(),
                                              dict=dictionary)
                if not pkt.VerifyCoARequest():
                    continue
                self.arrived.setdefault(pkt["Acct-Session-Id"][0], when)
                reply = pkt.CreateReply()
                reply.code = radius_packet.DisconnectACK
                self.sock.sendto(reply.ReplyPacket(), peer)

        threading.Thread(target=serve, daemon=True).start()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def disconnect_latency(db_file: Path, workdir: Path, rows: list, count: int) -> None:
    dae_port, acct_port = free_port(), free_port()
    listener = DaeListener(dae_port)
    server = serve(db_file, workdir / "dae.db", "--radius-port", str(acct_port),
                   "--radius-dae-port", str(dae_port))
    try:
        starts = workdir / "dae-starts.txt"
        starts.write_text("\n\n".join(
            f'Acct-Status-Type = Start\nAcct-Session-Id = "dae-{n}"\n3GPP-IMSI = "{imsi}"\n'
            f'User-Name = "{imsi}"\nNAS-IP-Address = 127.0.0.1\n'
            f'3GPP-SGSN-MCC-MNC = "{HOME}"\nFramed-IP-Address = 10.9.{n >> 8 & 255}.{n & 255}'
            for n, (_sid, imsi) in enumerate(rows[:count])) + "\n")
        wait_for(acct_port, starts, "acct")
        radclient(starts, acct_port, 32, "acct")
        client = simplane.client(server.base_url, ACCOUNT_SID, AUTH_TOKEN)
        latencies, calls = [], []
        for n, (sid, _imsi) in enumerate(rows[:count]):
            before = time.perf_counter()
            client.wireless.v1.sims(sid).update(status="suspended")
            calls.append(time.perf_counter() - before)
            deadline = time.monotonic() + 10
            while f"dae-{n}" not in listener.arrived and time.monotonic() < deadline:
                time.sleep(0.001)
            if f"dae-{n}" in listener.arrived:
                latencies.append(listener.arrived[f"dae-{n}"] - before)
        print(f"suspend -> Disconnect-Request, {count} SIMs one after another: "
              f"{len(latencies)} arrived; p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms; the API call alone: p50 "
              f"{statistics.median(calls) * 1000:.0f} ms, p99 "
              f"{percentile(calls, 0.99) * 1000:.0f} ms", flush=True)
    finally:
        server.stop()
        listener.sock.close()


def in_process(db_file: Path, workdir: Path, rows: list, parallel: int) -> None:
    from pyrad import packet as radius_packet
    from pyrad.server import CheckMessageAuthenticator

    from simplane.network.authorization import AuthServer
    from simplane.network.radius import dictionary

    fresh = workdir / "in-process.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(fresh) + suffix).unlink(missing_ok=True)
    shutil.copy(db_file, fresh)
    rt = runtime(f"sqlite:///{fresh}")
    secret, dict_ = SECRET.encode(), dictionary()
    batches = []
    for at in range(0, len(rows), parallel):
        batch = []
        for n, (_sid, imsi) in enumerate(rows[at:at + parallel]):
            pkt = radius_packet.AuthPacket(id=n % 256, secret=secret, dict=dict_)
            pkt["User-Name"], pkt["3GPP-IMSI"], pkt["3GPP-SGSN-MCC-MNC"] = imsi, imsi, HOME
            pkt["User-Password"] = pkt.PwCrypt("x")
            pkt.add_message_authenticator()
            batch.append((pkt.RequestPacket(), ("127.0.0.1", 40000 + n // 256)))
        batches.append(batch)
    server = AuthServer(rt, secret, port=0)
    count = len(rows)

    def simplane() -> float:
        started = time.perf_counter()
        for batch in batches:
            server.handle(batch)
        server._replies.clear()
        return time.perf_counter() - started

    def pyrad() -> float:
        started = time.perf_counter()
        for batch in batches:
            for data, _peer in batch:
                pkt = radius_packet.AuthPacket(packet=data, secret=secret, dict=dict_)
                CheckMessageAuthenticator(pkt)
                reply = pkt.CreateReply(Acct_Interim_Interval=300)
                reply.code = radius_packet.AccessAccept
                reply.ReplyPacket()
        return time.perf_counter() - started

    try:
        cold = simplane()
        times: dict[str, list[float]] = {"simplane": [], "pyrad": []}
        for _ in range(7):
            times["simplane"].append(simplane())
            times["pyrad"].append(pyrad())
    finally:
        server.sock.close()
        rt.close()
    best = {name: min(t) / count * 1e6 for name, t in times.items()}
    print(f"in one process, batches of {parallel}: simplane {best['simplane']:.0f} µs a request "
          f"(cold {cold / count * 1e6:.0f}), pyrad {best['pyrad']:.0f} µs; "
          f"pyrad/simplane {best['pyrad'] / best['simplane']:.2f}; load average {load()}",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--suspends", type=int, default=200)
    parser.add_argument("--workdir", default="/tmp/simplane-bench-radius")
    parser.add_argument("--in-process", action="store_true",
                        help="only the in-process cost per request (part 3)")
    parser.add_argument("--answer", nargs=3, metavar=("PORT", "SECRET", "KIND"),
                        help="run a ceiling listener (pyrad, pyrad-loop or plain) on this port")
    args = parser.parse_args()
    if args.answer:
        answer(int(args.answer[0]), args.answer[1].encode(), args.answer[2])
        return
    workdir = Path(args.workdir)
    db_file = kept_database(workdir, args.sims)
    rt = runtime(f"sqlite:///{db_file}")
    try:
        from sqlalchemy import select

        from simplane.wireless.models import Sim
        with rt.db.read() as db:
            rows = db.execute(select(Sim.sid, Sim.imsi).order_by(Sim.pk)).all()
    finally:
        rt.close()
    if args.in_process:
        in_process(db_file, workdir, rows, args.parallel)
        return
    requests = workdir / "access-requests.txt"
    requests.write_text("\n\n".join(
        f'User-Name = "{imsi}"\n3GPP-IMSI = "{imsi}"\n3GPP-SGSN-MCC-MNC = "{HOME}"\n'
        'User-Password = "x"' for _sid, imsi in rows) + "\n")
    probe = workdir / "access-probe.txt"
    probe.write_text(f'User-Name = "{rows[-1][1]}"\n3GPP-IMSI = "{rows[-1][1]}"\n')
    print(f"load average before: {load()}", flush=True)
    names = ("simplane", "pyrad", "pyrad-loop", "plain")
    # Two radclient runs against each listener: the first finds simplane cold (no SIM's facts
    # kept by the process yet), the second warm; the ceilings keep nothing.
    results: dict[str, list[dict]] = {f"{n} {p}": [] for n in names for p in ("cold", "warm")}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else tuple(reversed(names))):
            port = free_port()
            if name == "simplane":
                server = serve(db_file, workdir / "auth.db", "--radius-auth-port", str(port))
                stop = server.stop
            else:
                proc = subprocess.Popen([PYTHON, __file__, "--answer", str(port), SECRET, name],
                                        stdout=subprocess.DEVNULL)
                stop = proc.terminate
            try:
                wait_for(port, probe)
                for phase in ("cold", "warm"):
                    out = radclient(requests, port, args.parallel)
                    results[f"{name} {phase}"].append(out)
                    print(f"round {r + 1} {name:8s} {phase} {out['rps']:,.0f}/s "
                          f"({out['accepted']}/{len(rows)} accepted, lost {out['lost']})",
                          flush=True)
            finally:
                stop()
    rates = {name: statistics.median(run["rps"] for run in runs)
             for name, runs in results.items()}
    best = {name: max(run["rps"] for run in runs) for name, runs in results.items()}
    print(f"{len(rows):,} Access-Requests, {args.parallel} in flight, {args.rounds} rounds; "
          "median (best) Access-Accepts/s:", flush=True)
    for name, rate in rates.items():
        print(f"  {name:16s} {rate:9,.0f} ({best[name]:,.0f})", flush=True)
    for phase in ("cold", "warm"):
        print(f"  {phase}: simplane/pyrad {rates[f'simplane {phase}'] / rates[f'pyrad {phase}']:.2f}"
              f"  simplane/pyrad-loop "
              f"{rates[f'simplane {phase}'] / rates[f'pyrad-loop {phase}']:.2f}"
              f"  simplane/plain {rates[f'simplane {phase}'] / rates[f'plain {phase}']:.2f}"
              f"  pyrad/plain {rates[f'pyrad {phase}'] / rates[f'plain {phase}']:.2f}", flush=True)
    print(f"load average after: {load()}", flush=True)
    disconnect_latency(db_file, workdir, rows, args.suspends)
    in_process(db_file, workdir, rows, args.parallel)


if __name__ == "__main__":
    main()
