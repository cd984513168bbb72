"""Which contract pays for a time entry — the routing decision, as a pure function.

docs/design.md § Routing. For an entry with no explicitly chosen contract:

1. Take the customer's contracts, then the parent customer's, each group in priority
   order (lower number first; equal priorities by id, so the order is stable).
2. Pass over a contract that is inactive on the entry's date, that does not take
   time (Online Backup), or whose exclusion set contains the entry's work type or
   role. The first that remains takes the entry.
3. Block Hours / Block Money: the block's balance is deducted. When the balance is
   short, the contract's *cascade* setting decides: off (the default) — the excess is
   overage on the block contract itself; on — the excess passes to the next contract
   in order, so the entry is split. A block already at zero with cascade on is passed
   over ("block exhausted").
4. A Retainer with an included-hours cap absorbs up to what is left of the cap; the
   rest is overage on the Retainer (the cap does not cascade: docs/design.md gives cascade
   to blocks only, and ``cascade`` is ignored on other contract types).
5. If minutes remain, the customer's default Hourly contract takes them, then the
   parent customer's (a site without its own Hourly contract bills hourly to its
   parent rather than going unrouted). Default Hourly contracts are **not** part of
   the priority pass, whatever their priority number — they are the catch-all — and
   their exclusion sets are not applied, because the fallback exists to take what
   every other contract excludes. They must still be active on the entry's date.
6. Otherwise the minutes are *unrouted*: kept, flagged, never dropped.

**Conservation**: the splits' minutes always sum to the entry's minutes, each minute
in exactly one bucket (absorbed, deducted, charged, overage, unrouted). A zero-minute
entry is routed like any other and gets one zero-minute split, so it still has a
contract (or is flagged).

Routing conserves whatever minutes it is given; the caller decides whether those are
raw minutes or minutes billed under a rounding rule (:mod:`.rounding`). A Block Money
contract's balance is given in minutes at the entry's rate
(:func:`.blocks.money_balance_in_minutes`), since routing works in minutes.

Every decision carries its explanation: each contract considered, in order, and why
it was passed over or what it took — stored with the routed entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from contracts.rules.blocks import split_by_included_cap


class ContractType(StrEnum):
    HOURLY = "hourly"
    BLOCK_HOURS = "block_hours"
    BLOCK_MONEY = "block_money"
    RETAINER = "retainer"
    REMOTE_MONITORING = "remote_monitoring"
    PROJECT_HOURLY = "project_hourly"
    PROJECT_ONE_TIME_FEE = "project_one_time_fee"
    ONLINE_BACKUP = "online_backup"

    @property
    def label(self) -> str:
        return _TYPE_LABELS[self]


_TYPE_LABELS = {
    ContractType.HOURLY: "Hourly",
    ContractType.BLOCK_HOURS: "Block Hours",
    ContractType.BLOCK_MONEY: "Block Money",
    ContractType.RETAINER: "Retainer",
    ContractType.REMOTE_MONITORING: "Remote Monitoring",
    ContractType.PROJECT_HOURLY: "Project — hourly",
    ContractType.PROJECT_ONE_TIME_FEE: "Project — one-time fee",
    ContractType.ONLINE_BACKUP: "Online Backup",
}

BLOCK_TYPES = frozenset({ContractType.BLOCK_HOURS, ContractType.BLOCK_MONEY})
CHARGING_TYPES = frozenset({ContractType.HOURLY, ContractType.PROJECT_HOURLY})
ABSORBING_TYPES = frozenset(
    {ContractType.RETAINER, ContractType.REMOTE_MONITORING, ContractType.PROJECT_ONE_TIME_FEE}
)
"""Contract types whose covered time is absorbed (shown at zero, counted for profitability)."""
TIME_TAKING_TYPES = BLOCK_TYPES | CHARGING_TYPES | ABSORBING_TYPES
"""Contract types that absorb or charge time; the rest (Online Backup) are passed over."""


class Bucket(StrEnum):
    """Where routed minutes end up. Every minute lands in exactly one."""

    ABSORBED = "absorbed"
    DEDUCTED = "deducted"
    CHARGED = "charged"
    OVERAGE = "overage"
    UNROUTED = "unrouted"


@dataclass(frozen=True)
class ContractCandidate:
    """A contract as routing sees it. Exclusion id sets accept any iterable of ids."""

    id: int
    name: str
    type: ContractType
    priority: int
    start: dt.date
    end: dt.date | None
    is_active: bool = True
    excluded_work_type_ids: frozenset[int] = field(default_factory=frozenset)
    excluded_role_ids: frozenset[int] = field(default_factory=frozenset)
    exclusion_set_name: str | None = None
    is_hourly_fallback: bool = False
    block_balance_minutes: int | None = None
    """Usable block balance in minutes (Block Hours / Block Money only)."""
    cascade: bool = False
    included_minutes_remaining: int | None = None
    """What is left of a Retainer's included-hours cap this period; None: no cap."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", ContractType(self.type))
        object.__setattr__(self, "excluded_work_type_ids", frozenset(self.excluded_work_type_ids))
        object.__setattr__(self, "excluded_role_ids", frozenset(self.excluded_role_ids))
        if self.end is not None and self.end < self.start:
            raise ValueError(f"contract {self.id}: end is before start")
        is_block = self.type in BLOCK_TYPES
        if is_block and not _is_int(self.block_balance_minutes):
            raise ValueError(f"contract {self.id}: a {self.type.label} contract needs block_balance_minutes")
        if not is_block and self.block_balance_minutes is not None:
            raise ValueError(f"contract {self.id}: only block contracts have a block balance")
        if self.included_minutes_remaining is not None:
            if self.type is not ContractType.RETAINER:
                raise ValueError(f"contract {self.id}: only a Retainer has an included-hours cap")
            if not _is_int(self.included_minutes_remaining) or self.included_minutes_remaining < 0:
                raise ValueError(f"contract {self.id}: included_minutes_remaining must be an int >= 0")
        if self.is_hourly_fallback and self.type is not ContractType.HOURLY:
            raise ValueError(
                f"contract {self.id}: only an Hourly contract can be the default Hourly contract"
            )

    def inactive_reason(self, on: dt.date) -> str | None:
        """Why the contract cannot take an entry dated ``on``, or None if it can."""
        if not self.is_active:
            return f"inactive on {on.isoformat()} (status not active)"
        if on < self.start:
            return f"inactive on {on.isoformat()} (starts {self.start.isoformat()})"
        if self.end is not None and on > self.end:
            return f"inactive on {on.isoformat()} (ended {self.end.isoformat()})"
        return None


