"""The operator's CLI: provisioning and importing SIM inventory, accounts and keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from stdnum import luhn
from typer.testing import CliRunner

import simplane
from simplane.cli import app
from simplane.wireless.inventory import new_iccid
from tests.support import free_port

runner = CliRunner()


def cli(database_url: str, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [*args, "--database-url", database_url])


def test_provision_prints_one_sid_per_line(server, account, database_url):
    account.client.wireless.v1.rate_plans.create(unique_name="fleet")
    result = cli(database_url, "sims", "provision", "--count", "3", "--status", "active",
                 "--rate-plan", "fleet", "--account", account.sid)
    assert result.exit_code == 0, result.output
    sids = result.stdout.split()
    assert len(sids) == 3 and all(s.startswith("DE") for s in sids)
    sims = account.client.wireless.v1.sims.list()
    assert sorted(s.sid for s in sims) == sorted(sids)
    assert all(s.status == "active" and s.rate_plan_sid for s in sims)
    for sim in sims:
        assert len(sim.iccid) in (19, 20)
        luhn.validate(sim.iccid)


def test_provision_refuses_active_without_a_plan_and_unknown_accounts(account, database_url):
    for status in ("active", "ready"):
        result = cli(database_url, "sims", "provision", "--count", "2", "--status", status,
                     "--account", account.sid)
        # The option that is missing, not the wording of a CSV file's line.
        assert result.exit_code == 1
        assert (f"--status {status} needs a rate plan: give --rate-plan (its SID or unique "
                "name)") in result.output, result.output
        assert "line " not in result.output
    result = cli(database_url, "sims", "provision", "--count", "1", "--account", "AC" + "9" * 32)
    assert result.exit_code != 0 and "no account" in result.output
    assert account.client.wireless.v1.sims.list() == []


def test_import_prints_sids_in_file_order(tmp_path, account, database_url):
    iccids = [new_iccid() for _ in range(3)]
    path = tmp_path / "inventory.csv"
    path.write_text("iccid,imsi,registration_code,unique_name,status\n"
                    f"{iccids[0]},901420000000001,REG1,first,new\n"
                    f"{iccids[1]},,,,\n"
                    f"{iccids[2]},,REG3,third,suspended\n")
    result = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert result.exit_code == 0, result.output
    sids = result.stdout.split()
    sims = account.client.wireless.v1.sims
    assert [sims(s).fetch().iccid for s in sids] == iccids
    assert sims("first").fetch().sid == sids[0]
    assert sims(sids[2]).fetch().status == "suspended"
    assert [s.sid for s in sims.list(sim_registration_code="REG3")] == [sids[2]]


def test_import_refuses_the_whole_file_with_line_numbers(tmp_path, account, database_url):
    good = new_iccid()
    bad_check = good[:-1] + str((int(good[-1]) + 1) % 10)
    path = tmp_path / "inventory.csv"
    path.write_text("iccid,status\n"
                    f"{good},new\n"
                    f"{bad_check},new\n"
                    "123,new\n"
                    f"{good},new\n"
                    f"{new_iccid()},sleeping\n")
    result = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert result.exit_code == 1
    assert "line 3: " in result.output and "check digit" in result.output
    assert "line 4: " in result.output and "19 or 20 digits" in result.output
    assert "line 5: " in result.output and "repeats line 2" in result.output
    assert "line 6: " in result.output and "sleeping" in result.output
    assert account.client.wireless.v1.sims.list() == []


def test_import_names_the_lines_that_need_a_rate_plan(tmp_path, account, database_url):
    path = tmp_path / "inventory.csv"
    path.write_text(f"iccid,status\n{new_iccid()},new\n{new_iccid()},active\n")
    result = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert result.exit_code == 1
    assert "line 3: status active needs a rate plan (--rate-plan)" in result.output
    assert account.client.wireless.v1.sims.list() == []


def test_import_refuses_iccids_already_provisioned(tmp_path, server, account, database_url):
    [sid] = server.provision(account.sid, 1)
    taken = account.client.wireless.v1.sims(sid).fetch().iccid
    path = tmp_path / "inventory.csv"
    path.write_text(f"iccid\n{new_iccid()}\n{taken}\n")
    result = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert result.exit_code == 1 and "line 3" in result.output and "already provisioned" in result.output
    assert len(account.client.wireless.v1.sims.list()) == 1


def test_accounts_and_keys(server, database_url, monkeypatch):
    # Credentials are hashed with the server key: the CLI uses the server's.
    monkeypatch.setenv("SIMPLANE_SECRET_KEY", server.runtime.settings.secret_key)
    result = cli(database_url, "accounts", "create", "--friendly-name", "ops")
    assert result.exit_code == 0, result.output
    values = dict(line.split("=", 1) for line in result.stdout.split())
    sid, token = values["TWILIO_ACCOUNT_SID"], values["TWILIO_AUTH_TOKEN"]
    assert server.client(sid, token).wireless.v1.sims.list() == []
    result = cli(database_url, "accounts", "key", "--account", sid)
    keys = dict(line.split("=", 1) for line in result.stdout.split())
    client = server.client(keys["API_KEY_SID"], keys["API_KEY_SECRET"], sid)
    assert client.wireless.v1.rate_plans.create(unique_name="via-key").account_sid == sid


@pytest.mark.parametrize("status", ["sleeping"])
def test_provision_rejects_unknown_status(database_url, status):
    result = cli(database_url, "sims", "provision", "--count", "1", "--status", status)
    assert result.exit_code != 0 and "--status" in result.output


def test_provision_super_sims_into_the_inventory_for_registration(server, account, database_url):
    result = cli(database_url, "sims", "provision", "--count", "2", "--product", "supersim")
    assert result.exit_code == 0, result.output
    header, *lines = result.stdout.split()
    assert header == "sid,iccid,imsi,registration_code" and len(lines) == 2
    sid, iccid, imsi, code = lines[0].split(",")
    assert sid.startswith("HS") and imsi.startswith("732123") and len(iccid) == 20
    luhn.validate(iccid)
    supersim = account.client.supersim.v1
    assert supersim.sims.list() == []  # waiting in the inventory, on no account
    sim = supersim.sims.create(iccid=iccid, registration_code=code)
    assert sim.sid == sid and sim.status == "new"


def test_provision_super_sims_straight_into_an_account(account, database_url):
    result = cli(database_url, "sims", "provision", "--count", "1", "--product", "supersim",
                 "--account", account.sid)
    assert result.exit_code == 0, result.output
    sid = result.stdout.split()[1].split(",")[0]
    assert [s.sid for s in account.client.supersim.v1.sims.list()] == [sid]
    for extra in (["--status", "active"], ["--rate-plan", "p"]):
        refused = cli(database_url, "sims", "provision", "--count", "1", "--product",
                      "supersim", *extra)
        assert refused.exit_code != 0
    refused = cli(database_url, "sims", "provision", "--count", "1", "--product", "telegraph")
    assert refused.exit_code != 0 and "--product" in refused.output


def test_import_super_sims_all_or_nothing(tmp_path, server, account, database_url):
    iccids = [new_iccid("8988307") for _ in range(2)]
    path = tmp_path / "supersims.csv"
    path.write_text(f"iccid,registration_code\n{iccids[0]},CODE1\n{iccids[1]},CODE2\n")
    result = cli(database_url, "sims", "import", str(path), "--product", "supersim")
    assert result.exit_code == 0, result.output
    assert [line.split(",")[1] for line in result.stdout.split()[1:]] == iccids
    sim = account.client.supersim.v1.sims.create(iccid=iccids[1], registration_code="CODE2")
    assert sim.iccid == iccids[1]
    again = cli(database_url, "sims", "import", str(path), "--product", "supersim")
    assert again.exit_code == 1 and "already provisioned" in again.output
    # A Wireless SIM cannot take an ICCID a Super SIM has.
    wireless = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert wireless.exit_code == 1 and "already provisioned" in wireless.output


def test_import_refuses_unique_names_that_could_not_be_fetched(tmp_path, account, database_url):
    path = tmp_path / "inventory.csv"
    path.write_text(f"iccid,unique_name\n{new_iccid()},tracker/1\n{new_iccid()},"
                    f"DE{'a' * 32}\n{new_iccid()},tracker-3\n")
    result = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert result.exit_code == 1
    assert "line 2: unique_name 'tracker/1' contains a '/'" in result.output
    assert "line 3: unique_name" in result.output and "looks like a SID" in result.output
    assert account.client.wireless.v1.sims.list() == []


def serve(database_url: str, cwd: Path, *options: str, **env: str
          ) -> subprocess.CompletedProcess:
    """`simplane serve` run as an operator runs it, with these SIMPLANE_* variables only; each
    case here must make it stop on its own."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SIMPLANE_")}
    source = str(Path(simplane.__file__).resolve().parents[1])
    clean["PYTHONPATH"] = os.pathsep.join([source, clean.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "simplane.cli", "serve", "--database-url", database_url,
         "--port", str(free_port()), *options], env={**clean, **env}, cwd=cwd, capture_output=True,
        text=True, timeout=120, check=False)


