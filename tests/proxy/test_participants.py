from __future__ import annotations

from tests.proxy.conftest import own, raw
from tests.support import raises

PARTICIPANT_FIELDS = {
    "sid", "session_sid", "service_sid", "account_sid", "friendly_name", "identifier",
    "proxy_identifier", "proxy_identifier_sid", "date_deleted", "date_created", "date_updated",
    "url", "links",
}


def _service(account, *numbers, **kwargs):  # type: ignore[no-untyped-def]
    proxy = account.client.proxy.v1
    svc = proxy.services.create(unique_name=kwargs.pop("unique_name", "svc"), **kwargs)
    pns = [proxy.services(svc.sid).phone_numbers.create(sid=n) for n in own(account, *numbers)]
    return proxy.services(svc.sid), pns


def test_create_fetch_list_and_soft_delete(server, account):
    svc, (pn,) = _service(account, "+14155550100")
    session = svc.sessions.create()
    parts = svc.sessions(session.sid).participants
    p = parts.create(identifier="+14155550111", friendly_name="Alice")
    assert p.sid.startswith("KP") and len(p.sid) == 34
    assert (p.session_sid, p.service_sid, p.account_sid) == (session.sid, svc._solution["sid"],
                                                             account.sid)
    assert (p.identifier, p.friendly_name) == ("+14155550111", "Alice")
    assert (p.proxy_identifier, p.proxy_identifier_sid) == ("+14155550100", pn.sid)
    assert p.date_deleted is None
    assert p.links == {"message_interactions": f"{p.url}/MessageInteractions"}
    assert set(raw(account, p.url)) == PARTICIPANT_FIELDS
    assert parts(p.sid).fetch().identifier == "+14155550111"
    assert svc.phone_numbers(pn.sid).fetch().in_use == 1
    server.clock.advance(10)
    body = raw(account, p.url, "DELETE")
    assert body["date_deleted"] == server.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert parts(p.sid).fetch().date_deleted == server.clock.now()
    assert [x.sid for x in parts.list()] == [p.sid]
    assert svc.phone_numbers(pn.sid).fetch().in_use == 0
    with raises(80103, 409):
        parts.create(identifier="+14155550111")
    q = parts.create(identifier="+14155550122")
    assert parts(q.sid).delete()  # the official client's delete accepts the 200 with a body
    assert parts(q.sid).fetch().date_deleted is not None


def test_at_most_two_participants(account):
    svc, _ = _service(account, "+14155550100")
    session = svc.sessions.create()
    parts = svc.sessions(session.sid).participants
    parts.create(identifier="+14155550111")
    with raises(80103, 409):
        parts.create(identifier="+14155550111")
    parts.create(identifier="+14155550122")
    with raises(80609, 400):
        parts.create(identifier="+14155550133")
    with raises(80609, 400):
        svc.sessions.create(participants=[{"Identifier": "+14155550111"},
                                          {"Identifier": "+14155550122"},
                                          {"Identifier": "+14155550133"}])


def test_never_the_same_proxy_number_for_two_open_sessions_of_one_identifier(account):
    svc, (a, b) = _service(account, "+14155550100", "+14155550101")
    first = svc.sessions.create(participants=[{"Identifier": "+14155550111"}])
    second = svc.sessions.create(participants=[{"Identifier": "+14155550111"}])
    n1 = svc.sessions(first.sid).participants.list()[0].proxy_identifier
    n2 = svc.sessions(second.sid).participants.list()[0].proxy_identifier
    assert {n1, n2} == {a.phone_number, b.phone_number}
    with raises(80402, 400) as failure:
        svc.sessions.create(participants=[{"Identifier": "+14155550111"}])
    assert "already used" in failure.error.msg
    assert [s.sid for s in svc.sessions.list()] == [first.sid, second.sid]  # rolled back whole
    # Another identifier can still share the numbers.
    svc.sessions.create(participants=[{"Identifier": "+14155550122"}])
    # Closing a session frees its number for the identifier.
    svc.sessions(first.sid).update(status="closed")
    third = svc.sessions.create(participants=[{"Identifier": "+14155550111"}])
    assert svc.sessions(third.sid).participants.list()[0].proxy_identifier == n1
    # ... and re-opening the first would now clash.
    with raises(80604, 409):
        svc.sessions(first.sid).update(status="in-progress")


