from __future__ import annotations

from tests.proxy.conftest import raw
from tests.support import raises

NUMBER_FIELDS = {
    "sid", "account_sid", "service_sid", "date_created", "date_updated", "phone_number",
    "friendly_name", "iso_country", "capabilities", "url", "is_reserved", "in_use",
}


def test_add_fetch_list_update_remove(account, service):
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
    numbers.create(phone_number="+14155550100")
    with raises(80601, 409):
        numbers.create(phone_number="+14155550100")


def test_add_by_sid_keeps_the_numbers_sid_across_services(account, service):
    proxy = account.client.proxy.v1
    n = proxy.services(service.sid).phone_numbers.create(phone_number="+14155550100")
    other = proxy.services.create(unique_name="other")
    again = proxy.services(other.sid).phone_numbers.create(sid=n.sid)
    assert (again.sid, again.phone_number, again.service_sid) == (n.sid, n.phone_number, other.sid)
    with raises(20404, 400):
        proxy.services(other.sid).phone_numbers.create(sid="PN" + "0" * 32)


def test_deleting_a_service_removes_its_pool(account, service):
    proxy = account.client.proxy.v1
    n = proxy.services(service.sid).phone_numbers.create(phone_number="+14155550100")
    proxy.services(service.sid).delete()
    with raises(20404, 404):
        proxy.services(service.sid).phone_numbers(n.sid).fetch()
