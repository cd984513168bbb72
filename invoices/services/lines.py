"""An invoice's lines and their arithmetic: checking the lines a caller gives, resolving their tax codes,
finding the tax rate versions, and storing every line's figures, its taxes and the invoice's totals
(the arithmetic itself is ``invoices.calculation``).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from contracts.models import Contract, ContractPeriod, Customer, Product, RateItem, TaxCategory, TaxRate
from contracts.rules.taxes import line_tax_codes, line_taxable, parse_codes
from invoices.calculation import (
    AMOUNT,
    NO_ADJUSTMENT,
    PERCENT,
    Adjustment,
    CalculationError,
    LineFigures,
    TaxSpec,
    calculate_invoice,
    is_whole_minor_units,
)
from invoices.models import Invoice, InvoiceLine, InvoiceLineTax, InvoiceSettings
from invoices.services._common import MAX_AMOUNT, MAX_DESCRIPTION, QUANTITY_PLACES, _codes, _decimal
from invoices.services.inputs import LineInput
from msp_billing.money import round_money, round_unit_price
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import clean_text as _text
from tickets.models import Charge, TimeAllocation
from msp_billing.templatetags.formatting import day as format_day


def _set_draft_tax_status(invoice: Invoice, customer: Customer, on: dt.date) -> None:
    """A draft shows the customer's exemption and reverse charge as they are on ``on``."""
    invoice.customer_tax_exempt = customer.exemption_in_effect(on)
    invoice.customer_reverse_charge = customer.reverse_charge


def _replace_lines(invoice: Invoice, inputs: Sequence[LineInput], *, config: InvoiceSettings) -> None:
    """Validate ``inputs`` and make them the invoice's lines (amounts follow in ``_recalculate``)."""
    existing = {line.pk: line for line in invoice.lines.all()} if invoice.pk else {}
    built, kept = _built_lines(invoice, inputs, config=config, existing=existing, refs=_existing_sources(inputs))
    removed = [pk for pk in existing if pk not in kept]
    billing_sources = [pk for pk in removed if existing[pk].source_released_at is None and (
        existing[pk].time_allocation_id or existing[pk].charge_id or existing[pk].contract_period_id)]
    if billing_sources:  # the item would stay billed with no line anywhere
        raise ValidationError({"lines": [
            "A line that bills time, a part or a contract period cannot be removed: delete the invoice from its "
            "billing batch to release its items, or keep the line (its amount can be changed)."]})
    if removed:
        InvoiceLine.objects.filter(pk__in=removed).delete()
    # A batch may bring hundreds of lines: one statement for the new ones, one for the kept ones.
    InvoiceLine.objects.bulk_create([line for line in built if line.pk is None])
    kept_lines = [line for line in built if line.pk is not None and line.pk in kept]
    if kept_lines:
        InvoiceLine.objects.bulk_update(kept_lines, [
            "sort_order", "description", "quantity", "unit_price", "fixed_amount", "discount_kind", "discount_value",
            "taxable", "tax_codes",
        ])


