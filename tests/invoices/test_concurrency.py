"""Numbers stay gapless and unique, and payments never overpay, under real parallel connections.

The ``db`` fixture wraps a test in a transaction no other connection can see, so these
tests commit their own data (inside schema alpha) and remove it afterwards. Each thread
has its own database connection, activates the schema itself, and closes its connection
at the end.
"""
from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django_tenants.utils import schema_context

from contracts.models import Customer
from invoices import services
from invoices.models import AuditEvent, Invoice, InvoiceSettings, NumberSequence, Payment

YEAR = 2091  # a year no other test numbers invoices in
ISSUE_DAY = dt.date(YEAR, 6, 1)
THREADS = 20


@pytest.fixture
def committed(django_db_setup, django_db_blocker):
    """Committed rows in schema alpha: a customer, ``THREADS`` drafts; everything removed afterwards."""
    created: dict[str, list] = {"invoices": [], "payments": []}
    with django_db_blocker.unblock():
        with schema_context("alpha"):
            row = InvoiceSettings.load()
            saved = {name: getattr(row, name) for name in ("number_prefix", "number_padding", "number_yearly_reset")}
            InvoiceSettings.objects.filter(pk=row.pk).update(number_prefix="INV", number_padding=5, number_yearly_reset=True)
            customer = Customer.objects.create(legal_name="Parallel Universe GmbH", currency="EUR")
            for index in range(THREADS):
                invoice = services.invoice_create_draft(
                    customer=customer, acting_user=None,
                    lines=[services.LineInput(description=f"Line {index}", quantity=Decimal(1), unit_price=Decimal("100"),
                                              tax_rate_codes=())],
                )
                created["invoices"].append(invoice.pk)
        try:
            yield created
        finally:
            with schema_context("alpha"):
                ids = created["invoices"]
                AuditEvent.objects.filter(object_type="invoices.invoice", object_id__in=[str(i) for i in ids]).delete()
                Payment.objects.filter(invoice_id__in=ids).delete()
                Invoice.objects.filter(pk__in=ids).delete()
                NumberSequence.objects.filter(year=YEAR).delete()
                customer.delete()
                InvoiceSettings.objects.filter(pk=row.pk).update(**saved)
            connections.close_all()


def _in_parallel(function, arguments):
    """Run ``function(argument)`` in one thread each, all released at the same moment."""
    barrier = threading.Barrier(len(arguments))

    def run(argument):
        try:
            barrier.wait(timeout=30)
            with schema_context("alpha"):
                return function(argument)
        finally:
            connections.close_all()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=len(arguments)) as pool:
        return list(pool.map(run, arguments))


def test_twenty_parallel_issues_take_numbers_one_to_twenty(committed, django_db_blocker):
    with django_db_blocker.unblock():
        numbers = _in_parallel(
            lambda invoice_id: services.invoice_issue(invoice_id=invoice_id, acting_user=None, issue_date=ISSUE_DAY).number,
            committed["invoices"],
        )
        assert sorted(numbers) == [f"INV-{YEAR}-{n:05d}" for n in range(1, THREADS + 1)]  # no gap, no duplicate
        with schema_context("alpha"):
            rows = Invoice.objects.filter(pk__in=committed["invoices"])
            assert sorted(rows.values_list("number_sequence", flat=True)) == list(range(1, THREADS + 1))
            assert set(rows.values_list("status", flat=True)) == {"issued"}
            assert NumberSequence.objects.get(series="invoice", year=YEAR).next_number == THREADS + 1


def test_parallel_payments_never_overpay(committed, django_db_blocker):
    invoice_id = committed["invoices"][0]
    with django_db_blocker.unblock():
        with schema_context("alpha"):
            services.invoice_issue(invoice_id=invoice_id, acting_user=None, issue_date=ISSUE_DAY)

        def pay(_):
            try:
                services.payment_record(invoice_id=invoice_id, amount=Decimal("30"), date=dt.date(2026, 1, 1),
                                        acting_user=None)
            except ValidationError:
                return "refused"
            return "paid"

        outcomes = _in_parallel(pay, list(range(10)))
        assert outcomes.count("paid") == 3  # 3 × 30 of 100; a fourth would overpay
        with schema_context("alpha"):
            invoice = Invoice.objects.get(pk=invoice_id)
            assert (invoice.amount_paid, invoice.status) == (Decimal("90.00"), "partially_paid")
            assert sum(Payment.objects.filter(invoice_id=invoice_id).values_list("amount", flat=True)) == Decimal("90.00")
