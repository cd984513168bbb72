"""contracts.rules.rounding: billed minutes from raw minutes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.rules.rounding import RoundingDirection, RoundingRule, billed_minutes

UP, NEAREST, DOWN = RoundingDirection.UP, RoundingDirection.NEAREST, RoundingDirection.DOWN


@pytest.mark.parametrize(
    ("raw", "increment", "direction", "minimum", "billed"),
    [
        (7, 6, UP, 0, 12),
        (12, 6, UP, 0, 12),  # an exact multiple stays
        (1, 15, UP, 0, 15),
        (7, 15, NEAREST, 0, 0),  # under half an increment rounds away...
        (7, 15, NEAREST, 15, 15),  # ...but never below the minimum
        (8, 15, NEAREST, 0, 15),
        (3, 6, NEAREST, 0, 6),  # an exact half rounds up
        (29, 15, DOWN, 0, 15),
        (10, 15, UP, 30, 30),  # the minimum need not be a multiple of the increment
        (40, 15, UP, 30, 45),
        (47, 1, UP, 0, 47),  # increment 1: billed as logged
        (0, 15, UP, 30, 0),  # a zero-minute entry bills zero, minimum or not
    ],
)
def test_billed_minutes_examples(raw, increment, direction, minimum, billed):
    rule = RoundingRule(increment_minutes=increment, direction=direction, minimum_minutes=minimum)
    assert billed_minutes(raw, rule) == billed


def test_default_rule_bills_time_as_logged():
    assert billed_minutes(37, RoundingRule()) == 37


def test_direction_accepts_the_stored_string():
    assert RoundingRule(increment_minutes=6, direction="nearest").direction is NEAREST


def test_describe():
    rule = RoundingRule(increment_minutes=15, direction=UP, minimum_minutes=30)
    assert rule.describe() == "15-minute increments, up, minimum 30 minutes"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"increment_minutes": 0},
        {"increment_minutes": -6},
        {"minimum_minutes": -1},
        {"increment_minutes": 6.0},
        {"direction": "sideways"},
    ],
)
def test_invalid_rules_are_refused(kwargs):
    with pytest.raises((TypeError, ValueError)):
        RoundingRule(**kwargs)


@pytest.mark.parametrize("raw", [-1, 1.5, True])
def test_raw_minutes_must_be_non_negative_ints(raw):
    with pytest.raises((TypeError, ValueError)):
        billed_minutes(raw, RoundingRule())


rules = st.builds(
    RoundingRule,
    increment_minutes=st.integers(min_value=1, max_value=60),
    direction=st.sampled_from(list(RoundingDirection)),
    minimum_minutes=st.integers(min_value=0, max_value=120),
)
raw_minutes = st.integers(min_value=0, max_value=24 * 60 * 3)


@given(raw=raw_minutes, rule=rules)
def test_rounding_shape(raw, rule):
    billed = billed_minutes(raw, rule)
    if raw == 0:
        assert billed == 0
        return
    assert billed >= rule.minimum_minutes  # minimum respected
    # a multiple of the increment, unless the minimum is what applied
    assert billed % rule.increment_minutes == 0 or billed == rule.minimum_minutes
    # never more than one increment away from the raw time, unless the minimum lifted it
    if billed != rule.minimum_minutes:
        assert abs(billed - raw) < rule.increment_minutes


@given(raw=raw_minutes, rule=rules)
def test_rounding_up_never_loses_raw_time(raw, rule):
    up = RoundingRule(increment_minutes=rule.increment_minutes, direction=UP, minimum_minutes=rule.minimum_minutes)
    assert billed_minutes(raw, up) >= raw


@given(raw=raw_minutes, rule=rules)
def test_directions_are_ordered(raw, rule):
    def with_direction(direction):
        return RoundingRule(
            increment_minutes=rule.increment_minutes, direction=direction, minimum_minutes=rule.minimum_minutes
        )

    down, nearest, up = (billed_minutes(raw, with_direction(d)) for d in (DOWN, NEAREST, UP))
    assert down <= nearest <= up


@given(a=raw_minutes, b=raw_minutes, rule=rules)
def test_more_raw_time_never_bills_less(a, b, rule):
    low, high = sorted((a, b))
    assert billed_minutes(low, rule) <= billed_minutes(high, rule)
