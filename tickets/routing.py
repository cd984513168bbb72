"""Routing and rating of time entries against the database.

Loads what the pure rules need (``contracts.rules``), asks them, and writes the result:
one ``TimeAllocation`` per contract that took part of the entry (or one unrouted), block
deductions as ``BlockLedgerEntry`` rows, and the explanation kept on the entry.

Order of work for one entry:
1. The raw minutes are rounded once, by the rounding rule of the contract that takes the
   entry first (an explicit or ticket contract, else the first that routing picks). The
   raw minutes stay on the entry; allocations hold billed minutes.
2. The billed minutes are routed (priority, exclusion sets, parent, fallback).
3. Each allocation is rated: charged and overage time gets an amount; absorbed and
   deducted time gets its value at rate (for profitability) but no amount.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from contracts.models import BlockLedgerEntry, BlockPurchase, Contract
from contracts.rules.blocks import Block, available_balance, deduct_from_blocks, money_balance_in_minutes
from contracts.rules.proration import contract_periods
from contracts.rules.rates import RateLine, RateResolution, RoleRef, WorkTypeRef, amount_for_minutes, resolve_rate
from contracts.rules.rounding import RoundingRule, billed_minutes
from contracts.rules.routing import Bucket, ContractCandidate, Entry, RoutingDecision, route_entry
from tickets.models import TimeAllocation, TimeEntry

ROUTABLE_STATUSES = (Contract.Status.ACTIVE,)


def _source(allocation_id: int) -> str:
    return f"time-allocation:{allocation_id}"


def allocation_sources(entry: TimeEntry) -> set[str]:
    """The block-ledger sources of an entry's allocations."""
    return {_source(pk) for pk in entry.allocations.values_list("pk", flat=True)}


@dataclass
class ContractTerms:
    """One contract as routing and rating need it, loaded once per routing run."""

    contract: Contract
    rate_lines: list[RateLine]
    excluded_work_types: frozenset[int]
    excluded_roles: frozenset[int]
    blocks: list[BlockPurchase] = field(default_factory=list)

    @property
    def rounding(self) -> RoundingRule:
        c = self.contract
        return RoundingRule(increment_minutes=c.rounding_increment, direction=c.rounding_direction, minimum_minutes=c.rounding_minimum)


class RoutingContext:
    """Caches contract terms per customer so routing many entries costs few queries."""

    def __init__(self) -> None:
        self._by_customer: dict[int, list[ContractTerms]] = {}
        self._terms: dict[int, ContractTerms] = {}

    def terms_for_customer(self, customer_id: int) -> list[ContractTerms]:
        if customer_id not in self._by_customer:
            contracts = (
                Contract.objects.filter(customer_id=customer_id)
                .select_related("exclusion_set", "customer")
                .prefetch_related("rate_lines", "exclusion_set__work_types", "exclusion_set__roles", "blocks")
            )
            self._by_customer[customer_id] = [self._load(c) for c in contracts]
        return self._by_customer[customer_id]

    def terms(self, contract: Contract) -> ContractTerms:
        if contract.pk not in self._terms:
            self.terms_for_customer(contract.customer_id)
        if contract.pk not in self._terms:
            self._load(contract)
        return self._terms[contract.pk]

    def loaded(self, contract_id: int) -> ContractTerms:
        return self._terms[contract_id]

    def rounding_for(self, contract_id: int) -> RoundingRule:
        return self._terms[contract_id].rounding

    def _load(self, contract: Contract) -> ContractTerms:
        exclusion = contract.exclusion_set
        terms = ContractTerms(
            contract=contract,
            rate_lines=[
                RateLine(rate=line.rate.amount, effective_from=line.effective_from, work_type_id=line.work_type_id, role_id=line.role_id)
                for line in contract.rate_lines.all()
            ],
            excluded_work_types=frozenset(w.pk for w in exclusion.work_types.all()) if exclusion else frozenset(),
            excluded_roles=frozenset(r.pk for r in exclusion.roles.all()) if exclusion else frozenset(),
            blocks=list(contract.blocks.all()),
        )
        self._terms[contract.pk] = terms
        return terms


def _block_balances(terms: ContractTerms, *, exclude_sources: set[str] = frozenset()) -> dict[int, Decimal | int]:
    """What is left of each block: its size minus its ledger."""
    money = terms.contract.type == Contract.Type.BLOCK_MONEY
    used = (
        BlockLedgerEntry.objects.filter(block__contract=terms.contract)
        .exclude(source__in=exclude_sources)
        .values("block_id")
        .annotate(minutes=Sum("minutes"), amount=Sum("amount"))
    )
    used_by_block = {row["block_id"]: row for row in used}
    balances: dict[int, Decimal | int] = {}
    for block in terms.blocks:
        row = used_by_block.get(block.pk, {})
        if money:
            balances[block.pk] = (block.amount.amount if block.amount else Decimal("0.00")) - (row.get("amount") or Decimal("0"))
        else:
            balances[block.pk] = (block.minutes or 0) - (row.get("minutes") or 0)
    return balances