@dataclass(frozen=True)
class Entry:
    """A time entry as routing sees it: when, what work, which role, how many minutes."""

    date: dt.date
    minutes: int
    work_type_id: int
    work_type_name: str
    role_id: int
    role_name: str

    def __post_init__(self) -> None:
        if not _is_int(self.minutes) or self.minutes < 0:
            raise ValueError("minutes must be an int >= 0")


@dataclass(frozen=True)
class RoutedSplit:
    """Minutes of an entry that one contract took (contract None: unrouted)."""

    contract_id: int | None
    bucket: Bucket
    minutes: int


@dataclass(frozen=True)
class RoutingStep:
    """One contract considered, and why it was passed over or what it took."""

    contract_id: int | None
    label: str
    outcome: str
    passed_over: bool

    def __str__(self) -> str:
        return f"{self.label}: {self.outcome}" if self.label else self.outcome


@dataclass(frozen=True)
class RoutingDecision:
    splits: tuple[RoutedSplit, ...]
    steps: tuple[RoutingStep, ...]

    @property
    def explanation(self) -> str:
        """Every contract considered, in order, one per line."""
        return "\n".join(str(step) for step in self.steps)

    @property
    def is_unrouted(self) -> bool:
        """True if any minute is unrouted — the entry is flagged on the dashboard."""
        return any(split.bucket is Bucket.UNROUTED for split in self.splits)

    @property
    def contract_ids(self) -> tuple[int, ...]:
        """Contracts that took part of the entry, in routing order."""
        ids: list[int] = []
        for split in self.splits:
            if split.contract_id is not None and split.contract_id not in ids:
                ids.append(split.contract_id)
        return tuple(ids)

    def minutes_in(self, bucket: Bucket) -> int:
        return sum(split.minutes for split in self.splits if split.bucket is bucket)