def _built_lines(invoice: Invoice, inputs: Sequence[LineInput], *, config: InvoiceSettings, existing: dict[int, InvoiceLine],
                 refs: dict[type | str, Any], resolver: TaxCodeResolver | None = None) -> tuple[list[InvoiceLine], set[int]]:
    """``inputs`` checked and turned into line rows (new, or ``existing`` ones kept), unsaved."""
    errors = _Errors()
    resolver = resolver or TaxCodeResolver(config=config)
    customer = invoice.customer
    currency = invoice.currency
    kinds = set(InvoiceLine.SourceKind.values)
    built: list[InvoiceLine] = []
    kept: set[int] = set()
    for position, item in enumerate(inputs, start=1):
        if not isinstance(item, LineInput):
            raise TypeError("lines must be LineInput instances")
        label = f"Line {position}"
        description = _text(item.description)
        if not description:
            errors.add("lines", f"{label}: enter a description.")
        elif len(description) > MAX_DESCRIPTION:
            errors.add("lines", f"{label}: keep the description under {MAX_DESCRIPTION} characters.")
        price = _decimal(errors, "lines", item.unit_price, currency=currency, minimum=None, label=f"{label}: unit price")
        fixed = None
        if item.amount is not None:
            fixed = _decimal(errors, "lines", item.amount, currency=currency, minimum=None, label=f"{label}: amount")
            if fixed is not None and not is_whole_minor_units(fixed, currency):
                errors.add("lines", f"{label}: the amount has more decimals than {currency} prints.")
        quantity = _decimal(errors, "lines", item.quantity, minimum=None, label=f"{label}: quantity")
        if quantity is not None:
            if fixed is not None:
                quantity = quantity.quantize(QUANTITY_PLACES)  # shown only: the amount is the source's
            elif quantity != quantity.quantize(QUANTITY_PLACES):
                errors.add("lines", f"{label}: enter the quantity with at most 4 decimal places.")
        if price is not None:
            price = round_unit_price(price)
        discount = item.discount if isinstance(item.discount, Adjustment) else None
        if discount is None or discount.kind not in (NO_ADJUSTMENT, PERCENT, AMOUNT):
            errors.add("lines", f"{label}: choose a percent or an amount discount.")
            discount = Adjustment()
        discount_value = _decimal(errors, "lines", discount.value, currency=currency, label=f"{label}: discount")
        if discount_value is not None and discount_value != discount_value.quantize(QUANTITY_PLACES):
            errors.add("lines", f"{label}: enter the discount with at most 4 decimal places.")
        if item.source_kind not in kinds:
            errors.add("lines", f"{label}: unknown source kind “{item.source_kind}”.")
        taxable = bool(item.taxable)
        if item.tax_rate_codes is None:
            category_id = item.tax_category_id
            if category_id is None and item.product_id is not None:
                category_id = refs[TAX_CATEGORY_OF].get((Product, item.product_id))
            if category_id is None and item.rate_item_id is not None:
                category_id = refs[TAX_CATEGORY_OF].get((RateItem, item.rate_item_id))
            contract_codes, site_codes = refs[CONTRACT_TAX_CODES].get(item.contract_id, ("", ""))
            taxable = resolver.taxable(taxable=taxable, category_id=category_id)
            codes = list(resolver.codes(taxable=taxable, category_id=category_id, contract_codes=contract_codes,
                                        customer_codes=site_codes or customer.tax_codes))
        else:
            codes = _codes(item.tax_rate_codes)
        line = existing.get(item.line_id) if item.line_id is not None else None
        if item.line_id is not None:
            if line is None or item.line_id in kept:
                errors.add("lines", f"{label}: that line is not on this invoice (or is listed twice).")
                continue
            kept.add(item.line_id)
            if fixed is None and line.fixed_amount is not None and quantity == line.quantity and price == line.unit_price:
                fixed = line.fixed_amount  # quantity and price untouched: the source's amount stands
        else:
            line = InvoiceLine(invoice=invoice, source_kind=item.source_kind)
            for name, model in (("time_allocation_id", TimeAllocation), ("charge_id", Charge),
                                ("contract_period_id", ContractPeriod), ("contract_id", Contract),
                                ("product_id", Product), ("rate_item_id", RateItem)):
                value = getattr(item, name)
                if value is not None:
                    if value not in refs[model]:
                        errors.add("lines", f"{label}: {model._meta.verbose_name} {value} does not exist.")
                    elif model is TimeAllocation and value in refs[BILLED_TIME]:
                        errors.add("lines", f"{label}: that time is already billed on another invoice.")
                    setattr(line, name, value)
            line.detail = dict(item.detail or {})
        if errors:
            continue
        line.sort_order = position
        line.description = description
        line.quantity = quantity
        line.unit_price = price
        line.fixed_amount = fixed
        line.discount_kind = discount.kind
        line.discount_value = discount_value.quantize(QUANTITY_PLACES) if discount.kind else Decimal("0.0000")
        line.taxable = taxable
        line.tax_codes = codes if taxable else []
        built.append(line)
    errors.raise_if_any()
    return built, kept


