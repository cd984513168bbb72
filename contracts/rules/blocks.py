"""Block Hours / Block Money deduction and the Retainer included-hours cap.

docs/design.md § Contracts. A block is a prepaid balance: minutes (``int``) for Block
Hours, money (``Decimal``, already valued at rates and rounded) for Block Money. The
same rules serve both, and a call never mixes the two.

Choices:

* **Oldest first**: usable blocks are drawn down in purchase order (then by id), so
  the block that would expire first is used first.
* **A block is usable** from its purchase date, through its expiry date inclusive.
  With the contract's *rollover* setting on, the expiry date is ignored and unused
  balance carries forward; with it off, a block past its expiry is skipped and
  reported (``skipped``), so the service can write the expiry to the balance ledger.
* **Beyond the balance is overage** — returned, never dropped. Whether overage is
  invoiced on the block contract or cascades to the next contract is routing's
  decision (:mod:`.routing`); this module only says how much did not fit.
* **Conservation**: ``sum(deductions) + overage == amount`` always, and no block is
  drawn below zero.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Generic, TypeVar

from msp_billing.money import require_decimal

Quantity = TypeVar("Quantity", int, Decimal)
"""Minutes (int) for Block Hours, money (Decimal) for Block Money."""


@dataclass(frozen=True)
class Block(Generic[Quantity]):
    """One purchased block and what is left of it."""

    id: int
    purchased_on: dt.date
    balance: Quantity
    expires_on: dt.date | None = None

    def __post_init__(self) -> None:
        _require_quantity(self.balance, "balance")


@dataclass(frozen=True)
class BlockDeduction(Generic[Quantity]):
    block_id: int
    amount: Quantity
    balance_after: Quantity


@dataclass(frozen=True)
class SkippedBlock:
    block_id: int
    reason: str


@dataclass(frozen=True)
class BlockUsage(Generic[Quantity]):
    """Where an amount went: per-block deductions, and the overage that did not fit."""

    deductions: tuple[BlockDeduction[Quantity], ...]
    overage: Quantity
    skipped: tuple[SkippedBlock, ...]

    @property
    def deducted(self) -> Quantity:
        return sum((d.amount for d in self.deductions), self.overage * 0)


@dataclass(frozen=True)
class CapSplit:
    """A Retainer entry's minutes: within the included hours, and beyond them."""

    absorbed: int
    overage: int


def deduct_from_blocks(
    *,
    blocks: Sequence[Block[Quantity]],
    amount: Quantity,
    on_date: dt.date,
    rollover: bool,
) -> BlockUsage[Quantity]:
    """Deduct ``amount`` dated ``on_date`` from ``blocks``, oldest usable block first."""
    _require_quantity(amount, "amount")
    if amount < 0:
        raise ValueError("amount must not be negative")
    _require_same_kind(blocks, amount)
    remaining = amount
    deductions: list[BlockDeduction[Quantity]] = []
    skipped: list[SkippedBlock] = []
    for block in _oldest_first(blocks):
        reason = _unusable_reason(block, on_date=on_date, rollover=rollover)
        if reason is not None:
            skipped.append(SkippedBlock(block_id=block.id, reason=reason))
            continue
        if remaining == 0:
            continue  # keep going: later expired blocks must still be reported
        take = min(block.balance, remaining)
        deductions.append(
            BlockDeduction(block_id=block.id, amount=take, balance_after=block.balance - take)
        )
        remaining -= take
    return BlockUsage(deductions=tuple(deductions), overage=remaining, skipped=tuple(skipped))


def available_balance(
    *, blocks: Sequence[Block[Quantity]], on_date: dt.date, rollover: bool, zero: Quantity
) -> Quantity:
    """Total usable balance on ``on_date`` — what routing sees as the block's balance.

    ``zero`` (``0`` or ``Decimal("0.00")``) says which kind of balance is meant when
    there are no blocks at all.
    """
    _require_quantity(zero, "zero")
    _require_same_kind(blocks, zero)
    usable = (
        block.balance
        for block in blocks
        if _unusable_reason(block, on_date=on_date, rollover=rollover) is None
    )
    return sum(usable, zero)


def split_by_included_cap(*, minutes: int, included_minutes: int, used_minutes: int) -> CapSplit:
    """Split a Retainer entry at the included-hours cap for the period.

    ``used_minutes`` is what earlier entries in the period already used. Minutes
    within the cap are absorbed; the rest is overage on the Retainer.
    """
    for value, name in (
        (minutes, "minutes"),
        (included_minutes, "included_minutes"),
        (used_minutes, "used_minutes"),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int number of minutes")
        if value < 0:
            raise ValueError(f"{name} must not be negative")
    left = max(included_minutes - used_minutes, 0)
    absorbed = min(minutes, left)
    return CapSplit(absorbed=absorbed, overage=minutes - absorbed)


def money_balance_in_minutes(*, balance: Decimal, hourly_rate: Decimal) -> int:
    """Whole minutes a Block Money balance pays for at ``hourly_rate``, rounded down.

    Routing works in minutes; this turns a money balance into the minutes it covers.
    Rounded down so the minutes routed to the block never cost more than the balance
    (the odd cents stay in the balance). A zero rate has no meaningful answer (every
    minute is free): the caller deducts nothing and should not ask.
    """
    require_decimal(balance, "balance")
    require_decimal(hourly_rate, "hourly_rate")
    if hourly_rate <= 0:
        raise ValueError("hourly_rate must be positive")
    if balance <= 0:
        return 0
    return int(Fraction(balance) * 60 / Fraction(hourly_rate))


def _oldest_first(blocks: Sequence[Block[Quantity]]) -> list[Block[Quantity]]:
    return sorted(blocks, key=lambda block: (block.purchased_on, block.id))


def _unusable_reason(block: Block[Quantity], *, on_date: dt.date, rollover: bool) -> str | None:
    if block.purchased_on > on_date:
        return f"not yet purchased on {on_date.isoformat()}"
    if not rollover and block.expires_on is not None and block.expires_on < on_date:
        return f"expired on {block.expires_on.isoformat()}"
    if block.balance <= 0:
        return "used up"
    return None


def _require_quantity(value: object, name: str) -> None:
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{name} must be int minutes or Decimal money, never {type(value).__name__}")
    if isinstance(value, Decimal):
        require_decimal(value, name)
    elif not isinstance(value, int):
        raise TypeError(f"{name} must be int minutes or Decimal money, got {type(value).__name__}")


def _require_same_kind(blocks: Sequence[Block[Quantity]], amount: Quantity) -> None:
    """Minutes and money never meet: a Block Hours call has only ints, Block Money only Decimals."""
    kind = type(amount)
    for block in blocks:
        if type(block.balance) is not kind:
            raise TypeError(
                f"block {block.id} balance is {type(block.balance).__name__}, amount is {kind.__name__}"
            )
