"""The arithmetic of an invoice: pure functions, no database, every rounding in msp_billing.money.

Per line, in this order (docs/invoices.md "How an invoice is calculated"):

1. **Gross amount** = ``line_amount(quantity, unit_price)`` — or the source's own fixed
   amount (a prorated fee, rated time), already rounded by the code that computed it.
2. **Line discount**: a percent of the gross (rounded on the line) or a fixed amount
   (at most the gross). **Amount** = gross − line discount: the printed line amount.
3. **Invoice-level discount** (percent of the subtotal, or an amount) is spread over the
   lines with a positive amount, in proportion to their amounts, with
   ``allocate_exactly`` — *before tax*, so each line's tax is still computed and rounded
   on that line and the shares add up to the discount exactly.
4. **Invoice-level surcharge** (percent of the subtotal after the discount, or an amount)
   is spread the same way over what remains of those lines.
5. **Taxable amount** = amount − discount share + surcharge share.
6. **Taxes**, only on taxable lines of a customer who is not tax-exempt, each rounded on
   the line with ``line_tax``: simple taxes on the taxable amount; compound taxes, after
   all simple ones and in their given order, on the taxable amount plus every tax
   computed before them on that line.

Totals are plain sums of the printed figures: subtotal = Σ amounts, discount = Σ shares,
surcharge = Σ shares, tax = Σ line taxes, total = subtotal − discount + surcharge + tax.
So the invoice always equals the sum of its printed lines.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from msp_billing.money import allocate_exactly, line_amount, line_tax, round_money

PERCENT = "percent"
AMOUNT = "amount"
NO_ADJUSTMENT = ""
HUNDRED = Decimal(100)


class CalculationError(ValueError):
    """Input that cannot make a valid invoice; ``field`` names what to correct."""

    def __init__(self, message: str, *, field: str | None = None, line_index: int | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.line_index = line_index


@dataclass(frozen=True)
class TaxSpec:
    """One tax rate version as charged: the row it came from, and its terms."""

    rate_id: int
    code: str
    name: str
    percent: Decimal
    compound: bool = False


@dataclass(frozen=True)
class LineFigures:
    """What a line needs for its amounts: price inputs, discount, taxes."""

    quantity: Decimal
    unit_price: Decimal
    fixed_amount: Decimal | None = None
    discount_kind: str = NO_ADJUSTMENT
    discount_value: Decimal = Decimal("0")
    taxable: bool = True
    taxes: tuple[TaxSpec, ...] = ()


@dataclass(frozen=True)
class Adjustment:
    """An invoice-level discount or surcharge: a percent or a fixed amount."""

    kind: str = NO_ADJUSTMENT
    value: Decimal = Decimal("0")

    @property
    def is_set(self) -> bool:
        return self.kind in (PERCENT, AMOUNT) and self.value != 0


@dataclass(frozen=True)
class TaxResult:
    spec: TaxSpec
    base: Decimal
    amount: Decimal


@dataclass(frozen=True)
class LineResult:
    gross_amount: Decimal
    discount_amount: Decimal
    amount: Decimal
    invoice_discount_share: Decimal
    invoice_surcharge_share: Decimal
    taxable_amount: Decimal
    taxes: tuple[TaxResult, ...]
    tax_amount: Decimal

    @property
    def total(self) -> Decimal:
        return self.taxable_amount + self.tax_amount


@dataclass(frozen=True)
class InvoiceResult:
    lines: tuple[LineResult, ...]
    subtotal: Decimal
    discount_total: Decimal
    surcharge_total: Decimal
    tax_total: Decimal
    total: Decimal
    tax_by_code: dict[str, Decimal] = field(default_factory=dict)


def calculate_invoice(*, lines: Sequence[LineFigures], currency: str, discount: Adjustment = Adjustment(),
                      surcharge: Adjustment = Adjustment(), tax_exempt: bool = False) -> InvoiceResult:
    """Every printed figure of an invoice (see the module docstring for the order)."""
    zero = round_money(0, currency)
    firsts = [_line_before_invoice_adjustments(line, currency, index) for index, line in enumerate(lines)]
    amounts = [amount for _, _, amount in firsts]
    subtotal = sum(amounts, zero)

    positive = [i for i, amount in enumerate(amounts) if amount > 0]
    discount_total = _invoice_adjustment(discount, base=subtotal, currency=currency, field="discount")
    if discount_total > max(subtotal, zero):
        raise CalculationError("The discount is larger than the invoice's subtotal.", field="discount_value")
    discount_shares = _spread(discount_total, weights={i: amounts[i] for i in positive}, currency=currency)

    after_discount = {i: amounts[i] - discount_shares.get(i, zero) for i in positive}
    surcharge_total = _invoice_adjustment(surcharge, base=subtotal - discount_total, currency=currency, field="surcharge")
    carriers = {i: value for i, value in after_discount.items() if value > 0}
    if surcharge_total and not carriers:
        raise CalculationError("A surcharge needs at least one line with an amount to add it to.", field="surcharge_value")
    surcharge_shares = _spread(surcharge_total, weights=carriers, currency=currency)

    results = []
    tax_by_code: dict[str, Decimal] = {}
    for index, (line, (gross, line_discount, amount)) in enumerate(zip(lines, firsts)):
        d_share = discount_shares.get(index, zero)
        s_share = surcharge_shares.get(index, zero)
        taxable_amount = amount - d_share + s_share
        taxes = () if tax_exempt or not line.taxable else _line_taxes(line.taxes, taxable_amount, currency)
        tax_amount = sum((tax.amount for tax in taxes), zero)
        for tax in taxes:
            tax_by_code[tax.spec.code] = tax_by_code.get(tax.spec.code, zero) + tax.amount
        results.append(LineResult(
            gross_amount=gross, discount_amount=line_discount, amount=amount, invoice_discount_share=d_share,
            invoice_surcharge_share=s_share, taxable_amount=taxable_amount, taxes=taxes, tax_amount=tax_amount,
        ))
    tax_total = sum((line.tax_amount for line in results), zero)
    return InvoiceResult(
        lines=tuple(results),
        subtotal=subtotal,
        discount_total=discount_total,
        surcharge_total=surcharge_total,
        tax_total=tax_total,
        total=subtotal - discount_total + surcharge_total + tax_total,
        tax_by_code=tax_by_code,
    )


def calculate_invoice_totals(*, lines: Sequence[LineFigures], counts: Sequence[int], currency: str,
                             discount: Adjustment = Adjustment(), surcharge: Adjustment = Adjustment(),
                             tax_exempt: bool = False) -> InvoiceResult:
    """The totals of an invoice whose lines repeat: ``counts[i]`` lines alike ``lines[i]``.

    Without invoice-level adjustments every line's figures depend on the line alone, so each
    distinct line is computed once and multiplied — the same figures ``calculate_invoice``
    gives for the expanded list (a batch preview over a million time entries has a few
    thousand distinct amounts). With a discount or surcharge the shares depend on every
    line, so the lines are expanded and calculated one by one. ``lines`` of the result
    holds one entry per distinct line.
    """
    if discount.is_set or surcharge.is_set:
        expanded = [line for line, count in zip(lines, counts) for _ in range(count)]
        result = calculate_invoice(lines=expanded, currency=currency, discount=discount, surcharge=surcharge, tax_exempt=tax_exempt)
        return InvoiceResult(lines=(), subtotal=result.subtotal, discount_total=result.discount_total,
                             surcharge_total=result.surcharge_total, tax_total=result.tax_total, total=result.total,
                             tax_by_code=result.tax_by_code)
    single = calculate_invoice(lines=lines, currency=currency, tax_exempt=tax_exempt)
    zero = round_money(0, currency)
    subtotal = sum((line.amount * count for line, count in zip(single.lines, counts)), zero)
    tax_total = sum((line.tax_amount * count for line, count in zip(single.lines, counts)), zero)
    tax_by_code: dict[str, Decimal] = {}
    for line, count in zip(single.lines, counts):
        for tax in line.taxes:
            tax_by_code[tax.spec.code] = tax_by_code.get(tax.spec.code, zero) + tax.amount * count
    return InvoiceResult(lines=single.lines, subtotal=subtotal, discount_total=zero, surcharge_total=zero,
                         tax_total=tax_total, total=subtotal + tax_total, tax_by_code=tax_by_code)


def line_taxes(*, specs: Sequence[TaxSpec], taxable_amount: Decimal, currency: str) -> tuple[TaxResult, ...]:
    """The taxes of one line (simple first, then compound in order)."""
    return _line_taxes(specs, taxable_amount, currency)


def is_whole_minor_units(value: Decimal, currency: str) -> bool:
    """True when ``value`` needs no rounding to be printed in ``currency``."""
    return round_money(value, currency) == value


# --- steps ---------------------------------------------------------------------------------


def _line_before_invoice_adjustments(line: LineFigures, currency: str, index: int) -> tuple[Decimal, Decimal, Decimal]:
    if line.fixed_amount is not None:
        if not is_whole_minor_units(line.fixed_amount, currency):
            raise CalculationError(f"The amount {line.fixed_amount} has more decimals than {currency} prints.",
                                   field="amount", line_index=index)
        gross = round_money(line.fixed_amount, currency)
    else:
        gross = line_amount(quantity=line.quantity, unit_price=line.unit_price, currency=currency)
    zero = round_money(0, currency)
    value = line.discount_value
    if line.discount_kind == PERCENT:
        if not Decimal(0) <= value <= HUNDRED:
            raise CalculationError("Enter a discount from 0 to 100 %.", field="discount_value", line_index=index)
        discount = round_money(Fraction(gross) * Fraction(value) / 100, currency)
    elif line.discount_kind == AMOUNT:
        if value < 0:
            raise CalculationError("Enter a discount of zero or more.", field="discount_value", line_index=index)
        if not is_whole_minor_units(value, currency):
            raise CalculationError(f"Enter the discount in whole {currency} minor units (such as cents).",
                                   field="discount_value", line_index=index)
        if value > abs(gross):
            raise CalculationError("The discount is larger than the line amount.", field="discount_value", line_index=index)
        discount = round_money(value if gross >= 0 else -value, currency)
    elif line.discount_kind == NO_ADJUSTMENT:
        discount = zero
    else:
        raise CalculationError("Choose a percent or an amount discount.", field="discount_kind", line_index=index)
    return gross, discount, gross - discount


def _invoice_adjustment(adjustment: Adjustment, *, base: Decimal, currency: str, field: str) -> Decimal:
    zero = round_money(0, currency)
    if adjustment.kind == NO_ADJUSTMENT:
        return zero
    value = adjustment.value
    if value < 0:
        raise CalculationError(f"Enter a {field} of zero or more.", field=f"{field}_value")
    if adjustment.kind == PERCENT:
        if value > HUNDRED:
            raise CalculationError(f"Enter a {field} from 0 to 100 %.", field=f"{field}_value")
        return round_money(Fraction(base) * Fraction(value) / 100, currency) if base > 0 else zero
    if adjustment.kind == AMOUNT:
        if not is_whole_minor_units(value, currency):
            raise CalculationError(f"Enter the {field} in whole {currency} minor units (such as cents).",
                                   field=f"{field}_value")
        return round_money(value, currency)
    raise CalculationError(f"Choose a percent or an amount {field}.", field=f"{field}_kind")


def _spread(total: Decimal, *, weights: dict[int, Decimal], currency: str) -> dict[int, Decimal]:
    """``total`` over the weighted lines, in proportion, pieces summing to ``total`` exactly."""
    if not total or not weights:
        return {}
    whole = sum(weights.values(), Decimal(0))
    indexes = sorted(weights)
    parts = [Fraction(weights[i]) * Fraction(total) / Fraction(whole) for i in indexes]
    return dict(zip(indexes, allocate_exactly(parts=parts, currency=currency)))


def _line_taxes(specs: Sequence[TaxSpec], taxable_amount: Decimal, currency: str) -> tuple[TaxResult, ...]:
    results: list[TaxResult] = []
    for spec in [s for s in specs if not s.compound]:
        results.append(TaxResult(spec=spec, base=taxable_amount,
                                 amount=line_tax(amount=taxable_amount, percent=spec.percent, currency=currency)))
    for spec in [s for s in specs if s.compound]:
        base = taxable_amount + sum((r.amount for r in results), Decimal(0))
        base = round_money(base, currency)  # already whole minor units; keeps the exponent uniform
        results.append(TaxResult(spec=spec, base=base, amount=line_tax(amount=base, percent=spec.percent, currency=currency)))
    return tuple(results)
