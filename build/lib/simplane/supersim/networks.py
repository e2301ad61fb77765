"""The Networks catalogue (HW…): every real mobile network in python-stdnum's MCC/MNC table, the
same data `simplane.network.events.operator` reads.

A Network is one operator (brand) in one country, with every MCC/MNC it uses as `identifiers`.
Its SID is derived from the country and the name, so every database and every process agrees on
it without storing the catalogue. `network_for(mcc, mnc)` is the one mapping from a serving
network to its Network; ingest and usage use it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from stdnum import numdb


@dataclass(frozen=True)
class Network:
    sid: str
    friendly_name: str
    iso_country: str  # ISO 3166 alpha-2, upper case
    identifiers: tuple[tuple[str, str], ...]  # (mcc, mnc), sorted

    def identifiers_json(self) -> list[dict[str, str]]:
        return [{"mcc": mcc, "mnc": mnc} for mcc, mnc in self.identifiers]


def network_sid(iso_country: str, friendly_name: str) -> str:
    digest = hashlib.sha256(f"supersim-network:{iso_country}:{friendly_name}".encode()).hexdigest()
    return "HW" + digest[:32]


@cache
def catalogue() -> tuple[Network, ...]:
    """All networks, ordered by SID (the order lists are paged in)."""
    groups: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for _len, mcc, _hi, _props, mncs in numdb.get("imsi").prefixes:
        for _mlen, mnc, mnc_hi, props, _rest in mncs:
            name = props.get("brand") or props.get("operator")
            country = props.get("cc", "")
            if mnc != mnc_hi or not name or len(country) != 2:
                continue  # ranges without an operator, test and international networks
            groups.setdefault((country.upper(), name), set()).add((mcc, mnc))
    networks = [Network(network_sid(cc, name), name, cc, tuple(sorted(ids)))
                for (cc, name), ids in groups.items()]
    return tuple(sorted(networks, key=lambda n: n.sid))


@cache
def _by_sid() -> dict[str, Network]:
    return {n.sid: n for n in catalogue()}


@cache
def _by_identifier() -> dict[tuple[str, str], Network]:
    return {ident: n for n in catalogue() for ident in n.identifiers}


def get(sid: str) -> Network | None:
    return _by_sid().get(sid)


def network_for(mcc: str, mnc: str) -> Network | None:
    """The Network an MCC/MNC belongs to, or None for a network outside the catalogue."""
    return _by_identifier().get((mcc, mnc))


def search(iso_country: str | None = None, mcc: str | None = None,
           mnc: str | None = None) -> list[Network]:
    found = []
    for n in catalogue():
        if iso_country is not None and n.iso_country != iso_country.upper():
            continue
        if mcc is not None and not any(m == mcc for m, _ in n.identifiers):
            continue
        if mnc is not None and not any(c == mnc and (mcc is None or m == mcc)
                                       for m, c in n.identifiers):
            continue
        found.append(n)
    return found
