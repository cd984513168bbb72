"""Routing and rating of time entries against the database.

Loads what the pure rules need (``contracts.rules``), asks them, and writes the result:
one ``TimeAllocation`` per contract that took part of the entry (or one unrouted), block
deductions as ``BlockLedgerEntry`` rows, and the explanation kept on the entry.

For one entry:
1. The raw minutes are rounded once, by the rounding rule of the contract that takes the
   entry first (an explicit or ticket contract, else the first that routing picks). The
   raw minutes stay on the entry; allocations hold billed minutes. Time posted on
   approval (``posted_minutes``) is billed as posted, without rounding again; billable
   minutes given on the entry (``billable_minutes``, such as 45 billable minutes of a
   2-hour visit) are billed as given, without rounding or minimum. The explanation says
   which was used: the billable minutes or the logged time.
2. The billed minutes are routed (priority, exclusion sets, parent, fallback).
3. Each allocation is rated: charged and overage time gets an amount; absorbed and
   deducted time gets its value at rate (for profitability) but no amount. A rate posted
   on approval replaces the resolved rate (and the overage rate) for that entry.

Many entries are routed in one pass (``route_entries``): contract terms, block balances and
included-hours usage are loaded once and kept current in memory, entries are taken in date
order (so blocks are used oldest first, as the work happened), and rows are written in bulk.
"""
from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from djmoney.money import Money

from contracts.ledger import block_ledger_add, block_ledger_remove
from contracts.models import BlockLedgerEntry, BlockPurchase, Contract
from contracts.rules.blocks import Block, available_balance, deduct_from_blocks, money_balance_in_minutes
from contracts.rules.proration import contract_periods
from contracts.rules.rates import RateLine, RateResolution, RateRule, RoleRef, WorkTypeRef, amount_for_minutes, resolve_rate
from contracts.rules.rounding import RoundingRule, billed_minutes
from contracts.rules.routing import Bucket, ContractCandidate, Entry, RoutingDecision, route_entry
from msp_billing.bulk_insert import rows_insert
from tickets.models import TimeAllocation, TimeEntry

ROUTABLE_STATUSES = (Contract.Status.ACTIVE,)
CHUNK = 2000
ENTRY_RELATED = (
    "ticket__customer__parent", "ticket__default_contract", "work_type", "role",
    "chosen_contract", "chosen_rate_item", "posted_contract",
)


def _source(allocation_id: int) -> str:
    return f"time-allocation:{allocation_id}"


@dataclass
class ContractTerms:
    """One contract as routing and rating need it, with its running balances."""

    contract: Contract
    rate_lines: list[RateLine]
    excluded_work_types: frozenset[int]
    excluded_roles: frozenset[int]
    blocks: list[BlockPurchase] = field(default_factory=list)
    block_balances: dict[int, Decimal | int] | None = None
    period_starts: list[dt.date] = field(default_factory=list)
    period_ends: list[dt.date] = field(default_factory=list)
    included_used: dict[dt.date, int] = field(default_factory=dict)

    @property
    def rounding(self) -> RoundingRule:
        c = self.contract
        return RoundingRule(increment_minutes=c.rounding_increment, direction=c.rounding_direction, minimum_minutes=c.rounding_minimum)

    @property
    def is_money_block(self) -> bool:
        return self.contract.type == Contract.Type.BLOCK_MONEY


