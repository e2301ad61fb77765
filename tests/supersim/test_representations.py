"""Every response carries exactly the fields of the spec's schema for its resource."""

from __future__ import annotations

from datetime import timedelta

import httpx

from simplane.core import spec
from simplane.core.clock import iso
from tests.supersim.conftest import ATT


def _fields(schema: str) -> set[str]:
    return set(spec.resource_fields("supersim", schema))


def test_every_resource_has_the_fields_of_its_schema(server, account, twilio, fleet, nap,
                                                    active_sim):
    from simplane.supersim import access, usage

    with server.runtime.db.write() as db:
        access.set_ip_addresses(db, {active_sim.sid: "100.64.0.9"})
        usage.add_usage(db, [{"account_sid": account.sid, "sim_sid": active_sim.sid,
                              "fleet_sid": fleet.sid, "network_sid": ATT.sid,
                              "iso_country": "US", "hour": server.clock.now(),
                              "data_upload": 1, "data_download": 2}])
    sms = twilio.supersim.v1.sms_commands.create(sim=active_sim.sid, payload="x")
    ip = twilio.supersim.v1.ip_commands.create(sim=active_sim.sid, payload="x", device_port=9)
    esim = twilio.supersim.v1.esim_profiles.create(eid="8" * 32)
    server.drain()
    base = f"{server.base_url}/supersim/v1"
    cases = {
        f"/Networks/{ATT.sid}": "supersim.v1.network",
        f"/NetworkAccessProfiles/{nap.sid}": "supersim.v1.network_access_profile",
        f"/NetworkAccessProfiles/{nap.sid}/Networks/{ATT.sid}":
            "supersim.v1.network_access_profile.network_access_profile_network",
        f"/Fleets/{fleet.sid}": "supersim.v1.fleet",
        f"/Sims/{active_sim.sid}": "supersim.v1.sim",
        f"/SmsCommands/{sms.sid}": "supersim.v1.sms_command",
        f"/IpCommands/{ip.sid}": "supersim.v1.ip_command",
        f"/ESimProfiles/{esim.sid}": "supersim.v1.esim_profile",
    }
    auth = (account.sid, account.token)
    for path, schema in cases.items():
        body = httpx.get(base + path, auth=auth).json()
        assert set(body) == _fields(schema), path
    later = iso(server.clock.now() + timedelta(hours=1))
    lists = {
        f"/Sims/{active_sim.sid}/BillingPeriods": ("billing_periods",
                                                  "supersim.v1.sim.billing_period"),
        f"/Sims/{active_sim.sid}/IpAddresses": ("ip_addresses", "supersim.v1.sim.sim_ip_address"),
        "/SettingsUpdates": ("settings_updates", "supersim.v1.settings_update"),
        "/UsageRecords": ("usage_records", "supersim.v1.usage_record"),
        f"/UsageRecords?Group=network&Granularity=hour&EndTime={later}": (
            "usage_records", "supersim.v1.usage_record"),
    }
    for path, (key, schema) in lists.items():
        body = httpx.get(base + path, auth=auth).json()
        assert body["meta"]["key"] == key and body[key], path
        assert all(set(item) == _fields(schema) for item in body[key]), path
