"""The products simplane serves. Each is a package with `views.api` (a ProductAPI) and `jobs.JOBS`
(and `jobs.NEXT_DUE` for the jobs that wait for a moment, see `simplane.core.worker`), as is
the network data plane, the operator's.

This is where products are plugged into the kernel, which knows none of them: `create_app`
includes their routers and registers their jobs (and the kernel's callback delivery) with the
runtime's worker (`register`)."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from sqlalchemy.engine import Connection

from simplane.core.callbacks import next_due as callbacks_due
from simplane.core.callbacks import send_due
from simplane.core.worker import Job, NextDue, Worker

NAMES = ["wireless", "proxy", "supersim", "events"]
# Operator-only routes that are not a Twilio product (no spec, no Host routing).
OPERATOR = ["network", "admin"]


def register(worker: Worker) -> None:
    """Every product's jobs, and when each has work next, on a runtime's worker."""
    worker.add(jobs(), next_due())


def modules() -> list[ModuleType]:
    return [import_module(f"simplane.{name}.views") for name in NAMES + OPERATOR]


def jobs() -> list[Job]:
    found: list[Job] = []
    for name in NAMES + OPERATOR:
        found.extend(getattr(import_module(f"simplane.{name}.jobs"), "JOBS", []))
    return [*found, send_due]


def next_due() -> list[NextDue]:
    found: list[NextDue] = []
    for name in NAMES:
        found.extend(getattr(import_module(f"simplane.{name}.jobs"), "NEXT_DUE", []))
    return [*found, callbacks_due]


def after_restore(conn: Connection) -> None:
    """Each product makes right, in the restoring transaction, what its restored rows meant only
    on the database a snapshot was taken from (a product's `models.after_restore`)."""
    for name in NAMES:
        hook = getattr(import_module(f"simplane.{name}.models"), "after_restore", None)
        if hook is not None:
            hook(conn)
