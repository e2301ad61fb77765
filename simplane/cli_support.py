"""What every `simplane …` command shares: the options naming the database and the account, the
runtime a command works on, the console it reports to, and its progress bar. `simplane.cli`
and each product's CLI import it (and `simplane.cli` imports the product CLIs, never the
reverse)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import select
from sqlalchemy.orm import Session

from simplane.config import ConfigError, Settings
from simplane.core.runtime import Runtime

err = Console(stderr=True)

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="SQLAlchemy URL; postgresql://… or sqlite:///file.db "
    "(default: $SIMPLANE_DATABASE_URL or sqlite:///simplane.db).")]
Account = Annotated[str | None, typer.Option(
    "--account", help="Account SID (default: the bootstrap account).")]


def runtime(database_url: str | None) -> Runtime:
    """A runtime on the database, without background workers (a command does its work itself)."""
    with setup_errors():
        settings = Settings(run_workers=False)
        if database_url:
            settings = Settings(database_url=database_url, run_workers=False)
        return Runtime(settings)


@contextmanager
def setup_errors() -> Iterator[None]:
    """A setting or a database a command cannot start with ends it with one line saying what is
    wrong and how to fix it (exit status 2), not a traceback."""
    from sqlalchemy.exc import ArgumentError, OperationalError

    try:
        yield
    except ConfigError as exc:
        message = str(exc)
    except (ArgumentError, OperationalError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        message = (f"cannot open the database ({reason}): check --database-url or "
                   "SIMPLANE_DATABASE_URL")
    else:
        return
    typer.echo(f"simplane: {message}", err=True)
    raise typer.Exit(2)


def progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err)


def resolve_account(db: Session, account: str | None) -> str:
    """The --account given (which must exist), or the bootstrap account."""
    from simplane.core.accounts import default_account_sid
    from simplane.core.models import Account as AccountRow

    if account:
        if db.scalar(select(AccountRow.sid).where(AccountRow.sid == account)) is None:
            raise typer.BadParameter(f"no account {account}", param_hint="--account")
        return account
    sid = default_account_sid(db)
    if sid is None:
        raise typer.BadParameter("no account yet: run `simplane serve` once or "
                                 "`simplane accounts create`", param_hint="--account")
    return sid