def _existing_sources(inputs: Iterable[LineInput]) -> dict[type | str, set[int]]:
    wanted: dict[type, set[int]] = defaultdict(set)
    for item in inputs:
        if not isinstance(item, LineInput) or item.line_id is not None:
            continue
        for name, model in (("time_allocation_id", TimeAllocation), ("charge_id", Charge),
                            ("contract_period_id", ContractPeriod), ("contract_id", Contract),
                            ("product_id", Product), ("rate_item_id", RateItem)):
            value = getattr(item, name)
            if isinstance(value, int) and not isinstance(value, bool):
                wanted[model].add(value)
    found: dict[type | str, Any] = defaultdict(set)
    found[TAX_CATEGORY_OF] = {}
    found[CONTRACT_TAX_CODES] = {}
    for model, ids in wanted.items():
        if model is Contract:
            # The contract's override and its own customer's codes (a site on a consolidated invoice).
            rows = {pk: (codes, site_codes) for pk, codes, site_codes in
                    Contract.objects.filter(pk__in=ids).values_list("pk", "tax_codes", "customer__tax_codes")}
            found[CONTRACT_TAX_CODES] = rows
            found[model] = set(rows)
        elif model in (Product, RateItem):
            rows = dict(model.objects.filter(pk__in=ids).values_list("pk", "tax_category_id"))
            found[TAX_CATEGORY_OF].update({(model, pk): category for pk, category in rows.items()})
            found[model] = set(rows)
        else:
            found[model] = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if wanted.get(TimeAllocation):  # time is billed once: by the one line that still bills it
        found[BILLED_TIME] = set(InvoiceLine.objects.filter(time_allocation_id__in=wanted[TimeAllocation], source_released_at__isnull=True)
                                 .values_list("time_allocation_id", flat=True))
    return found


BILLED_TIME = "billed time"
TAX_CATEGORY_OF = "tax category of"
CONTRACT_TAX_CODES = "contract tax codes"


class TaxCodeResolver:
    """The tax codes of lines (``contracts.rules.taxes``, steps 1–3), with the tax categories
    and the tenant's default codes loaded once (one query) for any number of lines."""

    def __init__(self, *, config: InvoiceSettings | None = None):
        config = config or InvoiceSettings.load()
        self.default_codes = parse_codes(config.tax_codes())
        self.categories = {category.pk: category.terms() for category in TaxCategory.objects.all()}

    def taxable(self, *, taxable: bool, category_id: int | None) -> bool:
        return line_taxable(taxable=taxable, category=self.categories.get(category_id))

    def codes(self, *, taxable: bool, category_id: int | None, contract_codes: str = "",
              customer_codes: str = "") -> tuple[str, ...]:
        return line_tax_codes(taxable=taxable, category=self.categories.get(category_id),
                              contract_codes=parse_codes(contract_codes), customer_codes=parse_codes(customer_codes),
                              default_codes=self.default_codes)


def _tax_specs(invoice: Invoice, codes: Iterable[str], *, tax_date: dt.date, frozen: bool) -> dict[str, TaxSpec]:
    """The tax rate version of each code: frozen on the invoice, else the one in effect on ``tax_date``."""
    codes = _codes(codes)
    specs: dict[str, TaxSpec] = {}
    snapshot = invoice.tax_snapshot if frozen else {}
    for code in codes:
        if code in snapshot:
            row = snapshot[code]
            specs[code] = TaxSpec(rate_id=int(row["id"]), code=code, name=row["name"], percent=Decimal(str(row["percent"])),
                                  compound=bool(row["compound"]))
    missing = [code for code in codes if code not in specs]
    if missing:
        versions: dict[str, TaxRate] = {}
        for rate in TaxRate.objects.filter(code__in=missing, effective_from__lte=tax_date).order_by("code", "effective_from"):
            versions[rate.code] = rate  # the latest version on or before the date wins
        problems = []
        for code in missing:
            rate = versions.get(code)
            if rate is None:
                if TaxRate.objects.filter(code=code).exists():
                    problems.append(f"tax {code} is not in effect yet on {format_day(tax_date)}")
                else:
                    problems.append(f"there is no tax with the code {code}")
                continue
            specs[code] = TaxSpec(rate_id=rate.pk, code=code, name=rate.name, percent=rate.percent, compound=rate.compound)
        if problems:
            raise ValidationError({"lines": [f"Cannot charge tax: {'; '.join(problems)}."]})
    return specs


def _recalculate(invoice: Invoice, *, tax_date: dt.date | None = None, tax_exempt: bool | None = None,
                 frozen: bool | None = None) -> None:
    """Recompute every line and the totals, and save them (the invoice row is locked or new)."""
    is_draft = invoice.status == Invoice.Status.DRAFT
    if frozen is None:
        frozen = not is_draft
    if tax_date is None:
        tax_date = invoice.issue_date or tenant_today()
    if tax_exempt is None:
        if is_draft:
            customer = Customer.objects.get(pk=invoice.customer_id)
            tax_exempt = customer.untaxed_on(tax_date)
            _set_draft_tax_status(invoice, customer, tax_date)
        else:
            tax_exempt = invoice.customer_tax_exempt or invoice.customer_reverse_charge
    lines = list(invoice.lines.order_by("sort_order", "id"))
    specs = _tax_specs(invoice, {code for line in lines for code in line.tax_codes}, tax_date=tax_date, frozen=frozen)
    stored = {line.pk: _line_figures(line) for line in lines}
    new_taxes = _figures(invoice, lines, specs, tax_exempt=tax_exempt)
    InvoiceLineTax.objects.filter(line__invoice=invoice).delete()
    # Only lines whose figures changed are written (issuing a draft usually changes none; a
    # long invoice's lines in one CASE update cost more than all its arithmetic).
    changed = [line for line in lines if line.pk is None or stored[line.pk] != _line_figures(line)]
    if changed:
        InvoiceLine.objects.bulk_update(changed, FIGURE_FIELDS)
    InvoiceLineTax.objects.bulk_create(new_taxes)
    invoice.save()


