"""The exchange rate frozen on an invoice when it is issued (docs/benchmark.md § Exchange rates).

Reports in the home currency convert an issued invoice at this rate, so a later rate
never changes what an invoice was worth. No rate stored for the currency leaves the rate
empty; the invoice issues all the same (reports then use the dated rate of its issue day).
"""
from __future__ import annotations

from django.db import connection

from invoices.models import Invoice
from msp_billing.fx.rates import rate_on


def invoice_freeze_exchange_rate(invoice: Invoice) -> None:
    """Set (not save) the invoice's home-currency rate for its issue date; the caller saves."""
    from msp_billing.tenants.models import Msp

    home = getattr(getattr(connection, "tenant", None), "currency", None) or \
        Msp.objects.filter(schema_name=connection.schema_name).values_list("currency", flat=True).first()
    found = rate_on(invoice.currency, home, invoice.issue_date) if home else None
    invoice.home_currency = home or ""
    invoice.exchange_rate = found.value if found else None
    invoice.exchange_rate_date = found.date if found else None
