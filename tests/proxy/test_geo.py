from __future__ import annotations

import phonenumbers

from simplane.proxy import geo


def test_place_and_distance():
    sf, oakland, la = (geo.place(n) for n in ("+14152020100", "+15102080100", "+12132000100"))
    assert sf and sf.name == "San Francisco, CA" and oakland and la
    assert 10 < geo.distance_km(sf, oakland) < 16
    assert 540 < geo.distance_km(sf, la) < 580
    assert geo.distance_km(sf, sf) == 0
    assert geo.place("+16285550199") is None  # "California": no city
    assert geo.place("+447700900123") is None
    toronto, montreal = geo.place("+14162030100"), geo.place("+15142230100")
    assert toronto and toronto.name == "Toronto, ON" and montreal
    assert 490 < geo.distance_km(toronto, montreal) < 520
    assert geo.place("+12125550101")  # "New York, NY" is GeoNames' "New York City"


def test_same_area_radius():
    sf = phonenumbers.parse("+14152170199")
    assert geo.same_area("radius", sf, "+15102080100")
    assert not geo.same_area("radius", sf, "+12132000100")
    assert geo.same_area("radius", sf, "+16285550100")  # unplaced: 628 overlays 415
    assert geo.wanted("radius", sf) == "is within 80 km of San Francisco, CA"
    assert geo.wanted("overlay", sf) == "serves area code 415"
    assert geo.same_area("radius", phonenumbers.parse("+447700900999"), "+447700900123")


def test_caribbean_overlays():
    san_juan = phonenumbers.parse("+17872020100")
    assert geo.same_area("overlay", san_juan, "+19395550100")
    assert geo.same_area("radius", san_juan, "+19395550100")  # unplaced: 939 overlays 787
    assert not geo.same_area("area-code", san_juan, "+19395550100")
    assert not geo.same_area("overlay", san_juan, "+18095550100")  # another island
    assert geo.same_area("overlay", phonenumbers.parse("+18095550100"), "+18495550100")
    assert geo.same_area("overlay", phonenumbers.parse("+18765550100"), "+16585550100")
