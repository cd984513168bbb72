"""What a draft would come to, without saving it: a batch preview's totals and the memoised figures of
many alike lines.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from djmoney.money import Money

from contracts.models import Customer
from invoices.calculation import PERCENT, Adjustment, LineFigures, TaxSpec, calculate_invoice, calculate_invoice_totals
from invoices.models import Invoice, InvoiceSettings
from invoices.services._common import QUANTITY_PLACES, _codes
from invoices.services.inputs import LineInput
from invoices.services.lines import TaxCodeResolver, _tax_specs
from msp_billing.money import round_unit_price
from msp_billing.tenants.today import tenant_today


class DraftLineFigures:
    """The figures of draft lines with a fixed amount, memoised by (amount, taxable, resolved
    tax codes, untaxed customer, currency) — for previews and batch runs over many lines. Only
    valid without invoice-level adjustments (``adjusted`` says whether the tenant's defaults
    add a discount or surcharge; callers then calculate line by line). ``resolver`` gives the
    codes of a line (``codes_for``), memoised per (contract, customer, category, taxable)."""

    def __init__(self, *, config: InvoiceSettings | None = None, tax_date: dt.date | None = None):
        self.config = config or InvoiceSettings.load()
        self.adjusted = bool(self.config.default_discount_percent or self.config.default_surcharge_percent)
        self.tax_date = tax_date or tenant_today()
        self.resolver = TaxCodeResolver(config=self.config)
        self._specs: dict[tuple[str, ...], tuple[TaxSpec, ...]] = {}
        self._codes: dict[tuple, tuple[bool, tuple[str, ...]]] = {}
        self._memo: dict[tuple, Any] = {}

    def codes_for(self, *, taxable: bool, category_id: int | None, contract_codes: str,
                  customer_codes: str) -> tuple[bool, tuple[str, ...]]:
        """(taxable, codes) of a line: the same resolution a draft's line gets."""
        key = (taxable, category_id, contract_codes, customer_codes)
        found = self._codes.get(key)
        if found is None:
            is_taxable = self.resolver.taxable(taxable=taxable, category_id=category_id)
            found = self._codes[key] = (is_taxable, self.resolver.codes(
                taxable=is_taxable, category_id=category_id, contract_codes=contract_codes, customer_codes=customer_codes))
        return found

    def specs(self, codes: Sequence[str]) -> tuple[TaxSpec, ...]:
        codes = tuple(codes)
        found = self._specs.get(codes)
        if found is None:
            by_code = _tax_specs(Invoice(), codes, tax_date=self.tax_date, frozen=False) if codes else {}
            found = self._specs[codes] = tuple(by_code[code] for code in codes)
        return found

    def line(self, amount: Decimal, *, taxable: bool, tax_exempt: bool, currency: str, codes: Sequence[str] = ()):
        """The ``LineResult`` of one such line charging ``codes`` (``tax_exempt``: an untaxed customer)."""
        codes = tuple(codes)
        key = (amount, taxable, codes, tax_exempt, currency)
        result = self._memo.get(key)
        if result is None:
            figures = LineFigures(quantity=Decimal(1), unit_price=Decimal(0), fixed_amount=amount, taxable=taxable,
                                  taxes=self.specs(codes) if taxable else ())
            result = self._memo[key] = calculate_invoice(lines=[figures], currency=currency, tax_exempt=tax_exempt).lines[0]
        return result


def invoice_preview_totals(*, customer: Customer, lines: Sequence[LineInput], tax_date: dt.date | None = None,
                           counts: Sequence[int] | None = None, config: InvoiceSettings | None = None,
                           specs_cache: dict | None = None):
    """What an invoice of ``lines`` for ``customer`` would come to, computed exactly as a draft
    would be (resolved taxes, tenant default discount and surcharge), without saving anything.

    With ``counts``, ``lines[i]`` stands for ``counts[i]`` alike lines (only the totals and one
    result per distinct line are returned). ``specs_cache`` (a dict kept by the caller)
    saves looking the same tax rates up again when previewing many invoices."""
    config = config or InvoiceSettings.load()
    tax_date = tax_date or tenant_today()
    resolver = TaxCodeResolver(config=config) if any(item.tax_rate_codes is None for item in lines) else None
    codes_per_line = [
        list(resolver.codes(taxable=item.taxable, category_id=item.tax_category_id, customer_codes=customer.tax_codes))
        if item.tax_rate_codes is None else _codes(item.tax_rate_codes)
        for item in lines
    ]
    wanted = frozenset(code for codes in codes_per_line for code in codes)
    cache = specs_cache if specs_cache is not None else {}
    if (wanted, tax_date) not in cache:
        probe = Invoice(customer=customer, currency=customer.currency)
        cache[(wanted, tax_date)] = _tax_specs(probe, wanted, tax_date=tax_date, frozen=False)
    specs = cache[(wanted, tax_date)]

    def plain(value):
        return value.amount if isinstance(value, Money) else Decimal(value)

    figures = [
        LineFigures(
            quantity=Decimal(item.quantity).quantize(QUANTITY_PLACES), unit_price=round_unit_price(plain(item.unit_price)),
            fixed_amount=plain(item.amount) if item.amount is not None else None,
            discount_kind=item.discount.kind, discount_value=item.discount.value, taxable=item.taxable,
            taxes=tuple(specs[code] for code in codes),
        )
        for item, codes in zip(lines, codes_per_line)
    ]
    discount = Adjustment(PERCENT, config.default_discount_percent) if config.default_discount_percent else Adjustment()
    surcharge = Adjustment(PERCENT, config.default_surcharge_percent) if config.default_surcharge_percent else Adjustment()
    if counts is not None:
        return calculate_invoice_totals(lines=figures, counts=counts, currency=customer.currency, discount=discount,
                                        surcharge=surcharge, tax_exempt=customer.untaxed_on(tax_date))
    return calculate_invoice(lines=figures, currency=customer.currency, discount=discount, surcharge=surcharge,
                             tax_exempt=customer.untaxed_on(tax_date))