def test_explicit_proxy_identifier(account):
    svc, (a, b) = _service(account, "+14155550100", "+14155550101")
    s1 = svc.sessions.create()
    p = svc.sessions(s1.sid).participants.create(identifier="+14155550111",
                                                 proxy_identifier="+14155550101")
    assert p.proxy_identifier_sid == b.sid
    s2 = svc.sessions.create()
    with raises(80604, 409):
        svc.sessions(s2.sid).participants.create(identifier="+14155550111",
                                                 proxy_identifier_sid=b.sid)
    with raises(80402, 400):
        svc.sessions(s2.sid).participants.create(identifier="+14155550111",
                                                 proxy_identifier="+14155559999")
    assert svc.sessions(s2.sid).participants.create(
        identifier="+14155550111", proxy_identifier_sid=a.sid).proxy_identifier == a.phone_number


def test_geo_match_country_and_area_code(account):
    svc, (_sf, _ny, gb) = _service(account, "+14155550100", "+12125550101", "+447700900123")
    s = svc.sessions.create()
    assert svc.sessions(s.sid).participants.create(
        identifier="+447700900999").proxy_identifier == gb.phone_number
    with raises(80402, 400) as failure:
        svc.sessions(s.sid).participants.create(identifier="+33612345678")
    assert "FR" in failure.error.msg
    area, _ = _service(account, "+14155550100", "+12125550101", unique_name="area",
                       geo_match_level="area-code")
    s = area.sessions.create()
    assert area.sessions(s.sid).participants.create(
        identifier="+12125550199").proxy_identifier == "+12125550101"
    assert area.sessions(s.sid).participants.create(
        identifier="+14155550199").proxy_identifier == "+14155550100"
    s = area.sessions.create()
    with raises(80402, 400):
        area.sessions(s.sid).participants.create(identifier="+13105550199")


def test_geo_match_overlay(account):
    """An overlay area code serves the same area: 628 overlays 415, 510 does not."""
    svc, _ = _service(account, "+15105550100", "+16285550101", "+12125550102",
                      geo_match_level="overlay")
    s = svc.sessions.create()
    assert svc.sessions(s.sid).participants.create(
        identifier="+14155550199").proxy_identifier == "+16285550101"
    assert svc.sessions(s.sid).participants.create(
        identifier="+19175550199").proxy_identifier == "+12125550102"
    s = svc.sessions.create()
    with raises(80402, 400) as failure:
        svc.sessions(s.sid).participants.create(identifier="+13105550199")
    assert "310" in failure.error.msg
    area, _ = _service(account, "+16285550101", unique_name="area",
                       geo_match_level="area-code")
    s = area.sessions.create()
    with raises(80402, 400):
        area.sessions(s.sid).participants.create(identifier="+14155550199")


SF, OAKLAND, LA = "+14152020100", "+15102080100", "+12132000100"  # 13 km and 560 km apart


def test_geo_match_radius(account):
    """Within 80 km of the identifier's city: San Francisco gets San Francisco or Oakland, never
    Los Angeles."""
    svc, _ = _service(account, SF, OAKLAND, LA, geo_match_level="radius")
    given = set()
    for n in range(4):
        s = svc.sessions.create()
        given.add(svc.sessions(s.sid).participants.create(
            identifier=f"+1415217019{n}").proxy_identifier)
    assert given == {SF, OAKLAND}
    s = svc.sessions.create()
    assert svc.sessions(s.sid).participants.create(identifier="+12132000199").proxy_identifier == LA
    far, _ = _service(account, LA, unique_name="far", geo_match_level="radius")
    s = far.sessions.create()
    with raises(80402, 400) as failure:
        far.sessions(s.sid).participants.create(identifier="+14152170199")
    assert "San Francisco, CA" in failure.error.msg and "radius" in failure.error.msg


def test_geo_match_radius_falls_back_to_overlay(account):
    """A number the geocoder places only in a state (628: "California") matches by overlay."""
    svc, _ = _service(account, OAKLAND, LA, geo_match_level="radius")
    s = svc.sessions.create()
    with raises(80402, 400) as failure:  # 628 overlays 415, not 510 or 213
        svc.sessions(s.sid).participants.create(identifier="+16285550199")
    assert "area code 628" in failure.error.msg
    own(account, SF)
    svc.phone_numbers.create(phone_number=SF)
    assert svc.sessions(s.sid).participants.create(
        identifier="+16285550199").proxy_identifier == SF
    # A pool number placed only in California serves its own area code and overlays.
    state_only, _ = _service(account, "+14152000100", LA, unique_name="state-only",
                             geo_match_level="radius")
    s = state_only.sessions.create()
    assert state_only.sessions(s.sid).participants.create(
        identifier="+14152170199").proxy_identifier == "+14152000100"
    with raises(80402, 400):
        state_only.sessions(s.sid).participants.create(identifier="+15102080199")


