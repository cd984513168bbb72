"""contracts.rules.proration: periods by anchor day, proration by day, exact splits."""

import calendar
import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.rules.proration import (
    BillingFrequency,
    Period,
    add_months,
    contract_periods,
    prorate,
    prorate_lines,
    prorate_period,
    split_fee_over_range,
)
from msp_billing.money import minor_unit_exponent, round_money

D = dt.date
MONTHLY, QUARTERLY, YEARLY, ONE_TIME = (
    BillingFrequency.MONTHLY,
    BillingFrequency.QUARTERLY,
    BillingFrequency.YEARLY,
    BillingFrequency.ONE_TIME,
)


def test_design_example_430_for_16_of_octobers_31_days():
    assert prorate(fee=Decimal("430.00"), days_covered=16, days_in_period=31, currency="USD") == Decimal("221.94")


def test_partial_first_period_is_the_grid_period_clipped_to_the_contract():
    periods = contract_periods(start=D(2026, 10, 16), end=D(2027, 1, 15), frequency=MONTHLY, anchor_day=1)
    assert periods[0] == Period(
        start=D(2026, 10, 1), end=D(2026, 10, 31), covered_start=D(2026, 10, 16), covered_end=D(2026, 10, 31)
    )
    assert (periods[0].days_covered, periods[0].days_in_period, periods[0].is_partial) == (16, 31, True)
    assert prorate_period(fee=Decimal("430.00"), period=periods[0], currency="USD") == Decimal("221.94")
    assert [p.start for p in periods] == [D(2026, 10, 1), D(2026, 11, 1), D(2026, 12, 1), D(2027, 1, 1)]
    assert periods[-1].covered_end == D(2027, 1, 15)
    assert not periods[1].is_partial


def test_anchor_day_31_clamps_to_the_last_day_of_short_months_without_drifting():
    periods = contract_periods(start=D(2026, 1, 31), end=D(2026, 6, 29), frequency=MONTHLY, anchor_day=31)
    assert [(p.start, p.end) for p in periods] == [
        (D(2026, 1, 31), D(2026, 2, 27)),
        (D(2026, 2, 28), D(2026, 3, 30)),
        (D(2026, 3, 31), D(2026, 4, 29)),
        (D(2026, 4, 30), D(2026, 5, 30)),
        (D(2026, 5, 31), D(2026, 6, 29)),
    ]
    leap = contract_periods(start=D(2028, 2, 10), end=D(2028, 3, 5), frequency=MONTHLY, anchor_day=31)
    assert leap[0].start == D(2028, 1, 31)
    assert leap[1].start == D(2028, 2, 29)


def test_quarterly_and_yearly_periods_count_from_the_contract_start():
    quarters = contract_periods(start=D(2026, 2, 1), end=D(2026, 12, 31), frequency=QUARTERLY, anchor_day=1)
    assert [(p.start, p.end) for p in quarters] == [
        (D(2026, 2, 1), D(2026, 4, 30)),
        (D(2026, 5, 1), D(2026, 7, 31)),
        (D(2026, 8, 1), D(2026, 10, 31)),
        (D(2026, 11, 1), D(2027, 1, 31)),
    ]
    assert quarters[-1].covered_end == D(2026, 12, 31)
    years = contract_periods(start=D(2026, 10, 16), end=D(2028, 10, 15), frequency=YEARLY, anchor_day=16)
    assert [(p.start, p.end) for p in years] == [
        (D(2026, 10, 16), D(2027, 10, 15)),
        (D(2027, 10, 16), D(2028, 10, 15)),
    ]
    assert not any(p.is_partial for p in years)


def test_start_before_the_anchor_day_belongs_to_the_previous_months_period():
    periods = contract_periods(start=D(2026, 3, 10), end=D(2026, 4, 30), frequency=MONTHLY, anchor_day=20)
    assert (periods[0].start, periods[0].end) == (D(2026, 2, 20), D(2026, 3, 19))
    assert (periods[0].covered_start, periods[0].days_covered, periods[0].days_in_period) == (D(2026, 3, 10), 10, 28)


