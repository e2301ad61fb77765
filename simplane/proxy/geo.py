"""Where a North American proxy number may be, relative to a participant, by geo_match_level.

`area-code`: the same area code. `overlay`: the same area code or one that overlays it, i.e.
serves the same area (NANPA's overlay complexes below; an area code listed nowhere has no
overlay). Both are North America only: elsewhere they match by country, as Twilio's are.
`radius` matches by country too: simplane knows no number's coordinates to measure from.
"""

from __future__ import annotations

import phonenumbers

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
]
_COMPLEXES: dict[str, set[str]] = {}
for _group in OVERLAYS:
    for _code in _group.split():
        _COMPLEXES.setdefault(_code, set()).update(_group.split())


def area_code(number: phonenumbers.PhoneNumber) -> str | None:
    """The area code of a North American number; None elsewhere."""
    return str(number.national_number)[:3] if number.country_code == 1 else None


def same_area(level: str, identifier: phonenumbers.PhoneNumber, proxy_number: str) -> bool:
    """Whether the proxy number serves the identifier's area at this geo_match_level (the
    country is checked apart)."""
    mine = area_code(identifier)
    if mine is None or level not in ("area-code", "overlay"):
        return True
    theirs = area_code(phonenumbers.parse(proxy_number, None))
    return theirs == mine or (level == "overlay" and theirs in _COMPLEXES.get(mine, ()))
