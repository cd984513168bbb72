"""msp_billing.money: the one rounding rule, checked by hand and by property."""

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from msp_billing.money import (
    UNIT_PRICE_PLACES,
    allocate_exactly,
    line_amount,
    line_tax,
    minor_unit_exponent,
    round_money,
    round_unit_price,
)

CURRENCIES = ["USD", "EUR", "GBP", "JPY", "BHD"]
currencies = st.sampled_from(CURRENCIES)
amounts = st.decimals(
    min_value=Decimal("-1000000"), max_value=Decimal("1000000"), places=6, allow_nan=False, allow_infinity=False
)
non_negative_amounts = st.decimals(
    min_value=Decimal("0"), max_value=Decimal("1000000"), places=6, allow_nan=False, allow_infinity=False
)


@pytest.mark.parametrize(
    ("code", "places"), [("USD", 2), ("EUR", 2), ("GBP", 2), ("JPY", 0), ("BHD", 3), ("usd", 2), (" jpy ", 0)]
)
def test_minor_unit_exponent_comes_from_py_moneyed(code, places):
    assert minor_unit_exponent(code) == places


def test_unknown_currency_falls_back_to_two_places():
    assert minor_unit_exponent("ZZZ") == 2
    assert round_money(Decimal("1.005"), "ZZZ") == Decimal("1.01")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("2.345"), "USD", Decimal("2.35")),
        (Decimal("2.3449"), "USD", Decimal("2.34")),
        (Decimal("-2.345"), "USD", Decimal("-2.35")),  # half away from zero: credits mirror
        (Decimal("100.5"), "JPY", Decimal("101")),
        (Decimal("1.2345"), "BHD", Decimal("1.235")),
        (Decimal("-0.001"), "USD", Decimal("0.00")),  # no negative zero on an invoice
        (Fraction(430 * 16, 31), "USD", Decimal("221.94")),
        (7, "EUR", Decimal("7.00")),
    ],
)
def test_round_money_half_up_to_minor_unit(amount, currency, expected):
    result = round_money(amount, currency)
    assert result == expected
    assert str(result) == str(expected)  # places too, e.g. "7.00" not "7"


def test_round_unit_price_keeps_four_places():
    assert UNIT_PRICE_PLACES == 4
    assert round_unit_price(Decimal("12.34565")) == Decimal("12.3457")
    assert str(round_unit_price(Decimal("95"))) == "95.0000"


@pytest.mark.parametrize("bad", [1.5, True, "1.50", Decimal("NaN"), Decimal("Infinity")])
def test_floats_and_other_inexact_values_are_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        round_money(bad, "USD")


def test_line_amount_uses_the_printed_unit_price_and_rounds_once():
    # 3 × 33.33335 would be 100.00005; the line prints 33.3334, so 3 × 33.3334 = 100.0002 → 100.00
    assert line_amount(quantity=Decimal(3), unit_price=Decimal("33.33335"), currency="USD") == Decimal("100.00")
    # 1.25 h at 95.5 = 119.375 → 119.38
    assert line_amount(quantity=Decimal("1.25"), unit_price=Decimal("95.5"), currency="USD") == Decimal("119.38")


def test_line_tax_is_on_the_printed_line_amount():
    # 10.005 prints as 10.01; the tax follows the print: 50 % of 10.01 = 5.005 → 5.01
    # (50 % of the unrounded 10.005 would be 5.0025 → 5.00).
    assert line_tax(amount=Decimal("10.005"), percent=Decimal("50"), currency="USD") == Decimal("5.01")
    assert line_tax(amount=Decimal("1999"), percent=Decimal("10"), currency="JPY") == Decimal("200")


def test_allocate_exactly_by_largest_remainder():
    thirds = [Fraction(1, 3)] * 3
    assert allocate_exactly(parts=thirds, currency="USD") == [Decimal("0.34"), Decimal("0.33"), Decimal("0.33")]
    assert allocate_exactly(parts=[Fraction(-1, 3)] * 3, currency="USD") == [
        Decimal("-0.34"),
        Decimal("-0.33"),
        Decimal("-0.33"),
    ]
    # the piece with the largest remainder gets the missing cent, not the last one
    assert allocate_exactly(parts=[Decimal("0.004"), Decimal("0.006")], currency="USD") == [
        Decimal("0.00"),
        Decimal("0.01"),
    ]
    assert allocate_exactly(parts=[], currency="USD") == []


def test_allocate_exactly_refuses_mixed_signs():
    with pytest.raises(ValueError):
        allocate_exactly(parts=[Decimal("1"), Decimal("-1")], currency="USD")


@given(amount=amounts, currency=currencies)
def test_round_money_matches_decimal_quantize_half_up(amount, currency):
    places = minor_unit_exponent(currency)
    expected = amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    assert round_money(amount, currency) == expected
    assert round_money(round_money(amount, currency), currency) == round_money(amount, currency)
    assert abs(round_money(amount, currency) - amount) <= Decimal(1).scaleb(-places) / 2


@given(parts=st.lists(non_negative_amounts, max_size=20), currency=currencies, negate=st.booleans())
def test_allocate_exactly_sums_to_the_rounded_total(parts, currency, negate):
    if negate:
        parts = [-part for part in parts]
    pieces = allocate_exactly(parts=parts, currency=currency)
    unit = Decimal(1).scaleb(-minor_unit_exponent(currency))
    assert len(pieces) == len(parts)
    assert sum(pieces, Decimal(0)) == round_money(sum(parts, Decimal(0)), currency)
    for piece, part in zip(pieces, parts):
        assert abs(piece - part) < unit
        assert round_money(piece, currency) == piece