class RoutingContext:
    """Contract terms and running balances for one routing pass (one transaction)."""

    def __init__(self) -> None:
        self._by_customer: dict[int, list[ContractTerms]] = {}
        self._terms: dict[int, ContractTerms] = {}
        # Resolved once per pass, not once per entry: what does not change from entry to entry.
        self._candidates: dict[tuple, ContractCandidate] = {}
        self._rates: dict[tuple, RateResolution] = {}
        self._amounts: dict[tuple, Decimal] = {}
        self._rate_dates: dict[int | None, list[dt.date]] = {}

    def candidate(self, terms: ContractTerms, entry: TimeEntry, *, forced: bool, fallback_id: int | None) -> ContractCandidate:
        """The contract as routing sees it for ``entry``. Only a block's balance and a retainer's
        included hours change as entries are routed; every other contract's candidate is the
        same for all entries, so it is made once per (contract, forced, fallback)."""
        c = terms.contract
        if c.is_block or (c.type == Contract.Type.RETAINER and c.included_minutes is not None):
            return _candidate(self, terms, entry, forced=forced, fallback_id=fallback_id)
        key = (c.pk, forced, fallback_id)
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = _candidate(self, terms, entry, forced=forced, fallback_id=fallback_id)
        return found

    def rate(self, terms: ContractTerms | None, entry: TimeEntry) -> RateResolution:
        """``rate_for``, resolved once per (contract, work type, role, after hours, stretch of
        dates between two of the contract's rate changes)."""
        if entry.posted_rate is not None or entry.chosen_rate_item_id:
            return rate_for(terms, entry)
        contract_id = terms.contract.pk if terms else None
        dates = self._rate_dates.get(contract_id)
        if dates is None:
            dates = self._rate_dates[contract_id] = sorted({line.effective_from for line in terms.rate_lines} if terms else ())
        key = (contract_id, entry.work_type_id, entry.role_id, entry.after_hours, bisect.bisect_right(dates, entry.date))
        found = self._rates.get(key)
        if found is None:
            found = self._rates[key] = rate_for(terms, entry)
        return found

    def amount(self, *, minutes: int, hourly_rate: Decimal, currency: str) -> Decimal:
        """``amount_for_minutes``, once per (minutes, rate, currency)."""
        key = (minutes, hourly_rate, currency)
        found = self._amounts.get(key)
        if found is None:
            found = self._amounts[key] = amount_for_minutes(minutes=minutes, hourly_rate=hourly_rate, currency=currency)
        return found

    def preload(self, customer_ids: Iterable[int]) -> None:
        wanted = [pk for pk in set(customer_ids) if pk not in self._by_customer]
        if not wanted:
            return
        contracts = (
            Contract.objects.filter(customer_id__in=wanted)
            .select_related("exclusion_set")
            .prefetch_related("rate_lines", "exclusion_set__work_types", "exclusion_set__roles", "blocks")
        )
        for pk in wanted:
            self._by_customer[pk] = []
        for contract in contracts:
            self._by_customer[contract.customer_id].append(self._load(contract))

    def terms_for_customer(self, customer_id: int) -> list[ContractTerms]:
        self.preload([customer_id])
        return self._by_customer[customer_id]

    def terms(self, contract: Contract) -> ContractTerms:
        if contract.pk not in self._terms:
            self.preload([contract.customer_id])
        return self._terms[contract.pk]

    def loaded(self, contract_id: int) -> ContractTerms:
        return self._terms[contract_id]

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
            blocks=sorted(contract.blocks.all(), key=lambda b: (b.purchased_on, b.pk)),
        )
        self._terms[contract.pk] = terms
        return terms

    # --- running balances --------------------------------------------------------------------

    def balances(self, terms: ContractTerms) -> dict[int, Decimal | int]:
        if terms.block_balances is None:
            used = {
                row["block_id"]: row
                for row in BlockLedgerEntry.objects.filter(block__contract=terms.contract)
                .values("block_id").annotate(minutes=Sum("minutes"), amount=Sum("amount"))
            }
            terms.block_balances = {}
            for block in terms.blocks:
                row = used.get(block.pk, {})
                if terms.is_money_block:
                    size = block.amount.amount if block.amount else Decimal("0.00")
                    terms.block_balances[block.pk] = size - (row.get("amount") or Decimal("0"))
                else:
                    terms.block_balances[block.pk] = (block.minutes or 0) - (row.get("minutes") or 0)
        return terms.block_balances

    def block_list(self, terms: ContractTerms) -> list[Block]:
        balances = self.balances(terms)
        return [Block(id=b.pk, purchased_on=b.purchased_on, balance=balances[b.pk], expires_on=b.expires_on) for b in terms.blocks]

    def period_start(self, terms: ContractTerms, on: dt.date) -> dt.date:
        """Start of the contract's billing period holding ``on`` (for included hours)."""
        if not terms.period_starts or on > terms.period_ends[-1]:
            terms.period_starts, terms.period_ends = _included_periods(terms.contract, on)
        index = bisect.bisect_right(terms.period_starts, on) - 1
        return terms.period_starts[index] if index >= 0 else on

    def included_used(self, terms: ContractTerms, on: dt.date) -> int:
        start = self.period_start(terms, on)
        if start not in terms.included_used:
            index = terms.period_starts.index(start) if start in terms.period_starts else None
            end = terms.period_ends[index] if index is not None else on
            terms.included_used[start] = (
                TimeAllocation.objects.filter(contract=terms.contract, bucket=Bucket.ABSORBED, entry__date__range=(start, end))
                .aggregate(total=Sum("minutes"))["total"] or 0
            )
        return terms.included_used[start]


