"""`simplane events …`: the dispatcher as a process of its own, and the live event stream."""

from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

if TYPE_CHECKING:
    from simplane.core.runtime import Runtime

app = typer.Typer(help="Event Streams: delivery to sinks and the live event stream.",
                  no_args_is_help=True)

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="SQLAlchemy URL (default: $SIMPLANE_DATABASE_URL or "
    "sqlite:///simplane.db).")]


def _runtime(database_url: str | None) -> Runtime:
    from simplane.cli_support import runtime

    return runtime(database_url)  # a setting it cannot start with is one line, not a traceback


@app.command()
def dispatch(
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(
        help="debug, info, warning or error.", envvar="SIMPLANE_LOG_LEVEL")] = "info",
) -> None:
    """Deliver events to sinks until stopped (SIGTERM or Ctrl-C). Run as many as you like on
    one PostgreSQL database: they share the sinks, never the same one at once. `simplane serve`
    also delivers, in its background worker."""
    from simplane.core import logs, wakeup
    from simplane.core.worker import Worker
    from simplane.events.jobs import JOBS

    logs.configure(log_level)
    runtime = _runtime(database_url)
    worker = Worker(runtime, JOBS, tick=0.1)  # delivery and outbox retention
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if not runtime.db.is_sqlite:  # events other processes publish wake it (NOTIFY)
        runtime.listener = wakeup.Listener(runtime.db, worker.wake).start()
    worker.start()
    typer.echo("dispatching events", err=True)
    stop.wait()
    worker.stop()
    runtime.close()


@app.command()
def sinks(
    account: Annotated[str | None, typer.Option(
        "--account", help="Only this account's sinks (default: every account's).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Every sink's delivery state: status, backlog, retries and the last error."""
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy import select

    from simplane.events.dispatcher import backlog
    from simplane.events.models import EventSink

    runtime = _runtime(database_url)
    table = Table("sink", "account", "type", "status", "backlog", "attempts", "next attempt",
                  "last error")
    try:
        with runtime.db.read() as db:
            stmt = select(EventSink).order_by(EventSink.pk)
            if account:
                stmt = stmt.where(EventSink.account_sid == account)
            for sink in db.scalars(stmt):
                table.add_row(sink.sid, sink.account_sid, sink.sink_type, sink.status,
                              str(backlog(db, sink)), str(sink.attempts),
                              sink.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if sink.attempts
                              else "-", sink.last_error or "-")
    finally:
        runtime.close()
    Console(width=200).print(table)


@app.command()
def tail(
    account: Annotated[str | None, typer.Option(
        "--account", help="Only this account's events (default: every account's).")] = None,
    type_prefix: Annotated[str | None, typer.Option(
        "--type", help="Only types starting with this, e.g. "
        "com.twilio.iot.supersim.connection.data-session")] = None,
    from_start: Annotated[bool, typer.Option(
        "--from-start", help="Begin with the oldest event kept, not the next one.")] = False,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    follow: Annotated[bool, typer.Option(help="Wait for new events (else stop at the end).")
                      ] = True,
    database_url: DatabaseUrl = None,
) -> None:
    """Print events as they are published, one line each: time, type, subject, id and data."""
    from simplane.events import outbox

    runtime = _runtime(database_url)
    shown = 0
    try:
        with runtime.db.read() as db:
            cursor = (0, 0) if from_start else outbox.last_visible(db)
        while count is None or shown < count:
            with runtime.db.read() as db:
                rows = outbox.read_after(db, cursor, 500, account)
            for row in rows:
                cursor = (row.txid, row.pk)
                if type_prefix and not row.type.startswith(type_prefix):
                    continue
                typer.echo(f"{row.time}  {row.type}  {row.subject or '-'}  {row.id}  "
                           f"{orjson.dumps(orjson.loads(row.data)).decode()}")
                shown += 1
                if count is not None and shown >= count:
                    break
            if not rows:
                if not follow:
                    break
                time.sleep(0.25)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.close()