def _line_figures(line: InvoiceLine) -> tuple:
    return tuple(getattr(line, name) for name in FIGURE_FIELDS)


FIGURE_FIELDS = ["gross_amount", "discount_amount", "amount", "invoice_discount_share", "invoice_surcharge_share",
                 "taxable_amount", "tax_amount"]
TOTAL_FIELDS = ["subtotal", "discount_total", "surcharge_total", "tax_total", "total"]


def _figures(invoice: Invoice, lines: list[InvoiceLine], specs: dict[str, TaxSpec], *, tax_exempt: bool) -> list[InvoiceLineTax]:
    """Every line's figures and the invoice's totals set on the objects (not saved); the line taxes to store."""
    figures = [
        LineFigures(
            quantity=line.quantity, unit_price=line.unit_price, fixed_amount=line.fixed_amount,
            discount_kind=line.discount_kind, discount_value=line.discount_value, taxable=line.taxable,
            taxes=tuple(specs[code] for code in line.tax_codes),
        )
        for line in lines
    ]
    try:
        result = calculate_invoice(
            lines=figures, currency=invoice.currency,
            discount=Adjustment(invoice.discount_kind, invoice.discount_value),
            surcharge=Adjustment(invoice.surcharge_kind, invoice.surcharge_value),
            tax_exempt=tax_exempt,
        )
    except CalculationError as error:
        where = f"Line {error.line_index + 1}: " if error.line_index is not None else ""
        key = "lines" if error.line_index is not None else (error.field or NON_FIELD_ERRORS)
        raise ValidationError({key: [where + error.message]}) from error
    figures_too_large = [abs(x) > MAX_AMOUNT for x in (result.subtotal, result.total, result.tax_total)] + [
        abs(value) > MAX_AMOUNT for line in result.lines for value in (line.gross_amount, line.taxable_amount)]
    if any(figures_too_large):
        raise ValidationError({"lines": ["These amounts are too large for an invoice; check the quantities and prices."]})
    new_taxes = []
    for line, figures_result in zip(lines, result.lines):
        line.gross_amount = figures_result.gross_amount
        line.discount_amount = figures_result.discount_amount
        line.amount = figures_result.amount
        line.invoice_discount_share = figures_result.invoice_discount_share
        line.invoice_surcharge_share = figures_result.invoice_surcharge_share
        line.taxable_amount = figures_result.taxable_amount
        line.tax_amount = figures_result.tax_amount
        for order, tax in enumerate(figures_result.taxes):
            new_taxes.append(InvoiceLineTax(
                line=line, tax_rate_id=tax.spec.rate_id, code=tax.spec.code, name=tax.spec.name,
                percent=tax.spec.percent, compound=tax.spec.compound, base=tax.base, amount=tax.amount, sort_order=order,
            ))
    invoice.subtotal = result.subtotal
    invoice.discount_total = result.discount_total
    invoice.surcharge_total = result.surcharge_total
    invoice.tax_total = result.tax_total
    invoice.total = result.total
    return new_taxes


def _sum_totals(invoice: Invoice) -> None:
    """Totals of a credit note from its (mirrored) lines: the same sums the calculation makes."""
    zero = round_money(0, invoice.currency)
    lines = list(invoice.lines.all())
    invoice.subtotal = sum((line.amount for line in lines), zero)
    invoice.discount_total = sum((line.invoice_discount_share for line in lines), zero)
    invoice.surcharge_total = sum((line.invoice_surcharge_share for line in lines), zero)
    invoice.tax_total = sum((line.tax_amount for line in lines), zero)
    invoice.total = invoice.subtotal - invoice.discount_total + invoice.surcharge_total + invoice.tax_total