def _included_periods(contract: Contract, on: dt.date) -> tuple[list[dt.date], list[dt.date]]:
    """(starts, ends) of the contract's billing periods from its start to a year past ``on``."""
    horizon = max(on, contract.start_date) + dt.timedelta(days=400)
    end = min(contract.end_date, horizon) if contract.end_date else horizon
    periods = contract_periods(start=contract.start_date, end=max(end, contract.start_date),
                               frequency=contract.billing_frequency, anchor_day=contract.anchor_day)
    return [p.start for p in periods], [p.end for p in periods]


def included_period(contract: Contract, on: dt.date) -> tuple[dt.date, dt.date] | None:
    """The billing period of ``contract`` holding ``on``: the span a retainer's included hours count
    over (monthly, quarterly…, from its anchor day). None before the contract starts or after it ends."""
    starts, ends = _included_periods(contract, on)
    index = bisect.bisect_right(starts, on) - 1
    if index < 0 or on > ends[index]:
        return None
    return starts[index], ends[index]


def rate_for(terms: ContractTerms | None, entry: TimeEntry) -> RateResolution:
    """The hourly rate of an entry under a contract's rate lines (or a chosen rate item)."""
    work_type = WorkTypeRef(
        id=entry.work_type_id, name=entry.work_type.name, is_after_hours=entry.work_type.is_after_hours,
        after_hours_multiplier=entry.work_type.after_hours_multiplier,
    )
    role = RoleRef(id=entry.role_id, name=entry.role.name, default_rate=entry.role.default_rate.amount)
    if entry.posted_rate is not None:
        # The admin posted the hourly rate to bill: no tier and no after-hours multiplier on top.
        posted = entry.posted_rate.amount
        return RateResolution(rate=posted, base_rate=posted, rule=RateRule.CONTRACT_DEFAULT, effective_from=entry.date,
                              multiplier=Decimal(1), explanation=f"rate {posted.normalize():f} posted on approval")
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


def _candidate(context: RoutingContext, terms: ContractTerms, entry: TimeEntry, *, forced: bool, fallback_id: int | None) -> ContractCandidate:
    c = terms.contract
    block_minutes = None
    if c.is_block:
        blocks = context.block_list(terms)
        if terms.is_money_block:
            money = available_balance(blocks=blocks, on_date=entry.date, rollover=c.rollover, zero=Decimal("0.00"))
            rate = context.rate(terms, entry).rate
            block_minutes = money_balance_in_minutes(balance=money, hourly_rate=rate) if rate > 0 else 0
        else:
            block_minutes = available_balance(blocks=blocks, on_date=entry.date, rollover=c.rollover, zero=0)
    included = None
    if c.type == Contract.Type.RETAINER and c.included_minutes is not None:
        included = max(c.included_minutes - context.included_used(terms, entry.date), 0)
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


