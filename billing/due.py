"""What is due by a cut-off, summed per contract and per invoice a batch would create.

The Create New Batch page, its live batch details and the run's staleness check read one
summary built here with a fixed number of queries, however many contracts and items are
due: time and charges are summed by PostgreSQL in one pass (grouped by contract and line
amount, and — in the same scan — by ticket for the ticket count), contract periods are
priced in Python (a few per contract). Taxes are still computed per line by
``invoices.calculation``: lines with the same amount on the same invoice have the same
figures, so each distinct amount is calculated once and multiplied by its count.

A ``Selection`` is what the admin picked: contracts, and within them the single periods,
time entries and charges left out. Everything else due on a picked contract is billed.
``preselection`` is what is picked before anyone unticks anything (no contract whose due
total is 0.00 unless the tenant issues zero invoices); ``riding_contracts`` which 0.00
contracts go on the invoice of a charged contract they share time entries with — the run
reads both from here, so the details and the run cannot differ.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Callable, NamedTuple

from django.db import connection
from django.db.models import F

from billing.readiness import (
    periods_make_ready,
    ready_charges,
    ready_periods,
    ready_time_allocations,
)
from contracts.models import Contract, Customer
from contracts.period_charges import periods_lines
from contracts.rules.rates import marked_up_amount
from contracts.rules.routing import Bucket
from invoices.services import DraftLineFigures, LineInput, invoice_preview_totals

CHARGED_BUCKETS = (Bucket.CHARGED.value, Bucket.OVERAGE.value)


@dataclass(frozen=True)
class Selection:
    """Contracts to bill, the items of those contracts left out, and the fingerprint of what
    was due when the admin looked (``due_token``; None: bill what is due now)."""

    contract_ids: frozenset[int] = frozenset()
    excluded_period_ids: frozenset[int] = frozenset()
    excluded_entry_ids: frozenset[int] = frozenset()
    excluded_charge_ids: frozenset[int] = frozenset()
    due_token: str | None = None


@dataclass
class ContractDue:
    total: Decimal = Decimal(0)
    selected: Decimal = Decimal(0)
    entries: int = 0
    periods: int = 0
    charges: int = 0


@dataclass
class BatchDetails:
    """The wizard's live figures, from the same invoice arithmetic as the run."""

    bills: int = 0
    tickets: int = 0
    hours: Decimal = Decimal(0)
    by_currency: dict[str, dict[str, Decimal]] = field(default_factory=dict)


@dataclass
class DueSummary:
    contracts: dict[int, ContractDue]
    details: BatchDetails
    token: str
    selection: Selection


def _sql(queryset) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return sql, tuple(params)


def _due_time(*, cutoff: dt.date, excluded_entry_ids: frozenset[int], contract_ids: frozenset[int] | None = None) -> list[tuple]:
    """Due time per (contract, line amount, left out?, the work type's tax category): entries,
    billed minutes, sum of entry ids. One plain aggregate over the due rows (of ``contract_ids``;
    None: every contract)."""
    time_qs = ready_time_allocations(cutoff=cutoff).order_by()
    if contract_ids is not None:
        time_qs = time_qs.filter(contract_id__in=contract_ids)
    time_sql, time_params = _sql(time_qs.annotate(k_ticket=F("entry__ticket_id"), k_tax_category=F("entry__work_type__tax_category_id")).values(
        "contract_id", "amount", "bucket", "billed_minutes", "entry_id", "k_ticket", "k_tax_category"))
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT ta.contract_id, CASE WHEN ta.bucket = ANY(%s::text[]) THEN ta.amount ELSE 0 END, ta.entry_id = ANY(%s::bigint[]),
                   ta.k_tax_category, count(*), sum(ta.billed_minutes), sum(ta.entry_id)
            FROM ({time_sql}) AS ta GROUP BY 1, 2, 3, 4
        """, (list(CHARGED_BUCKETS), sorted(excluded_entry_ids), *time_params))
        return cursor.fetchall()


def _picked_tickets(*, cutoff: dt.date, selection: Selection, due_contracts: set[int]) -> int:
    """The number of tickets with picked time or picked charges."""
    if not selection.contract_ids:
        return 0
    picked_time = ready_time_allocations(cutoff=cutoff).order_by()
    # Usually nearly every contract is picked: filter by the few that are not.
    left_out = sorted(due_contracts - selection.contract_ids)
    if left_out:
        picked_time = picked_time.exclude(contract_id__in=left_out)
    if selection.excluded_entry_ids:
        picked_time = picked_time.exclude(entry_id__in=selection.excluded_entry_ids)
    picked_charges = (ready_charges(cutoff=cutoff).order_by().filter(ticket__isnull=False, contract_id__in=selection.contract_ids)
                      .exclude(pk__in=selection.excluded_charge_ids))
    ticket_sql, ticket_params = _sql(picked_time.annotate(ticket_id=F("entry__ticket_id")).values("ticket_id"))
    charge_sql, charge_params = _sql(picked_charges.values("ticket_id"))
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT count(*) FROM (
                SELECT ticket_id FROM ({ticket_sql}) AS te GROUP BY 1
                UNION SELECT ticket_id FROM ({charge_sql}) AS ch
            ) AS tickets
        """, (*ticket_params, *charge_params))
        return cursor.fetchone()[0]


