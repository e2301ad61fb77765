"""SMS commands submitted per second through `serve --smpp`'s link to an SMSC, against the same
SMSC driven by the bare smpplib client.

    .venv/bin/python bench/smpp.py [--commands 5000] [--window 64] [--rounds 3]
                                   [--postgres postgresql://127.0.0.1:5432/test]

The SMSC is a process of its own (this script as `--smsc PORT`): PDUs framed and built with
`struct`, so that it is not what limits either side. It answers every submit_sm with a
message_id, then sends a delivery receipt for it (a deliver_sm with receipted_message_id and
message_state), and answers bind_transceiver, enquire_link and unbind. (The tests' SMSC, on the
`smpp.pdu` codec, answers about 450 submit_sm/s here: too slow to be the ceiling.)

  simplane  `--commands` queued Wireless Commands (text, receipt requested) on 100 active SIMs
            with MSISDNs, on a fresh SQLite database (and PostgreSQL with --postgres), submitted
            by `simplane.network.smpp.SmppLink` with `--window` PDUs outstanding: from the link's
            start until every command is `sent` (the SMSC's message_id stored), then until every
            one is `delivered` (its receipt applied).
  ceiling   smpplib's Client alone, bound to the same SMSC: the same number of submit_sm with
            the same window, each receipt answered; from the first submit_sm to the last
            submit_sm_resp. No database.
"""

from __future__ import annotations

import argparse
import itertools
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, wait_for_port


def cstring(body: bytes, at: int) -> tuple[bytes, int]:
    end = body.index(b"\0", at)
    return body[at:end], end + 1


def pdu(command: int, seq: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">LLLL", 16 + len(body), command, status, seq) + body


def receipt(seq: int, destination: bytes, message_id: bytes) -> bytes:
    text = (b"id:" + message_id + b" sub:001 dlvrd:001 submit date:2601011200 done "
            b"date:2601011200 stat:DELIVRD err:000 text:")
    body = (b"\0" + b"\x01\x01" + destination + b"\0" + b"\x00\x00\0"
            + bytes([0x04, 0, 0]) + b"\0\0" + bytes([0, 0, 0, 0, len(text)]) + text
            + struct.pack(">HH", 0x001E, len(message_id) + 1) + message_id + b"\0"
            + struct.pack(">HHB", 0x0427, 1, 2))
    return pdu(0x00000005, seq, body)


def serve_smsc(port: int) -> None:
    """The bench's SMSC, one connection at a time, until killed."""
    listener = socket.create_server(("127.0.0.1", port))
    message_ids = itertools.count(1)
    seqs = itertools.count(1)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while chunk := conn.recv(1 << 16):
            buffer += chunk
            out = []
            while len(buffer) >= 16:
                length, command, _status, seq = struct.unpack(">LLLL", buffer[:16])
                if len(buffer) < length:
                    break
                body, buffer = buffer[16:length], buffer[length:]
                if command == 0x00000009:  # bind_transceiver
                    out.append(pdu(0x80000009, seq, b"smsc\0"))
                elif command == 0x00000004:  # submit_sm
                    _service, at = cstring(body, 0)
                    _source, at = cstring(body, at + 2)
                    destination, at = cstring(body, at + 2)
                    _schedule, at = cstring(body, at + 3)
                    _validity, at = cstring(body, at)
                    message_id = str(next(message_ids)).encode()
                    out.append(pdu(0x80000004, seq, message_id + b"\0"))
                    if body[at]:  # registered_delivery
                        out.append(receipt(next(seqs), destination, message_id))
                elif command == 0x00000015:  # enquire_link
                    out.append(pdu(0x80000015, seq))
                elif command == 0x00000006:  # unbind
                    out.append(pdu(0x80000006, seq))
            if out:
                conn.sendall(b"".join(out))
        conn.close()


