"""Block balances: what a Block Hours or Block Money contract bought, used, has left and will lose.

One reading for every page that shows a block balance — the contract page and list, a
technician's route preview, the dashboard's "blocks below threshold", the alerts — so
they all show the same figure: :func:`block_balances`.

* **Purchased**: the blocks bought by today (minutes for Block Hours, money for Block
  Money). A block dated later is listed but counts from its date on.
* **Used**: what the blocks' ledgers deducted (``BlockLedgerEntry``).
* **Left**: the balance the deduction rule (:mod:`contracts.rules.blocks`) would draw
  from today: bought by today, not used up, and not past its expiry unless the contract
  rolls balances over.
* **Expired**: what was left on blocks past their expiry when balances do not roll over
  (lost to the customer). So ``purchased == used + left + expired``.
* **Expiring**: per block, what is left and the date it goes, for contracts that do not
  roll over; soonest first.
* **Used %** (``usage``): measured as the alerts measure it — over the usable blocks
  only, so blocks used up earlier do not dilute it, and 100 % when every block that is
  not expired is used up. A contract is *low* once that reaches its first alert
  threshold (75 % by default).

All contracts asked for are read in **one query**, however many there are.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from django.db.models import Sum, Value
from django.db.models.functions import Coalesce

from contracts.models import BlockPurchase, Contract
from contracts.rules.blocks import Block, deduct_from_blocks

BLOCK_TYPES = (Contract.Type.BLOCK_HOURS, Contract.Type.BLOCK_MONEY)
HUNDREDTH = Decimal("0.01")


def minutes_to_hours(minutes: int) -> Decimal:
    """Minutes as hours to two places, for display (the figures themselves stay in minutes)."""
    return (Decimal(minutes) / 60).quantize(HUNDREDTH)


@dataclass(frozen=True)
class BlockUsageNow:
    """How much of a contract's usable block balance is used, and which block it is about
    (the newest usable one: the block that ends the customer's balance)."""

    block: BlockPurchase
    used: int | Decimal
    size: int | Decimal

    @property
    def percent(self) -> Fraction:
        return Fraction(self.used) * 100 / Fraction(self.size)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.size


class _InHours:
    """Block Hours figures (minutes) as hours, for display."""

    used: int | Decimal
    left: int | Decimal

    @property
    def used_hours(self) -> Decimal:
        return minutes_to_hours(int(self.used))

    @property
    def left_hours(self) -> Decimal:
        return minutes_to_hours(int(self.left))


@dataclass(frozen=True)
class BlockFigures(_InHours):
    """One block: its size, what was used, what is left and whether it can still be drawn."""

    class State:
        USABLE = "usable"
        USED_UP = "used_up"
        EXPIRED = "expired"
        NOT_YET = "not_yet"

    block: BlockPurchase
    size: int | Decimal
    used: int | Decimal
    state: str
    money: bool

    @property
    def left(self) -> int | Decimal:
        return self.size - self.used

    @property
    def expires_on(self) -> dt.date | None:
        return self.block.expires_on

    @property
    def state_label(self) -> str:
        return {"usable": "In use", "used_up": "Used up", "expired": "Expired",
                "not_yet": "Not yet bought"}[self.state]

    @property
    def size_hours(self) -> Decimal:
        return minutes_to_hours(int(self.size))



@dataclass(frozen=True)
class BlockBalance(_InHours):
    """A block contract's balance today (minutes for Block Hours, money for Block Money)."""

    contract_id: int
    money: bool
    currency: str
    rollover: bool
    thresholds: tuple[int, ...]
    blocks: tuple[BlockFigures, ...] = field(default_factory=tuple)
    usage: BlockUsageNow | None = None

    @property
    def _zero(self) -> int | Decimal:
        return Decimal("0.00") if self.money else 0

    def _sum(self, values: Iterable[int | Decimal]) -> int | Decimal:
        return sum(values, self._zero)

    @property
    def bought(self) -> tuple[BlockFigures, ...]:
        return tuple(b for b in self.blocks if b.state != BlockFigures.State.NOT_YET)

    @property
    def purchased(self) -> int | Decimal:
        return self._sum(b.size for b in self.bought)

    @property
    def used(self) -> int | Decimal:
        return self._sum(b.used for b in self.bought)

    @property
    def left(self) -> int | Decimal:
        return self._sum(b.left for b in self.bought if b.state == BlockFigures.State.USABLE)

    @property
    def expired(self) -> int | Decimal:
        return self._sum(b.left for b in self.bought if b.state == BlockFigures.State.EXPIRED)

    @property
    def expiring(self) -> tuple[BlockFigures, ...]:
        """Usable blocks that will expire with balance left (none when balances roll over), soonest first."""
        if self.rollover:
            return ()
        return tuple(sorted((b for b in self.blocks if b.state == BlockFigures.State.USABLE and b.expires_on),
                            key=lambda b: (b.expires_on, b.block.pk)))

    @property
    def percent_used(self) -> int | None:
        """Used % of the usable balance, rounded down to a whole percent (None: no block)."""
        return int(self.usage.percent) if self.usage is not None else None

    @property
    def low_threshold(self) -> int | None:
        positive = [pct for pct in self.thresholds if pct > 0]
        return min(positive) if positive else None

    @property
    def is_low(self) -> bool:
        """Used at least the contract's first alert threshold (or every block used up)."""
        if self.usage is None:
            return False
        if self.usage.exhausted:
            return True
        return self.low_threshold is not None and self.usage.percent >= self.low_threshold

    @property
    def purchased_hours(self) -> Decimal:
        return minutes_to_hours(int(self.purchased))


    @property
    def expired_hours(self) -> Decimal:
        return minutes_to_hours(int(self.expired))


def block_balances(*, contracts: Iterable[Contract], today: dt.date) -> dict[int, BlockBalance]:
    """Balances of the block contracts among ``contracts`` (others are left out), by contract id.

    One query for all of them: the blocks with their ledgers summed.
    """
    block_contracts = {c.pk: c for c in contracts if c.type in BLOCK_TYPES}
    if not block_contracts:
        return {}
    purchases = (BlockPurchase.objects.filter(contract_id__in=list(block_contracts))
                 .annotate(used_minutes=Coalesce(Sum("ledger__minutes"), Value(0)),
                           used_amount=Coalesce(Sum("ledger__amount"), Value(Decimal("0"))))
                 .order_by("purchased_on", "id"))
    per_contract: dict[int, list[BlockPurchase]] = {pk: [] for pk in block_contracts}
    for purchase in purchases:
        per_contract[purchase.contract_id].append(purchase)
    return {pk: _balance(block_contracts[pk], per_contract[pk], today=today) for pk in block_contracts}


def block_balance(*, contract: Contract, today: dt.date) -> BlockBalance | None:
    """One contract's balance (None when it is not a block contract)."""
    return block_balances(contracts=[contract], today=today).get(contract.pk)


def _balance(contract: Contract, purchases: list[BlockPurchase], *, today: dt.date) -> BlockBalance:
    money = contract.type == Contract.Type.BLOCK_MONEY
    zero: int | Decimal = Decimal("0.00") if money else 0
    sizes: dict[int, int | Decimal] = {}
    used: dict[int, int | Decimal] = {}
    for purchase in purchases:
        if money:
            sizes[purchase.pk] = purchase.amount.amount if purchase.amount is not None else Decimal("0.00")
            used[purchase.pk] = Decimal(purchase.used_amount)
        else:
            sizes[purchase.pk] = purchase.minutes or 0
            used[purchase.pk] = int(purchase.used_minutes)
    bought = [p for p in purchases if p.purchased_on <= today]
    rules = [Block(id=p.pk, purchased_on=p.purchased_on, expires_on=p.expires_on, balance=sizes[p.pk] - used[p.pk])
             for p in bought if sizes[p.pk] > 0]
    usable = set(_usable_ids(rules, today=today, rollover=contract.rollover, zero=zero))
    figures = []
    for purchase in purchases:
        if purchase.purchased_on > today:
            state = BlockFigures.State.NOT_YET
        elif purchase.pk in usable:
            state = BlockFigures.State.USABLE
        elif sizes[purchase.pk] - used[purchase.pk] <= 0:
            state = BlockFigures.State.USED_UP
        else:
            state = BlockFigures.State.EXPIRED
        figures.append(BlockFigures(block=purchase, size=sizes[purchase.pk], used=used[purchase.pk], state=state,
                                    money=money))
    return BlockBalance(contract_id=contract.pk, money=money, currency=contract.currency, rollover=contract.rollover,
                        thresholds=tuple(contract.thresholds()), blocks=tuple(figures),
                        usage=_usage(rules, {p.pk: p for p in bought}, sizes, used, usable=usable, today=today,
                                     rollover=contract.rollover, zero=zero))


def _usage(rules: list[Block], by_id: dict[int, BlockPurchase], sizes, used, *, usable: set[int], today: dt.date,
           rollover: bool, zero) -> BlockUsageNow | None:
    """Used of the usable blocks; 100 % of the newest current block when all of them are used up."""
    if usable:
        newest = max(usable, key=lambda pk: (by_id[pk].purchased_on, pk))
        return BlockUsageNow(block=by_id[newest], used=sum((used[pk] for pk in usable), zero),
                             size=sum((sizes[pk] for pk in usable), zero))
    # Nothing usable: blocks that would be usable with a balance left are all used up.
    one = Decimal("1") if isinstance(zero, Decimal) else 1
    current = _usable_ids([Block(id=b.id, purchased_on=b.purchased_on, expires_on=b.expires_on, balance=one)
                           for b in rules], today=today, rollover=rollover, zero=zero)
    if not current:
        return None
    newest = max(current, key=lambda pk: (by_id[pk].purchased_on, pk))
    return BlockUsageNow(block=by_id[newest], used=sizes[newest], size=sizes[newest])


def _usable_ids(blocks: list[Block], *, today: dt.date, rollover: bool, zero) -> list[int]:
    """Blocks the deduction rule would draw from on ``today`` (asked, not re-implemented)."""
    skipped = {s.block_id for s in deduct_from_blocks(blocks=blocks, amount=zero, on_date=today, rollover=rollover).skipped}
    return [b.id for b in blocks if b.id not in skipped]
