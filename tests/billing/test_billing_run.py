"""`manage.py billing_run`: the same plan as the wizard, from the command line."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import BillingBatch
from contracts.models import ContractPeriod
from tests.billing.test_batches import CUTOFF, world  # noqa: F401  (fixture)


def run(*args) -> str:
    out = io.StringIO()
    call_command("billing_run", "--tenant", "alpha", "--cutoff", CUTOFF.isoformat(), *args, stdout=out)
    connection.set_schema("alpha")
    return out.getvalue()


def test_dry_run_prints_the_batch_and_saves_nothing(world):  # noqa: F811
    report = json.loads(run("--dry-run", "--json"))
    assert report["dry_run"] is True and len(report["invoices"]) == 3
    assert report["totals"]["EUR"] == {"subtotal": "1275.00", "tax": "207.10", "total": "1482.10"}
    for invoice in report["invoices"]:
        assert sum(float(line["amount"]) + float(line["tax"]) for line in invoice["lines"]) == pytest.approx(float(invoice["total"]))
    assert not BillingBatch.objects.exists()


def test_run_saves_the_batch_and_a_second_run_finds_nothing_left(world):  # noqa: F811
    report = json.loads(run("--json", "--consolidate"))
    assert len(report["batch"]["invoices"]) == 1
    assert BillingBatch.objects.get().origin == "command"
    again = json.loads(run("--json"))
    assert again["invoices"] == [] and "batch" not in again


def test_bad_arguments_are_explained(world):  # noqa: F811
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("billing_run", "--tenant", "alpha", "--cutoff", "yesterday")
    with pytest.raises(CommandError, match="No MSP"):
        call_command("billing_run", "--tenant", "nobody", "--cutoff", CUTOFF.isoformat())


# --- an import billed at once: periods exist without waiting for the daily task ---------------------

IMPORTED_FEES = {
    "format": "msp-billing-import",
    "version": 1,
    "work_types": [{"name": "Remote Support"}, {"name": "Onsite Support"}],
    "roles": [{"name": "Engineer", "default_rate": "100.00", "cost_rate": "40.00"}],
    "technicians": [{"email": "technician@alpha.example", "role": "Engineer"}],
    "customers": [{"legal_name": "Fees First GmbH"}, {"legal_name": "Servers AG"}],
    "contracts": [
        {"ref": "retainer", "customer": "Fees First GmbH", "name": "Managed Services", "type": "retainer",
         "start_date": "2026-03-01", "priority": 1, "fee": "1000.00", "taxable": False,
         "billing_frequency": "monthly", "billing_timing": "advance"},
        {"ref": "block", "customer": "Fees First GmbH", "name": "Onsite Block", "type": "block_hours",
         "start_date": "2026-03-01", "priority": 2, "overage_rate": "150", "rounding_increment": 1, "taxable": False,
         "blocks": [{"purchased_on": "2026-03-02", "hours": "10", "price": "1100.00"}]},
        {"ref": "hourly", "customer": "Fees First GmbH", "name": "Hourly T&M", "type": "hourly",
         "start_date": "2026-03-01", "priority": 3, "rounding_increment": 15, "taxable": False,
         "rate_lines": [{"rate": "120.00", "effective_from": "2026-03-01"}]},
        {"ref": "rmm", "customer": "Servers AG", "name": "RMM", "type": "remote_monitoring",
         "start_date": "2026-03-01", "taxable": False,
         "device_classes": [{"name": "Servers", "unit_price": "45.00",
                             "counts": [{"effective_date": "2026-03-01", "count": 3},
                                        {"effective_date": "2026-03-16", "count": 4}]}]},
    ],
    "tickets": [{"ref": "T-1", "customer": "Fees First GmbH", "title": "Backup restore", "status": "resolved",
                 "default_contract": "hourly"}],
    "time_entries": [{"ticket": "T-1", "technician": "technician@alpha.example", "work_type": "Remote Support",
                      "date": "2026-03-10", "minutes": 80}],
}


def test_an_imported_file_billed_at_once_bills_every_fee(tenant, tmp_path):
    """Imported, then billed straight away: the retainer fee, the block bought in March and the
    device charges are billed with the time, although the daily task never ran."""
    path = tmp_path / "fees.json"
    path.write_text(json.dumps(IMPORTED_FEES))
    call_command("import_billing_data", str(path), "--tenant", "alpha", stdout=io.StringIO())
    connection.set_schema("alpha")

    report = json.loads(run("--json"))
    by_contract = {invoice["contracts"][0]["name"]: invoice for invoice in report["invoices"]}
    assert set(by_contract) == {"Managed Services", "Onsite Block", "Hourly T&M", "RMM"}
    # The March fee, billed in advance on 1 March.
    assert by_contract["Managed Services"]["total"] == "1000.00"
    # The block of 10 hours bought on 2 March is invoiced in its March period.
    assert by_contract["Onsite Block"]["total"] == "1100.00"
    # 80 minutes rounded up to 90 at 120.00/h = 180.00.
    assert by_contract["Hourly T&M"]["total"] == "180.00"
    assert by_contract["Hourly T&M"]["items"]["time_entries"] == 1
    # 3 servers for 15 of 31 days and 4 for 16 of 31 days at 45.00: the period's fee is
    # 135.00 × 15/31 + 180.00 × 16/31 = 65.3225… + 92.9032… = 158.2258… → 158.23, rounded once;
    # split by largest remainder, the cent goes to the second line: 65.32 + 92.91.
    assert [line["amount"] for line in by_contract["RMM"]["lines"]] == ["65.32", "92.91"]
    assert by_contract["RMM"]["total"] == "158.23"
    assert report["totals"]["EUR"]["total"] == "2438.23"

    # Every period due by the cut-off is billed once; a second run finds nothing.
    assert not ContractPeriod.objects.filter(bill_date__lte=CUTOFF, billed_at__isnull=True,
                                             contract__type__in=["retainer", "block_hours", "remote_monitoring"]).exists()
    assert json.loads(run("--json"))["invoices"] == []
