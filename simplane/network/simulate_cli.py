"""`simplane simulate`: run the fleet simulator against a database (register with
``app.command("simulate")(simulate)``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True)


def simulate(
    sims: Annotated[int | None, typer.Option(
        min=1, help="Fleet size; new active SIMs are provisioned when the account has fewer "
        "(default: every SIM that can attach: active Wireless SIMs, ready or active Super "
        "SIMs).")] = None,
    hours: Annotated[float, typer.Option(
        min=0, help="Simulated hours: with --fast, those up to the server's now (or from "
        "--start); live, from --start (default: a minute of real time behind the server's "
        "clock at --speed, at most a day) on.")] = 24.0,
    start: Annotated[datetime | None, typer.Option(
        help="Start of the simulated window, in the past (UTC, e.g. 2026-03-01T08:00:00).")
    ] = None,
    end: Annotated[datetime | None, typer.Option(
        help="End of the simulated window (default: with --fast the server's now, live --hours "
        "after the start).")] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same event stream per SIM.")] = 0,
    speed: Annotated[float, typer.Option(
        min=0, help="Simulated seconds per real second (ignored with --fast); a live run never "
        "runs ahead of the server's clock.")] = 60.0,
    fast: Annotated[bool, typer.Option("--fast", help="As fast as ingest goes.")] = False,
    interval: Annotated[int, typer.Option(
        min=10, help="Seconds between interim updates of always-connected devices.")] = 360,
    data_limit: Annotated[int | None, typer.Option(
        min=0, help="Data limit (MB) of the rate plan (or Fleet) made for provisioned SIMs.")
    ] = None,
    product: Annotated[str, typer.Option(
        help="wireless, or supersim (Super SIMs in a default Fleet, with Connection Events).")
    ] = "wireless",
    account: Annotated[str | None, typer.Option(
        "--account", help="Account SID (default: with --sims the bootstrap account, "
        "without it every account).")] = None,
    database_url: Annotated[str | None, typer.Option(
        "--database-url", help="SQLAlchemy URL (default: $SIMPLANE_DATABASE_URL or "
        "sqlite:///simplane.db).")] = None,
) -> None:
    """Simulate a fleet of devices; every event goes through ingest."""
    import time

    from simplane.config import Settings
    from simplane.core.runtime import Runtime
    from simplane.network.simulator import WindowError, window
    from simplane.network.simulator import simulate as run

    if product not in ("wireless", "supersim"):
        raise typer.BadParameter("must be wireless or supersim", param_hint="--product")
    settings = Settings(run_workers=False)
    if database_url:
        settings = Settings(database_url=database_url, run_workers=False)
    runtime = Runtime(settings)
    try:
        try:
            begin, stop = window(runtime.clock.now(), hours, start, end, None if fast else speed)
        except WindowError as e:
            raise typer.BadParameter(str(e), param_hint="--start/--end/--hours") from None
        hours = (stop - begin).total_seconds() / 3600
        columns = (TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.completed:.0f}/{task.total:.0f} simulated min"),
                   TimeElapsedColumn())
        with Progress(*columns, console=err) as bar:
            task = bar.add_task("simulating", total=hours * 60)

            def report(done: float, total: float) -> None:
                bar.update(task, completed=done / 60)

            began = time.monotonic()
            result = run(runtime, account, sims, hours, seed, None if fast else speed,
                         start=begin, end=stop, interval=interval, data_limit=data_limit,
                         product=product, progress=report)
            bar.update(task, completed=hours * 60)
        took = time.monotonic() - began
        behaviours: dict[str, int] = {}
        for name in result.behaviours.values():
            behaviours[name] = behaviours.get(name, 0) + 1
        err.print(f"{len(result.sims)} SIMs, {result.events} events in {result.batches} batches, "
                  f"{result.bytes_counted} bytes, {took:.1f}s")
        err.print("behaviours: " + ", ".join(f"{k} {v}" for k, v in sorted(behaviours.items())))
        err.print("events: " + ", ".join(f"{k} {v}" for k, v in sorted(result.kinds.items())))
        if result.esim_profiles:
            taken = list(result.esim_profiles.values())
            err.print(f"eSIM Profiles: {taken.count('installed')} downloaded and installed, "
                      f"{taken.count('failed')} failed")
    finally:
        runtime.close()
