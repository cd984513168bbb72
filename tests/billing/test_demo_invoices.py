"""Money on the demo MSP: every invoice a full billing run makes equals the sum of its printed lines."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection

from billing import services
from invoices.models import Invoice
from msp_billing.accounts.models import User


def test_every_demo_invoice_equals_the_sum_of_its_printed_lines(db):
    connection.set_schema("demo")
    cutoff = dt.date(2026, 10, 31)
    admin = User.objects.get(email="billing@demo.example")
    batch = services.batch_run(name="Demo October", cutoff=cutoff, selection=services.selection_everything_due(cutoff=cutoff),
                               consolidated=False, acting_user=admin)
    services.batch_generate(batch_id=batch.pk, acting_user=admin, issue_date=cutoff)
    invoices = list(Invoice.objects.filter(pk__in=services.batch_invoices(batch).values("pk")).prefetch_related("lines__taxes"))
    assert len(invoices) >= 20
    for invoice in invoices:
        lines = list(invoice.lines.all())
        assert invoice.total == sum((line.amount + line.tax_amount for line in lines), Decimal(0)), invoice.number
        assert invoice.tax_total == sum((tax.amount for line in lines for tax in line.taxes.all()), Decimal(0)), invoice.number
        assert invoice.number and invoice.status == Invoice.Status.ISSUED
