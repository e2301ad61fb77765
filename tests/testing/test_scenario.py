"""What a user's test does with the handle alone: a SIM made ready turns active 95 days on, a
device's bytes show in UsageRecords, and status changes reach a receiver signed, with no sleep;
every test gets a clean server with the same credentials."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_a_users_test_sees_lifecycle_usage_and_signed_webhooks(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        def test_ready_sim_goes_live(simplane):
            client = simplane.client
            plan = client.wireless.v1.rate_plans.create(unique_name="fleet")
            sim = simplane.sims.provision(status="new")[0]
            client.wireless.v1.sims(sim).update(status="ready", rate_plan=plan.sid,
                                                callback_url=simplane.webhooks.url + "/sims")
            device = simplane.device(sim)
            assert device.attach()
            device.use(up=20_000, down=80_000)
            records = client.wireless.v1.sims(sim).usage_records.list()
            assert sum(r.data["total"] for r in records) == 100_000
            assert sum(r.data["upload"] for r in records) == 20_000

            start = simplane.clock.now()
            assert client.wireless.v1.sims(sim).fetch().status == "ready"
            simplane.clock.advance("95d")
            fetched = client.wireless.v1.sims(sim).fetch()
            assert fetched.status == "active"
            assert (simplane.clock.now() - start).days == 95
            ready, active = simplane.webhooks.wait_for(2)
            assert (ready.form["SimStatus"], active.form["SimStatus"]) == ("ready", "active")
            assert active.path == "/webhooks/sims" and active.method == "POST"
            assert ready.valid_signature and active.valid_signature
            assert active.headers["x-twilio-signature"]

        def test_the_next_test_starts_clean(simplane):
            assert simplane.client.wireless.v1.sims.list() == []
            assert simplane.client.wireless.v1.rate_plans.list() == []
            assert simplane.webhooks.requests == []

        def test_the_clock_starts_where_the_session_started_it(simplane):
            from datetime import UTC, datetime, timedelta
            assert abs(datetime.now(UTC) - simplane.clock.now()) < timedelta(hours=1)

        def test_credentials_are_the_sessions(simplane):
            import simplane as package
            client = package.client(simplane.url, simplane.account_sid, simplane.auth_token)
            sim = simplane.sims.provision()[0]
            assert [s.sid for s in client.wireless.v1.sims.list()] == [sim]
    ''')
    result.assert_outcomes(passed=4)


def test_data_from_one_test_never_reaches_the_next(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        import pytest

        @pytest.mark.parametrize("round", [1, 2])
        def test_provisions_into_an_empty_account(simplane, round):
            assert simplane.client.wireless.v1.sims.list() == []
            sims = simplane.sims.provision(count=3)
            device = simplane.device(sims[0])
            device.attach()
            device.use(down=5000)
            simplane.client.wireless.v1.commands.create(sim=sims[0], command="ping")
            assert device.received() == ["ping"]
            sink = simplane.client.events.v1.sinks.create(
                description="hook", sink_type="webhook",
                sink_configuration={"destination": simplane.webhooks.url})
            assert [s.sid for s in simplane.client.events.v1.sinks.list()] == [sink.sid]
            assert len(simplane.client.wireless.v1.sims.list()) == 3
    ''')
    result.assert_outcomes(passed=2)
