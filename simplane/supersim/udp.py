"""The IP Commands port: where simplane sends to-SIM datagrams from, and where devices send
their from-SIM datagrams to.

One UDP socket per running simplane, bound on first use to $SIMPLANE_IP_COMMANDS_ADDRESS
(host:port; default 127.0.0.1 on a free port, see `address(runtime)`). The worker's jobs send
and receive on it, so a datagram is handled like any other background work.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.supersim")

MAX_DATAGRAM = 65535
_ports: weakref.WeakKeyDictionary[Runtime, CommandPort] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


class CommandPort:
    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.address: tuple[str, int] = self.sock.getsockname()

    def send(self, ip: str, port: int, data: bytes) -> None:
        self.sock.sendto(data, (ip, port))

    def receive(self, limit: int = 200) -> list[tuple[bytes, tuple[str, int]]]:
        """The datagrams waiting, at most `limit`, without blocking."""
        got: list[tuple[bytes, tuple[str, int]]] = []
        while len(got) < limit:
            try:
                data, source = self.sock.recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # e.g. ICMP port unreachable from an earlier send
                continue
            got.append((data, source[:2]))
        return got

    def close(self) -> None:
        self.sock.close()


def command_port(runtime: Runtime) -> CommandPort:
    with _lock:
        port = _ports.get(runtime)
        if port is None:
            host, _, number = os.environ.get("SIMPLANE_IP_COMMANDS_ADDRESS",
                                             "127.0.0.1:0").rpartition(":")
            port = _ports[runtime] = CommandPort(host or "127.0.0.1", int(number or 0))
            weakref.finalize(runtime, port.close)
            log.info("IP Commands on udp://%s:%d", *port.address)
        return port


def address(runtime: Runtime) -> tuple[str, int]:
    """Where devices send from-SIM IP Commands."""
    return command_port(runtime).address
