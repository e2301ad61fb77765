"""The `simplane` command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from simplane.admin.cli import app as clock_app
from simplane.admin.cli import parse_time
from simplane.cli_support import (
    Account,
    DatabaseUrl,
    err,
    progress,
    resolve_account,
    runtime,
    setup_errors,
)
from simplane.config import Settings
from simplane.events.cli import app as events_app
from simplane.kore.cli import app as kore_app
from simplane.network.simulate_cli import simulate
from simplane.proxy.cli import app as proxy_app

if TYPE_CHECKING:
    from datetime import datetime

    from simplane.core.runtime import Runtime

app = typer.Typer(help="simplane: Twilio-compatible IoT connectivity, self-hosted.",
                  no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts and their API keys.", no_args_is_help=True)
sims_app = typer.Typer(help="SIM inventory.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(sims_app, name="sims")
app.add_typer(db_app, name="db")
app.add_typer(proxy_app, name="proxy")
app.add_typer(events_app, name="events")
app.add_typer(clock_app, name="clock")
app.add_typer(kore_app, name="kore")
app.command("simulate")(simulate)


def radius_clients(given: list[str]) -> dict[str, str]:
    """--radius-client values (ADDRESS=SECRET or NETWORK/PREFIX=SECRET) as network → secret."""
    import ipaddress

    clients = {}
    for value in given:
        network, _, secret = value.partition("=")
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            network = ""
        if not network or not secret:
            raise typer.BadParameter(f"{value.split('=')[0]!r}: give ADDRESS=SECRET or "
                                     "NETWORK/PREFIX=SECRET", param_hint="--radius-client")
        clients[network] = secret
    return clients


def smpp_address(value: str) -> tuple[str, int]:
    """--smpp HOST:PORT as (host, port)."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"{value!r}: give HOST:PORT, e.g. smsc.example.net:2775",
                                 param_hint="--smpp")
    return host.strip("[]"), int(port)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(
        help="debug, info, warning or error.", envvar="SIMPLANE_LOG_LEVEL")] = "info",
    radius_port: Annotated[int | None, typer.Option(
        help="Also listen for RADIUS accounting (UDP) on this port, e.g. 1813.")] = None,
    radius_auth_port: Annotated[int | None, typer.Option(
        help="Also answer RADIUS Access-Requests (UDP) on this port, e.g. 1812: accept the "
        "SIMs that may use data now, reject the others.")] = None,
    radius_dae_port: Annotated[int | None, typer.Option(
        help="Cut off data sessions the SIM may no longer have (suspended, deactivated, reset, "
        "off data, over its limit) with a RADIUS Disconnect-Request to this port of the "
        "gateway that carries them, e.g. 3799 (default: $SIMPLANE_RADIUS_DAE_PORT). Without "
        "it none are sent: they are held, and sent once a server runs with it if the SIM "
        "still may not have the session.",
        envvar="SIMPLANE_RADIUS_DAE_PORT")] = None,
    radius_secret: Annotated[str | None, typer.Option(
        help="The RADIUS shared secret (default: $SIMPLANE_RADIUS_SECRET).",
        envvar="SIMPLANE_RADIUS_SECRET")] = None,
    radius_client: Annotated[list[str] | None, typer.Option(
        help="ADDRESS=SECRET or NETWORK/PREFIX=SECRET: serve only these RADIUS clients, each "
        "with its own secret (repeat it; default: $SIMPLANE_RADIUS_CLIENTS, space-separated).",
        envvar="SIMPLANE_RADIUS_CLIENTS")] = None,
    simulate: Annotated[int | None, typer.Option(
        min=1, help="Also run the fleet simulator live with this many SIMs on the bootstrap "
        "account (provisioned if it has fewer).")] = None,
    simulate_speed: Annotated[float, typer.Option(
        min=0.001, help="Simulated seconds per real second for --simulate.")] = 1.0,
    product: Annotated[str, typer.Option(
        help="What --simulate simulates: wireless or supersim.")] = "wireless",
    clock: Annotated[str | None, typer.Option(
        help="virtual: run on a clock kept in the database, that admin accounts move "
        "(`simplane clock`, /admin/v1/Clock) and every process on the database shares; real: "
        "run on real time again (default: as the database was).")] = None,
    clock_start: Annotated[str | None, typer.Option(
        help="With --clock virtual: the time to start from (ISO 8601; default: where the "
        "virtual clock was, else now).")] = None,
    clock_speed: Annotated[float | None, typer.Option(
        min=0, help="With --clock virtual: simulated seconds per real second (0 stands still; "
        "default: as it was, else 1).")] = None,
    outbound_allow: Annotated[str | None, typer.Option(
        help="What tenants' callback and webhook URLs may reach besides public addresses: "
        "comma-separated CIDRs, host names, loopback, private, any or none (default: "
        "$SIMPLANE_OUTBOUND_ALLOW, else loopback when --host is a loopback address, else "
        "none).", envvar="SIMPLANE_OUTBOUND_ALLOW")] = None,
    metrics_address: Annotated[str | None, typer.Option(
        help="Also serve /metrics here (HOST:PORT), without authentication: for a Prometheus "
        "that cannot authenticate (on the API port, admin accounts or $SIMPLANE_METRICS_TOKEN "
        "read it).")] = None,
    smpp: Annotated[str | None, typer.Option(
        help="HOST:PORT of an SMSC: bind to it (SMPP 3.4 transceiver) and send to-SIM SMS "
        "commands through it, to the SIMs' MSISDNs (default: the simulated device gateway).")
    ] = None,
    smpp_system_id: Annotated[str | None, typer.Option(
        help="The system_id to bind to the SMSC with.", envvar="SIMPLANE_SMPP_SYSTEM_ID")] = None,
    smpp_password: Annotated[str | None, typer.Option(
        help="The SMSC password (default: $SIMPLANE_SMPP_PASSWORD).",
        envvar="SIMPLANE_SMPP_PASSWORD")] = None,
    smpp_source_addr: Annotated[str, typer.Option(
        help="The source address of to-SIM SMS (a number, or an alphanumeric name).")] = "",
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Serve from this many processes on the one port (SO_REUSEPORT); "
        "each runs the background jobs, and what must run once (RADIUS listeners, the SMPP "
        "bind, the simulator) runs in the first.", envvar="SIMPLANE_WORKERS")] = 1,
) -> None:
    """Create or upgrade the schema, then serve every product on one port (and, with
    --radius-port and --radius-auth-port, RADIUS accounting and authorisation for packet
    gateways on UDP beside it, with --radius-dae-port their Disconnect-Requests; with
    --simulate, a live simulated fleet)."""
    import uvicorn

    from simplane.app import create_app
    from simplane.core import logs
    from simplane.core.runtime import Runtime

    clients = radius_clients(radius_client or [])
    smsc = smpp_address(smpp) if smpp else None
    if smsc and not smpp_system_id:
        raise typer.BadParameter("the SMSC needs a system_id", param_hint="--smpp-system-id")
    if clock not in (None, "virtual", "real"):
        raise typer.BadParameter("must be virtual or real", param_hint="--clock")
    if product not in ("wireless", "supersim"):
        raise typer.BadParameter("must be wireless or supersim", param_hint="--product")
    if workers > 1 and port == 0:
        raise typer.BadParameter("give a port: the processes of --workers share one",
                                 param_hint="--port")
    if clock != "virtual" and (clock_start is not None or clock_speed is not None):
        raise typer.BadParameter("only with --clock virtual",
                                 param_hint="--clock-start" if clock_start else "--clock-speed")
    start = parse_time(clock_start, "--clock-start") if clock_start else None
    radius_ports = (radius_port, radius_auth_port, radius_dae_port)
    if any(p is not None for p in radius_ports) and not radius_secret and not clients:
        raise typer.BadParameter("a shared secret is needed (or --radius-client)",
                                 param_hint="--radius-secret")
    from simplane.core.outbound import Policy, default_allow

    allow = outbound_allow if outbound_allow is not None else default_allow(host)
    try:
        Policy.parse(allow)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--outbound-allow") from None
    logs.configure(log_level)
    with setup_errors():
        settings = Settings(database_url=database_url, outbound_allow=allow) if database_url \
            else Settings(outbound_allow=allow)
        settings.radius_secret, settings.radius_clients = radius_secret, clients
        settings.radius_dae_port = radius_dae_port
        settings.smpp = smpp
        settings.check_bootstrap()
        rt = Runtime(settings)
        _start_clock(rt, clock, start, clock_speed)
        created = rt.ensure_bootstrap()
    if created and not settings.auth_token:  # generated: the only time it is ever shown
        err.print("[bold]Created the bootstrap account[/bold] (shown once; keep it safe):")
        err.print(f"  TWILIO_ACCOUNT_SID={created.sid}")
        err.print(f"  TWILIO_AUTH_TOKEN={created.secret}")
    from simplane.serving import Extras, Workers, reuseport_socket, start_extras

    extras = Extras(
        radius_port=radius_port, radius_auth_port=radius_auth_port, radius_secret=radius_secret,
        radius_clients=clients, smsc=smsc, smpp_system_id=smpp_system_id or "",
        smpp_password=smpp_password or "", smpp_source_addr=smpp_source_addr,
        simulate=simulate, simulate_speed=simulate_speed, product=product,
        metrics_address=metrics_address)
    if radius_dae_port is not None:
        err.print(f"RADIUS Disconnect-Requests to the gateways' udp port {radius_dae_port}")
    sock = None
    if workers > 1:
        try:
            sock = reuseport_socket(host, port)
        except OSError as exc:
            raise typer.BadParameter(f"{host}:{port}: {exc.strerror}", param_hint="--port"
                                     ) from None
    try:
        stop_extras = start_extras(rt, host, extras, err.print)
    except (ValueError, OSError) as exc:
        hint = "--metrics-address" if metrics_address and str(metrics_address) in str(exc) \
            else "--radius-port"
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    others = Workers(workers - 1, settings, host, port, log_level).start() if sock else None
    err.print(f"simplane listening on http://{host}:{port}"
              + (f" ({workers} processes)" if workers > 1 else ""))
    config = uvicorn.Config(create_app(rt), host=host, port=port, log_level=log_level,
                            access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock] if sock else None)
    finally:
        if others is not None:
            others.stop()
        stop_extras()