def test_one_time_is_a_single_unprorated_period():
    (period,) = contract_periods(start=D(2026, 3, 10), end=D(2026, 9, 1), frequency=ONE_TIME, anchor_day=1)
    assert (period.start, period.end, period.is_partial) == (D(2026, 3, 10), D(2026, 9, 1), False)
    assert prorate_period(fee=Decimal("5000.00"), period=period, currency="USD") == Decimal("5000.00")


def test_split_over_range_uses_largest_remainder():
    pieces = split_fee_over_range(
        fee_per_period=Decimal("430.00"),
        start=D(2026, 10, 16),
        end=D(2026, 12, 15),
        frequency=MONTHLY,
        anchor_day=1,
        currency="USD",
    )
    # exact shares 221.935…, 430, 208.064…: total 860.00 exactly
    assert [p.amount for p in pieces] == [Decimal("221.94"), Decimal("430.00"), Decimal("208.06")]
    assert sum(p.amount for p in pieces) == Decimal("860.00")


def test_split_over_whole_periods_of_a_fee_with_sub_cent_precision():
    # 100.005 a month: each month alone rounds to 100.01, three months are 300.015 → 300.02;
    # largest remainder keeps the total right (100.01 + 100.01 + 100.00) instead of 300.03.
    pieces = split_fee_over_range(
        fee_per_period=Decimal("100.005"),
        start=D(2026, 1, 1),
        end=D(2026, 3, 31),
        frequency=MONTHLY,
        anchor_day=1,
        currency="USD",
    )
    assert [p.amount for p in pieces] == [Decimal("100.01"), Decimal("100.01"), Decimal("100.00")]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": D(2026, 2, 1), "end": D(2026, 1, 31), "anchor_day": 1},
        {"start": D(2026, 1, 1), "end": D(2026, 1, 31), "anchor_day": 0},
        {"start": D(2026, 1, 1), "end": D(2026, 1, 31), "anchor_day": 32},
    ],
)
def test_invalid_period_requests_are_refused(kwargs):
    with pytest.raises(ValueError):
        contract_periods(frequency=MONTHLY, **kwargs)


def test_prorate_refuses_impossible_day_counts_and_floats():
    with pytest.raises(ValueError):
        prorate(fee=Decimal("10"), days_covered=32, days_in_period=31, currency="USD")
    with pytest.raises(ValueError):
        prorate(fee=Decimal("10"), days_covered=0, days_in_period=0, currency="USD")
    with pytest.raises(TypeError):
        prorate(fee=430.0, days_covered=16, days_in_period=31, currency="USD")


# --- properties --------------------------------------------------------------------

RECURRING = [MONTHLY, QUARTERLY, YEARLY]
STEP = {MONTHLY: 1, QUARTERLY: 3, YEARLY: 12}
currencies = st.sampled_from(["USD", "EUR", "JPY", "BHD"])
fees = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=3)
anchor_days = st.integers(min_value=1, max_value=31)
frequencies = st.sampled_from(RECURRING)
dates = st.dates(min_value=D(2020, 1, 1), max_value=D(2040, 12, 31))


