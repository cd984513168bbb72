"""Billed minutes from raw minutes, by a contract's rounding rule.

Time is stored exactly; what is billed is derived (docs/design.md § Money and time).
:func:`billed_minutes` therefore *returns* the billed minutes and never touches the
raw minutes, which stay on the time entry: re-rounding under a changed rule, the
timesheet-vs-batch reconciliation and profitability all need the raw figure.

Choices, in the order they apply:

1. **Round to the increment** in the rule's direction: ``up`` (to the next multiple;
   an exact multiple stays), ``down``, or ``nearest`` (an exact half rounds up, so
   3 minutes with a 6-minute increment bills 6 — the customer-visible convention
   "half an increment or more counts").
2. **Then apply the minimum per entry**: a positive entry bills at least
   ``minimum_minutes``. The minimum need not be a multiple of the increment (e.g.
   "minimum 30 minutes, then 15-minute increments"). It applies after rounding, so
   ``nearest``/``down`` can never bill a positive entry below the minimum.
3. **A zero-minute entry bills zero**, whatever the minimum. A zero-length entry
   records no work (a placeholder, a note, a cancelled visit logged at 0); billing
   it the minimum would invent time. A minimum callout charge is a *charge*, not a
   rounding rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RoundingDirection(StrEnum):
    UP = "up"
    NEAREST = "nearest"
    DOWN = "down"


@dataclass(frozen=True)
class RoundingRule:
    """A contract's rounding rule. The default bills time exactly as logged."""

    increment_minutes: int = 1
    direction: RoundingDirection = RoundingDirection.UP
    minimum_minutes: int = 0

    def __post_init__(self) -> None:
        _require_minutes(self.increment_minutes, "increment_minutes")
        _require_minutes(self.minimum_minutes, "minimum_minutes")
        if self.increment_minutes < 1:
            raise ValueError("increment_minutes must be at least 1")
        # Accept the plain strings stored on a model field, but nothing else.
        object.__setattr__(self, "direction", RoundingDirection(self.direction))

    def describe(self) -> str:
        """The rule as an admin reads it, e.g. "15-minute increments, up, minimum 30 minutes"."""
        text = f"{self.increment_minutes}-minute increments, {self.direction.value}"
        if self.minimum_minutes:
            text += f", minimum {self.minimum_minutes} minutes"
        return text


def billed_minutes(raw_minutes: int, rule: RoundingRule) -> int:
    """Minutes to bill for an entry of ``raw_minutes`` under ``rule``.

    See the module docstring for the order of rounding and minimum, and why a
    zero-minute entry bills zero.
    """
    _require_minutes(raw_minutes, "raw_minutes")
    if raw_minutes == 0:
        return 0
    increment = rule.increment_minutes
    whole, remainder = divmod(raw_minutes, increment)
    if remainder == 0:
        rounded = raw_minutes
    elif rule.direction is RoundingDirection.UP:
        rounded = (whole + 1) * increment
    elif rule.direction is RoundingDirection.DOWN:
        rounded = whole * increment
    else:  # NEAREST, an exact half rounds up
        rounded = (whole + 1) * increment if 2 * remainder >= increment else whole * increment
    return max(rounded, rule.minimum_minutes)


def _require_minutes(value: object, name: str) -> None:
    """Minutes are non-negative ints: no floats, no fractions of a minute."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int number of minutes, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