def _start_clock(rt: Runtime, mode: str | None, start: datetime | None,
                 speed: float | None) -> None:
    from simplane.core.clock import iso
    from simplane.core.virtual_clock import DatabaseClock

    clock = rt.clock
    assert isinstance(clock, DatabaseClock)
    if mode == "virtual":
        clock.start_virtual(start, speed)
    elif mode == "real":
        clock.use_real()
    if clock.mode == "virtual":
        err.print(f"on a virtual clock: now {iso(clock.now())}, speed {clock.speed:g} "
                  "(move it with `simplane clock` or /admin/v1/Clock)")


@db_app.command("upgrade")
def db_upgrade(database_url: DatabaseUrl = None) -> None:
    """Apply every migration."""
    runtime(database_url).close()
    err.print("schema is up to date")


@db_app.command("snapshot")
def db_snapshot(
    file: Annotated[Path, typer.Argument(help="Where to write it (gzip; plain JSON lines when "
                                         "the name ends in .jsonl).", dir_okay=False)],
    database_url: DatabaseUrl = None,
) -> None:
    """Save every row of the database to FILE, for `simplane db restore` on SQLite or
    PostgreSQL. It holds what the database holds, stored secrets included: keep it as safe."""
    from simplane.core.snapshot import take

    rt = runtime(database_url)
    try:
        with progress() as bar:
            rows = take(rt.db.engine, file, _bar(bar))
    except OSError as exc:
        err.print(f"cannot write {file}: {exc.strerror}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()
    err.print(f"{rows} rows saved to {file}")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A snapshot from `simplane db snapshot`.",
                                         dir_okay=False)],
    database_url: DatabaseUrl = None,
) -> None:
    """Replace every row of the database with the snapshot's, in one transaction (a snapshot
    of an older schema is upgraded first). Stop the servers on the database while it runs."""
    from simplane import products
    from simplane.core.snapshot import SnapshotError, restore

    rt = runtime(database_url)
    try:
        with progress() as bar:
            rows = restore(rt.db.engine, file, _bar(bar), products.after_restore)
    except SnapshotError as exc:
        err.print(f"[red]cannot restore {file}:[/red] {exc}; the database is unchanged",
                  markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        rt.close()
    err.print(f"{rows} rows restored from {file}")


def _bar(bar: Progress):  # type: ignore[no-untyped-def]
    """A progress bar per step, of its rows, told of rows as they go."""
    def start(step: str, total: int):  # type: ignore[no-untyped-def]
        task = bar.add_task(step, total=total)
        return lambda rows: bar.advance(task, rows)
    return start


@accounts_app.command("create")
def accounts_create(
    friendly_name: Annotated[str | None, typer.Option(help="A name for the account.")] = None,
    parent: Annotated[str | None, typer.Option(help="Make it a subaccount of this AC… SID.")] = None,
    admin: Annotated[bool, typer.Option(help="May call operator endpoints (e.g. ingest).")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account; its SID and auth token are printed once."""
    from simplane.core.accounts import create_account

    rt = runtime(database_url)
    with rt.db.write() as db:
        creds = create_account(db, rt.box, rt.clock, friendly_name=friendly_name,
                               owner_account_sid=parent, admin=admin)
    typer.echo(f"TWILIO_ACCOUNT_SID={creds.sid}\nTWILIO_AUTH_TOKEN={creds.secret}")
    rt.close()


@accounts_app.command("key")
def accounts_key(
    account: Account = None,
    friendly_name: Annotated[str | None, typer.Option(help="A name for the key.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key (SK…) for an account; its secret is printed once."""
    from simplane.core.accounts import create_api_key

    rt = runtime(database_url)
    with rt.db.write() as db:
        creds = create_api_key(db, rt.box, rt.clock, resolve_account(db, account), friendly_name)
    typer.echo(f"API_KEY_SID={creds.sid}\nAPI_KEY_SECRET={creds.secret}\n"
               f"TWILIO_ACCOUNT_SID={creds.account_sid}")
    rt.close()


Product = Annotated[str, typer.Option(
    help="wireless (Programmable Wireless SIMs, DE…) or supersim (Super SIMs, HS…: they wait in "
    "the inventory until an account registers them with ICCID and registration code, or go "
    "straight to --account).")]
PRODUCTS = ("wireless", "supersim")


@sims_app.command("provision")
def sims_provision(
    count: Annotated[int, typer.Option(min=1, help="How many SIMs.")],
    status: Annotated[str, typer.Option(help="Their status.")] = "new",
    rate_plan: Annotated[str | None, typer.Option(help="Rate plan SID or unique name.")] = None,
    product: Product = "wireless",
    msisdn_prefix: Annotated[str | None, typer.Option(
        help="Give each SIM an MSISDN (the number an SMSC reaches it on, for `serve --smpp`): "
        "this country code and number start, then random digits.")] = None,
    account: Account = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Provision new SIMs (valid ICCIDs, IMSIs, registration codes); prints one DE… SID a line,
    or for Super SIMs a CSV of sid,iccid,imsi,registration_code."""
    from simplane.wireless import inventory
    from simplane.wireless.service import NEEDS_RATE_PLAN

    _check_product(product, status, rate_plan)
    problem = msisdn_prefix is not None and inventory.msisdn_prefix_problem(msisdn_prefix)
    if problem:
        raise typer.BadParameter(problem, param_hint="--msisdn-prefix")
    if product == "supersim":
        from simplane.supersim import inventory as supersim_inventory

        _load_supersim(database_url, account, supersim_inventory.generated_rows(count),
                       msisdn_prefix)
        return
    if status not in inventory.STATUSES:
        raise typer.BadParameter(f"one of {', '.join(inventory.STATUSES)}", param_hint="--status")
    if status in NEEDS_RATE_PLAN and not rate_plan:
        err.print(f"[red]refused: nothing was provisioned[/red]\n--status {status} needs a rate "
                  "plan: give --rate-plan (its SID or unique name)")
        raise typer.Exit(1)
    _load(database_url, account, rate_plan, inventory.generated_rows(count, status),
          msisdn_prefix)


@sims_app.command("import")
def sims_import(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV inventory.")],
    rate_plan: Annotated[str | None, typer.Option(help="Rate plan SID or unique name.")] = None,
    product: Product = "wireless",
    account: Account = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Load an operator's inventory (header row; iccid required; imsi, registration_code,
    unique_name, status, msisdn optional). All rows or none; prints the SIDs in file order (for Super
    SIMs, the same CSV as provision)."""
    from simplane.wireless import inventory

    _check_product(product, "new", rate_plan)
    try:
        rows = inventory.read_csv(file)
    except inventory.InventoryError as exc:
        err.print(f"[red]{file}: refused[/red]\n{exc}")
        raise typer.Exit(1) from None
    if product == "supersim":
        _load_supersim(database_url, account, rows)
        return
    _load(database_url, account, rate_plan, rows)


def _check_product(product: str, status: str, rate_plan: str | None) -> None:
    if product not in PRODUCTS:
        raise typer.BadParameter(f"one of {', '.join(PRODUCTS)}", param_hint="--product")
    if product == "supersim" and status != "new":
        raise typer.BadParameter("Super SIMs are provisioned new; their account activates them",
                                 param_hint="--status")
    if product == "supersim" and rate_plan:
        raise typer.BadParameter("Super SIMs have no rate plan (their Fleet sets their limits)",
                                 param_hint="--rate-plan")


def _load(database_url: str | None, account: str | None, rate_plan: str | None, rows,  # type: ignore[no-untyped-def]
          msisdn_prefix: str | None = None) -> None:
    from simplane.wireless import inventory

    rt = runtime(database_url)
    try:
        with rt.db.write() as db, progress() as bar:
            account_sid = resolve_account(db, account)
            task = bar.add_task("provisioning SIMs", total=len(rows))
            plan_pk = inventory.resolve_rate_plan(db, account_sid, rate_plan)
            sids = inventory.add_sims(db, account_sid, rows, rt.clock.now(), plan_pk,
                                      progress=lambda n: bar.advance(task, n),
                                      msisdn_prefix=msisdn_prefix)
        _analyze(rt, "wireless_sims", len(sids))
    except inventory.InventoryError as exc:
        err.print(f"[red]refused: nothing was provisioned[/red]\n{exc}")
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo("\n".join(sids))


def _analyze(rt: Runtime, table: str, added: int) -> None:
    """After a bulk load on PostgreSQL, fresh statistics at once (autovacuum's come later):
    until then the planner takes a million rows for a few hundred, and lists scan them all."""
    if added >= 10_000 and not rt.db.is_sqlite:
        with rt.db.engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {table}")


def _load_supersim(database_url: str | None, account: str | None, rows,  # type: ignore[no-untyped-def]
                   msisdn_prefix: str | None = None) -> None:
    from simplane.supersim import inventory
    from simplane.wireless.inventory import InventoryError

    rt = runtime(database_url)
    try:
        with rt.db.write() as db, progress() as bar:
            account_sid = resolve_account(db, account) if account else None
            task = bar.add_task("provisioning Super SIMs", total=len(rows))
            added = inventory.add_sims(db, rows, rt.clock.now(), account_sid,
                                       progress=lambda n: bar.advance(task, n),
                                       msisdn_prefix=msisdn_prefix)
        _analyze(rt, "supersim_sims", len(added))
    except InventoryError as exc:
        err.print(f"[red]refused: nothing was provisioned[/red]\n{exc}")
        raise typer.Exit(1) from None
    finally:
        rt.close()
    typer.echo("sid,iccid,imsi,registration_code")
    typer.echo("\n".join(f"{r['sid']},{r['iccid']},{r['imsi']},{r['registration_code']}"
                          for r in added))


if __name__ == "__main__":
    app()