def _decide(context: RoutingContext, entry: TimeEntry, minutes: int) -> tuple[RoutingDecision, str]:
    customer = entry.ticket.customer
    forced_contract = entry.posted_contract or entry.chosen_contract or entry.ticket.default_contract
    routing_entry = Entry(date=entry.date, minutes=minutes, work_type_id=entry.work_type_id, work_type_name=entry.work_type.name, role_id=entry.role_id, role_name=entry.role.name)
    if forced_contract is not None:
        why = ("posted on approval" if entry.posted_contract_id else
               "chosen on the entry" if entry.chosen_contract_id else "the ticket's contract")
        candidate = context.candidate(context.terms(forced_contract), entry, forced=True, fallback_id=None)
        return route_entry(entry=routing_entry, contracts=[candidate]), f"Contract {forced_contract.name}: {why}."
    own = [context.candidate(t, entry, forced=False, fallback_id=customer.default_hourly_contract_id)
           for t in context.terms_for_customer(customer.pk)]
    parent = []
    if customer.parent_id:
        parent = [
            context.candidate(t, entry, forced=False, fallback_id=customer.parent.default_hourly_contract_id)
            for t in context.terms_for_customer(customer.parent_id)
        ]
    return route_entry(entry=routing_entry, contracts=own, parent_contracts=parent), ""


@dataclass
class _Planned:
    allocation: TimeAllocation
    deductions: list[tuple[int, int | Decimal]]  # (block id, minutes or amount)


def _plan(context: RoutingContext, entry: TimeEntry) -> list[_Planned]:
    """Route and rate one entry in memory; updates the context's running balances."""
    if not entry.billable:
        entry.is_unrouted = False
        entry.routing_explanation = "Not billable: not routed to a contract."
        return []
    first, preface = _decide(context, entry, entry.minutes_for_billing)
    if entry.posted_minutes is not None:
        rule, minutes, decision = None, entry.posted_minutes, first  # billed as posted
    elif entry.billable_minutes is not None:
        rule, minutes, decision = None, entry.billable_minutes, first  # billed as given: no rounding, no minimum
    else:
        first_contract = next((s.contract_id for s in first.splits if s.contract_id), None)
        rule = context.loaded(first_contract).rounding if first_contract else RoundingRule()
        minutes = billed_minutes(entry.minutes, rule)
        decision = _decide(context, entry, minutes)[0] if minutes != entry.minutes else first

    planned: list[_Planned] = []
    rate_notes: list[str] = []
    for split in decision.splits:
        terms = context.loaded(split.contract_id) if split.contract_id else None
        contract = terms.contract if terms else None
        allocation = TimeAllocation(entry=entry, contract=contract, bucket=split.bucket, minutes=split.minutes, billed_minutes=split.minutes)
        deductions: list[tuple[int, int | Decimal]] = []
        if contract is not None:
            currency = contract.currency
            resolution = context.rate(terms, entry)
            rate, explanation = resolution.rate, resolution.explanation
            if split.bucket == Bucket.OVERAGE and contract.overage_rate is not None and entry.posted_rate is None:
                rate, explanation = contract.overage_rate.amount, f"overage rate of {contract.name}"
            allocation.rate = Money(rate, currency)
            worth = Money(context.amount(minutes=split.minutes, hourly_rate=rate, currency=currency), currency)
            if split.bucket in (Bucket.CHARGED, Bucket.OVERAGE):
                allocation.amount = worth
            else:
                allocation.value = worth
            allocation.rate_explanation = explanation
            rate_notes.append(f"{contract.name}: {explanation}")
            if split.bucket == Bucket.DEDUCTED and split.minutes:
                deductions = _deduct(context, terms, worth.amount if terms.is_money_block else split.minutes, entry.date)
            if split.bucket == Bucket.ABSORBED and contract.included_minutes is not None and contract.type == Contract.Type.RETAINER:
                start = context.period_start(terms, entry.date)
                terms.included_used[start] = context.included_used(terms, entry.date) + split.minutes
        planned.append(_Planned(allocation=allocation, deductions=deductions))

    entry.is_unrouted = decision.is_unrouted
    lines = ([preface] if preface else []) + [str(step) for step in decision.steps]
    if entry.posted_minutes is not None and entry.posted_minutes != entry.minutes:
        lines.append(f"Posted on approval: {minutes} minutes (logged {entry.minutes}).")
    elif entry.posted_minutes is None and entry.billable_minutes is not None:
        lines.append(f"Billable {_duration(entry.billable_minutes)} of a {_duration(entry.minutes)} visit: "
                     "billed as given, without rounding.")
    elif rule is not None:
        lines.append(f"Logged {_duration(entry.minutes)}: the time worked is billed.")
        if minutes != entry.minutes:
            lines.append(f"Rounded {entry.minutes} → {minutes} minutes ({rule.describe()}).")
    lines += [f"Rate — {note}" for note in rate_notes]
    entry.routing_explanation = "\n".join(lines)
    return planned


