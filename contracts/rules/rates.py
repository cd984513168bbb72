"""Rate resolution for a time entry: most specific first, effective-dated.

docs/design.md § Rates. The order, most specific first:

1. the contract's rate for the entry's (work type, role)
2. the contract's rate for the work type
3. the contract's rate for the role
4. the contract's default rate (a rate line with neither work type nor role)
5. the role's default rate

Within each of the first four tiers only rate lines *effective on or before* the
entry's date count, and the latest effective date wins; a line dated after the entry
is ignored (the entry falls through to the next tier), so a rate change never
re-prices earlier work. Two lines in the same tier with the same effective date are
a data error (the model should make them unique) and raise ``ValueError`` rather
than pick one silently.

After-hours work (the entry's after-hours flag, or a work type that is itself an
after-hours work type such as Out-of-Hours Support) multiplies the resolved rate by
the work type's multiplier, once; the result is rounded to 4 places as every rate is.

The result keeps the rule that applied and a human-readable explanation, because
each routed entry stores why it was priced as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from msp_billing.money import line_amount, require_decimal, round_money, round_unit_price


class RateRule(StrEnum):
    """Which tier of the resolution order supplied the rate."""

    CONTRACT_WORK_TYPE_AND_ROLE = "contract_work_type_and_role"
    CONTRACT_WORK_TYPE = "contract_work_type"
    CONTRACT_ROLE = "contract_role"
    CONTRACT_DEFAULT = "contract_default"
    ROLE_DEFAULT = "role_default"


@dataclass(frozen=True)
class WorkTypeRef:
    """A work type as rating needs it: identity, name for explanations, after-hours data."""

    id: int
    name: str
    is_after_hours: bool = False
    after_hours_multiplier: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        require_decimal(self.after_hours_multiplier, "after_hours_multiplier")
        if self.after_hours_multiplier < 0:
            raise ValueError("after_hours_multiplier must not be negative")


@dataclass(frozen=True)
class RoleRef:
    """A technician role with its default (last-resort) hourly rate."""

    id: int
    name: str
    default_rate: Decimal

    def __post_init__(self) -> None:
        require_decimal(self.default_rate, "default_rate")


@dataclass(frozen=True)
class RateLine:
    """One of a contract's rate lines. No work type and no role: the contract default."""

    rate: Decimal
    effective_from: dt.date
    work_type_id: int | None = None
    role_id: int | None = None

    def __post_init__(self) -> None:
        require_decimal(self.rate, "rate")

    @property
    def rule(self) -> RateRule:
        if self.work_type_id is not None and self.role_id is not None:
            return RateRule.CONTRACT_WORK_TYPE_AND_ROLE
        if self.work_type_id is not None:
            return RateRule.CONTRACT_WORK_TYPE
        if self.role_id is not None:
            return RateRule.CONTRACT_ROLE
        return RateRule.CONTRACT_DEFAULT


@dataclass(frozen=True)
class RateResolution:
    """The hourly rate for an entry and which rule produced it."""

    rate: Decimal
    """Hourly rate to bill, 4 places, after any after-hours multiplier."""
    base_rate: Decimal
    """The rate as found, before the after-hours multiplier."""
    rule: RateRule
    effective_from: dt.date | None
    """The winning rate line's effective date; None for a role's default rate."""
    multiplier: Decimal
    """After-hours multiplier applied (1 when none)."""
    explanation: str


_CONTRACT_TIERS = (
    RateRule.CONTRACT_WORK_TYPE_AND_ROLE,
    RateRule.CONTRACT_WORK_TYPE,
    RateRule.CONTRACT_ROLE,
    RateRule.CONTRACT_DEFAULT,
)


