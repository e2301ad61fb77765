"""Generated IMSIs never repeat one another nor one already provisioned."""

from __future__ import annotations

from simplane.wireless import inventory


def test_generated_imsis_are_drawn_again_until_unique(server, account, monkeypatch):
    [sid] = server.provision(account.sid, 1)
    with server.runtime.db.read() as db:
        from simplane.wireless.models import Sim

        taken = db.query(Sim.imsi).filter_by(sid=sid).scalar()
    draws = iter([taken, "001017777700001", "001017777700001", "001017777700002",
                  "001017777700003"])
    monkeypatch.setattr(inventory, "new_imsi", lambda prefix=inventory.IMSI_PREFIX: next(draws))
    rows = inventory.generated_rows(2)
    with server.runtime.db.read() as db:
        inventory.fill_in(db, rows)
    assert sorted(r.imsi for r in rows) == ["001017777700001", "001017777700002"]
    assert all(r.registration_code for r in rows)


def test_iccids_and_imsis_are_ascii_digits():
    iccid = "8901260000000000006"  # its Luhn check digit holds
    assert inventory.iccid_problem(iccid) is None
    arabic = iccid.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert "digits" in inventory.iccid_problem(arabic)
    assert "digits" in inventory.imsi_problem("٩٠١٤٢٠٠٠٠٠٠٠٠٠١")
    assert inventory.imsi_problem("901420000000001") is None
