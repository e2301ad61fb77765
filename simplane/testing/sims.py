"""`simplane.sims`: SIMs put into the test's account the way an operator's CLI puts them there
(`simplane sims provision`), ready for the official client to see."""

from __future__ import annotations

from sqlalchemy import select

from simplane.core.runtime import Runtime

WIRELESS_STATUSES = ("new", "ready", "active", "suspended", "deactivated")
SUPERSIM_STATUSES = ("new", "ready", "active", "inactive")
DEFAULT_PLAN = "default"  # the rate plan (Wireless) or Fleet (Super SIM) made when none is named


class Sims:
    def __init__(self, runtime: Runtime, account_sid: str) -> None:
        self._runtime = runtime
        self._account_sid = account_sid

    def provision(self, count: int = 1, status: str = "active", rate_plan: str | None = None,
                  product: str = "wireless") -> list[str]:
        """`count` new SIMs in `status`; returns their SIDs. Wireless SIMs take `rate_plan` (a
        rate plan's SID or unique name); Super SIMs (`product="supersim"`) join the Fleet it
        names. Without one, SIMs that need it join a "default" plan or Fleet, made on first
        use (its Network Access Profile allows the networks the fleet simulator uses)."""
        if count < 1:
            raise ValueError("count must be at least 1")
        if product == "wireless":
            return self._wireless(count, status, rate_plan)
        if product == "supersim":
            return self._supersim(count, status, rate_plan)
        raise ValueError(f"product must be 'wireless' or 'supersim', not {product!r}")

    def _wireless(self, count: int, status: str, rate_plan: str | None) -> list[str]:
        from simplane.wireless import inventory
        from simplane.wireless.models import RatePlan
        from simplane.wireless.service import create_rate_plan

        if status not in WIRELESS_STATUSES:
            raise ValueError(f"a Wireless SIM's status is one of {', '.join(WIRELESS_STATUSES)}")
        now = self._runtime.clock.now()
        with self._runtime.db.write() as db:
            if rate_plan is None and status in ("ready", "active"):
                plan_pk = db.scalar(select(RatePlan.pk).where(
                    RatePlan.account_sid == self._account_sid,
                    RatePlan.unique_name == DEFAULT_PLAN))
                if plan_pk is None:
                    plan_pk = create_rate_plan(db, self._account_sid, {
                        "UniqueName": DEFAULT_PLAN, "FriendlyName": "Default"}, now).pk
            else:
                plan_pk = inventory.resolve_rate_plan(db, self._account_sid, rate_plan)
            return inventory.add_sims(db, self._account_sid,
                                      inventory.generated_rows(count, status), now, plan_pk)

    def _supersim(self, count: int, status: str, fleet: str | None) -> list[str]:
        from simplane.supersim import inventory
        from simplane.supersim.models import Fleet, Sim
        from simplane.supersim.service import change_status

        if status not in SUPERSIM_STATUSES:
            raise ValueError(f"a Super SIM's status is one of {', '.join(SUPERSIM_STATUSES)}")
        now = self._runtime.clock.now()
        with self._runtime.db.write() as db:
            column = Fleet.sid if fleet and fleet.startswith("HF") else Fleet.unique_name
            fleet_pk = db.scalar(select(Fleet.pk).where(Fleet.account_sid == self._account_sid,
                                                        column == (fleet or DEFAULT_PLAN)))
            if fleet_pk is None and fleet is not None:
                raise ValueError(f"no Fleet {fleet!r} on account {self._account_sid}")
            if fleet_pk is None:
                fleet_pk = self._default_fleet(db)
            rows = inventory.add_sims(db, inventory.generated_rows(count), now,
                                      self._account_sid)
            sids = [row["sid"] for row in rows]
            for sim in db.scalars(select(Sim).where(Sim.sid.in_(sids))):
                sim.fleet_pk = fleet_pk
                if status != "new":
                    change_status(db, self._runtime, sim, status)
            return sids

    def _default_fleet(self, db) -> int:  # type: ignore[no-untyped-def]
        from simplane.network.simulator import OPERATORS
        from simplane.supersim import networks
        from simplane.supersim.service import create_fleet, create_nap

        now = self._runtime.clock.now()
        allowed = list(dict.fromkeys(
            network.sid for ops in OPERATORS.values() for mcc, mnc in ops
            if (network := networks.network_for(mcc, mnc)) is not None))
        nap = create_nap(db, self._account_sid, {"UniqueName": DEFAULT_PLAN,
                                                 "Networks": allowed}, now)
        return create_fleet(db, self._account_sid, {"UniqueName": DEFAULT_PLAN,
                                                    "NetworkAccessProfile": nap.sid}, now).pk