def _anchor(year: int, month: int, anchor_day: int) -> dt.date:
    """Written independently of the module: the anchor day, clamped to the month."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return D(year, month, min(anchor_day, calendar.monthrange(year, month)[1]))


@given(start=dates, length=st.integers(min_value=0, max_value=800), frequency=frequencies, anchor_day=anchor_days)
def test_periods_tile_the_range_without_gap_or_overlap(start, length, frequency, anchor_day):
    end = start + dt.timedelta(days=length)
    periods = contract_periods(start=start, end=end, frequency=frequency, anchor_day=anchor_day)
    assert periods[0].covered_start == start
    assert periods[-1].covered_end == end
    assert sum(p.days_covered for p in periods) == length + 1
    for before, after in zip(periods, periods[1:]):
        assert after.start == before.end + dt.timedelta(days=1)
        assert after.covered_start == before.covered_end + dt.timedelta(days=1)
    for period in periods:
        assert period.start <= period.covered_start <= period.covered_end <= period.end
        assert period.start.day == min(anchor_day, calendar.monthrange(period.start.year, period.start.month)[1])
    for middle in periods[1:-1]:
        assert not middle.is_partial


@given(
    year=st.integers(min_value=2020, max_value=2040),
    month=st.integers(min_value=1, max_value=12),
    count=st.integers(min_value=1, max_value=30),
    frequency=frequencies,
    anchor_day=anchor_days,
    fee=fees,
    currency=currencies,
)
def test_proration_over_whole_periods_sums_to_the_full_fee(
    year, month, count, frequency, anchor_day, fee, currency
):
    step = STEP[frequency]
    start = _anchor(year, month, anchor_day)
    end = _anchor(year, month + count * step, anchor_day) - dt.timedelta(days=1)
    pieces = split_fee_over_range(
        fee_per_period=fee, start=start, end=end, frequency=frequency, anchor_day=anchor_day, currency=currency
    )
    assert len(pieces) == count
    assert not any(piece.period.is_partial for piece in pieces)
    total = sum((piece.amount for piece in pieces), Decimal(0))
    assert total == round_money(fee * count, currency)
    if round_money(fee, currency) == fee:  # a fee already on the minor unit: every piece is the fee
        assert all(piece.amount == fee for piece in pieces)
        assert total == fee * count


@given(
    start=dates,
    length=st.integers(min_value=0, max_value=1200),
    frequency=frequencies,
    anchor_day=anchor_days,
    fee=fees,
    currency=currencies,
)
def test_any_split_sums_to_the_exact_range_fee_rounded_once(start, length, frequency, anchor_day, fee, currency):
    end = start + dt.timedelta(days=length)
    pieces = split_fee_over_range(
        fee_per_period=fee, start=start, end=end, frequency=frequency, anchor_day=anchor_day, currency=currency
    )
    exact = sum(
        (Fraction(fee) * p.period.days_covered / p.period.days_in_period for p in pieces), Fraction(0)
    )
    assert sum((p.amount for p in pieces), Decimal(0)) == round_money(exact, currency)
    unit = Decimal(1).scaleb(-minor_unit_exponent(currency))
    for piece in pieces:
        # each piece is within one minor unit of the same period prorated on its own
        assert abs(piece.amount - prorate_period(fee=fee, period=piece.period, currency=currency)) <= unit


@given(fee=fees, days_in_period=st.integers(min_value=1, max_value=366), data=st.data(), currency=currencies)
def test_prorate_is_bounded_by_the_fee(fee, days_in_period, data, currency):
    days = data.draw(st.integers(min_value=0, max_value=days_in_period))
    amount = prorate(fee=fee, days_covered=days, days_in_period=days_in_period, currency=currency)
    assert Decimal(0) <= amount <= round_money(fee, currency)
    if days == days_in_period:
        assert amount == round_money(fee, currency)


# --- one period's fee printed on several lines ---------------------------------------


def test_a_fee_split_into_device_classes_is_rounded_once():
    # 430.00 a month as 3 × 43.00 and 7 × 43.00, for 16 of 31 days:
    # 129.00 × 16/31 = 66.5806… and 301.00 × 16/31 = 155.3548…; each rounded alone, 66.58 +
    # 155.35 = 221.93. Rounded once: 430.00 × 16/31 = 221.9354… → 221.94, the missing cent
    # going to the line that lost the most (0.48 of a cent against 0.06).
    amounts = prorate_lines(lines=[(Decimal("129.00"), 16), (Decimal("301.00"), 16)], days_in_period=31, currency="EUR")
    assert amounts == [Decimal("66.58"), Decimal("155.36")]
    assert sum(amounts) == prorate(fee=Decimal("430.00"), days_covered=16, days_in_period=31, currency="EUR")


def test_lines_covering_different_days_share_one_rounding():
    # Servers 4 × 30.00 for 15 days, then 6 × 30.00 for 16 days, workstations 25 × 8.00 all
    # month: 58.0645… + 92.9032… + 200 = 350.9677… → 350.97; each alone would give 350.96.
    amounts = prorate_lines(lines=[(Decimal("120.00"), 15), (Decimal("180.00"), 16), (Decimal("200.00"), 31)],
                            days_in_period=31, currency="EUR")
    assert amounts == [Decimal("58.07"), Decimal("92.90"), Decimal("200.00")]


def test_whole_period_lines_on_the_cent_are_left_as_they_are():
    amounts = prorate_lines(lines=[(Decimal("1000.00"), 30), (Decimal("12.50"), 30), (0, 30)], days_in_period=30, currency="EUR")
    assert amounts == [Decimal("1000.00"), Decimal("12.50"), Decimal("0.00")]
    assert prorate_lines(lines=[], days_in_period=30, currency="EUR") == []


def test_a_credit_line_among_charges_is_split_on_its_own():
    amounts = prorate_lines(lines=[(Decimal("129.00"), 16), (Decimal("-301.00"), 16)], days_in_period=31, currency="EUR")
    assert amounts == [Decimal("66.58"), Decimal("-155.35")]


@pytest.mark.parametrize("lines, error", [
    ([(Decimal("10"), 32)], ValueError),
    ([(Decimal("10"), -1)], ValueError),
    ([(10.0, 3)], TypeError),
    ([("10", 3)], TypeError),
    ([(Decimal("NaN"), 3)], ValueError),
])
def test_prorate_lines_refuses_impossible_input(lines, error):
    with pytest.raises(error):
        prorate_lines(lines=lines, days_in_period=31, currency="EUR")


line_amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("100000"), places=4)


@given(
    days_in_period=st.integers(min_value=28, max_value=366),
    data=st.data(),
    currency=currencies,
)
def test_period_lines_sum_to_the_whole_amount_rounded_once(days_in_period, data, currency):
    days = data.draw(st.integers(min_value=0, max_value=days_in_period))
    wholes = data.draw(st.lists(line_amounts, min_size=1, max_size=12))
    amounts = prorate_lines(lines=[(whole, days) for whole in wholes], days_in_period=days_in_period, currency=currency)
    unit = Decimal(1).scaleb(-minor_unit_exponent(currency))
    # the sum is the whole monthly amount × days ÷ days in the period, rounded once
    total = sum(wholes, Decimal(0))
    assert sum(amounts, Decimal(0)) == prorate(fee=total, days_covered=days, days_in_period=days_in_period, currency=currency)
    for whole, amount in zip(wholes, amounts):
        exact = Fraction(whole) * days / days_in_period
        assert abs(Fraction(amount) - exact) < Fraction(unit)


@given(days_in_period=st.integers(min_value=28, max_value=366), data=st.data(), currency=currencies)
def test_lines_over_different_days_sum_to_their_exact_total_rounded_once(days_in_period, data, currency):
    lines = data.draw(st.lists(
        st.tuples(line_amounts, st.integers(min_value=0, max_value=days_in_period)), min_size=1, max_size=12))
    amounts = prorate_lines(lines=lines, days_in_period=days_in_period, currency=currency)
    exact = [Fraction(whole) * days / days_in_period for whole, days in lines]
    assert sum(amounts, Decimal(0)) == round_money(sum(exact, Fraction(0)), currency)
    unit = Fraction(Decimal(1).scaleb(-minor_unit_exponent(currency)))
    assert all(abs(Fraction(amount) - share) < unit for amount, share in zip(amounts, exact))


@pytest.mark.parametrize(("day", "months", "expected"), [
    (D(2026, 1, 31), 1, D(2026, 2, 28)),   # clamped to the shorter month
    (D(2024, 1, 31), 1, D(2024, 2, 29)),   # a leap year's February
    (D(2024, 2, 29), 12, D(2025, 2, 28)),
    (D(2026, 11, 30), 3, D(2027, 2, 28)),  # across the year end
    (D(2026, 3, 31), -1, D(2026, 2, 28)),  # and back
    (D(2026, 5, 15), 0, D(2026, 5, 15)),
])
def test_adding_months_keeps_the_day_or_takes_the_months_last(day, months, expected):
    assert add_months(day, months) == expected
