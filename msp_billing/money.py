"""The one place where money is rounded.

Every amount that ends up on an invoice passes through this module, so there is
exactly one rounding rule to read, test and explain to a customer (docs/design.md
§ Money and time):

* **Unit prices and rates** keep ``UNIT_PRICE_PLACES`` (4) decimal places, rounded
  half-up (:func:`round_unit_price`).
* **A line amount** (quantity × unit price, a prorated fee, billed hours × rate) is
  computed exactly and rounded half-up to the currency's minor unit **once**
  (:func:`round_money`, :func:`line_amount`). Nothing rounds an intermediate value.
* **Tax** is computed per line on the printed (rounded) line amount, rounded per line,
  then summed — as Xero does (:func:`line_tax`; the sums are ``invoices.calculation``). So
  an invoice always equals the sum of its printed lines; no "rounding difference" line.
* **Pieces that must add up to a known total** (one fee spread over several periods,
  milestone percentages) are rounded together by largest remainder
  (:func:`allocate_exactly`), so the pieces sum exactly to the rounded total.

"Half-up" is Decimal's ``ROUND_HALF_UP``: halves go *away from zero*, so -0.005
becomes -0.01 just as 0.005 becomes 0.01 — a credit note mirrors the invoice it
reverses to the cent.

Floats are refused with ``TypeError``: a float has already lost the cents before we
see it. Arithmetic is done on exact ``Fraction`` values internally (a ``Decimal``
converts to a ``Fraction`` without loss), so a long division such as 430 × 16 ÷ 31 is
never cut off by the Decimal context's precision before it is rounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

import moneyed

UNIT_PRICE_PLACES = 4
"""Decimal places kept for rates and unit prices."""

DEFAULT_MINOR_UNIT_EXPONENT = 2
"""Used when py-moneyed has no usable minor-unit data for a currency code."""

ExactAmount = Decimal | Fraction | int
"""What the rounding functions accept: anything exact. Never ``float``."""


def minor_unit_exponent(currency_code: str) -> int:
    """Decimal places of ``currency_code``'s minor unit: JPY 0, USD/EUR/GBP 2, BHD 3.

    Read from py-moneyed's ``Currency.sub_unit`` (1, 100, 1000, ...), the same data
    django-money uses. An unknown code or a sub-unit that is not a power of ten falls
    back to 2 places: the common case, and rounding must not fail halfway through a
    billing run. Codes are upper-cased, so "usd" works.
    """
    if not isinstance(currency_code, str):
        raise TypeError(f"currency code must be a str, got {type(currency_code).__name__}")
    return _minor_unit_exponent(currency_code.strip().upper())


@lru_cache(maxsize=None)
def _minor_unit_exponent(code: str) -> int:
    try:
        sub_unit = moneyed.get_currency(code).sub_unit
    except moneyed.CurrencyDoesNotExist:
        return DEFAULT_MINOR_UNIT_EXPONENT
    if not isinstance(sub_unit, int) or sub_unit < 1:
        return DEFAULT_MINOR_UNIT_EXPONENT
    exponent = len(str(sub_unit)) - 1
    if 10**exponent != sub_unit:
        return DEFAULT_MINOR_UNIT_EXPONENT
    return exponent


def round_money(amount: ExactAmount, currency: str) -> Decimal:
    """Round ``amount`` half-up (away from zero) to ``currency``'s minor unit.

    The single rounding step for a line amount; see the module docstring.
    """
    return _round_half_up(_exact(amount, "amount"), minor_unit_exponent(currency))


def round_unit_price(amount: ExactAmount) -> Decimal:
    """Round a rate or unit price half-up to ``UNIT_PRICE_PLACES`` (4) decimal places."""
    return _round_half_up(_exact(amount, "unit price"), UNIT_PRICE_PLACES)


def line_amount(*, quantity: ExactAmount, unit_price: ExactAmount, currency: str) -> Decimal:
    """Amount of an invoice line: quantity × unit price, rounded once.

    The unit price is first brought to the 4 places the line prints, so the amount
    always matches what the customer can recompute from the printed line.
    """
    exact = _exact(quantity, "quantity") * Fraction(round_unit_price(unit_price))
    return round_money(exact, currency)


def is_half_unit_tie(*, quantity: ExactAmount, unit_price: ExactAmount, currency: str) -> bool:
    """Whether quantity × unit price lies exactly halfway between two minor units (0.18 × 241.25 = 43.425).

    Such a line is 43.43 here (half-up) but 43.42 in a system that rounds half-even, so an
    accounting export avoids sending it as quantity and price (``integrations.base.quantity_and_price``).
    """
    exact = _exact(quantity, "quantity") * Fraction(round_unit_price(unit_price)) * 10 ** minor_unit_exponent(currency)
    return (exact - (exact.numerator // exact.denominator)) == Fraction(1, 2)


def line_tax(*, amount: ExactAmount, percent: ExactAmount, currency: str) -> Decimal:
    """Tax on one invoice line, rounded on that line (then the invoice sums the lines).

    Computed on the line amount as printed (rounded to the minor unit), so the tax
    column can be checked line by line. A compound tax is the caller's concern: pass
    the line amount plus the taxes it compounds on as ``amount``.
    """
    printed_amount = Fraction(round_money(amount, currency))
    return round_money(printed_amount * _exact(percent, "percent") / 100, currency)


def allocate_exactly(*, parts: Sequence[ExactAmount], currency: str) -> list[Decimal]:
    """Round exact ``parts`` so the rounded pieces sum to ``round_money(sum(parts))``.

    Largest-remainder method: every piece is first rounded toward zero to the minor
    unit; the minor units still missing from the rounded total go, one each, to the
    pieces that lost the most (ties: the earlier piece, so the result is
    deterministic). Each piece is thus within one minor unit of its exact value, and
    no piece is arbitrarily burdened with the whole difference.

    All parts must have the same sign (a mix has no meaningful "largest remainder").
    """
    exact = [_exact(part, "part") for part in parts]
    if not exact:
        return []
    if any(part > 0 for part in exact) and any(part < 0 for part in exact):
        raise ValueError("allocate_exactly needs parts that are all >= 0 or all <= 0")
    sign = -1 if any(part < 0 for part in exact) else 1
    exponent = minor_unit_exponent(currency)
    scale = 10**exponent
    scaled = [abs(part) * scale for part in exact]
    units = [int(value) for value in scaled]  # toward zero: floor, as values are >= 0
    target_units = int(_round_half_up(sum(scaled, Fraction(0)), 0))
    missing = target_units - sum(units)
    by_remainder = sorted(range(len(scaled)), key=lambda i: (-(scaled[i] - units[i]), i))
    for index in by_remainder[:missing]:
        units[index] += 1
    return [_round_half_up(Fraction(sign * unit, scale), exponent) for unit in units]


def require_decimal(value: object, name: str) -> Decimal:
    """Return ``value`` if it is a finite Decimal; otherwise raise.

    For dataclasses holding rates, fees and balances: a float or a str there is a bug
    upstream, better caught where the value enters the calculation layer.
    """
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _exact(value: object, name: str) -> Fraction:
    """``value`` as an exact Fraction; floats, bools and non-finite Decimals refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{name} must be Decimal, Fraction or int, never {type(value).__name__}")
    if isinstance(value, Decimal):
        return Fraction(require_decimal(value, name))
    if isinstance(value, (Fraction, int)):
        return Fraction(value)
    raise TypeError(f"{name} must be Decimal, Fraction or int, got {type(value).__name__}")


def _round_half_up(value: Fraction, places: int) -> Decimal:
    """Exact half-away-from-zero rounding of ``value`` to ``places`` decimal places."""
    scale = 10**places
    magnitude = abs(value) * scale
    units = int(magnitude + Fraction(1, 2))  # floor(|x| + ½): half goes away from zero
    signed_units = -units if value < 0 else units
    return Decimal(f"{signed_units}E-{places}")  # from a string: exact at any size
