from __future__ import annotations

from tests.proxy.conftest import own, raw
from tests.support import raises

SERVICE_FIELDS = {
    "sid", "unique_name", "account_sid", "chat_instance_sid", "callback_url", "default_ttl",
    "number_selection_behavior", "geo_match_level", "intercept_callback_url",
    "out_of_session_callback_url", "date_created", "date_updated", "url", "links",
}


def test_create_service_defaults_and_every_field(account):
    proxy = account.client.proxy.v1
    s = proxy.services.create(unique_name="deliveries")
    assert s.sid.startswith("KS") and len(s.sid) == 34
    assert s.account_sid == account.sid
    assert s.unique_name == "deliveries"
    assert s.default_ttl == 0
    assert s.geo_match_level == "country"
    assert s.number_selection_behavior == "prefer-sticky"
    assert s.callback_url is None and s.intercept_callback_url is None
    assert s.out_of_session_callback_url is None and s.chat_instance_sid is None
    assert s.date_created == s.date_updated
    assert s.url.endswith(f"/v1/Services/{s.sid}")
    assert s.links == {"sessions": f"{s.url}/Sessions", "phone_numbers": f"{s.url}/PhoneNumbers"}
    assert set(raw(account, s.url)) == SERVICE_FIELDS


def test_create_with_every_parameter_then_fetch_by_sid_and_unique_name(account):
    proxy = account.client.proxy.v1
    s = proxy.services.create(
        unique_name="full", default_ttl=3600, callback_url="https://example.com/cb",
        geo_match_level="area-code", number_selection_behavior="avoid-sticky",
        intercept_callback_url="https://example.com/intercept",
        out_of_session_callback_url="https://example.com/oos",
        chat_instance_sid="IS" + "0" * 32)
    for fetched in (proxy.services(s.sid).fetch(), proxy.services("full").fetch()):
        assert fetched.sid == s.sid
        assert fetched.default_ttl == 3600
        assert fetched.callback_url == "https://example.com/cb"
        assert fetched.geo_match_level == "area-code"
        assert fetched.number_selection_behavior == "avoid-sticky"
        assert fetched.intercept_callback_url == "https://example.com/intercept"
        assert fetched.out_of_session_callback_url == "https://example.com/oos"
        assert fetched.chat_instance_sid == "IS" + "0" * 32


def test_unique_name_is_required_and_unique_per_account(server, account):
    proxy = account.client.proxy.v1
    with raises(20001, 400):
        proxy.services.create(unique_name=None)  # type: ignore[arg-type]
    proxy.services.create(unique_name="taken")
    with raises(80602, 409):
        proxy.services.create(unique_name="taken")
    other = server.new_account()
    assert other.client.proxy.v1.services.create(unique_name="taken").unique_name == "taken"
    b = proxy.services.create(unique_name="b")
    with raises(80602, 409):
        proxy.services(b.sid).update(unique_name="taken")


def test_bad_values_are_rejected(account):
    proxy = account.client.proxy.v1
    with raises(20001, 400):
        proxy.services.create(unique_name="x", geo_match_level="planet")
    with raises(20001, 400):
        proxy.services.create(unique_name="x", callback_url="not a url")
    with raises(80601, 400):
        proxy.services.create(unique_name="x", default_ttl=-1)
    with raises(80601, 400):
        proxy.services.create(unique_name="KS" + "1" * 32)


def test_update_list_delete(server, account):
    proxy = account.client.proxy.v1
    a = proxy.services.create(unique_name="a")
    b = proxy.services.create(unique_name="b")
    server.clock.advance(60)
    u = proxy.services(a.sid).update(unique_name="a2", default_ttl=60,
                                     callback_url="https://example.com/x",
                                     geo_match_level="area-code",
                                     number_selection_behavior="avoid-sticky")
    assert (u.unique_name, u.default_ttl, u.callback_url, u.geo_match_level,
            u.number_selection_behavior) == ("a2", 60, "https://example.com/x", "area-code",
                                             "avoid-sticky")
    assert u.date_updated > u.date_created
    u = proxy.services(a.sid).update(callback_url="")
    assert u.callback_url is None and u.default_ttl == 60
    assert [s.sid for s in proxy.services.list()] == [a.sid, b.sid]
    assert [s.sid for s in proxy.services.list(page_size=1, limit=2)] == [a.sid, b.sid]
    assert proxy.services(a.sid).delete() is True
    assert [s.sid for s in proxy.services.list()] == [b.sid]
    with raises(20404, 404):
        proxy.services(a.sid).fetch()
    with raises(20404, 404):
        proxy.services("a2").fetch()


def test_services_are_private_to_their_account(server, account):
    s = account.client.proxy.v1.services.create(unique_name="mine")
    other = server.new_account()
    with raises(20404, 404):
        other.client.proxy.v1.services(s.sid).fetch()
    assert other.client.proxy.v1.services.list() == []


def test_deleting_a_service_deletes_everything_under_it(account):
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name="gone")
    own(account, "+14155550100")
    proxy.services(svc.sid).phone_numbers.create(phone_number="+14155550100")
    s = proxy.services(svc.sid).sessions.create(
        participants=[{"Identifier": "+14155550111"}, {"Identifier": "+14155550122"}])
    p = proxy.services(svc.sid).sessions(s.sid).participants.list()[0]
    proxy.services(svc.sid).sessions(s.sid).participants(p.sid).message_interactions.create(
        body="bye")
    assert proxy.services(svc.sid).delete() is True
    with raises(20404, 404):
        proxy.services(svc.sid).sessions(s.sid).fetch()
    # The unique name is free again, and the new service starts empty.
    again = proxy.services.create(unique_name="gone")
    assert proxy.services(again.sid).sessions.list() == []