def _blocks(terms: ContractTerms, balances) -> list[Block]:
    return [Block(id=b.pk, purchased_on=b.purchased_on, balance=balances[b.pk], expires_on=b.expires_on) for b in terms.blocks]


def _period_bounds(contract: Contract, on: dt.date) -> tuple[dt.date, dt.date]:
    end = contract.end_date or max(on, contract.start_date) + dt.timedelta(days=400)
    for period in contract_periods(start=contract.start_date, end=max(end, on), frequency=contract.billing_frequency, anchor_day=contract.anchor_day):
        if period.start <= on <= period.end:
            return period.start, period.end
    return on, on


def _included_used(contract: Contract, on: dt.date, *, excluding_entry: int | None) -> int:
    start, end = _period_bounds(contract, on)
    used = (
        TimeAllocation.objects.filter(contract=contract, bucket=Bucket.ABSORBED, entry__date__range=(start, end))
        .exclude(entry_id=excluding_entry)
        .aggregate(total=Sum("minutes"))["total"]
    )
    return used or 0


def _rate(terms: ContractTerms | None, entry: TimeEntry) -> RateResolution:
    """The hourly rate of an entry under a contract's rate lines (or a chosen rate item)."""
    work_type = WorkTypeRef(
        id=entry.work_type_id, name=entry.work_type.name, is_after_hours=entry.work_type.is_after_hours,
        after_hours_multiplier=entry.work_type.after_hours_multiplier,
    )
    role = RoleRef(id=entry.role_id, name=entry.role.name, default_rate=entry.role.default_rate.amount)
    if entry.chosen_rate_item_id:
        item = entry.chosen_rate_item
        found = resolve_rate(
            rate_lines=[RateLine(rate=item.rate.amount, effective_from=entry.date)],
            work_type=work_type, role=role, entry_date=entry.date, after_hours=entry.after_hours,
        )
        note = f"rate item {item.name} chosen on the entry"
        if found.multiplier != 1:
            note += f", × {found.multiplier.normalize():f} after-hours multiplier of work type {work_type.name}"
        return replace(found, explanation=note)
    return resolve_rate(
        rate_lines=terms.rate_lines if terms else [], work_type=work_type, role=role,
        entry_date=entry.date, after_hours=entry.after_hours,
    )


def _candidate(terms: ContractTerms, entry: TimeEntry, *, forced: bool, fallback_id: int | None, excluding_sources: set[str]) -> ContractCandidate:
    c = terms.contract
    block_minutes = None
    if c.is_block:
        balances = _block_balances(terms, exclude_sources=excluding_sources)
        blocks = _blocks(terms, balances)
        if c.type == Contract.Type.BLOCK_MONEY:
            money = available_balance(blocks=blocks, on_date=entry.date, rollover=c.rollover, zero=Decimal("0.00"))
            rate = _rate(terms, entry).rate
            block_minutes = money_balance_in_minutes(balance=money, hourly_rate=rate) if rate > 0 else 0
        else:
            block_minutes = available_balance(blocks=blocks, on_date=entry.date, rollover=c.rollover, zero=0)
    included = None
    if c.type == Contract.Type.RETAINER and c.included_minutes is not None:
        included = max(c.included_minutes - _included_used(c, entry.date, excluding_entry=entry.pk), 0)
    return ContractCandidate(
        id=c.pk, name=c.name, type=c.type, priority=0 if forced else c.priority,
        start=c.start_date, end=c.end_date, is_active=c.status in ROUTABLE_STATUSES,
        excluded_work_type_ids=frozenset() if forced else terms.excluded_work_types,
        excluded_role_ids=frozenset() if forced else terms.excluded_roles,
        exclusion_set_name=c.exclusion_set.name if c.exclusion_set_id else None,
        is_hourly_fallback=(not forced and c.pk == fallback_id and c.type == Contract.Type.HOURLY),
        block_balance_minutes=block_minutes, cascade=c.cascade and not forced,
        included_minutes_remaining=included,
    )


