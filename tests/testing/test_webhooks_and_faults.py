"""`simplane.webhooks` records what reaches it and checks signatures as Twilio's
RequestValidator does; `simplane.faults` makes sinks fail, the network refuse a SIM and a device
take its commands late."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_the_receiver(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        import httpx
        import pytest
        from twilio.request_validator import RequestValidator

        def test_a_request_signed_otherwise_is_not_valid(simplane):
            url = simplane.webhooks.url + "/forged?x=1"
            params = {"SimSid": "DE" + "0" * 32}
            good = RequestValidator(simplane.auth_token).compute_signature(url, params)
            other = RequestValidator("f" * 32).compute_signature(url, params)
            httpx.post(url, data=params, headers={"X-Twilio-Signature": good})
            httpx.post(url, data=params, headers={"X-Twilio-Signature": other})
            httpx.post(url, data=params)
            first, second, third = simplane.webhooks.wait_for(3)
            assert [r.valid_signature for r in (first, second, third)] == [True, False, False]
            assert first.path == "/webhooks/forged" and first.url == url
            assert first.form == params and first.method == "POST"

        def test_event_streams_json_is_signed_over_its_body(simplane):
            client = simplane.client
            sink = client.events.v1.sinks.create(
                description="hook", sink_type="webhook",
                sink_configuration={"destination": simplane.webhooks.url + "/events"})
            client.events.v1.subscriptions.create(
                description="sims", sink_sid=sink.sid,
                types=[{"type": "com.twilio.iot.supersim.connection.attachment.accepted"}])
            sim = simplane.sims.provision(product="supersim")[0]
            simplane.device(sim).attach()
            (got,) = simplane.webhooks.wait_for(1)
            (event,) = got.json
            assert event["type"] == "com.twilio.iot.supersim.connection.attachment.accepted"
            assert event["data"]["sim_sid"] == sim
            assert got.valid_signature and "bodySHA256=" in got.url

        def test_wait_for_fails_the_test_when_nothing_comes(simplane):
            with pytest.raises(AssertionError, match="0 of 1 requests"):
                simplane.webhooks.wait_for(1, timeout=0.2)
    ''')
    result.assert_outcomes(passed=3)


def test_faults(run) -> None:  # type: ignore[no-untyped-def]
    result = run('''
        import pytest

        def test_a_sink_fails_with_the_status_asked_for(simplane):
            client = simplane.client
            sink = client.events.v1.sinks.create(
                description="hook", sink_type="webhook",
                sink_configuration={"destination": simplane.webhooks.url})
            simplane.faults.fail_sink(sink.sid, times=None, status=429)
            client.events.v1.sinks(sink.sid).sink_test.create()
            simplane.clock.advance("3h")
            assert client.events.v1.sinks(sink.sid).fetch().status == "active"  # retrying
            simplane.clock.advance("2h")  # past the 4-hour retry horizon
            assert client.events.v1.sinks(sink.sid).fetch().status == "failed"
            assert simplane.webhooks.requests == []
            with pytest.raises(ValueError):
                simplane.faults.fail_sink("DG" + "0" * 32)

        def test_faults_end_with_the_test(simplane):
            client = simplane.client
            sink = client.events.v1.sinks.create(
                description="hook", sink_type="webhook",
                sink_configuration={"destination": simplane.webhooks.url})
            client.events.v1.sinks(sink.sid).sink_test.create()
            assert len(simplane.webhooks.wait_for(1)) == 1

        def test_the_network_refuses_a_sim(simplane):
            sim, other = simplane.sims.provision(count=2)
            simplane.faults.refuse_attachment(sim, times=2)
            device = simplane.device(sim)
            assert not device.attach() and not device.attach()
            assert simplane.device(other).attach()
            assert device.attach()  # the third time the network lets it on

        def test_a_super_sims_refusal_is_a_connection_event(simplane):
            client = simplane.client
            sink = client.events.v1.sinks.create(
                description="hook", sink_type="webhook",
                sink_configuration={"destination": simplane.webhooks.url})
            client.events.v1.subscriptions.create(
                description="refusals", sink_sid=sink.sid,
                types=[{"type": "com.twilio.iot.supersim.connection.attachment.rejected"}])
            sim = simplane.sims.provision(product="supersim")[0]
            simplane.faults.refuse_attachment(sim)
            assert not simplane.device(sim).attach()
            (event,) = simplane.webhooks.wait_for(1)[0].json
            assert event["data"]["sim_sid"] == sim

        def test_a_callback_url_fails_then_is_retried(simplane):
            client = simplane.client
            sim = simplane.sims.provision()[0]
            url = simplane.webhooks.url + "/sims"
            simplane.faults.fail_url(url, times=1, status=503)
            client.wireless.v1.sims(sim).update(status="suspended", callback_url=url)
            simplane.run_due()
            assert simplane.webhooks.requests == []  # the first attempt got the 503
            simplane.clock.advance("1m")  # the retry's backoff is seconds
            (got,) = simplane.webhooks.wait_for(1)
            assert got.form["SimStatus"] == "suspended" and got.valid_signature

        def test_a_command_reaches_the_device_late(simplane):
            client = simplane.client
            sim = simplane.sims.provision()[0]
            simplane.faults.delay_commands(sim, "10m")
            device = simplane.device(sim)
            device.attach()
            command = client.wireless.v1.commands.create(sim=sim, command="wake")
            assert device.received() == []
            simplane.clock.advance("9m")
            assert client.wireless.v1.commands(command.sid).fetch().status == "queued"
            simplane.clock.advance("1h")
            assert device.received() == ["wake"]
            delivered = client.wireless.v1.commands(command.sid).fetch()
            assert delivered.status == "delivered"
            # delivered when the delay ran out, on the way through the hour
            assert (delivered.date_updated - delivered.date_created).total_seconds() == 600
    ''')
    result.assert_outcomes(passed=6)