UNROUTED_REASON = "unrouted: no contract and no Hourly fallback"


def route_entry(
    *,
    entry: Entry,
    contracts: Iterable[ContractCandidate],
    parent_contracts: Iterable[ContractCandidate] = (),
) -> RoutingDecision:
    """Route ``entry`` over the customer's ``contracts`` (then ``parent_contracts``).

    See the module docstring for the rules; the result's splits always sum to
    ``entry.minutes``.
    """
    own = list(contracts)
    parent = list(parent_contracts)
    ordered = [(c, False) for c in _by_priority(c for c in own if not c.is_hourly_fallback)]
    ordered += [(c, True) for c in _by_priority(c for c in parent if not c.is_hourly_fallback)]
    fallbacks = [(c, False) for c in _by_priority(c for c in own if c.is_hourly_fallback)]
    fallbacks += [(c, True) for c in _by_priority(c for c in parent if c.is_hourly_fallback)]

    router = _Router(entry)
    for contract, from_parent in ordered:
        if router.done:
            break
        router.offer(contract, label=_label(contract, from_parent=from_parent))
    for contract, from_parent in fallbacks:
        if router.done:
            break
        router.offer_fallback(contract, label=_fallback_label(contract, from_parent=from_parent))
    if not router.done:
        router.leave_unrouted()
    return RoutingDecision(splits=tuple(router.splits), steps=tuple(router.steps))


