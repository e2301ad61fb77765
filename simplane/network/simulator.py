"""The fleet simulator: devices that behave like a real IoT fleet, on real operators, in virtual
time, every event going through the one ingest path.

Deterministic for a seed: each SIM (by its position in the fleet, ordered by pk) draws everything
from its own ``random.Random`` seeded with the run's seed and that position, so the same seed gives
the same event stream per SIM (only SIDs, ICCIDs and IMSI suffixes of newly provisioned SIMs differ).
"""

from __future__ import annotations

import heapq
import random
import secrets
import string
import time as real_time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from stdnum import luhn

from simplane.core.accounts import default_account_sid
from simplane.core.clock import ManualClock, utc
from simplane.network.events import NetworkEvent, home_network, operator
from simplane.network.ingest import ingest_into
from simplane.network.policy import CAN_USE_DATA
from simplane.wireless import inventory
from simplane.wireless.models import RatePlan, Sim
from simplane.wireless.service import create_rate_plan, receive_from_sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

MB = 1_000_000  # a rate plan's data_limit is in megabytes
DEFAULT_LIMIT_MB = 1000

# Real networks (python-stdnum resolves each to an operator with a country), per country.
OPERATORS: dict[str, list[tuple[str, str]]] = {
    "GB": [("234", "15"), ("234", "10"), ("234", "20"), ("234", "30")],
    "DE": [("262", "01"), ("262", "02"), ("262", "03")],
    "FR": [("208", "01"), ("208", "10"), ("208", "20")],
    "NL": [("204", "04"), ("204", "08"), ("204", "16")],
    "BE": [("206", "01")],
    "ES": [("214", "01"), ("214", "03")],
    "IT": [("222", "01"), ("222", "10")],
    "CH": [("228", "01")],
    "AT": [("232", "01")],
    "US": [("310", "410"), ("311", "480")],
    "CA": [("302", "220"), ("302", "610")],
}
NEIGHBOURS: dict[str, list[str]] = {
    "GB": ["FR", "NL", "BE"], "DE": ["NL", "BE", "FR", "CH", "AT"], "FR": ["BE", "DE", "CH", "IT", "ES"],
    "NL": ["BE", "DE"], "BE": ["NL", "FR", "DE"], "ES": ["FR"], "IT": ["FR", "CH", "AT"],
    "CH": ["DE", "FR", "IT", "AT"], "AT": ["DE", "CH", "IT"], "US": ["CA"], "CA": ["US"],
}
# Boxes (south, west, north, east) well inside each country: cells fall on its land, roughly.
BOXES: dict[str, tuple[float, float, float, float]] = {
    "GB": (51.0, -3.0, 54.0, 0.5), "DE": (48.5, 7.5, 53.5, 13.5), "FR": (44.0, 0.0, 48.8, 5.5),
    "NL": (51.6, 4.6, 53.0, 6.8), "BE": (50.3, 3.5, 51.2, 5.6), "ES": (37.5, -6.0, 42.5, -1.0),
    "IT": (41.0, 11.5, 45.5, 13.5), "CH": (46.3, 6.5, 47.5, 9.5), "AT": (46.8, 13.0, 48.2, 16.0),
    "US": (33.0, -115.0, 45.0, -80.0), "CA": (45.5, -80.0, 52.0, -72.0),
}
# Home networks of the SIMs the simulator provisions.
HOMES = [("234", "15"), ("262", "02"), ("208", "01"), ("204", "08"), ("311", "480")]
BEHAVIOURS = {"tracker": 35, "reporter": 30, "poor_coverage": 10, "roamer": 15, "heavy": 10}
APN = "iot.simplane"
TICK = 60  # seconds of simulated time between pacing flushes (with a speed)


@dataclass(frozen=True)
class FromSim:
    """A machine-to-machine command the device sends (an SMS to the platform)."""

    sim_sid: str
    time: datetime
    body: str
    kind: str = "command.from_sim"
    session_id: None = None


@dataclass(frozen=True)
class SimSpec:
    index: int
    sid: str
    imsi: str
    limit_bytes: int
    # Super SIMs: the SIM's status and the networks its Fleet allows (None: Wireless, which may
    # attach anywhere).
    status: str = "active"
    allowed: frozenset[tuple[str, str]] | None = None


@dataclass
class SimulationResult:
    account_sid: str | None
    sims: list[SimSpec]
    behaviours: dict[str, str]  # SIM SID → behaviour
    start: datetime
    end: datetime
    events: int = 0
    batches: int = 0
    kinds: Counter = field(default_factory=Counter)
    bytes_counted: int = 0
    unknown_imsi: int = 0


