"""What is due by a cut-off, summed per contract and per invoice a batch would create.

The Create New Batch page, its live batch details and the run's staleness check read one
summary built here with a fixed number of queries, however many contracts and items are
due: time and charges are summed by PostgreSQL in one pass (grouped by contract and line
amount, and — in the same scan — by ticket for the ticket count), contract periods are
priced in Python (a few per contract). Taxes are still computed per line by
``invoices.calculation``, with each line's tax codes resolved as the run resolves them
(``contracts.rules.taxes``: item tax category, contract override, customer codes, tenant
default; an untaxed customer last): lines with the same amount and the same resolved tax
codes on the same invoice have the same figures, so each distinct (amount, taxable, codes)
is calculated once and multiplied by its count. Time is grouped by its work type's tax
category in the same SQL pass.

A ``Selection`` is what the admin picked: contracts, and within them the single periods,
time entries and charges left out. Everything else due on a picked contract is billed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.db import connection
from django.db.models import F

from billing.readiness import (
    periods_make_ready,
    ready_charges,
    ready_periods,
    ready_time_allocations,
)
from billing.selectors import charge_unit_price
from contracts.models import Contract, Customer
from contracts.period_charges import periods_lines
from contracts.rules.routing import Bucket
from invoices.services import DraftLineFigures, LineInput, invoice_preview_totals
from msp_billing.money import line_amount

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


def _sql(queryset) -> tuple[str, tuple]:
    sql, params = queryset.query.sql_with_params()
    return sql, tuple(params)


def _due_time(*, cutoff: dt.date, selection: Selection | None) -> tuple[list[tuple], int]:
    """Due time per (contract, line amount, left out?): entries, billed minutes, sum of entry
    ids; and the number of tickets with picked time or charges. Two plain aggregates, which
    PostgreSQL runs in parallel over the due rows."""
    time_qs = ready_time_allocations(cutoff=cutoff).order_by()
    time_sql, time_params = _sql(time_qs.annotate(k_ticket=F("entry__ticket_id"), k_tax_category=F("entry__work_type__tax_category_id")).values(
        "contract_id", "amount", "bucket", "billed_minutes", "entry_id", "k_ticket", "k_tax_category"))
    everything = selection is None
    excluded_entries = [] if everything else sorted(selection.excluded_entry_ids)
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT ta.contract_id, CASE WHEN ta.bucket = ANY(%s::text[]) THEN ta.amount ELSE 0 END, ta.entry_id = ANY(%s::bigint[]),
                   ta.k_tax_category, count(*), sum(ta.billed_minutes), sum(ta.entry_id)
            FROM ({time_sql}) AS ta GROUP BY 1, 2, 3, 4
        """, (list(CHARGED_BUCKETS), excluded_entries, *time_params))
        rows = cursor.fetchall()
        if not everything and not selection.contract_ids:
            return rows, 0
        picked_time, picked_charges = time_qs, ready_charges(cutoff=cutoff).order_by().filter(ticket__isnull=False)
        if not everything:
            # Usually nearly every contract is picked: filter by the few that are not.
            left_out = sorted({row[0] for row in rows} - selection.contract_ids)
            if left_out:
                picked_time = picked_time.exclude(contract_id__in=left_out)
            if selection.excluded_entry_ids:
                picked_time = picked_time.exclude(entry_id__in=selection.excluded_entry_ids)
            picked_charges = picked_charges.filter(contract_id__in=selection.contract_ids).exclude(pk__in=selection.excluded_charge_ids)
        ticket_sql, ticket_params = _sql(picked_time.annotate(ticket_id=F("entry__ticket_id")).values("ticket_id"))
        charge_sql, charge_params = _sql(picked_charges.values("ticket_id"))
        cursor.execute(f"""
            SELECT count(*) FROM (
                SELECT ticket_id FROM ({ticket_sql}) AS te GROUP BY 1
                UNION SELECT ticket_id FROM ({charge_sql}) AS ch
            ) AS tickets
        """, (*ticket_params, *charge_params))
        tickets = cursor.fetchone()[0]
    return rows, tickets


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


