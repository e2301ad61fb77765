"""`simplane.clock`: the server's now moves only when the test moves it, and moving it runs, in
time order, what falls due on the way."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_now_moves_only_when_told(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        from datetime import UTC, datetime, timedelta
        import pytest

        def test_advance_takes_text_seconds_and_timedeltas(simplane):
            start = simplane.clock.now()
            assert simplane.clock.now() == start  # it stands still
            assert simplane.clock.advance("90d") == start + timedelta(days=90)
            assert simplane.clock.advance("6h") == start + timedelta(days=90, hours=6)
            assert simplane.clock.advance("15m") - start == timedelta(days=90, hours=6, minutes=15)
            assert simplane.clock.advance(45) - start == timedelta(days=90, hours=6, minutes=15,
                                                                    seconds=45)
            assert simplane.clock.advance(timedelta(days=1)) - start == timedelta(
                days=91, hours=6, minutes=15, seconds=45)
            with pytest.raises(ValueError):
                simplane.clock.advance("soon")
            with pytest.raises(ValueError):
                simplane.clock.advance(-5)

        def test_set_goes_anywhere_and_api_timestamps_follow(simplane):
            simplane.clock.set(datetime(2030, 5, 1, 12, 0, 0))
            assert simplane.clock.now() == datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
            plan = simplane.client.wireless.v1.rate_plans.create(unique_name="p")
            assert plan.date_created == datetime(2030, 5, 1, 12, 0, 0, tzinfo=UTC)
            simplane.clock.set(datetime(2029, 1, 1, tzinfo=UTC))
            assert simplane.clock.now().year == 2029

        def test_each_test_starts_at_the_same_now(simplane):
            assert simplane.clock.now().year < 2029
    ''')
    result.assert_outcomes(passed=3)


def test_advancing_runs_what_falls_due_in_time_order(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        from datetime import timedelta

        def test_deactivated_sim_is_canceled_after_72_hours(simplane):
            client = simplane.client
            sim = simplane.sims.provision()[0]
            client.wireless.v1.sims(sim).update(status="deactivated",
                                                callback_url=simplane.webhooks.url)
            simplane.clock.advance("71h")
            assert client.wireless.v1.sims(sim).fetch().status == "deactivated"
            simplane.clock.advance("1h")
            assert client.wireless.v1.sims(sim).fetch().status == "canceled"
            statuses = [r.form["SimStatus"] for r in simplane.webhooks.wait_for(2)]
            assert statuses == ["deactivated", "canceled"]

        def test_a_failing_sink_is_retried_on_the_way(simplane):
            client = simplane.client
            sink = client.events.v1.sinks.create(
                description="hook", sink_type="webhook",
                sink_configuration={"destination": simplane.webhooks.url + "/events"})
            simplane.faults.fail_sink(sink.sid, times=3, status=503, retry_after=600)
            client.events.v1.sinks(sink.sid).sink_test.create()
            simplane.run_due()
            assert simplane.webhooks.requests == []  # the first delivery failed
            simplane.clock.advance("9m")
            assert simplane.webhooks.requests == []  # Retry-After: 600 is not over
            # three failures, ten minutes apart as Retry-After asks, then delivered: all on
            # the way through one advance
            simplane.clock.advance("1h")
            got = simplane.webhooks.wait_for(1)[0]
            assert got.json[0]["type"] == "com.twilio.eventstreams.test-event"
            assert got.valid_signature
            assert len(simplane.webhooks.requests) == 1
            sink = client.events.v1.sinks(sink.sid).fetch()
            assert sink.status == "active"
    ''')
    result.assert_outcomes(passed=2)
