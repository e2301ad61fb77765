"""`simplane proxy …`: the operator's side of Proxy (numbers for accounts, the carrier's outbox)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Proxy: phone numbers and the simulated carrier's outbox.",
                  no_args_is_help=True)
numbers_app = typer.Typer(help="Phone numbers an account owns (for its Proxy pools).",
                          no_args_is_help=True)
app.add_typer(numbers_app, name="numbers")

DatabaseUrl = Annotated[str | None, typer.Option(
    "--database-url", help="SQLAlchemy URL (default: $SIMPLANE_DATABASE_URL or "
    "sqlite:///simplane.db).")]
AccountSid = Annotated[str | None, typer.Option(
    "--account", help="Account SID (default: the bootstrap account).")]


@numbers_app.command("add")
def numbers_add(
    numbers: Annotated[list[str], typer.Argument(help="E.164 numbers, e.g. +14155550100.")],
    account: AccountSid = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give an account phone numbers; prints one PN… SID a line (usable as PhoneNumbers' Sid)."""
    from simplane.cli_support import err, resolve_account, runtime
    from simplane.core.errors import TwilioError
    from simplane.proxy import service

    rt = runtime(database_url)
    try:
        with rt.db.write() as db:
            rows = service.add_account_numbers(db, resolve_account(db, account), numbers,
                                               rt.clock.now())
            sids = [r.sid for r in rows]
    except TwilioError as exc:
        err.print(f"[red]refused: no number was added[/red]\n{exc.message}")
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo("\n".join(sids))


@numbers_app.command("list")
def numbers_list(account: AccountSid = None, database_url: DatabaseUrl = None) -> None:
    """The phone numbers an account owns."""
    from simplane.cli_support import resolve_account, runtime
    from simplane.proxy import service

    rt = runtime(database_url)
    try:
        with rt.db.read() as db:
            rows = [(r.sid, r.phone_number) for r in
                    service.account_numbers(db, resolve_account(db, account))]
    finally:
        rt.close()
    table = Table("sid", "phone_number")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


@app.command("outbox")
def outbox(
    to: Annotated[str | None, typer.Option("--to", help="Only what this number received.")] = None,
    account: Annotated[str | None, typer.Option(
        "--account", help="Only this account's traffic (default: every account's).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    database_url: DatabaseUrl = None,
) -> None:
    """What the simulated carrier delivered (messages and calls), newest first."""
    from simplane.cli_support import runtime
    from simplane.proxy import carrier

    rt = runtime(database_url)
    try:
        with rt.db.read() as db:
            rows = [carrier.outbox_json(r) for r in carrier.outbox(db, account, to, limit)]
    finally:
        rt.close()
    table = Table("date", "kind", "from", "to", "body", "status", "session", title="Proxy outbox")
    for r in rows:
        table.add_row(r["date_created"], r["kind"], r["from"], r["to"], r["body"] or "",
                      r["status"], r["session_sid"] or "")
    Console(width=200).print(table)
