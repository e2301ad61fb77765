"""`simplane.sims.provision` and `simplane.device(sim)`: SIMs in the test's account, and
devices whose every step the network reports through ingest."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_wireless_sims_and_their_devices(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        import pytest
        from simplane.testing.devices import DeviceError

        def test_provision_in_any_status_with_a_plan(simplane):
            client = simplane.client
            active = simplane.sims.provision(count=2)
            assert len(active) == 2 and all(s.startswith("DE") for s in active)
            fetched = client.wireless.v1.sims(active[0]).fetch()
            assert fetched.status == "active"
            assert client.wireless.v1.rate_plans(fetched.rate_plan_sid).fetch().unique_name == \\
                "default"
            plan = client.wireless.v1.rate_plans.create(unique_name="mine", data_limit=5)
            ready = simplane.sims.provision(status="ready", rate_plan="mine")[0]
            assert client.wireless.v1.sims(ready).fetch().rate_plan_sid == plan.sid
            new = simplane.sims.provision(status="new")[0]
            assert client.wireless.v1.sims(new).fetch().rate_plan_sid is None
            assert len(client.wireless.v1.sims.list()) == 4
            with pytest.raises(ValueError):
                simplane.sims.provision(status="sleeping")
            with pytest.raises(ValueError):
                simplane.sims.provision(product="landline")

        def test_a_device_attaches_uses_data_and_detaches(simplane):
            client = simplane.client
            sim = simplane.sims.provision()[0]
            device = simplane.device(sim)
            assert simplane.device(sim) is device
            with pytest.raises(DeviceError):
                device.use(up=1)  # not attached
            assert device.attach() and device.attached
            device.use(up=1000, down=2000)
            device.use(up=500)
            (session,) = client.wireless.v1.sims(sim).data_sessions.list()
            assert session.end is None
            records = client.wireless.v1.sims(sim).usage_records.list()
            assert sum(r.data["upload"] for r in records) == 1500
            assert sum(r.data["download"] for r in records) == 2000
            device.detach()
            assert not device.attached
            (session,) = client.wireless.v1.sims(sim).data_sessions.list()
            assert session.end is not None

        def test_a_roaming_device_is_counted_where_it_is(simplane):
            simplane.client.wireless.v1.rate_plans.create(
                unique_name="abroad", international_roaming=["data"])
            sim = simplane.sims.provision(rate_plan="abroad")[0]
            device = simplane.device(sim)
            assert device.attach(mcc="208", mnc="01")  # Orange France: abroad
            device.use(down=4000)
            records = simplane.client.wireless.v1.sims(sim).usage_records.list()
            abroad = [c for r in records for c in r.data["international_roaming"]]
            assert sum(c["download"] for c in abroad) == 4000

        def test_commands_both_ways(simplane):
            client = simplane.client
            sim = simplane.sims.provision()[0]
            client.wireless.v1.sims(sim).update(commands_callback_url=simplane.webhooks.url)
            command = client.wireless.v1.commands.create(sim=sim, command="wake")
            device = simplane.device(sim)
            assert device.received() == []  # queued until the device attaches
            assert client.wireless.v1.commands(command.sid).fetch().status == "queued"
            device.attach()
            assert device.received() == ["wake"]
            assert client.wireless.v1.commands(command.sid).fetch().status == "delivered"
            sent = device.send("temperature=21")
            assert sent.startswith("DC")
            got = client.wireless.v1.commands(sent).fetch()
            assert (got.direction, got.status, got.command) == (
                "from_sim", "received", "temperature=21")
            hook = simplane.webhooks.wait_for(1)[0]
            assert hook.form["Command"] == "temperature=21" and hook.valid_signature

        def test_a_suspended_sim_cannot_send(simplane):
            sim = simplane.sims.provision(status="suspended")[0]
            device = simplane.device(sim)
            device.attach()
            assert device.send("hello") is None
    ''')
    result.assert_outcomes(passed=5)


def test_super_sims_in_a_fleet(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        import pytest

        def test_provision_into_a_fleet(simplane):
            client = simplane.client
            sims = simplane.sims.provision(count=2, product="supersim")
            assert all(s.startswith("HS") for s in sims)
            fetched = client.supersim.v1.sims(sims[0]).fetch()
            assert fetched.status == "active"
            assert client.supersim.v1.fleets(fetched.fleet_sid).fetch().unique_name == "default"
            fleet = client.supersim.v1.fleets.create(
                network_access_profile=client.supersim.v1.network_access_profiles.create().sid,
                unique_name="mine")
            ready = simplane.sims.provision(status="ready", rate_plan="mine", product="supersim")
            assert client.supersim.v1.sims(ready[0]).fetch().fleet_sid == fleet.sid
            with pytest.raises(ValueError):
                simplane.sims.provision(rate_plan="nothing", product="supersim")

        def test_a_device_on_the_fleets_networks(simplane):
            client = simplane.client
            sim = simplane.sims.provision(product="supersim")[0]
            device = simplane.device(sim)
            assert not device.attach(mcc="001", mnc="01")  # not in the Fleet's profile
            assert device.attach()
            device.use(up=3000, down=7000)
            records = client.supersim.v1.usage_records.list(sim=sim)
            assert sum(r.data_upload for r in records) == 3000
            assert sum(r.data_download for r in records) == 7000
            device.detach()
            assert not device.attached

        def test_sms_commands_both_ways(simplane):
            client = simplane.client
            sim = simplane.sims.provision(product="supersim")[0]
            fleet = client.supersim.v1.sims(sim).fetch().fleet_sid
            client.supersim.v1.fleets(fleet).update(sms_commands_url=simplane.webhooks.url)
            client.supersim.v1.sms_commands.create(sim=sim, payload="reboot")
            device = simplane.device(sim)
            device.attach()
            assert device.received() == ["reboot"]
            sent = device.send("ok")
            assert sent.startswith("HC")
            hook = simplane.webhooks.wait_for(1)[0]
            assert hook.form["Payload"] == "ok" and hook.valid_signature
    ''')
    result.assert_outcomes(passed=3)
