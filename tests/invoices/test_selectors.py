"""Balances and aging as of a date: only what had happened by then counts."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoices import selectors, services
from tests.invoices.builders import admin, customer, d, draft, issued, line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alpha(tenant):
    return tenant


@pytest.mark.parametrize("days_past_due,bucket", [
    (-10, "current"), (0, "current"), (1, "days_1_30"), (30, "days_1_30"), (31, "days_31_60"), (60, "days_31_60"),
    (61, "days_61_90"), (90, "days_61_90"), (91, "days_over_90"), (400, "days_over_90"),
])
def test_aging_buckets(days_past_due, bucket):
    due = dt.date(2026, 1, 31)
    assert selectors.aging_bucket(due_date=due, as_of=due + dt.timedelta(days=days_past_due)) == bucket


def test_aging_counts_what_was_due_on_the_day():
    acme, beta = customer("Acme"), customer("Beta", currency="USD")
    old = issued(acme, [line("Old", "1", "100")], on=dt.date(2026, 1, 1))       # due 15 Jan
    recent = issued(acme, [line("Recent", "1", "40")], on=dt.date(2026, 3, 1))  # due 15 Mar
    dollars = issued(beta, [line("Dollars", "1", "70")], on=dt.date(2026, 2, 1))  # due 15 Feb
    draft(acme, [line("Not issued", "1", "999")])
    services.payment_record(invoice_id=old.pk, amount=d("30"), date=dt.date(2026, 2, 1), acting_user=admin())
    services.payment_record(invoice_id=old.pk, amount=d("70"), date=dt.date(2026, 4, 20), acting_user=admin())
    services.credit_note_create(invoice_id=recent.pk, reason="Goodwill", acting_user=admin(), issue_date=dt.date(2026, 4, 2),
                                lines=[services.CreditLineInput(recent.lines.get().pk, d("10"))])

    report = selectors.aging_report(as_of=dt.date(2026, 3, 31))
    rows = {(row.customer.legal_name, row.currency): row for row in report.rows}
    assert set(rows) == {("Acme", "EUR"), ("Beta", "USD")}
    # Old: 100 − 30 paid by then, 75 days past due; Recent: 16 days past due, credit note not yet issued.
    assert rows["Acme", "EUR"].buckets == {"current": d("0"), "days_1_30": d("40.00"), "days_31_60": d("0"),
                                           "days_61_90": d("70.00"), "days_over_90": d("0")}
    assert rows["Beta", "USD"].buckets["days_31_60"] == d("70.00")
    assert report.totals["EUR"].total == d("110.00") and report.totals["USD"].total == d("70.00")  # never added up

    later = selectors.aging_report(as_of=dt.date(2026, 4, 30))
    (acme_row,) = [row for row in later.rows if row.currency == "EUR"]
    assert acme_row.total == d("30.00")  # old paid in full; recent 40 − 10 credited
    assert selectors.aging_report(as_of=dt.date(2025, 12, 31)).rows == []  # nothing issued yet
    assert dollars.currency == "USD"


def test_outstanding_by_customer_and_for_one_customer():
    acme = customer("Acme")
    issued(acme, [line("A", "1", "100")], on=dt.date(2026, 1, 1))   # due 15 Jan: overdue on 1 Feb
    issued(acme, [line("B", "1", "50")], on=dt.date(2026, 1, 25))   # due 8 Feb: not yet
    (balance,) = selectors.outstanding_by_customer(as_of=dt.date(2026, 2, 1))
    assert (balance.customer, balance.invoices, balance.outstanding, balance.overdue, balance.oldest_due_date) == (
        acme, 2, d("150.00"), d("100.00"), dt.date(2026, 1, 15))
    assert selectors.customer_outstanding(customer=acme) == Decimal("150.00")
    assert [i.due_date for i in selectors.open_invoices(customer=acme)] == [dt.date(2026, 1, 15), dt.date(2026, 2, 8)]