class _ContractInfo(NamedTuple):
    pk: int
    taxable: bool
    customer_id: int
    parent_id: int | None
    tax_codes: str
    customer_tax_codes: str  # the contract's own customer's (a site's, on a consolidated invoice)


class _CustomerInfo(NamedTuple):
    pk: int
    currency: str
    untaxed: bool  # reverse charge, or an exemption in effect today
    tax_codes: str


@dataclass
class _Bill:
    """One invoice the batch would create: its subtotal, tax, and (when invoice-level
    adjustments need every line) its lines by (amount, taxable)."""

    customer: _CustomerInfo
    subtotal: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    lines: dict = field(default_factory=lambda: defaultdict(int))
    has_lines: bool = False


@dataclass
class _DueItems:
    """The periods (with something to invoice) and charges due, with their amounts."""

    periods: list
    period_lines: dict
    charges: list
    charge_amounts: dict[int, Decimal]

    @classmethod
    def read(cls, *, cutoff: dt.date, contract_ids: frozenset[int] | None) -> _DueItems:
        periods = ready_periods(cutoff=cutoff).order_by("pk")
        charges = ready_charges(cutoff=cutoff).select_related("contract", "product").order_by("pk")
        if contract_ids is not None:
            periods, charges = periods.filter(contract_id__in=contract_ids), charges.filter(contract_id__in=contract_ids)
        periods = list(periods)
        period_lines = periods_lines(periods)
        charges = list(charges)
        charge_amounts = {charge.pk: marked_up_amount(quantity=charge.quantity, unit_price=charge.unit_price.amount,
                                                      markup_percent=charge.markup_percent, currency=charge.contract.currency)
                          for charge in charges}
        # A period with nothing to invoice makes nothing due (the run bills it along with its
        # contract's other items).
        return cls([p for p in periods if period_lines[p.pk]], period_lines, charges, charge_amounts)

    def period_total(self, period) -> Decimal:
        return sum((line.amount for line in self.period_lines[period.pk]), Decimal(0))