def test_reserved_numbers_are_not_picked(account):
    svc, (a, b) = _service(account, "+14155550100", "+14155550101")
    svc.phone_numbers(a.sid).update(is_reserved=True)
    for _ in range(2):
        s = svc.sessions.create()
        assert svc.sessions(s.sid).participants.create(
            identifier="+14155550111" if _ == 0 else "+14155550122").proxy_identifier_sid == b.sid
    svc.phone_numbers(b.sid).update(is_reserved=True)
    s = svc.sessions.create()
    with raises(80402, 400):
        svc.sessions(s.sid).participants.create(identifier="+14155550133")
    # A reserved number can still be asked for explicitly.
    assert svc.sessions(s.sid).participants.create(
        identifier="+14155550133", proxy_identifier_sid=a.sid).proxy_identifier_sid == a.sid


def test_sticky_and_avoid_sticky(account):
    sticky, _ = _service(account, "+14155550100", "+14155550101")
    s1 = sticky.sessions.create(participants=[{"Identifier": "+14155550111"}])
    used = sticky.sessions(s1.sid).participants.list()[0].proxy_identifier_sid
    sticky.sessions(s1.sid).update(status="closed")
    s2 = sticky.sessions.create(participants=[{"Identifier": "+14155550111"}])
    assert sticky.sessions(s2.sid).participants.list()[0].proxy_identifier_sid == used
    rotate, _ = _service(account, "+14155550102", "+14155550103", unique_name="rotate",
                              number_selection_behavior="avoid-sticky")
    s1 = rotate.sessions.create(participants=[{"Identifier": "+14155550111"}])
    first = rotate.sessions(s1.sid).participants.list()[0].proxy_identifier_sid
    rotate.sessions(s1.sid).update(status="closed")
    s2 = rotate.sessions.create(participants=[{"Identifier": "+14155550111"}])
    assert rotate.sessions(s2.sid).participants.list()[0].proxy_identifier_sid != first


def test_bad_identifiers_and_empty_pools(account):
    svc, _ = _service(account)
    s = svc.sessions.create()
    with raises(80402, 400) as failure:
        svc.sessions(s.sid).participants.create(identifier="+14155550111")
    assert "no phone numbers" in failure.error.msg
    with raises(80404, 400):
        svc.sessions(s.sid).participants.create(identifier="4155550111")
    with raises(80601, 400):
        svc.sessions.create(participants=["not json"])
    with raises(20001, 400):
        svc.sessions(s.sid).participants.create(identifier=None)  # type: ignore[arg-type]


def test_no_participants_on_closed_sessions(account):
    svc, _ = _service(account, "+14155550100")
    s = svc.sessions.create(status="closed")
    assert s.status == "closed"
    with raises(80607, 400):
        svc.sessions(s.sid).participants.create(identifier="+14155550111")


def test_concurrent_allocation_never_hands_out_one_pair_twice(account):
    from concurrent.futures import ThreadPoolExecutor

    from twilio.base.exceptions import TwilioRestException

    svc, _ = _service(account, "+14155550100", "+14155550101", "+14155550102")
    sessions = [svc.sessions.create().sid for _ in range(6)]

    def join(sid: str) -> str | None:
        try:
            return svc.sessions(sid).participants.create(identifier="+14155550111").proxy_identifier
        except TwilioRestException as exc:
            assert exc.code == 80402, exc.msg
            return None

    with ThreadPoolExecutor(6) as pool:
        got = [n for n in pool.map(join, sessions) if n is not None]
    assert sorted(got) == ["+14155550100", "+14155550101", "+14155550102"]


def test_participant_paging(account):
    svc, _ = _service(account, "+14155550100")
    s = svc.sessions.create()
    a = svc.sessions(s.sid).participants.create(identifier="+14155550111")
    b = svc.sessions(s.sid).participants.create(identifier="+14155550122")
    page = svc.sessions(s.sid).participants.page(page_size=1)
    assert [p.sid for p in page] == [a.sid]
    assert [p.sid for p in page.next_page()] == [b.sid]