def smsc_process() -> tuple[subprocess.Popen, int]:
    """The SMSC in a process of its own, once it accepts connections; and its port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--smsc", str(port)])
    wait_for_port(proc, port, "the SMSC", timeout=20)
    return proc, port



def ceiling(port: int, commands: int, window: int) -> float:
    """submit_sm/s of the bare smpplib client."""
    from smpplib import smpp
    from smpplib.client import Client

    client = Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transceiver(system_id="simplane", password="secret")
    sock = client._socket
    sent = answered = 0

    def fill() -> None:
        nonlocal sent
        while sent < commands and sent - answered < window:
            client.send_pdu(smpp.make_pdu(
                "submit_sm", client=client, service_type="", source_addr_ton=1,
                source_addr_npi=1, source_addr="447700900000", dest_addr_ton=1, dest_addr_npi=1,
                destination_addr=f"4477009{sent % 100:05d}", esm_class=0, protocol_id=0,
                priority_flag=0, registered_delivery=1, replace_if_present_flag=0,
                data_coding=0, sm_default_msg_id=0, short_message=f"command {sent}".encode()))
            sent += 1

    started = time.perf_counter()
    while answered < commands:  # the link's loop, less the database
        fill()
        select.select([sock], [], [], 1)
        pdus = []
        while select.select([sock], [], [], 0)[0]:
            pdus.append(client.read_pdu())
        answered += sum(1 for pdu in pdus if pdu.command == "submit_sm_resp")
        fill()  # the window the answers freed, before answering the receipts
        for pdu in pdus:
            if pdu.command == "deliver_sm":
                answer = smpp.make_pdu("deliver_sm_resp", client=client)
                answer.sequence = pdu.sequence
                client.send_pdu(answer)
    elapsed = time.perf_counter() - started
    client.disconnect()
    return commands / elapsed


def simplane_run(database_url: str, port: int, commands: int, window: int) -> tuple[float, float]:
    """(commands sent/s, commands delivered/s) through SmppLink."""
    from sqlalchemy import func
    from sqlalchemy import select as sql_select

    from simplane.config import Settings
    from simplane.core.runtime import Runtime
    from simplane.network.smpp import SmppLink
    from simplane.wireless import inventory, service
    from simplane.wireless.models import Command

    settings = Settings(database_url=database_url, run_workers=False, secret_key=None)
    settings.smpp = f"127.0.0.1:{port}"
    rt = Runtime(settings)
    creds = rt.ensure_bootstrap()
    assert creds is not None
    with rt.db.write() as db:
        plan = service.create_rate_plan(db, creds.sid, {"UniqueName": "sms"}, rt.clock.now())
        sids = inventory.add_sims(db, creds.sid, inventory.generated_rows(100, "active"),
                                  rt.clock.now(), plan.pk, msisdn_prefix="4477009")
        for i in range(commands):
            service.create_command(db, rt, creds.sid, {"Sim": sids[i % 100],
                                                        "Command": f"command {i}"})

    def count(status: str) -> int:
        with rt.db.read() as db:
            return db.scalar(sql_select(func.count()).select_from(Command)
                             .where(Command.status == status)) or 0

    link = SmppLink(rt, "127.0.0.1", port, "simplane", "secret", "447700900000", window=window,
                    poll=0.01)
    started = time.perf_counter()
    link.start()
    sent_at = None
    while True:
        queued = count("queued")
        if queued == 0 and sent_at is None:
            sent_at = time.perf_counter() - started
        if count("delivered") == commands:
            break
        time.sleep(0.01)
    delivered_at = time.perf_counter() - started
    link.stop()
    rt.close()
    return commands / (sent_at or delivered_at), commands / delivered_at


def postgres_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"simplane_bench_smpp_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def drop_postgres(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=5000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="also run on PostgreSQL (an admin URL)")
    parser.add_argument("--smsc", type=int, help=argparse.SUPPRESS)  # be the SMSC on this port
    args = parser.parse_args()
    if args.smsc:
        serve_smsc(args.smsc)
        return
    import logging

    logging.basicConfig(level=logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="simplane-bench-smpp-"))
    rows: list[tuple[str, float, float | None]] = []
    try:
        for round_ in range(args.rounds):
            smsc, port = smsc_process()
            try:
                rows.append(("ceiling", ceiling(port, args.commands, args.window), None))
                db = workdir / f"round-{round_}.db"
                rows.append(("sqlite", *simplane_run(f"sqlite:///{db}", port, args.commands,
                                                     args.window)))
                if args.postgres:
                    url, name = postgres_database(args.postgres)
                    try:
                        rows.append(("postgresql", *simplane_run(url, port, args.commands,
                                                                 args.window)))
                    finally:
                        drop_postgres(args.postgres, name)
            finally:
                smsc.terminate()
                smsc.wait()
            print(f"round {round_ + 1}: " + ", ".join(
                f"{name} {sent:,.0f}/s" for name, sent, _ in rows[-3 if args.postgres else -2:]),
                flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = {name: max(r[1] for r in rows if r[0] == name) for name, _, _ in rows}
    delivered = {name: max(r[2] or 0 for r in rows if r[0] == name) for name, _, _ in rows}
    print(f"\n{args.commands} commands, window {args.window}, best of {args.rounds}:")
    print(f"  ceiling (bare smpplib client)  {best['ceiling']:>8,.0f} submit_sm/s")
    for name in ("sqlite", "postgresql"):
        if name in best:
            print(f"  simplane on {name:<10}          {best[name]:>8,.0f} commands sent/s "
                  f"({best[name] / best['ceiling']:.0%} of the ceiling), "
                  f"{delivered[name]:,.0f} delivered/s (receipts applied)")


if __name__ == "__main__":
    main()
