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
from stdnum.iso7064 import mod_97_10

from simplane.core.accounts import default_account_sid
from simplane.core.clock import ManualClock, iso, utc
from simplane.network.events import NetworkEvent, home_network, operator
from simplane.network.ingest import gateway_restarted, ingest_into
from simplane.network.policy import CAN_USE_DATA
from simplane.wireless import inventory
from simplane.wireless.models import RatePlan, Sim
from simplane.wireless.service import create_rate_plan, receive_from_sim

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime
    from simplane.supersim.udp import SimulatedGateway

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
CATCH_UP = timedelta(days=1)  # the most a live run starts before now


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
    esim_profiles: dict[str, str] = field(default_factory=dict)  # SID → downloaded/installed/failed


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
        self.gateway: str | None = None  # the simulated packet gateway carrying its sessions
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
            packets_down=(down + 1399) // 1400, error=error, gateway=self.gateway)

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
    """The SIMs to simulate: the account's (or every account's) SIMs that may attach (active
    Wireless SIMs; ready or active Super SIMs), by pk; with `sims`, the first that many,
    provisioning new active SIMs when the account has fewer."""
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
    from simplane.supersim.access import CONNECTED, sims_by_imsi
    from simplane.supersim.models import Sim as SuperSim
    from simplane.supersim.service import change_status

    now = runtime.clock.now()
    query = (select(SuperSim.imsi).where(SuperSim.account_sid.is_not(None),
                                         SuperSim.status.in_(CONNECTED)).order_by(SuperSim.pk))
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


def _take_esim_profiles(runtime: Runtime, account_sid: str | None, seed: int) -> dict[str, str]:
    """eUICCs of the fleet download and install every eSIM Profile available to the account (or
    to every account), as a device given its activation code or EID would; a profile ordered with
    a matching ID goes to an eUICC of the simulator's own (a valid EID). Returns each profile's
    SID and its status after: `installed`, or `failed` when the SM-DP+ refused the eUICC. The
    profiles' Super SIMs are `new` until their owner activates them, and join the simulated
    fleet then."""
    from simplane.supersim.models import EsimProfile
    from simplane.supersim.service import esim_downloaded, esim_installed

    outcome = {}
    query = select(EsimProfile).where(EsimProfile.status == "available")
    if account_sid is not None:
        query = query.where(EsimProfile.account_sid == account_sid)
    with runtime.db.write() as db:
        for profile in db.scalars(query.order_by(EsimProfile.pk)):
            eid = profile.eid or _eid(random.Random(f"simplane:{seed}:eid:{profile.pk}"))
            if esim_downloaded(db, runtime, profile, eid):
                esim_installed(db, runtime, profile)
            outcome[profile.sid] = profile.status
    return outcome


def _eid(rng: random.Random) -> str:
    """An EID with valid check digits (ISO 7064 MOD 97-10), of a GSMA-style eUICC number."""
    body = "89049032" + "".join(rng.choice(string.digits) for _ in range(22))
    return body + mod_97_10.calc_check_digits(body)


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


class WindowError(ValueError):
    """A simulated window that would date data after the server's now, or ends before it
    starts."""


def window(now: datetime, hours: float, start: datetime | None = None,
           end: datetime | None = None, speed: float | None = None) -> tuple[datetime, datetime]:
    """The simulated window. As fast as ingest goes (no `speed`): `hours` up to `end`, by default
    the server's now (or from `start`); it may not end after now, since simulated data is never
    dated after the server's now. Live: `hours` from `start`, which may not be after now; by
    default a little before now (60 simulated seconds per unit of speed above 1, at most a day), so
    that the fleet has a recent past and catches up with the clock within a minute. A live run
    never runs ahead of the server's clock."""
    span = timedelta(hours=hours)
    now = utc(now).replace(microsecond=0)
    start = utc(start).replace(microsecond=0) if start else None
    end = utc(end).replace(microsecond=0) if end else None
    if speed:
        begin = start or now - min(CATCH_UP, timedelta(seconds=60 * max(speed - 1, 0)))
        stop = end or begin + span
        if begin > now:
            raise WindowError(f"the simulated window starts at {iso(begin)}, after the server's "
                              f"now ({iso(now)}): give a start in the past")
    else:
        if start is not None:
            begin, stop = start, end or start + span
        else:
            stop = end or now
            begin = stop - span
        if stop > now:
            raise WindowError(f"the simulated window ends at {iso(stop)}, after the server's now "
                              f"({iso(now)}): simulated data is never dated in the future; give "
                              "an earlier --start or --end, or fewer --hours")
    if stop < begin:
        raise WindowError(f"the simulated window ends at {iso(stop)}, before it starts at "
                          f"{iso(begin)}")
    return begin, stop


