"""`manage.py billing_run`: the same plan as the wizard, from the command line."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import BillingBatch
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
