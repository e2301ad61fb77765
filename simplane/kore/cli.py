"""`simplane kore clients …`: KORE API clients (OAuth client credentials) of accounts."""

from __future__ import annotations

from typing import Annotated

import typer

from simplane.cli_support import Account, DatabaseUrl, err, resolve_account, runtime

app = typer.Typer(help="KORE's flavour: API clients for its OAuth 2.0 bearer tokens.",
                  no_args_is_help=True)
clients_app = typer.Typer(help="API clients (client_id and client_secret) of an account.",
                          no_args_is_help=True)
app.add_typer(clients_app, name="clients")


@clients_app.command("create")
def clients_create(
    account: Account = None,
    products: Annotated[str, typer.Option(
        help="Products its tokens may use, comma-separated: SuperSIM, ProgrammableWireless.")
    ] = "SuperSIM,ProgrammableWireless",
    lifetime: Annotated[str, typer.Option(
        help="How long its tokens live: 1h, 1d, 30d or 24m (months).")] = "1h",
    name: Annotated[str, typer.Option(help="A name for the client.")] = "simplane client",
    client_type: Annotated[str, typer.Option(
        "--type", help="admin (may create clients through the client API) or standard.")
    ] = "admin",
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API client; its client_id and client_secret are printed once."""
    from simplane.core.errors import TwilioError
    from simplane.kore import service

    rt = runtime(database_url)
    try:
        with rt.db.write() as db:
            made, secret = service.create_client(
                db, rt.box, rt.clock, resolve_account(db, account), name=name,
                products=products.split(","), lifetime=service.lifetime_of(lifetime),
                client_type=client_type)
            client_id, account_sid = made.client_id, made.account_sid
    except TwilioError as exc:
        err.print(f"[red]refused: no client was created[/red]\n{exc.message}")
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo(f"KORE_CLIENT_ID={client_id}\nKORE_CLIENT_SECRET={secret}\n"
               f"TWILIO_ACCOUNT_SID={account_sid}")


@clients_app.command("list")
def clients_list(account: Account = None, database_url: DatabaseUrl = None) -> None:
    """An account's clients that are not revoked, one a line: client_id, name, type, products,
    token lifetime in seconds, locked, created (tab-separated)."""
    from simplane.kore import service
    from simplane.kore.models import ApiClient

    rt = runtime(database_url)
    try:
        with rt.db.read() as db:
            rows = [(c.client_id, c.name, c.client_type, ",".join(c.products),
                     str(c.lifetime), "yes" if c.locked else "no", service.rfc1123(c.date_created))
                    for c in db.scalars(service.active(db, resolve_account(db, account))
                                        .order_by(ApiClient.pk))]
    finally:
        rt.close()
    for row in rows:
        typer.echo("\t".join(row))


@clients_app.command("revoke")
def clients_revoke(
    client_id: Annotated[str, typer.Argument(help="The client's client_id (apiclient_…).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke a client: it gets no more tokens, and the ones it has stop working at once."""
    from simplane.core.errors import TwilioError
    from simplane.kore import service, tokens

    rt = runtime(database_url)
    try:
        with rt.db.write() as db:
            service.revoke_client(db, rt.clock, client_id)
    except TwilioError as exc:
        err.print(f"[red]refused[/red]\n{exc.message}")
        raise typer.Exit(1) from None
    finally:
        rt.close()
    tokens.forget_all()
    typer.echo(f"revoked {client_id}")