SID = "AC" + "0123456789abcdef" * 2
TOKEN = "0123456789abcdef0"


@pytest.mark.parametrize(("env", "says"), [
    ({"SIMPLANE_ACCOUNT_SID": SID, "SIMPLANE_AUTH_TOKEN": "sh0rt"},
     "SIMPLANE_AUTH_TOKEN is 5 characters long: it must be at least 16"),
    ({"SIMPLANE_ACCOUNT_SID": "AC123", "SIMPLANE_AUTH_TOKEN": TOKEN},
     "SIMPLANE_ACCOUNT_SID='AC123' is not an Account SID: it must be AC followed by 32 hex"),
    ({"SIMPLANE_ACCOUNT_SID": SID}, "SIMPLANE_ACCOUNT_SID is set but SIMPLANE_AUTH_TOKEN is not"),
    ({"SIMPLANE_AUTH_TOKEN": TOKEN}, "SIMPLANE_AUTH_TOKEN is set but SIMPLANE_ACCOUNT_SID is not"),
    ({"SIMPLANE_SECRET_KEY": "not-a-key"}, "SIMPLANE_SECRET_KEY is not a Fernet key"),
    ({"SIMPLANE_EVENTS_BATCH_SIZE": "ten"}, "SIMPLANE_EVENTS_BATCH_SIZE='ten' is not a whole"),
], ids=["short-token", "bad-sid", "sid-alone", "token-alone", "bad-secret-key", "bad-number"])
def test_serve_refuses_bootstrap_settings_in_one_line(tmp_path, env, says):
    """What is wrong and how to fix it, on one line and with a non-zero status, never a
    traceback; and no secret is repeated back. (Settings are checked before any database is
    opened: the one with an existing account, on both databases, is the test after this.)"""
    result = serve(f"sqlite:///{tmp_path / 'simplane.db'}", tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("simplane: "), \
        result.stderr
    assert says in result.stderr
    assert "sh0rt" not in result.stderr and "not-a-key" not in result.stderr


def test_serve_rotates_no_bootstrap_token_to_a_short_one(tmp_path, account, database_url):
    """An existing bootstrap account keeps its token when the one given is too short."""
    result = serve(database_url, tmp_path, SIMPLANE_ACCOUNT_SID=account.sid,
                   SIMPLANE_AUTH_TOKEN="sh0rt")
    assert result.returncode == 2 and "SIMPLANE_AUTH_TOKEN is 5 characters" in result.stderr
    assert account.client.wireless.v1.sims.list() == []  # its own token still authenticates


def test_serve_says_in_one_line_when_it_cannot_open_the_database(tmp_path):
    for url, reason in ((f"sqlite:///{tmp_path}/no/such/dir/simplane.db", "unable to open"),
                        (f"postgresql://127.0.0.1:{free_port()}/simplane", "Connection refused"),
                        ("mysteriousdb://host/simplane", "Can't load plugin")):
        result = serve(url, tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(
            "simplane: cannot open the database ("), result.stderr
        assert reason in result.stderr and "--database-url" in result.stderr


@pytest.mark.parametrize("option", ["--radius-port", "--radius-auth-port", "--radius-dae-port"])
def test_serve_needs_a_radius_secret_for_any_radius_port(tmp_path, option):
    result = serve(f"sqlite:///{tmp_path / 'simplane.db'}", tmp_path, option, "3799",
                   COLUMNS="200")
    assert result.returncode == 2, result.stderr
    assert "a shared secret is needed (or --radius-client)" in result.stderr
    assert "--radius-secret" in result.stderr
    assert not (tmp_path / "simplane.db").exists()  # refused before anything was opened


def _msisdns(server, model, sids):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    with server.runtime.db.read() as db:
        return dict(db.execute(select(model.sid, model.msisdn).where(model.sid.in_(sids))).all())


def test_import_and_provision_give_sims_msisdns_not_shown_in_the_api(tmp_path, server, account,
                                                                      database_url):
    from simplane.supersim.models import Sim as SuperSim
    from simplane.wireless.models import Sim

    path = tmp_path / "inventory.csv"
    path.write_text(f"iccid,msisdn\n{new_iccid()},+44 7700 900123\n{new_iccid()},\n")
    result = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert result.exit_code == 0, result.output
    first, second = result.stdout.split()
    assert _msisdns(server, Sim, [first, second]) == {first: "447700900123", second: None}
    # Twilio's Sim resource has no phone number: the MSISDN stays the operator's.
    import httpx

    raw = httpx.get(f"{server.base_url}/wireless/v1/Sims/{first}",
                    auth=(account.sid, account.token)).json()
    assert raw["sid"] == first and "447700900123" not in str(raw)

    result = cli(database_url, "sims", "provision", "--count", "3", "--account", account.sid,
                 "--msisdn-prefix", "4477009")
    assert result.exit_code == 0, result.output
    numbers = _msisdns(server, Sim, result.stdout.split()).values()
    assert len(set(numbers)) == 3
    assert all(n.startswith("4477009") and len(n) == 12 for n in numbers)
    result = cli(database_url, "sims", "provision", "--count", "1", "--product", "supersim",
                 "--msisdn-prefix", "4477009")
    assert result.exit_code == 0, result.output
    sid = result.stdout.split()[1].split(",")[0]
    assert _msisdns(server, SuperSim, [sid])[sid].startswith("4477009")


def test_import_refuses_bad_and_repeated_msisdns(tmp_path, server, account, database_url):
    taken = f"iccid,msisdn\n{new_iccid()},447700900555\n"
    path = tmp_path / "taken.csv"
    path.write_text(taken)
    assert cli(database_url, "sims", "import", str(path), "--account", account.sid
               ).exit_code == 0
    path.write_text(f"iccid,msisdn\n{new_iccid()},12ab\n{new_iccid()},447700900556\n"
                    f"{new_iccid()},447700900556\n{new_iccid()},447700900555\n")
    result = cli(database_url, "sims", "import", str(path), "--account", account.sid)
    assert result.exit_code == 1
    assert "line 2: " in result.output and "msisdn '12ab'" in result.output
    assert "line 4: msisdn 447700900556 repeats line 3" in result.output
    # A Super SIM cannot take a number a Wireless SIM has: one numbering space.
    path.write_text(f"iccid,msisdn\n{new_iccid('8988307')},447700900555\n")
    result = cli(database_url, "sims", "import", str(path), "--product", "supersim")
    assert result.exit_code == 1 and "msisdn 447700900555 is already provisioned" in result.output
    refused = cli(database_url, "sims", "provision", "--count", "1", "--msisdn-prefix", "+44")
    assert refused.exit_code != 0 and "--msisdn-prefix" in refused.output


def test_serve_refuses_an_smsc_it_could_not_bind_to(database_url):
    result = cli(database_url, "serve", "--smpp", "smsc-without-port")
    assert result.exit_code != 0 and "--smpp" in result.output and "HOST:PORT" in result.output
    result = cli(database_url, "serve", "--smpp", "127.0.0.1:2775")
    assert result.exit_code != 0 and "--smpp-system-id" in result.output
