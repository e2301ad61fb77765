"""`simplane clock …`: the database's clock, shown and moved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

import typer

from simplane.cli_support import DatabaseUrl, runtime
from simplane.core.runtime import Runtime

app = typer.Typer(help="The clock every process on the database reads (see serve --clock).",
                  no_args_is_help=True)


def _show(rt: Runtime) -> None:
    from simplane.core.clock import iso

    clock = rt.clock
    typer.echo(f"{iso(clock.now())}  {clock.mode}  speed {clock.speed:g}")


def _move(database_url: str | None, move: Callable[[Runtime], datetime]) -> None:
    """Move the clock as `simplane serve` would: with every product's jobs run on the way."""
    from simplane import products
    from simplane.core.clock import ClockError

    rt = runtime(database_url)
    products.register(rt.worker)
    try:
        move(rt)
        _show(rt)
    except (ClockError, ValueError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()


@app.command()
def show(database_url: DatabaseUrl = None) -> None:
    """Print now, the mode (real or virtual) and the speed."""
    rt = runtime(database_url)
    try:
        _show(rt)
    finally:
        rt.close()


@app.command()
def advance(
    duration: Annotated[str, typer.Argument(
        help="Seconds, a number with d, h, m or s (90d, 6h, 15m), or ISO 8601 (P90D, PT6H).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Move a virtual clock on, running every job that falls due on the way, in time order."""
    from simplane.core.clock import Duration
    from simplane.core.virtual_clock import advance_clock

    try:
        step = Duration.of(duration)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="DURATION") from None
    _move(database_url, lambda rt: advance_clock(rt, step))


@app.command("set")
def set_(
    time: Annotated[str, typer.Argument(help="ISO 8601, e.g. 2026-06-01T00:00:00Z.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Move a virtual clock to a time (on, running what falls due on the way; or back)."""
    from simplane.core.virtual_clock import set_clock

    when = parse_time(time, "TIME")
    _move(database_url, lambda rt: set_clock(rt, when))


def parse_time(text: str, param_hint: str) -> datetime:
    """An ISO 8601 time given on the command line, as the API reads one."""
    from simplane.core.errors import TwilioError
    from simplane.core.params import parse_datetime

    try:
        return parse_datetime(param_hint, text)
    except TwilioError as error:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date-time",
                                 param_hint=param_hint) from error