def due_summary(*, cutoff: dt.date, selection: Selection | None = None, consolidated: bool = False) -> DueSummary:
    """Per contract the total due and the selected balance, the batch details of ``selection``
    (None: everything due, the wizard's pre-selection) and the fingerprint of what is due.
    Periods missing by the cut-off are stored first, so they are listed, priced and billed."""
    periods_make_ready(cutoff=cutoff)
    time_rows, tickets = _due_time(cutoff=cutoff, selection=selection)
    periods = list(ready_periods(cutoff=cutoff).order_by("pk"))
    period_lines = periods_lines(periods)
    # A period with nothing to invoice makes nothing due (the run bills it along with its
    # contract's other items).
    periods = [p for p in periods if period_lines[p.pk]]
    charges = list(ready_charges(cutoff=cutoff).select_related("contract", "product").order_by("pk"))
    contract_ids = {row[0] for row in time_rows} | {p.contract_id for p in periods} | {c.contract_id for c in charges}
    # Plain rows, not model instances: the page may list thousands of contracts.
    contracts = {row[0]: _ContractInfo(*row) for row in Contract.objects.filter(pk__in=contract_ids).values_list(
        "pk", "taxable", "customer_id", "customer__parent_id", "tax_codes", "customer__tax_codes")}
    customer_ids = {c.customer_id for c in contracts.values()} | {c.parent_id for c in contracts.values() if c.parent_id}
    draft_lines = DraftLineFigures()
    customers = {
        customer.pk: _CustomerInfo(customer.pk, customer.currency, customer.untaxed_on(draft_lines.tax_date), customer.tax_codes)
        for customer in Customer.objects.filter(pk__in=customer_ids).only(
            "pk", "currency", "tax_exempt", "tax_exemption_expires", "reverse_charge", "tax_codes")}
    figures: dict[int, ContractDue] = {pk: ContractDue() for pk in contracts}
    bills: dict[tuple, _Bill] = {}
    bill_of: dict[int, _Bill] = {}

    def picked(contract_id: int) -> bool:
        return selection is None or contract_id in selection.contract_ids

    def bill_for(contract: _ContractInfo) -> _Bill:
        bill = bill_of.get(contract.pk)
        if bill is None:
            customer = customers[contract.parent_id if consolidated and contract.parent_id else contract.customer_id]
            key = (customer.pk,) if consolidated else (customer.pk, contract.pk)
            bill = bill_of[contract.pk] = bills.setdefault(key, _Bill(customer=customer))
        return bill

    def add_line(bill: _Bill, contract: _ContractInfo, amount: Decimal, taxable: bool, category_id: int | None,
                 count: int) -> None:
        """Lines of one amount and tax category: their tax (memoised per amount and resolved
        tax codes), or kept whole for the exact path."""
        bill.has_lines = True
        customer = bill.customer
        is_taxable, codes = draft_lines.codes_for(taxable=taxable, category_id=category_id,
                                                  contract_codes=contract.tax_codes,
                                                  customer_codes=contract.customer_tax_codes or customer.tax_codes)
        if draft_lines.adjusted:
            bill.lines[(amount, is_taxable, codes)] += count
        else:
            bill.tax += draft_lines.line(amount, taxable=is_taxable, tax_exempt=customer.untaxed, codes=codes,
                                         currency=customer.currency).tax_amount * count

    due_time: dict[int, list] = defaultdict(lambda: [0, 0, Decimal(0)])
    minutes = 0
    for contract_id, amount, excluded, category_id, count, billed_minutes, ids in time_rows:
        row = figures[contract_id]
        value = amount * count
        row.total += value
        row.entries += count
        seen = due_time[contract_id]
        seen[0] += count
        seen[1] += ids
        seen[2] += value
        if not excluded and picked(contract_id):
            contract = contracts[contract_id]
            row.selected += value
            minutes += billed_minutes
            bill = bill_for(contract)
            bill.subtotal += value
            add_line(bill, contract, amount, contract.taxable, category_id, count)
    fingerprint: list[tuple] = [("t", contract_id, seen[0], seen[1], str(seen[2])) for contract_id, seen in sorted(due_time.items())]
    for period in periods:
        contract = contracts[period.contract_id]
        row = figures[contract.pk]
        row.periods += 1
        chosen = picked(contract.pk) and (selection is None or period.pk not in selection.excluded_period_ids)
        for line in period_lines[period.pk]:
            row.total += line.amount
            if chosen:
                row.selected += line.amount
                bill = bill_for(contract)
                bill.subtotal += line.amount
                add_line(bill, contract, line.amount, contract.taxable, line.tax_category_id, 1)
        fingerprint.append(("p", period.pk, str(sum((line.amount for line in period_lines[period.pk]), Decimal(0)))))
    for charge in charges:
        contract = contracts[charge.contract_id]
        amount = line_amount(quantity=charge.quantity, unit_price=charge_unit_price(charge), currency=charge.contract.currency)
        row = figures[contract.pk]
        row.charges += 1
        row.total += amount
        if picked(contract.pk) and (selection is None or charge.pk not in selection.excluded_charge_ids):
            row.selected += amount
            bill = bill_for(contract)
            bill.subtotal += amount
            add_line(bill, contract, amount, contract.taxable and (charge.product.taxable if charge.product_id else True),
                     charge.product.tax_category_id if charge.product_id else None, 1)
        fingerprint.append(("c", charge.pk, str(amount)))

    details = BatchDetails(tickets=tickets, hours=(Decimal(minutes) / 60).quantize(Decimal("0.01")))
    specs_cache: dict = {}
    for bill in bills.values():
        if not bill.has_lines:
            continue
        details.bills += 1
        customer = bill.customer
        if draft_lines.adjusted:  # shares of an invoice discount or surcharge depend on every line
            keys = list(bill.lines)
            result = invoice_preview_totals(customer=Customer.objects.get(pk=customer.pk),
                                            lines=[LineInput(description="-", amount=a, taxable=t, tax_rate_codes=c) for a, t, c in keys],
                                            counts=[bill.lines[k] for k in keys], config=draft_lines.config, specs_cache=specs_cache)
            subtotal, tax = result.total - result.tax_total, result.tax_total
        else:
            subtotal, tax = bill.subtotal, bill.tax
        sums = details.by_currency.setdefault(customer.currency, {"billable": Decimal(0), "tax": Decimal(0), "total": Decimal(0)})
        sums["billable"] += subtotal
        sums["tax"] += tax
        sums["total"] += subtotal + tax
    token = hashlib.sha256(repr(fingerprint).encode()).hexdigest()[:40]
    return DueSummary(contracts=figures, details=details, token=token)
