"""Super SIM inventory: SIMs an operator provisions, waiting to be registered by an account
with their ICCID and registration code (`POST /v1/Sims`).

Rows are read and checked as for Wireless (`simplane.wireless.inventory`); ICCIDs and IMSIs are
unique across both products, since one network serves both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from simplane.core.sids import new_sid
from simplane.supersim.models import Sim
from simplane.wireless import inventory as wireless_inventory
from simplane.wireless.inventory import InventoryError, SimRow

# Super SIM ICCIDs: 20 digits, 89 (telecom) + 883 (international) + 07 (issuer), as Twilio's.
ICCID_PREFIX = "8988307"
# Their home network: MCC 732 / MNC 123, as the IMSIs Twilio's Super SIMs present.
IMSI_PREFIX = "732123"
STATUSES = ("new",)  # an unregistered SIM has never been used


def generated_rows(count: int) -> list[SimRow]:
    return wireless_inventory.generated_rows(count, "new", iccid_prefix=ICCID_PREFIX,
                                             iccid_length=20)


def add_sims(db: Session, rows: Iterable[SimRow], now: datetime, account_sid: str | None = None,
             batch: int = 5000, progress: Callable[[int], None] | None = None,
             msisdn_prefix: str | None = None) -> list[dict]:
    """Put SIMs into the inventory, all or none (the caller's transaction), or straight into
    an account (registered for it); returns their rows (sid, iccid, imsi, registration_code, …)
    in order."""
    rows = list(rows)
    wireless_inventory.fill_in(db, rows, IMSI_PREFIX, msisdn_prefix)
    problems = []
    for i, row in enumerate(rows):
        if row.status not in STATUSES:
            problems.append(f"line {i + 2}: status {row.status!r}: Super SIMs enter the inventory "
                            "as new")
        if row.unique_name:
            problems.append(f"line {i + 2}: unique_name: a Super SIM is named by the account "
                            "that registers it")
    problems += wireless_inventory.already_provisioned(db, rows)
    if problems:
        raise InventoryError("\n".join(problems))
    values = [{"sid": new_sid("HS"), "account_sid": account_sid, "unique_name": None,
               "iccid": r.iccid, "imsi": r.imsi, "msisdn": r.msisdn,
               "registration_code": r.registration_code,
               "status": "new", "date_registered": now if account_sid else None,
               "date_status_changed": now, "date_created": now, "date_updated": now}
              for r in rows]
    for start in range(0, len(values), batch):
        db.execute(insert(Sim), values[start:start + batch])
        if progress:
            progress(len(values[start:start + batch]))
    return values