def _contract_figures(time_rows: list[tuple], due: _DueItems) -> tuple[dict[int, ContractDue], list[tuple]]:
    """What is due per contract, whatever is selected, and the fingerprint of it."""
    figures: dict[int, ContractDue] = defaultdict(ContractDue)
    due_time: dict[int, list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for contract_id, amount, _excluded, _category, count, _minutes, ids in time_rows:
        row = figures[contract_id]
        value = amount * count
        row.total += value
        row.entries += count
        seen = due_time[contract_id]
        seen[0] += count
        seen[1] += ids
        seen[2] += value
    fingerprint: list[tuple] = [("t", contract_id, seen[0], seen[1], str(seen[2])) for contract_id, seen in sorted(due_time.items())]
    for period in due.periods:
        row = figures[period.contract_id]
        row.periods += 1
        period_total = due.period_total(period)
        row.total += period_total
        fingerprint.append(("p", period.pk, str(period_total)))
    for charge in due.charges:
        amount = due.charge_amounts[charge.pk]
        row = figures[charge.contract_id]
        row.charges += 1
        row.total += amount
        fingerprint.append(("c", charge.pk, str(amount)))
    return dict(figures), fingerprint


def contract_balances(*, cutoff: dt.date, contract_ids: frozenset[int], excluded: Selection) -> dict[int, ContractDue]:
    """What is due on a few contracts (a page of the wizard's list), read for those contracts
    only: per contract the total due and the *selected* balance — what picking it bills, with
    ``excluded``'s items left out. A fixed number of queries, however many contracts the
    tenant has. Periods missing by the cut-off are stored first."""
    if not contract_ids:
        return {}
    periods_make_ready(cutoff=cutoff)
    time_rows = _due_time(cutoff=cutoff, excluded_entry_ids=excluded.excluded_entry_ids, contract_ids=contract_ids)
    due = _DueItems.read(cutoff=cutoff, contract_ids=contract_ids)
    figures, _fingerprint = _contract_figures(time_rows, due)
    for contract_id, amount, left_out, _category, count, _minutes, _ids in time_rows:
        if not left_out:
            figures[contract_id].selected += amount * count
    for period in due.periods:
        if period.pk not in excluded.excluded_period_ids:
            figures[period.contract_id].selected += due.period_total(period)
    for charge in due.charges:
        if charge.pk not in excluded.excluded_charge_ids:
            figures[charge.contract_id].selected += due.charge_amounts[charge.pk]
    return figures


def due_summary(*, cutoff: dt.date, selection: Selection | None = None, consolidated: bool = False,
                preselect: Callable[[dict[int, ContractDue]], frozenset[int]] | None = None, details: bool = True) -> DueSummary:
    """Per contract the total due and the selected balance, the batch details of a selection
    and the fingerprint of what is due.

    The details are for ``selection``; without one, for the contracts ``preselect`` picks
    from the per-contract figures (the wizard's pre-selection of the rows it shows), or else
    for every contract with anything due. ``DueSummary.selection`` is the selection the
    details are for, so the page ticks exactly what its details count. ``details=False``:
    only the per-contract figures and the selection (no selected balances, no details).
    Periods missing by the cut-off are stored first, so they are listed, priced and billed."""
    periods_make_ready(cutoff=cutoff)
    excluded = selection or Selection()
    time_rows = _due_time(cutoff=cutoff, excluded_entry_ids=excluded.excluded_entry_ids)
    due = _DueItems.read(cutoff=cutoff, contract_ids=None)
    periods, period_lines, charges, charge_amounts = due.periods, due.period_lines, due.charges, due.charge_amounts
    contract_ids = {row[0] for row in time_rows} | {p.contract_id for p in periods} | {c.contract_id for c in charges}
    # Plain rows, not model instances: the page may list thousands of contracts.
    contracts = {row[0]: _ContractInfo(*row) for row in Contract.objects.filter(pk__in=contract_ids).values_list(
        "pk", "taxable", "customer_id", "customer__parent_id", "tax_codes", "customer__tax_codes")}
    customer_ids = {c.customer_id for c in contracts.values()} | {c.parent_id for c in contracts.values() if c.parent_id}
    figures, fingerprint = _contract_figures(time_rows, due)

    if preselect is not None:  # the contracts it picks, with the items ``selection`` leaves out
        selection = replace(excluded, contract_ids=frozenset(preselect(figures)))
    elif selection is None:
        selection = Selection(contract_ids=frozenset(figures))
    token = hashlib.sha256(repr(fingerprint).encode()).hexdigest()[:40]
    if not details:
        return DueSummary(contracts=figures, details=BatchDetails(), token=token, selection=selection)

    # What the selection bills, invoice by invoice, as the run will create them.
    draft_lines = DraftLineFigures()
    customers = {
        customer.pk: _CustomerInfo(customer.pk, customer.currency, customer.untaxed_on(draft_lines.tax_date), customer.tax_codes)
        for customer in Customer.objects.filter(pk__in=customer_ids).only(
            "pk", "currency", "tax_exempt", "tax_exemption_expires", "reverse_charge", "tax_codes")}
    bills: dict[tuple, _Bill] = {}
    bill_of: dict[int, _Bill] = {}

    def billed_to(contract: _ContractInfo) -> int:
        return contract.parent_id if consolidated and contract.parent_id else contract.customer_id

    def bill_for(contract: _ContractInfo) -> _Bill:
        bill = bill_of.get(contract.pk)
        if bill is None:
            customer = customers[billed_to(contract)]
            key = (customer.pk,) if consolidated else (customer.pk, riding.get(contract.pk, contract.pk))
            bill = bill_of[contract.pk] = bills.setdefault(key, _Bill(customer=customer))
        return bill

    def add_line(bill: _Bill, contract: _ContractInfo, amount: Decimal, taxable: bool, category_id: int | None,
                 count: int) -> None:
        """Lines of one amount and tax category: their tax (memoised per amount and resolved
        tax codes), or kept whole for the exact path."""
        bill.has_lines = True
        bill.subtotal += amount * count
        customer = bill.customer
        is_taxable, codes = draft_lines.codes_for(taxable=taxable, category_id=category_id,
                                                  contract_codes=contract.tax_codes,
                                                  customer_codes=contract.customer_tax_codes or customer.tax_codes)
        if draft_lines.adjusted:
            bill.lines[(amount, is_taxable, codes)] += count
        else:
            bill.tax += draft_lines.line(amount, taxable=is_taxable, tax_exempt=customer.untaxed, codes=codes,
                                         currency=customer.currency).tax_amount * count

    picked = selection.contract_ids
    minutes = 0
    # (contract, amount, taxable, tax category, count)
    lines: list[tuple[_ContractInfo, Decimal, bool, int | None, int]] = []
    for contract_id, amount, excluded, category_id, count, billed_minutes, _ids in time_rows:
        if not excluded and contract_id in picked:
            contract = contracts[contract_id]
            minutes += billed_minutes
            lines.append((contract, amount, contract.taxable, category_id, count))
    for period in periods:
        if period.contract_id in picked and period.pk not in selection.excluded_period_ids:
            contract = contracts[period.contract_id]
            lines += [(contract, line.amount, contract.taxable, line.tax_category_id, 1) for line in period_lines[period.pk]]
    for charge in charges:
        if charge.contract_id in picked and charge.pk not in selection.excluded_charge_ids:
            contract = contracts[charge.contract_id]
            lines.append((contract, charge_amounts[charge.pk], contract.taxable and (charge.product.taxable if charge.product_id else True),
                          charge.product.tax_category_id if charge.product_id else None, 1))
    for contract, amount, _taxable, _category, count in lines:
        figures[contract.pk].selected += amount * count
    zero = {contract.pk for contract, *_rest in lines if figures[contract.pk].selected == 0}
    riding = riding_contracts(cutoff=cutoff, selection=selection, zero_ids=zero,
                              billed_to={pk: billed_to(c) for pk, c in contracts.items()})
    for contract, amount, taxable, category_id, count in lines:
        add_line(bill_for(contract), contract, amount, taxable, category_id, count)
    tickets = _picked_tickets(cutoff=cutoff, selection=selection, due_contracts=set(contracts))

    preview = BatchDetails(tickets=tickets, hours=(Decimal(minutes) / 60).quantize(Decimal("0.01")))
    specs_cache: dict = {}
    for bill in bills.values():
        if not bill.has_lines:
            continue
        preview.bills += 1
        customer = bill.customer
        if draft_lines.adjusted:  # shares of an invoice discount or surcharge depend on every line
            keys = list(bill.lines)
            result = invoice_preview_totals(customer=Customer.objects.get(pk=customer.pk),
                                            lines=[LineInput(description="-", amount=a, taxable=t, tax_rate_codes=c) for a, t, c in keys],
                                            counts=[bill.lines[k] for k in keys], config=draft_lines.config, specs_cache=specs_cache)
            subtotal, tax = result.total - result.tax_total, result.tax_total
        else:
            subtotal, tax = bill.subtotal, bill.tax
        sums = preview.by_currency.setdefault(customer.currency, {"billable": Decimal(0), "tax": Decimal(0), "total": Decimal(0)})
        sums["billable"] += subtotal
        sums["tax"] += tax
        sums["total"] += subtotal + tax
    return DueSummary(contracts=figures, details=preview, token=token, selection=selection)


def issue_zero_invoices() -> bool:
    """The tenant's choice to bill contracts whose due total is 0.00 without being asked
    (Invoice settings; off by default)."""
    from invoices.models import InvoiceSettings

    return InvoiceSettings.load().issue_zero_invoices


def preselection(figures: dict[int, ContractDue], *, cutoff: dt.date, candidates: set[int] | frozenset[int] | None = None,
                 zero_invoices: bool = False) -> frozenset[int]:
    """The contracts picked before anyone unticks anything: each candidate (None: every
    contract) with something due — except one whose due total is 0.00 (only covered or
    deducted time, no fee), unless the tenant issues zero invoices. A 0.00 contract that
    shares a time entry with a picked one is picked too: an entry is billed whole."""
    with_due = {pk for pk, due in figures.items()
                if (candidates is None or pk in candidates) and (due.entries or due.periods or due.charges)}
    picked = {pk for pk in with_due if zero_invoices or figures[pk].total != 0}
    zero = with_due - picked
    while zero and picked:
        sharing = set(ready_time_allocations(cutoff=cutoff).filter(contract_id__in=zero, entry__allocations__contract_id__in=picked, entry__allocations__superseded_at__isnull=True)
                      .order_by().values_list("contract_id", flat=True).distinct())
        if not sharing:
            break
        picked |= sharing
        zero -= sharing
    return frozenset(picked)


def riding_contracts(*, cutoff: dt.date, selection: Selection, zero_ids: set[int], billed_to: dict[int, int]) -> dict[int, int]:
    """Picked contracts whose picked items come to 0.00 and that share a picked time entry
    with a picked contract that charges something and bills the same customer: their lines
    go on that contract's invoice (contract → the contract whose invoice carries them), so
    an entry split over a block and the contract it runs out into makes no 0.00 invoice."""
    charged = selection.contract_ids - zero_ids
    if not zero_ids or not charged:
        return {}
    pairs = (ready_time_allocations(cutoff=cutoff).filter(contract_id__in=zero_ids, entry__allocations__contract_id__in=charged,
                                                         entry__allocations__superseded_at__isnull=True)
             .exclude(entry_id__in=selection.excluded_entry_ids).order_by()
             .values_list("contract_id", "entry__allocations__contract_id").distinct())
    riding: dict[int, int] = {}
    for contract_id, partner_id in sorted(pairs):
        if contract_id not in riding and billed_to.get(contract_id) == billed_to.get(partner_id):
            riding[contract_id] = partner_id
    return riding
