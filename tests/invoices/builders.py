"""Small builders for invoice tests (schema alpha, currency EUR)."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

from contracts.models import Customer, TaxRate
from invoices import services
from invoices.calculation import Adjustment
from invoices.models import Invoice
from msp_billing.accounts.models import User

ISSUE_DAY = dt.date(2026, 3, 10)
TAX_START = dt.date(2020, 1, 1)


def d(value: str) -> Decimal:
    return Decimal(value)


def admin() -> User:
    return User.objects.get(email="billing-admin@alpha.example")


_names = itertools.count(1)


def customer(name: str | None = None, **extra) -> Customer:
    name = name or f"Kunde {next(_names)} GmbH"
    extra.setdefault("currency", "EUR")
    extra.setdefault("address", "Hauptstraße 1\n10115 Berlin")
    extra.setdefault("tax_id", "DE123456789")
    extra.setdefault("payment_terms_days", 14)
    return Customer.objects.create(legal_name=name, **extra)


def tax(code: str, percent: str, *, compound: bool = False, effective_from: dt.date = TAX_START,
        name: str | None = None) -> TaxRate:
    return TaxRate.objects.create(code=code, name=name or code, percent=Decimal(percent), compound=compound,
                                  effective_from=effective_from)


def line(description: str = "Remote support", quantity: str = "1", unit_price: str = "100", *,
         taxes: tuple[str, ...] | None = (), discount: Adjustment = Adjustment(), **extra) -> services.LineInput:
    return services.LineInput(description=description, quantity=Decimal(quantity), unit_price=Decimal(unit_price),
                              tax_rate_codes=taxes, discount=discount, **extra)


def draft(cust: Customer | None = None, lines=None, **extra) -> Invoice:
    return services.invoice_create_draft(customer=cust or customer(), lines=lines if lines is not None else [line()],
                                         acting_user=admin(), **extra)


def issued(cust: Customer | None = None, lines=None, *, on: dt.date = ISSUE_DAY, **extra) -> Invoice:
    invoice = draft(cust, lines, **extra)
    return services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=on)


def percent(value: str) -> Adjustment:
    return Adjustment("percent", Decimal(value))


def amount(value: str) -> Adjustment:
    return Adjustment("amount", Decimal(value))