def resolve_rate(
    *,
    rate_lines: Iterable[RateLine],
    work_type: WorkTypeRef,
    role: RoleRef,
    entry_date: dt.date,
    after_hours: bool = False,
) -> RateResolution:
    """Resolve the hourly rate for an entry on ``entry_date`` (see module docstring).

    ``rate_lines`` are the lines of the contract that took the entry; pass none for
    an entry billed without contract rates (the role's default rate then applies).
    """
    matching = [line for line in rate_lines if _line_matches(line, work_type=work_type, role=role)]
    for tier in _CONTRACT_TIERS:
        line = _latest_effective(
            [line for line in matching if line.rule is tier], entry_date=entry_date
        )
        if line is not None:
            base_rate = line.rate
            rule = tier
            effective_from: dt.date | None = line.effective_from
            tier_text = _describe_tier(tier, work_type=work_type, role=role)
            found = f"{tier_text}, effective {line.effective_from.isoformat()}"
            break
    else:
        base_rate = role.default_rate
        rule = RateRule.ROLE_DEFAULT
        effective_from = None
        found = f"default rate of role {role.name}"

    applies_multiplier = after_hours or work_type.is_after_hours
    multiplier = work_type.after_hours_multiplier if applies_multiplier else Decimal(1)
    if multiplier != 1:
        found += f", × {multiplier.normalize():f} after-hours multiplier of work type {work_type.name}"
    return RateResolution(
        rate=round_unit_price(Fraction(base_rate) * Fraction(multiplier)),
        base_rate=base_rate,
        rule=rule,
        effective_from=effective_from,
        multiplier=multiplier,
        explanation=found,
    )


def amount_for_minutes(*, minutes: int, hourly_rate: Decimal, currency: str) -> Decimal:
    """Line amount for ``minutes`` billed at ``hourly_rate``: minutes ÷ 60 × rate, rounded once.

    Computed exactly (7 minutes is 7/60 of an hour, not 0.1167) and rounded by the
    single money rule, so splitting hours into decimals never drifts a cent.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise TypeError("minutes must be an int")
    rate = round_unit_price(require_decimal(hourly_rate, "hourly_rate"))
    return round_money(Fraction(minutes, 60) * Fraction(rate), currency)


def marked_up_price(*, unit_price: Decimal, markup_percent: Decimal) -> Fraction:
    """A charge's unit price with its mark-up, exact: the line that bills it rounds once
    (``msp_billing.money.line_amount``), so 10.00 with 12.5 % is 11.25 and 33.33 with 10 % is
    36.663 until the line amount is taken."""
    return Fraction(unit_price) * (1 + Fraction(markup_percent) / 100)


def marked_up_amount(*, quantity: Decimal, unit_price: Decimal, markup_percent: Decimal, currency: str) -> Decimal:
    """A charge's line amount: quantity × its marked-up unit price, rounded once."""
    return line_amount(quantity=quantity, unit_price=marked_up_price(unit_price=unit_price, markup_percent=markup_percent),
                       currency=currency)


def _line_matches(line: RateLine, *, work_type: WorkTypeRef, role: RoleRef) -> bool:
    """A line is a candidate if every dimension it names matches the entry."""
    if line.work_type_id is not None and line.work_type_id != work_type.id:
        return False
    if line.role_id is not None and line.role_id != role.id:
        return False
    return True


def _latest_effective(lines: list[RateLine], *, entry_date: dt.date) -> RateLine | None:
    """The line effective on ``entry_date`` with the latest effective date, if any."""
    effective = [line for line in lines if line.effective_from <= entry_date]
    if not effective:
        return None
    latest_date = max(line.effective_from for line in effective)
    latest = [line for line in effective if line.effective_from == latest_date]
    if len({line.rate for line in latest}) > 1:
        raise ValueError(
            f"conflicting rate lines of the same kind effective {latest_date.isoformat()}: "
            + ", ".join(str(line.rate) for line in latest)
        )
    return latest[0]


def _describe_tier(tier: RateRule, *, work_type: WorkTypeRef, role: RoleRef) -> str:
    if tier is RateRule.CONTRACT_WORK_TYPE_AND_ROLE:
        return f"contract rate for work type {work_type.name} and role {role.name}"
    if tier is RateRule.CONTRACT_WORK_TYPE:
        return f"contract rate for work type {work_type.name}"
    if tier is RateRule.CONTRACT_ROLE:
        return f"contract rate for role {role.name}"
    return "contract default rate"
