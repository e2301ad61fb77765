"""The products simplane serves. Each is a package with `api` (a ProductAPI) and `jobs` (its
`JOBS`, and `NEXT_DUE` for those that wait for a moment)."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from simplane.core.worker import Job, NextDue

NAMES = ["wireless", "proxy", "supersim", "events"]
# Operator-only routes that are not a Twilio product (no spec, no Host routing).
OPERATOR = ["network", "admin"]


def modules() -> list[ModuleType]:
    return [import_module(f"simplane.{name}.views") for name in NAMES + OPERATOR]


def jobs() -> list[Job]:
    from simplane.core.callbacks import send_due

    found: list[Job] = []
    for name in NAMES:
        found.extend(getattr(import_module(f"simplane.{name}.jobs"), "JOBS", []))
    return [*found, send_due]


def next_due() -> list[NextDue]:
    from simplane.core.callbacks import next_due as callbacks_due

    found: list[NextDue] = []
    for name in NAMES:
        found.extend(getattr(import_module(f"simplane.{name}.jobs"), "NEXT_DUE", []))
    return [*found, callbacks_due]
