"""The products simplane serves. Each is a package with `views.api` (a ProductAPI) and `jobs.JOBS`
(and `jobs.NEXT_DUE` for the jobs that wait for a moment, see `simplane.core.worker`), as is
the network data plane, the operator's.

This is where products are plugged into the kernel, which knows none of them: `create_app`
includes their routers and registers their jobs (and the kernel's callback delivery) with the
runtime's worker (`register`)."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from types import ModuleType

from sqlalchemy.engine import Connection

from simplane.core.callbacks import KORE, send_due
from simplane.core.callbacks import next_due as callbacks_due
from simplane.core.worker import Job, NextDue, Worker
from simplane.kore import webhook_secrets

NAMES = ["wireless", "proxy", "supersim", "events"]
# Other flavours of the products' APIs (KORE's), over the same services and tables: each a
# package with `views.api` (its routes), `routing.HOSTS` (its hosts) and, where it has tables,
# `models`.
FLAVOURS = ["kore"]
# Operator-only routes that are not a Twilio product (no spec, no Host routing).
OPERATOR = ["network", "admin"]


def register(worker: Worker) -> None:
    """Every product's jobs, and when each has work next, on a runtime's worker; and where the
    callbacks it sends find the webhook secrets that sign KORE-flavoured ones."""
    worker.add(jobs(), next_due())
    worker.runtime.webhook_secrets[KORE] = webhook_secrets.active_secrets


def modules() -> list[ModuleType]:
    return [import_module(f"simplane.{name}.views") for name in NAMES + FLAVOURS + OPERATOR]


def hosts() -> dict[str, tuple[str, str]]:
    """The flavours' hosts (host → (the path it must start with, the prefix it gets)), for
    `app.HostRouting`."""
    found: dict[str, tuple[str, str]] = {}
    for name in FLAVOURS:
        found.update(import_module(f"simplane.{name}.routing").HOSTS)
    return found


def _rooms(room: str) -> list[ModuleType]:
    """Each product's (and flavour's and operator folder's) module `room`, where it has one."""
    return [import_module(f"simplane.{name}.{room}") for name in NAMES + FLAVOURS + OPERATOR
            if find_spec(f"simplane.{name}.{room}") is not None]


def jobs() -> list[Job]:
    return [*(job for module in _rooms("jobs") for job in getattr(module, "JOBS", [])), send_due]


def next_due() -> list[NextDue]:
    return [*(due for module in _rooms("jobs") for due in getattr(module, "NEXT_DUE", [])),
            callbacks_due]


def after_restore(conn: Connection) -> None:
    """Each product makes right, in the restoring transaction, what its restored rows meant only
    on the database a snapshot was taken from (a product's `models.after_restore`)."""
    for module in _rooms("models"):
        hook = getattr(module, "after_restore", None)
        if hook is not None:
            hook(conn)