def _decide(entry: TimeEntry, minutes: int, context: RoutingContext, excluding_sources: set[str]) -> tuple[RoutingDecision, str]:
    customer = entry.ticket.customer
    forced_contract = entry.chosen_contract or entry.ticket.default_contract
    routing_entry = Entry(date=entry.date, minutes=minutes, work_type_id=entry.work_type_id, work_type_name=entry.work_type.name, role_id=entry.role_id, role_name=entry.role.name)
    if forced_contract is not None:
        why = "chosen on the entry" if entry.chosen_contract_id else "the ticket's contract"
        terms = context.terms(forced_contract)
        candidate = _candidate(terms, entry, forced=True, fallback_id=None, excluding_sources=excluding_sources)
        return route_entry(entry=routing_entry, contracts=[candidate]), f"Contract {forced_contract.name} {why}."
    own = [
        _candidate(t, entry, forced=False, fallback_id=customer.default_hourly_contract_id, excluding_sources=excluding_sources)
        for t in context.terms_for_customer(customer.pk)
    ]
    parent = []
    if customer.parent_id:
        parent = [
            _candidate(t, entry, forced=False, fallback_id=customer.parent.default_hourly_contract_id, excluding_sources=excluding_sources)
            for t in context.terms_for_customer(customer.parent_id)
        ]
    return route_entry(entry=routing_entry, contracts=own, parent_contracts=parent), ""


def entry_route(entry: TimeEntry, *, context: RoutingContext | None = None) -> list[TimeAllocation]:
    """(Re)route and rate one unbilled entry; replaces its allocations and block deductions."""
    if entry.billed_at is not None:
        raise ValueError("a billed time entry is never re-routed")
    context = context or RoutingContext()
    old_sources = allocation_sources(entry)
    if old_sources:
        BlockLedgerEntry.objects.filter(source__in=old_sources).delete()
        entry.allocations.all().delete()
    if not entry.billable:
        entry.is_unrouted = False
        entry.routing_explanation = "Not billable: not routed to a contract."
        entry.save(update_fields=["is_unrouted", "routing_explanation"])
        return []

    # Round once, by the rule of the contract that takes the entry first.
    first, preface = _decide(entry, entry.minutes, context, excluding_sources=set())
    first_contract_id = next((s.contract_id for s in first.splits if s.contract_id), None)
    rule = context.rounding_for(first_contract_id) if first_contract_id else RoundingRule()
    minutes = billed_minutes(entry.minutes, rule)
    decision, _ = _decide(entry, minutes, context, excluding_sources=set()) if minutes != entry.minutes else (first, preface)

    allocations: list[TimeAllocation] = []
    rate_notes: list[str] = []
    for split in decision.splits:
        terms = context.loaded(split.contract_id) if split.contract_id else None
        contract = terms.contract if terms else None
        allocation = TimeAllocation(entry=entry, contract=contract, bucket=split.bucket, minutes=split.minutes, billed_minutes=split.minutes)
        if contract is not None:
            currency = contract.currency
            resolution = _rate(terms, entry)
            rate = resolution.rate
            explanation = resolution.explanation
            if split.bucket == Bucket.OVERAGE and contract.overage_rate is not None:
                rate = contract.overage_rate.amount
                explanation = f"overage rate of {contract.name}"
            allocation.rate = Money(rate, currency)
            worth = Money(amount_for_minutes(minutes=split.minutes, hourly_rate=rate, currency=currency), currency)
            if split.bucket in (Bucket.CHARGED, Bucket.OVERAGE):
                allocation.amount = worth
            else:
                allocation.value = worth
            allocation.rate_explanation = explanation
            rate_notes.append(f"{contract.name}: {explanation}")
        allocation.save()
        allocations.append(allocation)
        if split.bucket == Bucket.DEDUCTED and contract is not None and split.minutes:
            _deduct(terms, allocation, entry.date)

    entry.is_unrouted = decision.is_unrouted
    lines = ([preface] if preface else []) + [str(step) for step in decision.steps]
    if minutes != entry.minutes:
        lines.append(f"Rounded {entry.minutes} → {minutes} minutes ({rule.describe()}).")
    lines += [f"Rate — {note}" for note in rate_notes]
    entry.routing_explanation = "\n".join(lines)
    entry.routed_at = timezone.now()
    entry.save(update_fields=["is_unrouted", "routing_explanation", "routed_at"])
    return allocations


def _deduct(terms: ContractTerms, allocation: TimeAllocation, on: dt.date) -> None:
    contract = terms.contract
    balances = _block_balances(terms)
    blocks = _blocks(terms, balances)
    if contract.type == Contract.Type.BLOCK_MONEY:
        usage = deduct_from_blocks(blocks=blocks, amount=allocation.value.amount, on_date=on, rollover=contract.rollover)
        rows = [BlockLedgerEntry(block_id=d.block_id, entry_date=on, amount=d.amount, source=_source(allocation.pk)) for d in usage.deductions]
    else:
        usage = deduct_from_blocks(blocks=blocks, amount=allocation.minutes, on_date=on, rollover=contract.rollover)
        rows = [BlockLedgerEntry(block_id=d.block_id, entry_date=on, minutes=d.amount, source=_source(allocation.pk)) for d in usage.deductions]
    BlockLedgerEntry.objects.bulk_create(rows)