def simulate(runtime: Runtime, account_sid: str | None = None, sims: int | None = None,
             hours: float = 24, seed: int = 0, speed: float | None = None,
             start: datetime | None = None, interval: float = 360, batch_size: int = 25_000,
             data_limit: int | None = None, product: str = "wireless",
             progress: Callable[[float, float], None] | None = None,
             end: datetime | None = None,
             sleep: Callable[[float], None] = real_time.sleep) -> SimulationResult:
    """Run the fleet over a window of virtual time (see `window`): `hours` up to the server's
    now, or from `start` / up to `end`. `speed` is simulated seconds per real second (None: as
    fast as ingest goes); a live run never dates an event after the server's clock says now, so
    once it has caught up it follows that clock. `interval` is the trackers' interim-update
    period in seconds. `data_limit` (MB) is used only for the rate plan (Wireless) or Fleet
    (Super SIM) created for newly provisioned SIMs. `product` is "wireless" or "supersim".
    `progress(done, total)` is called with simulated seconds. Raises WindowError (before
    anything is written) for a window after the server's now."""
    begin, end = window(runtime.clock.now(), hours, start, end, speed)
    account_sid, specs = fleet(runtime, account_sid, sims, seed, data_limit, product)
    clock = ManualClock(begin)
    devices = [Device(spec, seed, begin, end) for spec in specs]
    result = SimulationResult(account_sid, specs, {d.spec.sid: d.behaviour for d in devices},
                              begin, end)
    gateway: SimulatedGateway | None = None
    if product == "supersim":
        from simplane.supersim import udp

        result.esim_profiles = _take_esim_profiles(runtime, account_sid, seed)
        name = udp.VIRTUAL  # after the run, virtual devices answer for the sessions left open
        if speed:  # live devices take IP Commands, through a gateway of their own
            gateway = udp.SimulatedGateway(_answer({d.ip for d in devices}))
            name = gateway.name
        for device in devices:
            device.gateway = name
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
                outcome = ingest_into(db, batch, runtime.clock.now())
                _receive(db, runtime, commands)
            result.batches += 1
            result.bytes_counted += outcome.bytes_counted
            result.unknown_imsi += outcome.unknown_imsi
            batch.clear()
            commands.clear()
            keys.clear()
        if progress:
            progress((clock.now() - begin).total_seconds(), total)

    def pace(when: datetime) -> None:
        """Wait until `when` is due: `speed` times real time since the start, and not after the
        server's now."""
        assert speed
        wait = (when - begin).total_seconds() / speed - (real_time.monotonic() - started)
        if wait > 0:
            sleep(wait)
        while (ahead := (when - runtime.clock.now()).total_seconds()) > 0:
            sleep(min(ahead, 1.0))

    try:
        for ev in merged:
            if ev.time > clock.now():
                if speed:
                    tick = (ev.time - begin).total_seconds() // TICK
                    if (tick != (clock.now() - begin).total_seconds() // TICK
                            or ev.time > runtime.clock.now()):
                        flush()
                        pace(ev.time)
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
    finally:
        if gateway is not None:  # the gateway stops: the sessions it carried end, as it reports
            gateway.close()
            gateway_restarted(runtime, gateway.name, min(end, runtime.clock.now()))
    return result


def _answer(ips: set[str]) -> Callable[[str, int, bytes], bytes | None]:
    """How a live simulated Super SIM device answers an IP Command (devices.answer_ip_command),
    from the port it got it on."""
    from simplane.supersim.devices import answer_ip_command

    def answer(ip: str, port: int, data: bytes) -> bytes | None:
        return answer_ip_command(data) if ip in ips else None
    return answer
