from __future__ import annotations

from tests.proxy.conftest import own, raw
from tests.support import raises

NUMBER_FIELDS = {
    "sid", "account_sid", "service_sid", "date_created", "date_updated", "phone_number",
    "friendly_name", "iso_country", "capabilities", "url", "is_reserved", "in_use",
}


def test_add_fetch_list_update_remove(account, service):
    own(account, "+14155550100", "+447700900123")
    numbers = account.client.proxy.v1.services(service.sid).phone_numbers
    n = numbers.create(phone_number="+14155550100")
    assert n.sid.startswith("PN") and len(n.sid) == 34
    assert (n.account_sid, n.service_sid) == (account.sid, service.sid)
    assert n.phone_number == "+14155550100"
    assert n.friendly_name == "(415) 555-0100"
    assert n.iso_country == "US"
    assert n.capabilities == {"fax": False, "mms": True, "sms": True, "voice": True}
    assert n.is_reserved is False and n.in_use == 0
    assert n.url.endswith(f"/v1/Services/{service.sid}/PhoneNumbers/{n.sid}")
    assert set(raw(account, n.url)) == NUMBER_FIELDS
    uk = numbers.create(phone_number="+447700900123", is_reserved=True)
    assert uk.iso_country == "GB" and uk.is_reserved is True
    assert numbers(n.sid).fetch().phone_number == "+14155550100"
    assert [x.sid for x in numbers.list()] == [n.sid, uk.sid]
    assert numbers(uk.sid).update(is_reserved=False).is_reserved is False
    assert numbers(n.sid).delete() is True
    assert [x.sid for x in numbers.list()] == [uk.sid]
    with raises(20404, 404):
        numbers(n.sid).fetch()


def test_numbers_are_validated_and_unique_in_a_pool(account, service):
    numbers = account.client.proxy.v1.services(service.sid).phone_numbers
    for bad in ("4155550100", "+1 415 555 0100", "+1415", "call me"):
        with raises(80601, 400):
            numbers.create(phone_number=bad)
    with raises(80601, 400):
        numbers.create()
    own(account, "+14155550100")
    numbers.create(phone_number="+14155550100")
    with raises(80601, 409):
        numbers.create(phone_number="+14155550100")


def test_add_by_sid_keeps_the_numbers_sid_across_services(account, service):
    proxy = account.client.proxy.v1
    [owned] = own(account, "+14155550100")
    n = proxy.services(service.sid).phone_numbers.create(phone_number="+14155550100")
    assert n.sid == owned
    other = proxy.services.create(unique_name="other")
    again = proxy.services(other.sid).phone_numbers.create(sid=n.sid)
    assert (again.sid, again.phone_number, again.service_sid) == (n.sid, n.phone_number, other.sid)
    with raises(20404, 400):
        proxy.services(other.sid).phone_numbers.create(sid="PN" + "0" * 32)


def test_deleting_a_service_removes_its_pool(account, service):
    proxy = account.client.proxy.v1
    [sid] = own(account, "+14155550100")
    n = proxy.services(service.sid).phone_numbers.create(sid=sid)
    proxy.services(service.sid).delete()
    with raises(20404, 404):
        proxy.services(service.sid).phone_numbers(n.sid).fetch()


def test_only_numbers_the_account_owns_join_its_pools(server, account, service):
    """A number another account owns, or no account owns, is as unknown as an unknown Sid:
    the same 20404, saying nothing of who owns it, and the pool stays as it was."""
    [theirs] = own(account, "+14155550100")
    other = server.new_account()
    pool = other.client.proxy.v1.services(
        other.client.proxy.v1.services.create(unique_name="mine").sid).phone_numbers
    answers = []
    for attempt in ({"phone_number": "+14155550100"}, {"phone_number": "+14155550177"},
                    {"sid": theirs}, {"sid": "PN" + "0" * 32}):
        with raises(20404, 400) as failure:
            pool.create(**attempt)
        answers.append(failure.error.msg.replace("+14155550177", "+14155550100")
                       .replace("PN" + "0" * 32, theirs))
    assert answers[0] == answers[1] and answers[2] == answers[3]
    assert pool.list() == []
    # Once the operator gives it the number, it may pool it too (under its own SID).
    [mine] = own(other, "+14155550100")
    assert mine != theirs
    assert pool.create(phone_number="+14155550100").sid == mine