def _country_of(mcc: str, mnc: str, rng: random.Random) -> str:
    country = operator(mcc, mnc).country
    return country if country in BOXES else rng.choice(sorted(BOXES))


class Device:
    """One SIM in one device: its identity, where it is, and the data it has moved."""

    def __init__(self, spec: SimSpec, seed: int, start: datetime, end: datetime) -> None:
        self.spec = spec
        self.rng = rng = random.Random(f"simplane:{seed}:{spec.index}")
        self.behaviour = rng.choices(list(BEHAVIOURS), weights=list(BEHAVIOURS.values()))[0]
        tac = "35" + "".join(rng.choice(string.digits) for _ in range(6))
        body = tac + "".join(rng.choice(string.digits) for _ in range(6))
        self.imei = body + luhn.calc_check_digit(body)
        self.rat = rng.choice({"tracker": ["LTE", "LTE-M"], "reporter": ["NB-IoT", "LTE-M"],
                               "poor_coverage": ["2G", "3G", "NB-IoT"], "roamer": ["LTE", "3G"],
                               "heavy": ["LTE", "5G"]}[self.behaviour])
        self.home = home_network(spec.imsi)
        self.home_country = _country_of(*self.home, rng)
        self.country = self.home_country
        self.super = spec.allowed is not None
        # A Super SIM roams everywhere: it starts on a network of the country it is in.
        self.network = rng.choice(OPERATORS[self.country]) if self.super else self.home
        self.cached: set[tuple[str, str]] = set()  # networks that cached the SIM's permission
        self.apn = "super" if self.super else APN
        self.start, self.end = start, end
        self.horizon = (end - start).total_seconds()
        self.used = 0
        self.sessions = 0
        self.run_id = f"{start:%Y%m%d%H%M%S}-{seed}-{spec.index}"
        self.ip = f"10.{64 + spec.index // 65536 % 64}.{spec.index // 256 % 256}.{spec.index % 256}"
        self._move()

    # -- where the device is
    def _move(self) -> None:
        s, w, n, e = BOXES[self.country]
        self.lat = round(self.rng.uniform(s, n), 5)
        self.lon = round(self.rng.uniform(w, e), 5)
        self.cell_id = str(self.rng.randrange(1, 268435455))
        self.lac = str(self.rng.randrange(1, 65534))

    def cross_border(self) -> None:
        """A roamer moves on: home, a national partner, or a neighbouring country."""
        rng = self.rng
        partners = [op for op in OPERATORS.get(self.home_country, [])
                    if op != self.home and op[0] == self.home[0]]
        choice = rng.random()
        if self.network != self.home and choice < 0.3:
            self.network, self.country = self.home, self.home_country
        elif partners and choice < 0.55:
            self.network, self.country = rng.choice(partners), self.home_country
        else:
            self.country = rng.choice(NEIGHBOURS.get(self.country, NEIGHBOURS["GB"]))
            self.network = rng.choice(OPERATORS[self.country])
        self._move()

    # -- events
    def at(self, offset: float) -> datetime:
        return self.start + timedelta(seconds=int(offset))

    def event(self, kind: str, offset: float, session_id: str | None = None, up: int = 0,
              down: int = 0, error: str | None = None) -> NetworkEvent:
        if kind in ("session.updated", "session.ended"):
            # Interim and stop records carry the counters; the radio facts came with the start
            # (and a device changes cell only between sessions), which keeps ingest cheap.
            return NetworkEvent(
                kind=kind, imsi=self.spec.imsi, time=self.at(offset), session_id=session_id,
                bytes_up=up, bytes_down=down, packets_up=(up + 1399) // 1400,
                packets_down=(down + 1399) // 1400, error=error)
        return NetworkEvent(
            kind=kind, imsi=self.spec.imsi, time=self.at(offset), session_id=session_id,
            imei=self.imei, apn=self.apn, rat=self.rat, mcc=self.network[0], mnc=self.network[1],
            cell_id=self.cell_id, lac=self.lac, lat=self.lat, lon=self.lon, ip_address=self.ip,
            bytes_up=up, bytes_down=down, packets_up=(up + 1399) // 1400,
            packets_down=(down + 1399) // 1400, error=error)

    def attach(self, offset: float) -> Generator[NetworkEvent, None, float | None]:
        """Try to attach at `offset`; the generator returns when it attached (None: it could
        not), a second later per network tried. A
        Super SIM the network would refuse tries every visible network in turn (each rejection
        its own event), and a network that cached the SIM's permission may not report an
        accepted attachment at all."""
        if not self.super:
            yield self.event("attachment.accepted", offset)
            return offset
        spec, rng = self.spec, self.rng
        visible = [self.network] + [n for n in OPERATORS[self.country] if n != self.network]
        for tries, network in enumerate(visible):
            self.network = network
            allowed = spec.status in ("ready", "active") and network in (spec.allowed or ())
            if allowed and network in self.cached and rng.random() < 0.5:
                return offset + tries  # the permission was cached: nothing to report
            yield self.event("attachment.accepted", offset + tries)  # ingest rejects or accepts
            if allowed:
                self.cached.add(network)
                return offset + tries
        return None

    def new_session(self) -> str:
        self.sessions += 1
        return f"{self.run_id}-{self.sessions}"

    def grow(self, up: int, down: int) -> tuple[int, int, bool]:
        """Bytes the device may still move within its plan's limit; True once it is reached."""
        room = self.spec.limit_bytes - self.used
        if up + down >= room:
            up = min(up, max(room, 0))
            down = max(room - up, 0)
            self.used += up + down
            return up, down, True
        self.used += up + down
        return up, down, False

    def events(self, interval: float) -> Iterator[NetworkEvent | FromSim]:
        if self.behaviour in ("tracker", "roamer", "heavy"):
            return self._connected(interval)
        return self._reporting()

    def _connected(self, interval: float) -> Iterator[NetworkEvent]:
        """Always connected: one long session, interim updates every `interval` seconds."""
        rng = self.rng
        heavy, roamer = self.behaviour == "heavy", self.behaviour == "roamer"
        scale = rng.uniform(2, 8) * MB if heavy else rng.uniform(2_000, 40_000)
        t = rng.uniform(0, interval)
        while t < self.horizon:
            attached = yield from self.attach(t)
            if attached is None:
                t += rng.uniform(1800, 3600)  # no network would have it: try again later
                continue
            t = attached
            sid = self.new_session()
            yield self.event("session.started", t, sid)
            mean = 4 * 3600 if roamer else 18 * 3600
            until = t + rng.expovariate(1 / mean)
            up = down = 0
            while True:
                t += interval
                if t >= self.horizon:
                    return  # still open when the simulation stops
                du, dd, full = self.grow(int(scale * rng.uniform(0.05, 0.3)),
                                         int(scale * rng.uniform(0.5, 1.0)))
                up, down = up + du, down + dd
                if full:
                    yield self.event("session.ended", t, sid, up, down, error="DATA_LIMIT_REACHED")
                    return  # blocked for the rest of the period
                if t >= until:
                    yield self.event("session.ended", t, sid, up, down)
                    break
                yield self.event("session.updated", t, sid, up, down)
            t += rng.uniform(20, 600)
            if roamer:
                self.cross_border()

    def _reporting(self) -> Iterator[NetworkEvent | FromSim]:
        """Attach, send a burst, detach; in poor coverage, often fail to."""
        rng = self.rng
        poor = self.behaviour == "poor_coverage"
        period = rng.choice([1800, 3600, 7200, 14400, 21600])
        t = rng.uniform(0, period)
        while t + 180 < self.horizon:
            luck = rng.random() if poor else 1.0
            if luck < 0.3:
                yield self.event("attachment.failed", t, error=rng.choice(
                    ["NO_SUITABLE_CELLS_IN_TRACKING_AREA", "NETWORK_FAILURE", "CONGESTION"]))
            elif (attached := (yield from self.attach(t))) is not None:
                t = attached
                sid = self.new_session()
                yield self.event("session.started", t + 2, sid)
                up, down, full = self.grow(rng.randrange(200, 20_000), rng.randrange(100, 5_000))
                if luck < 0.5:
                    yield self.event("session.failed", t + rng.uniform(5, 60), sid, up // 3, 0,
                                     error=rng.choice(["LOST_CARRIER", "IDLE_TIMEOUT"]))
                    self.used -= up + down - up // 3
                else:
                    yield self.event("session.updated", t + 20, sid, up // 2, down // 2)
                    yield self.event("session.ended", t + rng.uniform(40, 170), sid, up, down)
                    if rng.random() < 0.1:  # now and then, a reading by SMS as well
                        yield FromSim(self.spec.sid, self.at(t + 175),
                                      f"reading={rng.randrange(1000)};battery={rng.randrange(100)}")
                if full:
                    return
            if poor and rng.random() < 0.2:
                self._move()  # the device is carried somewhere else in the country
            t += period * rng.uniform(0.9, 1.1)


def fleet(runtime: Runtime, account_sid: str | None = None, sims: int | None = None,
          seed: int = 0, data_limit: int | None = None,
          product: str = "wireless") -> tuple[str | None, list[SimSpec]]:
    """The SIMs to simulate: the account's (or every account's) active SIMs, by pk; with `sims`,
    the first that many, provisioning new active SIMs when the account has fewer. For Super SIM,
    every registered SIM whatever its status (the network rejects those that may not attach)."""
    if sims is not None and account_sid is None:
        with runtime.db.read() as db:
            account_sid = default_account_sid(db)
        if account_sid is None:
            runtime.ensure_bootstrap()
            with runtime.db.read() as db:
                account_sid = default_account_sid(db)
    if product == "supersim":
        return account_sid, _super_fleet(runtime, account_sid, sims, data_limit)
    with runtime.db.write() as db:
        query = (select(Sim.sid, Sim.imsi, RatePlan.data_limit)
                 .outerjoin(RatePlan, RatePlan.pk == Sim.rate_plan_pk)
                 .where(Sim.status == "active").order_by(Sim.pk))
        if account_sid is not None:
            query = query.where(Sim.account_sid == account_sid)
        rows = list(db.execute(query))
        if sims is not None and len(rows) < sims:
            assert account_sid is not None
            _provision(runtime, db, account_sid, sims - len(rows), len(rows), seed, data_limit)
            rows = list(db.execute(query))
        if sims is not None:
            rows = rows[:sims]
    specs = [SimSpec(i, sid, imsi, (DEFAULT_LIMIT_MB if limit is None else limit) * MB)
             for i, (sid, imsi, limit) in enumerate(rows)]
    return account_sid, specs


def _super_fleet(runtime: Runtime, account_sid: str | None, sims: int | None,
                 data_limit: int | None) -> list[SimSpec]:
    from simplane.supersim import inventory as stock
    from simplane.supersim.access import sims_by_imsi
    from simplane.supersim.models import Sim as SuperSim
    from simplane.supersim.service import change_status

    now = runtime.clock.now()
    query = select(SuperSim.imsi).where(SuperSim.account_sid.is_not(None)).order_by(SuperSim.pk)
    if account_sid is not None:
        query = query.where(SuperSim.account_sid == account_sid)
    with runtime.db.write() as db:
        imsis = list(db.scalars(query))
        if sims is not None and len(imsis) < sims:
            assert account_sid is not None
            fleet_pk = _default_fleet(db, account_sid, now, data_limit)
            rows = stock.add_sims(db, stock.generated_rows(sims - len(imsis)), now, account_sid)
            for sim in db.scalars(select(SuperSim).where(
                    SuperSim.sid.in_([r["sid"] for r in rows]))):
                sim.fleet_pk = fleet_pk
                change_status(db, runtime, sim, "active")  # as a completed status update does
            imsis = list(db.scalars(query))
        if sims is not None:
            imsis = imsis[:sims]
        facts = sims_by_imsi(db, imsis)
    return [SimSpec(i, f.sid, f.imsi, f.data_limit if f.data_limit is not None
                    else DEFAULT_LIMIT_MB * MB, f.status, f.allowed_networks)
            for i, f in enumerate(facts[imsi] for imsi in imsis)]


def _default_fleet(db, account_sid: str, now: datetime, data_limit: int | None) -> int:  # type: ignore[no-untyped-def]
    """The Fleet new simulated Super SIMs join: the account's first, or, when it has none, one
    named "simulator", made with a Network Access Profile that allows every network the
    simulator uses but one in each country with several (so that devices meet rejections and
    try the next network)."""
    from simplane.supersim import networks
    from simplane.supersim.models import Fleet
    from simplane.supersim.service import create_fleet, create_nap

    found = db.scalar(select(Fleet.pk).where(Fleet.account_sid == account_sid)
                      .order_by(Fleet.pk).limit(1))
    if found is not None:
        return found
    allowed = []
    for ops in OPERATORS.values():
        for mcc, mnc in ops[:-1] if len(ops) > 1 else ops:
            network = networks.network_for(mcc, mnc)
            if network is not None and network.sid not in allowed:
                allowed.append(network.sid)
    nap = create_nap(db, account_sid, {"UniqueName": "simulator", "Networks": allowed}, now)
    params: dict[str, Any] = {"UniqueName": "simulator", "NetworkAccessProfile": nap.sid}
    if data_limit is not None:
        params["DataLimit"] = data_limit
    return create_fleet(db, account_sid, params, now).pk


def _provision(runtime: Runtime, db, account_sid: str, count: int, first: int,  # type: ignore[no-untyped-def]
               seed: int, data_limit: int | None) -> None:
    now = runtime.clock.now()
    plan_pk = db.scalar(select(RatePlan.pk).where(RatePlan.account_sid == account_sid,
                                                  RatePlan.unique_name == "simulator"))
    if plan_pk is None:
        params = {"UniqueName": "simulator", "FriendlyName": "Fleet simulator",
                  "InternationalRoaming": ["data", "messaging"]}
        if data_limit is not None:
            params["DataLimit"] = data_limit  # type: ignore[assignment]
        plan_pk = create_rate_plan(db, account_sid, params, now).pk
    rows = inventory.generated_rows(count, "active")
    for offset, row in enumerate(rows):
        mcc, mnc = HOMES[random.Random(f"simplane:{seed}:home:{first + offset}").randrange(len(HOMES))]
        prefix = mcc + mnc
        row.imsi = prefix + "".join(secrets.choice(string.digits) for _ in range(15 - len(prefix)))
    inventory.add_sims(db, account_sid, rows, now, plan_pk)


def _receive(db, runtime: Runtime, commands: list[FromSim]) -> None:  # type: ignore[no-untyped-def]
    """Devices' from-SIM commands, in the same transaction as the batch they came with."""
    if not commands:
        return
    from simplane.supersim.models import Sim as SuperSim
    from simplane.supersim.service import receive_sms

    wanted = {c.sim_sid for c in commands}
    sims = {sim.sid: sim for sim in db.scalars(select(Sim).where(Sim.sid.in_(wanted)))}
    supers = {sim.sid: sim for sim in db.scalars(select(SuperSim).where(SuperSim.sid.in_(wanted)))}
    for command in commands:
        if (sim := sims.get(command.sim_sid)) is not None and sim.status in CAN_USE_DATA:
            receive_from_sim(db, runtime, sim, command.body, when=command.time)
        elif (sim := supers.get(command.sim_sid)) is not None and sim.status in CAN_USE_DATA:
            receive_sms(db, runtime, sim, command.body)


def simulate(runtime: Runtime, account_sid: str | None = None, sims: int | None = None,
             hours: float = 24, seed: int = 0, speed: float | None = None,
             start: datetime | None = None, interval: float = 360, batch_size: int = 25_000,
             data_limit: int | None = None, product: str = "wireless",
             progress: Callable[[float, float], None] | None = None) -> SimulationResult:
    """Run the fleet for `hours` of virtual time. `speed` is simulated seconds per real second
    (None: as fast as ingest goes). `interval` is the trackers' interim-update period in seconds.
    `data_limit` (MB) is used only for the rate plan (Wireless) or Fleet (Super SIM) created for
    newly provisioned SIMs. `product` is "wireless" or "supersim".
    `progress(done, total)` is called with simulated seconds."""
    account_sid, specs = fleet(runtime, account_sid, sims, seed, data_limit, product)
    begin = utc(start or runtime.clock.now()).replace(microsecond=0)
    end = begin + timedelta(hours=hours)
    clock = ManualClock(begin)
    devices = [Device(spec, seed, begin, end) for spec in specs]
    result = SimulationResult(account_sid, specs, {d.spec.sid: d.behaviour for d in devices},
                              begin, end)
    total = (end - begin).total_seconds()
    streams = [d.events(interval) for d in devices]
    merged = heapq.merge(*streams, key=lambda e: e.time)
    batch: list[NetworkEvent] = []
    commands: list[FromSim] = []
    keys: set[tuple[str, str]] = set()
    started = real_time.monotonic()

    def flush() -> None:
        if batch or commands:
            with runtime.db.write() as db:
                outcome = ingest_into(db, batch)
                _receive(db, runtime, commands)
            result.batches += 1
            result.bytes_counted += outcome.bytes_counted
            result.unknown_imsi += outcome.unknown_imsi
            batch.clear()
            commands.clear()
            keys.clear()
        if progress:
            progress((clock.now() - begin).total_seconds(), total)

    for ev in merged:
        if ev.time > clock.now():
            if speed:
                tick = (ev.time - begin).total_seconds() // TICK
                if tick != (clock.now() - begin).total_seconds() // TICK:
                    flush()
                    wait = (ev.time - begin).total_seconds() / speed - (real_time.monotonic() - started)
                    if wait > 0:
                        real_time.sleep(wait)
            clock.set(ev.time)
        if isinstance(ev, FromSim):
            commands.append(ev)
        else:
            batch.append(ev)
        result.events += 1
        result.kinds[ev.kind] += 1
        if ev.session_id:
            keys.add((ev.imsi, ev.session_id))
        if len(batch) >= batch_size or len(keys) >= 8000:
            flush()
    clock.set(end)
    flush()
    return result
