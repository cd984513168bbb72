"""Timesheet vs batch: every worked minute lands in exactly one reason."""
from __future__ import annotations

import datetime as dt

from billing import services
from billing.reconciliation import reconcile
from tests.billing.test_batches import CUTOFF, world  # noqa: F401  (fixture)


def test_every_minute_is_explained_before_and_after_billing(client_for, world):  # noqa: F811
    before = reconcile(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))
    # 45 + 90 + 30 minutes on the resolved ticket, 60 on the open one.
    assert before.worked_minutes == 225 == before.explained_minutes
    assert before.minutes_by_reason["ready, not billed"] == 165
    assert before.minutes_by_reason["ticket not resolved"] == 60
    services.batch_run(name="March", cutoff=CUTOFF, selection=services.selection_everything_due(cutoff=CUTOFF), consolidated=False,
                       acting_user=world["admin"])
    after = reconcile(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))
    assert after.explained_minutes == after.worked_minutes == 225
    # Charged: 30 onsite overage + 30 out-of-hours; covered: 45 remote (retainer) + 60 onsite (block).
    assert after.minutes_by_reason["billed — charged"] == 60
    assert after.minutes_by_reason["billed — covered by a contract"] == 105
    assert after.minutes_by_batch == {"March": 165}
    page = client_for("alpha", "accountant").get("/billing/reports/reconciliation/", {"start": "2026-03-01", "end": "2026-03-31"})
    assert page.status_code == 200 and "225" in page.content.decode()
    csv = client_for("alpha", "accountant").get("/billing/reports/reconciliation/", {"start": "2026-03-01", "end": "2026-03-31", "format": "csv"})
    assert csv["Content-Type"] == "text/csv" and csv.content.decode().strip().splitlines()[-1].endswith(",225")
    bad = client_for("alpha", "accountant").get("/billing/reports/reconciliation/", {"start": "2026-03-31", "end": "2026-03-01"})
    assert bad.status_code == 400 and "before the start" in bad.content.decode()