def _duration(minutes: int) -> str:
    """``45 min``, ``2 h``, ``1 h 30 min``: how the explanation names a time."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h" + (f" {rest} min" if rest else "")


def _deduct(context: RoutingContext, terms: ContractTerms, quantity, on: dt.date) -> list[tuple[int, int | Decimal]]:
    usage = deduct_from_blocks(blocks=context.block_list(terms), amount=quantity, on_date=on, rollover=terms.contract.rollover)
    balances = context.balances(terms)
    for deduction in usage.deductions:
        balances[deduction.block_id] = deduction.balance_after
    return [(d.block_id, d.amount) for d in usage.deductions]


def clear_routing(entry_ids: list[int]) -> None:
    """Remove earlier routing of these (unbilled) entries: allocations and their deductions.

    An allocation still printed on an invoice (a void one, whose time was released) is not
    deleted but marked superseded: the invoice keeps its lines as issued, and the entry is
    billed from the allocations routing writes next.
    """
    allocation_ids = list(TimeAllocation.objects.filter(entry_id__in=entry_ids).values_list("pk", flat=True))
    if allocation_ids:
        block_ledger_remove(sources=[_source(pk) for pk in allocation_ids])
        invoiced = TimeAllocation.objects.filter(pk__in=allocation_ids, invoice_lines__isnull=False)
        TimeAllocation.objects.filter(pk__in=invoiced.values("pk")).update(superseded_at=timezone.now())
        TimeAllocation.objects.filter(pk__in=allocation_ids).delete()


def _write(entries: list[TimeEntry], plans: list[list[_Planned]]) -> None:
    rows_insert([p.allocation for plan in plans for p in plan], batch_size=CHUNK)
    block_ledger_add(((block_id, planned.allocation.entry.date, _source(planned.allocation.pk), quantity)
                      for plan in plans for planned in plan for block_id, quantity in planned.deductions),
                     batch_size=CHUNK)
    now = timezone.now()
    for entry in entries:
        entry.routed_at = now
    # One statement for the chunk, its values as arrays: much cheaper than bulk_update's CASE chains.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TimeEntry._meta.db_table} e SET is_unrouted = v.unrouted, routing_explanation = v.explanation, "
            "routed_at = %s FROM unnest(%s::bigint[], %s::boolean[], %s::text[]) AS v(id, unrouted, explanation) "
            "WHERE e.id = v.id",
            [now, [e.pk for e in entries], [e.is_unrouted for e in entries], [e.routing_explanation for e in entries]],
        )


def route_entries(entries: Iterable[TimeEntry], *, context: RoutingContext | None = None) -> int:
    """(Re)route and rate unbilled entries, in date order. Call inside a transaction."""
    context = context or RoutingContext()
    entries = sorted(entries, key=lambda e: (e.date, e.pk))
    if any(entry.billed_at is not None for entry in entries):
        raise ValueError("a billed time entry is never re-routed")
    for start in range(0, len(entries), CHUNK):
        clear_routing([e.pk for e in entries[start:start + CHUNK]])
    # Balances are loaded after the old deductions are gone.
    context.preload(
        [e.ticket.customer_id for e in entries]
        + [e.ticket.customer.parent_id for e in entries if e.ticket.customer.parent_id]
    )
    for start in range(0, len(entries), CHUNK):
        chunk = entries[start:start + CHUNK]
        _write(chunk, [_plan(context, entry) for entry in chunk])
    return len(entries)


def entry_route(entry: TimeEntry, *, context: RoutingContext | None = None) -> list[TimeAllocation]:
    """(Re)route and rate one unbilled entry."""
    route_entries([entry], context=context)
    return list(entry.allocations.all())


class _WhatIfContext(RoutingContext):
    """A pass that counts only the entries it plans: included hours start at zero for each
    period, and block balances leave out what the planned entries themselves deducted."""

    def __init__(self, entry_ids: Iterable[int]) -> None:
        super().__init__()
        self._sources = [_source(pk) for pk in TimeAllocation.objects.filter(entry_id__in=list(entry_ids)).values_list("pk", flat=True)]

    def balances(self, terms: ContractTerms) -> dict[int, Decimal | int]:
        if terms.block_balances is None:
            used = {row["block_id"]: row for row in BlockLedgerEntry.objects.filter(block__contract=terms.contract)
                    .exclude(source__in=self._sources).values("block_id").annotate(minutes=Sum("minutes"), amount=Sum("amount"))}
            terms.block_balances = {
                b.pk: ((b.amount.amount if b.amount else Decimal("0.00")) - (used.get(b.pk, {}).get("amount") or Decimal("0"))
                       if terms.is_money_block else (b.minutes or 0) - (used.get(b.pk, {}).get("minutes") or 0))
                for b in terms.blocks}
        return terms.block_balances

    def included_used(self, terms: ContractTerms, on: dt.date) -> int:
        return terms.included_used.setdefault(self.period_start(terms, on), 0)


def entries_plan(entries: Iterable[TimeEntry], *, swap: dict[int, Contract] | None = None,
                 fresh: bool = False) -> list[tuple[TimeEntry, list[TimeAllocation]]]:
    """Route and rate ``entries`` in memory, as if billable, and write nothing: what they would bill.

    ``swap`` puts another contract in a contract's place in its customer's routing order (a
    what-if: the customer on Gold instead of Silver); the entries are then routed afresh
    (``fresh``: included hours and block balances count only these entries). The entries
    handed in are copied; their rows and allocations are left as they are."""
    copies = sorted((replace_entry(entry) for entry in entries), key=lambda e: (e.date, e.pk))
    context = _WhatIfContext([e.pk for e in copies]) if (fresh or swap) else RoutingContext()
    customers = {e.ticket.customer_id for e in copies} | {e.ticket.customer.parent_id for e in copies if e.ticket.customer.parent_id}
    context.preload(customers)
    for old_id, new in (swap or {}).items():
        for customer_id in customers:
            order = context.terms_for_customer(customer_id)
            for index, terms in enumerate(order):
                if terms.contract.pk == old_id:
                    order[index] = context._load(Contract.objects.select_related("exclusion_set").prefetch_related(
                        "rate_lines", "exclusion_set__work_types", "exclusion_set__roles", "blocks").get(pk=new.pk))
    for entry in copies:
        entry.billable = True
        if swap:
            entry.posted_contract = swap.get(entry.posted_contract_id, entry.posted_contract)
            entry.chosen_contract = swap.get(entry.chosen_contract_id, entry.chosen_contract)
    return [(entry, [p.allocation for p in _plan(context, entry)]) for entry in copies]


def replace_entry(entry: TimeEntry) -> TimeEntry:
    """An in-memory copy of an entry (same id and related rows) that planning may change freely."""
    copy = TimeEntry.__new__(TimeEntry)
    copy.__dict__ = {**entry.__dict__, "_state": entry._state}
    return copy