class _Router:
    """The running state of one routing decision: minutes left, splits, steps."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.remaining = entry.minutes
        self.splits: list[RoutedSplit] = []
        self.steps: list[RoutingStep] = []

    @property
    def done(self) -> bool:
        # "splits" too: a zero-minute entry is done only once something took it.
        return self.remaining == 0 and bool(self.splits)

    def offer(self, contract: ContractCandidate, *, label: str) -> None:
        reason = contract.inactive_reason(self.entry.date) or _not_taking_reason(contract, self.entry)
        if reason is not None:
            self._pass(contract, label=label, reason=reason)
        elif contract.type in BLOCK_TYPES:
            self._take_from_block(contract, label=label)
        elif contract.type is ContractType.RETAINER and contract.included_minutes_remaining is not None:
            self._take_within_cap(contract, label=label)
        else:
            bucket = Bucket.CHARGED if contract.type in CHARGING_TYPES else Bucket.ABSORBED
            self._take_all(contract, label=label, bucket=bucket)

    def offer_fallback(self, contract: ContractCandidate, *, label: str) -> None:
        reason = contract.inactive_reason(self.entry.date)
        if reason is not None:
            self._pass(contract, label=label, reason=reason)
        else:
            self._take_all(contract, label=label, bucket=Bucket.CHARGED)

    def leave_unrouted(self) -> None:
        outcome = UNROUTED_REASON
        if self.splits:
            outcome += f" ({self.remaining} of {self.entry.minutes} minutes)"
        self._split(None, Bucket.UNROUTED, self.remaining)
        self.steps.append(RoutingStep(contract_id=None, label="", outcome=outcome, passed_over=False))

    def _take_all(self, contract: ContractCandidate, *, label: str, bucket: Bucket) -> None:
        minutes = self.remaining
        self._split(contract.id, bucket, minutes)
        self._took(contract, label=label, outcome=f"takes {_minutes(minutes)}, {bucket.value}")

    def _take_within_cap(self, contract: ContractCandidate, *, label: str) -> None:
        assert contract.included_minutes_remaining is not None
        cap = split_by_included_cap(
            minutes=self.remaining,
            included_minutes=contract.included_minutes_remaining,
            used_minutes=0,
        )
        if cap.absorbed or not cap.overage:
            self._split(contract.id, Bucket.ABSORBED, cap.absorbed)
        if cap.overage:
            self._split(contract.id, Bucket.OVERAGE, cap.overage)
        outcome = f"takes {_minutes(cap.absorbed + cap.overage)}, absorbed {_minutes(cap.absorbed)}"
        if cap.overage:
            outcome += f", included hours used up: {_minutes(cap.overage)} overage on this contract"
        self._took(contract, label=label, outcome=outcome)

    def _take_from_block(self, contract: ContractCandidate, *, label: str) -> None:
        assert contract.block_balance_minutes is not None
        balance = max(contract.block_balance_minutes, 0)
        if contract.cascade and balance == 0:
            self._pass(contract, label=label, reason="block exhausted, cascades to the next contract")
            return
        deducted = min(balance, self.remaining)
        excess = self.remaining - deducted
        if deducted or not excess:
            self._split(contract.id, Bucket.DEDUCTED, deducted)
        outcome = f"deducts {_minutes(deducted)} from the block (balance {_minutes(balance)})"
        if excess and contract.cascade:
            # The excess stays in self.remaining for the next contract.
            self.remaining = excess
            self.steps.append(
                RoutingStep(
                    contract_id=contract.id,
                    label=label,
                    outcome=f"{outcome}; block exhausted, {_minutes(excess)} cascade to the next contract",
                    passed_over=False,
                )
            )
            return
        if excess:
            self._split(contract.id, Bucket.OVERAGE, excess)
            outcome += f"; block exhausted, {_minutes(excess)} overage on this contract"
        self._took(contract, label=label, outcome=outcome)

    def _split(self, contract_id: int | None, bucket: Bucket, minutes: int) -> None:
        self.splits.append(RoutedSplit(contract_id=contract_id, bucket=bucket, minutes=minutes))

    def _took(self, contract: ContractCandidate, *, label: str, outcome: str) -> None:
        self.remaining = 0
        self.steps.append(
            RoutingStep(contract_id=contract.id, label=label, outcome=outcome, passed_over=False)
        )

    def _pass(self, contract: ContractCandidate, *, label: str, reason: str) -> None:
        self.steps.append(RoutingStep(contract_id=contract.id, label=label, outcome=reason, passed_over=True))


def _not_taking_reason(contract: ContractCandidate, entry: Entry) -> str | None:
    """Why an active contract does not take this entry's time, or None if it does."""
    if contract.type not in TIME_TAKING_TYPES:
        return f"does not take time ({contract.type.label})"
    set_name = f"set {contract.exclusion_set_name}" if contract.exclusion_set_name else "its exclusion set"
    if entry.work_type_id in contract.excluded_work_type_ids:
        return f"work type {entry.work_type_name} excluded by {set_name}"
    if entry.role_id in contract.excluded_role_ids:
        return f"role {entry.role_name} excluded by {set_name}"
    return None


def _by_priority(contracts: Iterable[ContractCandidate]) -> list[ContractCandidate]:
    return sorted(contracts, key=lambda c: (c.priority, c.id))


def _label(contract: ContractCandidate, *, from_parent: bool) -> str:
    owner = ", parent customer" if from_parent else ""
    return f"{contract.name} ({contract.type.label}, priority {contract.priority}{owner})"


def _fallback_label(contract: ContractCandidate, *, from_parent: bool) -> str:
    owner = "parent customer's" if from_parent else "customer's"
    return f"{contract.name} ({owner} default Hourly contract)"


def _minutes(value: int) -> str:
    return f"{value} minute" if value == 1 else f"{value} minutes"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

