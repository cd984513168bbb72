"""contracts.rules.rates: most specific rate first, effective-dated, after-hours multiplier."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.rules.rates import (
    RateLine,
    RateRule,
    RoleRef,
    WorkTypeRef,
    amount_for_minutes,
    marked_up_amount,
    marked_up_price,
    resolve_rate,
)

ONSITE = WorkTypeRef(id=2, name="Onsite Support")
REMOTE = WorkTypeRef(id=1, name="Remote Support")
OUT_OF_HOURS = WorkTypeRef(
    id=3, name="Out-of-Hours Support", is_after_hours=True, after_hours_multiplier=Decimal("1.5")
)
ENGINEER = RoleRef(id=10, name="Engineer", default_rate=Decimal("110.00"))
TIER1 = RoleRef(id=11, name="Tier 1", default_rate=Decimal("75.00"))

JAN_2025 = dt.date(2025, 1, 1)
JAN_2026 = dt.date(2026, 1, 1)

FULL_CARD = [
    RateLine(rate=Decimal("100"), effective_from=JAN_2025),
    RateLine(rate=Decimal("120"), effective_from=JAN_2025, role_id=ENGINEER.id),
    RateLine(rate=Decimal("130"), effective_from=JAN_2025, work_type_id=ONSITE.id),
    RateLine(rate=Decimal("140"), effective_from=JAN_2025, work_type_id=ONSITE.id, role_id=ENGINEER.id),
    RateLine(rate=Decimal("150"), effective_from=JAN_2026, work_type_id=ONSITE.id, role_id=ENGINEER.id),
]


def _resolve(lines, *, work_type=ONSITE, role=ENGINEER, on=dt.date(2026, 3, 2), after_hours=False):
    return resolve_rate(rate_lines=lines, work_type=work_type, role=role, entry_date=on, after_hours=after_hours)


def test_work_type_and_role_rate_wins_with_its_explanation():
    result = _resolve(FULL_CARD)
    assert result.rate == Decimal("150.0000")
    assert result.rule is RateRule.CONTRACT_WORK_TYPE_AND_ROLE
    assert result.effective_from == JAN_2026
    assert result.explanation == "contract rate for work type Onsite Support and role Engineer, effective 2026-01-01"


def test_effective_dating_applies_the_rate_in_force_on_the_entry_date():
    result = _resolve(FULL_CARD, on=dt.date(2025, 12, 31))
    assert result.rate == Decimal("140")
    assert result.effective_from == JAN_2025


def test_resolution_falls_through_the_tiers_in_order():
    assert _resolve(FULL_CARD, role=TIER1).rule is RateRule.CONTRACT_WORK_TYPE
    assert _resolve(FULL_CARD, role=TIER1).rate == Decimal("130")
    assert _resolve(FULL_CARD, work_type=REMOTE).rule is RateRule.CONTRACT_ROLE
    assert _resolve(FULL_CARD, work_type=REMOTE).explanation == "contract rate for role Engineer, effective 2025-01-01"
    default = _resolve(FULL_CARD, work_type=REMOTE, role=TIER1)
    assert (default.rule, default.rate) == (RateRule.CONTRACT_DEFAULT, Decimal("100"))
    assert default.explanation == "contract default rate, effective 2025-01-01"
    role_default = _resolve([], work_type=REMOTE, role=TIER1)
    assert (role_default.rule, role_default.rate) == (RateRule.ROLE_DEFAULT, Decimal("75.00"))
    assert role_default.effective_from is None
    assert role_default.explanation == "default rate of role Tier 1"


def test_a_line_effective_after_the_entry_is_ignored_and_the_next_tier_applies():
    lines = [
        RateLine(rate=Decimal("90"), effective_from=JAN_2025),
        RateLine(rate=Decimal("200"), effective_from=dt.date(2026, 6, 1), work_type_id=ONSITE.id),
    ]
    assert _resolve(lines).rule is RateRule.CONTRACT_DEFAULT
    assert _resolve(lines, on=dt.date(2026, 6, 1)).rate == Decimal("200")  # on the date itself


def test_after_hours_multiplies_by_the_work_types_multiplier():
    lines = [RateLine(rate=Decimal("100.00"), effective_from=JAN_2025)]
    by_work_type = _resolve(lines, work_type=OUT_OF_HOURS)
    assert by_work_type.rate == Decimal("150.0000")
    assert by_work_type.base_rate == Decimal("100.00")
    assert by_work_type.multiplier == Decimal("1.5")
    assert by_work_type.explanation == (
        "contract default rate, effective 2025-01-01, × 1.5 after-hours multiplier of work type Out-of-Hours Support"
    )
    # the entry's after-hours flag applies the work type's multiplier, once
    onsite_late = WorkTypeRef(id=2, name="Onsite Support", after_hours_multiplier=Decimal("1.25"))
    assert _resolve(lines, work_type=onsite_late, after_hours=True).rate == Decimal("125.0000")
    assert _resolve(lines, work_type=onsite_late, after_hours=False).rate == Decimal("100.0000")
    assert _resolve(lines, work_type=OUT_OF_HOURS, after_hours=True).rate == Decimal("150.0000")


def test_multiplied_rate_is_kept_to_four_places():
    lines = [RateLine(rate=Decimal("33.3333"), effective_from=JAN_2025)]
    odd = WorkTypeRef(id=5, name="Emergency Callout", is_after_hours=True, after_hours_multiplier=Decimal("1.333"))
    assert _resolve(lines, work_type=odd).rate == Decimal("44.4333")  # 44.43328... half-up


def test_conflicting_lines_on_the_same_date_raise():
    lines = [
        RateLine(rate=Decimal("100"), effective_from=JAN_2025, role_id=ENGINEER.id),
        RateLine(rate=Decimal("101"), effective_from=JAN_2025, role_id=ENGINEER.id),
    ]
    with pytest.raises(ValueError, match="conflicting"):
        _resolve(lines, work_type=REMOTE)


def test_rates_must_be_decimals():
    with pytest.raises(TypeError):
        RateLine(rate=100.0, effective_from=JAN_2025)


def test_amount_for_minutes_is_exact_then_rounded_once():
    # 7 minutes at 100/h = 11.666… → 11.67 (not 0.12 h × 100 = 12.00)
    assert amount_for_minutes(minutes=7, hourly_rate=Decimal("100"), currency="USD") == Decimal("11.67")
    assert amount_for_minutes(minutes=90, hourly_rate=Decimal("150.0000"), currency="USD") == Decimal("225.00")
    assert amount_for_minutes(minutes=45, hourly_rate=Decimal("9999"), currency="JPY") == Decimal("7499")


WORK_TYPE_IDS = [1, 2, 3]
ROLE_IDS = [10, 11]
dates = st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2027, 12, 31))
rate_values = st.decimals(min_value=Decimal("1"), max_value=Decimal("500"), places=2)
rate_lines = st.builds(
    RateLine,
    rate=rate_values,
    effective_from=dates,
    work_type_id=st.none() | st.sampled_from(WORK_TYPE_IDS),
    role_id=st.none() | st.sampled_from(ROLE_IDS),
)


def _unique_per_tier_and_date(lines):
    seen = {}
    for line in lines:
        seen.setdefault((line.work_type_id, line.role_id, line.effective_from), line)
    return list(seen.values())


@given(
    lines=st.lists(rate_lines, max_size=15).map(_unique_per_tier_and_date),
    work_type_id=st.sampled_from(WORK_TYPE_IDS),
    role_id=st.sampled_from(ROLE_IDS),
    on=dates,
)
def test_resolution_picks_the_most_specific_rate_in_force(lines, work_type_id, role_id, on):
    work_type = WorkTypeRef(id=work_type_id, name=f"W{work_type_id}")
    role = RoleRef(id=role_id, name=f"R{role_id}", default_rate=Decimal("77"))
    result = resolve_rate(rate_lines=lines, work_type=work_type, role=role, entry_date=on)

    # brute force: the same order written out as keys, most specific first
    tiers = [(work_type_id, role_id), (work_type_id, None), (None, role_id), (None, None)]
    for key in tiers:
        in_force = [ln for ln in lines if (ln.work_type_id, ln.role_id) == key and ln.effective_from <= on]
        if in_force:
            latest = max(in_force, key=lambda ln: ln.effective_from)
            assert result.rate == latest.rate
            assert result.effective_from == latest.effective_from
            break
    else:
        assert result.rule is RateRule.ROLE_DEFAULT
        assert result.rate == Decimal("77")
    assert result.explanation


def test_a_charge_mark_up_is_exact_until_its_line_is_rounded_once():
    assert marked_up_price(unit_price=Decimal("10.00"), markup_percent=Decimal("12.5")) == Decimal("11.25")
    # 33.33 + 10 % = 36.663: three of them are 109.989, billed 109.99 (not 3 × 36.66 = 109.98)
    assert marked_up_amount(quantity=Decimal(3), unit_price=Decimal("33.33"), markup_percent=Decimal("10"),
                            currency="USD") == Decimal("109.99")
    assert marked_up_amount(quantity=Decimal(2), unit_price=Decimal("19.99"), markup_percent=Decimal("0"),
                            currency="EUR") == Decimal("39.98")