def test_a_number_shared_by_two_services_carries_one_session_per_identifier(server, account):
    """A number may sit in two services' pools; an identifier still talks through it in one
    active Session at a time, so its inbound traffic finds that Session."""
    from tests.proxy.conftest import carrier_post

    first, (n,) = _service(account, "+14155550100")
    second = account.client.proxy.v1.services(
        account.client.proxy.v1.services.create(unique_name="second").sid)
    second.phone_numbers.create(sid=n.sid)
    a = first.sessions.create(participants=[{"Identifier": "+14155550111"},
                                            {"Identifier": "+14155550122"}])
    b = second.sessions.create()
    with raises(80402, 400):
        second.sessions(b.sid).participants.create(identifier="+14155550111")
    with raises(80604, 409):
        second.sessions(b.sid).participants.create(identifier="+14155550111",
                                                   proxy_identifier_sid=n.sid)
    assert second.sessions(b.sid).participants.create(
        identifier="+14155550133").proxy_identifier_sid == n.sid
    r = carrier_post(server, account, "Messages", From="+14155550111", To=n.phone_number,
                     Body="hi")
    assert r.status_code == 201, r.text
    assert r.json()["session_sid"] == a.sid and r.json()["to"] == "+14155550122"
    first.sessions(a.sid).update(status="closed")
    assert second.sessions(b.sid).participants.create(
        identifier="+14155550111").proxy_identifier_sid == n.sid


def test_new_identifiers_get_the_least_used_number(account):
    svc, (a, b) = _service(account, "+14155550100", "+14155550101")
    picked = []
    for n in range(4):
        s = svc.sessions.create(participants=[{"Identifier": f"+1415555020{n}"}])
        picked.append(svc.sessions(s.sid).participants.list()[0].proxy_identifier_sid)
    assert sorted(picked) == sorted([a.sid, a.sid, b.sid, b.sid])
    assert svc.phone_numbers(a.sid).fetch().in_use == svc.phone_numbers(b.sid).fetch().in_use == 2
    assert [x.in_use for x in svc.phone_numbers.list()] == [2, 2]


def test_participants_json_values_must_be_strings_without_nul(account):
    """Participants of a new Session arrive as JSON, past the form's own checks: a value that
    is not a string, or holds a NUL, is refused naming it, and no Session is left behind."""
    svc, _ = _service(account, "+14155550100")
    for bad in ({"Identifier": ["+14155550111"]}, {"Identifier": "messenger:a\x00b"},
                {"Identifier": "+14155550111", "FriendlyName": "a\x00b"},
                {"Identifier": "+14155550111", "ProxyIdentifier": "+1415\x005550100"},
                {"Identifier": "+14155550111", "FriendlyName": {"first": "Ann"}}):
        with raises(80601, 400) as failure:
            svc.sessions.create(participants=[bad])
        assert "Participants" in failure.error.msg
    assert svc.sessions.list() == []


def test_participants_nested_past_what_the_parser_follows_are_a_400(server, account):
    import httpx

    service = account.client.proxy.v1.services.create(unique_name="deep")
    deep = "[" * 100_000 + "]" * 100_000
    r = httpx.post(f"{server.base_url}/proxy/v1/Services/{service.sid}/Sessions",
                   auth=(account.sid, account.token), data={"Participants": deep})
    assert r.status_code == 400 and "Participants" in r.json()["message"], r.text
    assert service.sessions.list() == []


def test_identifiers_are_phone_numbers_or_channel_addresses(account):
    """Twilio's Proxy takes an E.164 number or a channel address (the spec's example is
    `messenger:123456`; WhatsApp addresses are `whatsapp:` and an E.164 number). Anything else
    is Twilio's 80404, "Participant Identifier Invalid" (https://www.twilio.com/docs/api/errors/80404:
    "does not appear to be a valid, reachable phone number"), and gets no proxy number."""
    svc, (pn,) = _service(account, "+14155550100")
    s = svc.sessions.create()
    parts = svc.sessions(s.sid).participants
    for bad in ("not-a-number", "+1415", "+1 415 555 0111", "messenger:", "messenger:page",
                "whatsapp:4155550111", "whatsapp:+1415", "sms:+14155550111", "4155550111",
                "+14155550111 "):
        with raises(80404, 400) as failure:
            parts.create(identifier=bad)
        assert "Identifier" in failure.error.msg
    with raises(80404, 400):
        svc.sessions.create(participants=[{"Identifier": "not-a-number"}])
    with raises(80404, 400):  # nor as the second of two, leaving no Session behind
        svc.sessions.create(unique_name="pair", participants=[{"Identifier": "+14155550111"},
                                                              {"Identifier": "someone"}])
    assert [x.sid for x in svc.sessions.list()] == [s.sid] and parts.list() == []
    assert svc.phone_numbers(pn.sid).fetch().in_use == 0
    for good in ("messenger:123456", "whatsapp:+14155550122"):
        p = svc.sessions(svc.sessions.create().sid).participants.create(identifier=good)
        assert (p.identifier, p.proxy_identifier) == (good, "+14155550100")
