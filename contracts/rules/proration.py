"""Contract periods and proration by day.

docs/design.md § Contracts: proration is by day within the period — fee × days covered
÷ days in that period (a monthly fee of 430.00 for 16 of October's 31 days is 221.94).

Choices:

* **Dates are calendar dates in the tenant's time zone**, converted by the caller;
  every range here is inclusive at both ends (1 Oct – 31 Oct is 31 days), as an admin
  reads a period on an invoice.
* **Periods follow the billing anchor day.** Each period starts on the anchor day of
  a month (monthly: every month; quarterly: every third month; yearly: every twelfth,
  counted from the period holding the contract start) and ends the day before the
  next one starts. An anchor day the month lacks clamps to the month's last day
  (anchor 31: 31 Jan, 28/29 Feb, 31 Mar, 30 Apr, ...), and each start is computed
  from the anchor, never from the previous (clamped) start, so February does not drag
  later periods to the 28th.
* **A partial first or last period is the grid period clipped to the contract**: a
  contract from 16 Oct with anchor day 1 has a first period 1–31 Oct covering 16–31
  Oct, so its fee is prorated 16/31 on its own invoice.
* **One-time** contracts have a single period, the whole contract, never prorated.
* **A fee spread over several periods** (:func:`split_fee_over_range`) is rounded as
  one amount and split by largest remainder (:func:`msp_billing.money.allocate_exactly`),
  not last-piece-takes-remainder: the pieces sum exactly to the rounded total, each
  piece is within one minor unit of its exact share, and no single (last) period
  carries the whole rounding difference. Over whole periods each piece is exactly
  the fee, so the pieces sum to the fee × the number of periods.
* **A fee printed on several lines of one period** (:func:`prorate_lines`: the contract
  fee, its recurring service lines, each device class and each stretch of days with one
  device count) is prorated as one amount and rounded once — the sum of every line's
  whole-period amount × its days ÷ the days in the period — then split into the lines by
  the same largest remainder. So a monthly 430.00 for 16 of 31 days bills 221.94 whether
  it is printed on one line or split into device classes of 129.00 and 301.00 (rounded
  each on its own, 66.58 + 155.35 = 221.93 would lose a cent). Each line stays within one
  minor unit of its own exact share.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from msp_billing.money import (
    ExactAmount,
    allocate_exactly,
    require_decimal,
    round_money,
)

_ONE_DAY = dt.timedelta(days=1)


class BillingFrequency(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"
    ONE_TIME = "one_time"


_MONTHS_PER_PERIOD = {
    BillingFrequency.MONTHLY: 1,
    BillingFrequency.QUARTERLY: 3,
    BillingFrequency.YEARLY: 12,
}


@dataclass(frozen=True)
class Period:
    """A billing period and the part of it the contract covers (both inclusive)."""

    start: dt.date
    end: dt.date
    covered_start: dt.date
    covered_end: dt.date

    @property
    def days_in_period(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def days_covered(self) -> int:
        return (self.covered_end - self.covered_start).days + 1

    @property
    def is_partial(self) -> bool:
        return self.days_covered < self.days_in_period


@dataclass(frozen=True)
class ProratedPiece:
    """One period's share of a fee."""

    period: Period
    amount: Decimal


def prorate(*, fee: Decimal, days_covered: int, days_in_period: int, currency: str) -> Decimal:
    """fee × days covered ÷ days in the period, rounded once by the money rule."""
    require_decimal(fee, "fee")
    _require_days(days_in_period, "days_in_period")
    _require_days(days_covered, "days_covered", allow_zero=True)
    if days_covered > days_in_period:
        raise ValueError("days_covered cannot exceed days_in_period")
    return round_money(Fraction(fee) * days_covered / days_in_period, currency)


def prorate_period(*, fee: Decimal, period: Period, currency: str) -> Decimal:
    """The fee for ``period``: the full fee for a whole period, prorated by day otherwise."""
    return prorate(
        fee=fee,
        days_covered=period.days_covered,
        days_in_period=period.days_in_period,
        currency=currency,
    )


