"""`simplane serve`'s processes: the web server in one or more processes on one port, and
beside it what must run once.

With `--workers N` the process started (the first) binds the port with SO_REUSEPORT, and starts
N-1 more processes (spawned, each with its own runtime and its own SO_REUSEPORT socket on that
port; the kernel spreads new connections over the sockets). It restarts one that dies, and each
ends with it (PR_SET_PDEATHSIG). Every process serves the API and runs the background jobs (they
claim their rows: `core/worker.py`); the rest runs in the first process only:

| what | how it runs once |
|---|---|
| the RADIUS listeners (accounting, authorisation) | bound by the first process only: one socket per port, so its duplicate detection sees every retransmission. Several hosts may each listen: ingest queues batches one behind the other and counts only counters' growth |
| the SMPP bind (`--smpp`) | once per database: the role `smpp` (`core/leases.py`); another `serve --smpp` on the database waits as a standby and binds when the holder dies |
| the fleet simulator (`--simulate`) | once per database: the role `simulator` |
| `--metrics-address` | the first process's metrics |
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from simplane.config import Settings
    from simplane.core.runtime import Runtime

log = logging.getLogger("simplane.serve")


@dataclass
class Extras:
    """What runs beside the web server, in the first process only."""

    radius_port: int | None = None
    radius_auth_port: int | None = None
    radius_secret: str | None = None
    radius_clients: dict[str, str] = field(default_factory=dict)
    smsc: tuple[str, int] | None = None
    smpp_system_id: str = ""
    smpp_password: str = ""
    smpp_source_addr: str = ""
    simulate: int | None = None
    simulate_speed: float = 1.0
    product: str = "wireless"
    metrics_address: str | None = None


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port that other processes may bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def start_extras(rt: Runtime, host: str, extras: Extras, say: Callable[[str], None]
                 ) -> Callable[[], None]:
    """Start what runs once beside the web server; returns the function that stops it all."""
    from simplane.core.leases import Role
    from simplane.network.radius import RadiusListener

    stops: list[Callable[[], None]] = []
    listeners: list[RadiusListener] = []
    try:
        if extras.radius_port is not None:
            from simplane.network.radius import RadiusServer

            listeners.append(RadiusServer(rt, extras.radius_secret, host=host,
                                          port=extras.radius_port,
                                          clients=extras.radius_clients).start())
            stops.append(listeners[-1].stop)
            say(f"RADIUS accounting on udp://{host}:{listeners[-1].port}")
        if extras.radius_auth_port is not None:
            from simplane.network.authorization import AuthServer

            listeners.append(AuthServer(rt, extras.radius_secret, host=host,
                                        port=extras.radius_auth_port,
                                        clients=extras.radius_clients).start())
            stops.append(listeners[-1].stop)
            say(f"RADIUS authorisation on udp://{host}:{listeners[-1].port}")
        if extras.smsc is not None:
            host_, port_ = extras.smsc

            def bind() -> Callable[[], None]:
                from simplane.network.smpp import SmppLink

                link = SmppLink(rt, host_, port_, extras.smpp_system_id, extras.smpp_password,
                                extras.smpp_source_addr).start()
                return link.stop

            stops.append(Role(rt.db, "smpp", bind).start().stop)
            say(f"SMS commands through the SMSC at {host_}:{port_} (one bind per database: "
                "a standby while another process holds it)")
        if extras.simulate is not None:
            stops.append(Role(rt.db, "simulator", lambda: _simulator(rt, extras)).start().stop)
            say(f"simulating {extras.simulate} SIMs at {extras.simulate_speed}x (once per "
                "database)")
        if extras.metrics_address is not None:
            from simplane.core.metrics import serve_metrics

            metrics = serve_metrics(extras.metrics_address)
            stops.append(metrics.shutdown)
            say(f"metrics on http://{extras.metrics_address}/metrics")
    except BaseException:
        _stop_all(stops)
        raise
    return lambda: _stop_all(stops)


def _stop_all(stops: list[Callable[[], None]]) -> None:
    for stop in reversed(stops):
        try:
            stop()
        except Exception:
            log.exception("stopping failed")


class _Stopped(Exception):
    pass


def _simulator(rt: Runtime, extras: Extras) -> Callable[[], None]:
    """Run the live fleet in a thread until the function returned is called."""
    from simplane.network.simulator import simulate

    stop = threading.Event()

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    def run() -> None:
        with contextlib.suppress(_Stopped):
            simulate(runtime=rt, sims=extras.simulate, hours=24 * 365,
                     speed=extras.simulate_speed, product=extras.product, sleep=sleep)

    thread = threading.Thread(target=run, name="simulator", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=30)

    return halt


# --- the processes beside the first ---------------------------------------------------------

class Workers:
    """N-1 web server processes beside this one, on the same port; one that dies is started
    again (after a second, so that one failing at start does not spin)."""

    def __init__(self, count: int, settings: Settings, host: str, port: int,
                 log_level: str) -> None:
        self.count = count
        self.args = (settings, host, port, log_level, os.getpid())
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[BaseProcess] = []
        self._stopping = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None

    def start(self) -> Workers:
        self.processes = [self._spawn() for _ in range(self.count)]
        self._thread = threading.Thread(target=self._watch, name="workers", daemon=True)
        self._thread.start()
        return self

    def _spawn(self) -> BaseProcess:
        process = self.context.Process(target=worker_main, args=self.args, daemon=True,
                                       name="simplane-worker")
        process.start()
        return process

    def _watch(self) -> None:
        while not self._stopping.is_set():
            sentinels: list[Any] = [p.sentinel for p in self.processes]
            wait([*sentinels, self._wake_r])
            if self._stopping.is_set():
                return
            for i, process in enumerate(self.processes):
                if not process.is_alive():
                    log.warning("web server process %s ended (exit code %s); starting another",
                                process.pid, process.exitcode)
                    if self._stopping.wait(1.0):
                        return
                    self.processes[i] = self._spawn()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def stop(self) -> None:
        self._stopping.set()
        os.write(self._wake_w, b"x")
        for process in self.processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes what it serves
        for process in self.processes:
            process.join(timeout=15)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


def _die_with(parent: int) -> None:
    """Have the kernel send SIGTERM to this process when its parent ends (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it ended before we asked
        os._exit(0)


def worker_main(settings: Settings, host: str, port: int, log_level: str, parent: int) -> None:
    """A web server process beside the first: the API and the background jobs."""
    import uvicorn

    from simplane.app import create_app
    from simplane.core import logs
    from simplane.core.runtime import Runtime

    _die_with(parent)
    logs.configure(log_level)
    rt = Runtime(settings, migrate=False)  # the first process migrated
    sock = reuseport_socket(host, port)
    config = uvicorn.Config(create_app(rt), log_level=log_level, access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        rt.close()