def prorate_lines(
    *, lines: Sequence[tuple[ExactAmount, int]], days_in_period: int, currency: str
) -> list[Decimal]:
    """Amounts of the lines one period's fee is printed on, rounded once together.

    ``lines`` holds, per printed line, its whole-period amount (quantity × unit price,
    exact) and the days of the period it covers. The amounts returned, in the same
    order, sum exactly to the period's total (Σ amount × days ÷ days in the period)
    rounded once, each within one minor unit of its exact share (largest remainder, as
    :func:`split_fee_over_range`). Lines of opposite signs (a credit line among charges)
    have no common remainder to share, so charges and credits are each split this way
    on their own.
    """
    _require_days(days_in_period, "days_in_period")
    shares = []
    for amount, days in lines:
        _require_days(days, "days", allow_zero=True)
        if days > days_in_period:
            raise ValueError("a line cannot cover more days than the period has")
        if isinstance(amount, Decimal):
            require_decimal(amount, "amount")
        elif isinstance(amount, (bool, float)) or not isinstance(amount, (Fraction, int)):
            raise TypeError(f"amount must be Decimal, Fraction or int, got {type(amount).__name__}")
        shares.append(Fraction(amount) * days / days_in_period)
    if all(share >= 0 for share in shares) or all(share <= 0 for share in shares):
        return allocate_exactly(parts=shares, currency=currency)
    amounts: list[Decimal] = [Decimal(0)] * len(shares)
    for keep in (lambda share: share >= 0, lambda share: share < 0):
        indexes = [i for i, share in enumerate(shares) if keep(share)]
        for i, amount in zip(indexes, allocate_exactly(parts=[shares[i] for i in indexes], currency=currency)):
            amounts[i] = amount
    return amounts


def contract_periods(
    *, start: dt.date, end: dt.date, frequency: BillingFrequency, anchor_day: int
) -> list[Period]:
    """The billing periods covering ``start``..``end`` (inclusive), in order.

    Consecutive periods touch without gap or overlap; the first and last may be
    partial (see the module docstring for the anchor-day rules).
    """
    if end < start:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    if isinstance(anchor_day, bool) or not isinstance(anchor_day, int) or not 1 <= anchor_day <= 31:
        raise ValueError(f"anchor_day must be an int from 1 to 31, got {anchor_day!r}")
    frequency = BillingFrequency(frequency)
    if frequency is BillingFrequency.ONE_TIME:
        return [Period(start=start, end=end, covered_start=start, covered_end=end)]

    step = _MONTHS_PER_PERIOD[frequency]
    base = _month_index(start)
    if _anchor_date(base, anchor_day) > start:
        base -= 1  # start lies before this month's anchor: its period began last month
    periods: list[Period] = []
    index = base
    period_start = _anchor_date(index, anchor_day)
    while period_start <= end:
        next_start = _anchor_date(index + step, anchor_day)
        period_end = next_start - _ONE_DAY
        periods.append(
            Period(
                start=period_start,
                end=period_end,
                covered_start=max(period_start, start),
                covered_end=min(period_end, end),
            )
        )
        index += step
        period_start = next_start
    return periods


def split_fee_over_range(
    *,
    fee_per_period: Decimal,
    start: dt.date,
    end: dt.date,
    frequency: BillingFrequency,
    anchor_day: int,
    currency: str,
) -> list[ProratedPiece]:
    """Spread a per-period fee over ``start``..``end``, one prorated piece per period.

    The pieces sum exactly to the whole range's fee rounded once (largest remainder;
    see the module docstring). Used where one amount covers several periods, e.g. a
    prorated adjustment or an in-advance charge spanning periods.
    """
    require_decimal(fee_per_period, "fee_per_period")
    periods = contract_periods(start=start, end=end, frequency=frequency, anchor_day=anchor_day)
    shares = [
        Fraction(fee_per_period) * period.days_covered / period.days_in_period for period in periods
    ]
    amounts = allocate_exactly(parts=shares, currency=currency)
    return [ProratedPiece(period=period, amount=amount) for period, amount in zip(periods, amounts)]


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months later (earlier when negative), clamped to the month's
    last day (31 Jan + 1 → 28 Feb): the one month arithmetic of contract terms, block
    expiry and billing periods."""
    return _anchor_date(_month_index(day) + months, day.day)


def _month_index(day: dt.date) -> int:
    """Months since year 0, so month arithmetic is integer arithmetic."""
    return day.year * 12 + day.month - 1


def _anchor_date(month_index: int, anchor_day: int) -> dt.date:
    """The anchor day in the given month, clamped to the month's last day."""
    year, month_zero = divmod(month_index, 12)
    last_day = calendar.monthrange(year, month_zero + 1)[1]
    return dt.date(year, month_zero + 1, min(anchor_day, last_day))


def _require_days(value: object, name: str, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int number of days")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '>= 1'}, got {value}")
