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
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import F

from billing.readiness import ready_charges, ready_periods, ready_time_allocations
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


def _time_and_tickets(*, cutoff: dt.date, selection: Selection | None) -> tuple[list[tuple], int]:
    """Rows (contract, amount, excluded, count, billed minutes, sum of entry ids) of due time,
    and the number of tickets with picked time or charges — one scan of the due rows."""
    time_sql, time_params = _sql(
        ready_time_allocations(cutoff=cutoff).order_by().annotate(k_ticket=F("entry__ticket_id"))
        .values("contract_id", "amount", "bucket", "billed_minutes", "entry_id", "k_ticket")
    )
    charge_sql, charge_params = _sql(ready_charges(cutoff=cutoff).order_by().values("contract_id", "id", "ticket_id"))
    everything = selection is None
    picked = [] if everything else sorted(selection.contract_ids)
    excluded_entries = [] if everything else sorted(selection.excluded_entry_ids)
    excluded_charges = [] if everything else sorted(selection.excluded_charge_ids)
    sql = f"""
        WITH r AS (
            SELECT 't' AS kind, ta.contract_id AS c,
                   CASE WHEN ta.bucket = ANY(%s::text[]) THEN ta.amount ELSE 0 END AS a,
                   ta.billed_minutes AS m, ta.entry_id AS i, ta.k_ticket AS t, ta.entry_id = ANY(%s::bigint[]) AS x
            FROM ({time_sql}) AS ta
            UNION ALL
            SELECT 'c', ch.contract_id, 0, 0, ch.id, ch.ticket_id, ch.id = ANY(%s::bigint[]) FROM ({charge_sql}) AS ch
        ), g AS (
            SELECT kind, c, a, x, t, count(*) AS n, sum(m) AS m, sum(i) AS ids,
                   bool_or((%s OR c = ANY(%s::bigint[])) AND NOT x) AS picked, GROUPING(t) AS per_contract
            FROM r GROUP BY GROUPING SETS ((kind, c, a, x), (t))
        )
        SELECT c, a, x, n, m, ids FROM g WHERE per_contract = 1 AND kind = 't'
        UNION ALL
        SELECT NULL, NULL, NULL, count(*), NULL, NULL FROM g WHERE per_contract = 0 AND t IS NOT NULL AND picked
    """
    params = (list(CHARGED_BUCKETS), excluded_entries, *time_params, excluded_charges, *charge_params, everything, picked)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    tickets = rows.pop()[3]
    return rows, tickets


def due_summary(*, cutoff: dt.date, selection: Selection | None = None, consolidated: bool = False) -> DueSummary:
    """Per contract the total due and the selected balance, the batch details of ``selection``
    (None: everything due, the wizard's pre-selection) and the fingerprint of what is due."""
    time_rows, tickets = _time_and_tickets(cutoff=cutoff, selection=selection)
    periods = list(ready_periods(cutoff=cutoff).order_by("pk"))
    period_lines = periods_lines(periods)
    charges = list(ready_charges(cutoff=cutoff).select_related("contract", "product").order_by("pk"))
    contract_ids = {row[0] for row in time_rows} | {p.contract_id for p in periods} | {c.contract_id for c in charges}
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in=contract_ids).select_related("customer__parent")}
    picked_ids = None if selection is None else selection.contract_ids

    figures: dict[int, ContractDue] = {pk: ContractDue() for pk in contracts}
    # Per invoice the bill would make: customer, and its lines as {(amount, taxable): count}.
    invoices: dict[tuple, tuple[Customer, dict[tuple[Decimal, bool], int]]] = {}
    invoice_of: dict[int, dict[tuple[Decimal, bool], int]] = {}

    def lines_of(contract: Contract) -> dict[tuple[Decimal, bool], int]:
        lines = invoice_of.get(contract.pk)
        if lines is None:
            customer = contract.customer.parent if consolidated and contract.customer.parent_id else contract.customer
            key = (customer.pk,) if consolidated else (customer.pk, contract.pk)
            lines = invoice_of[contract.pk] = invoices.setdefault(key, (customer, defaultdict(int)))[1]
        return lines

    due_time: dict[int, list] = defaultdict(lambda: [0, 0, Decimal(0)])
    minutes = 0
    for contract_id, amount, excluded, count, billed_minutes, ids in time_rows:
        contract = contracts[contract_id]
        row = figures[contract_id]
        value = amount * count
        row.total += value
        row.entries += count
        seen = due_time[contract_id]
        seen[0] += count
        seen[1] += ids
        seen[2] += value
        if not excluded and (picked_ids is None or contract_id in picked_ids):
            row.selected += value
            lines_of(contract)[(amount, contract.taxable)] += count
            minutes += billed_minutes
    fingerprint: list[tuple] = [("t", contract_id, seen[0], seen[1], str(seen[2])) for contract_id, seen in sorted(due_time.items())]
    for period in periods:
        contract = contracts[period.contract_id]
        row = figures[contract.pk]
        row.periods += 1
        chosen = (selection is None or (contract.pk in selection.contract_ids and period.pk not in selection.excluded_period_ids))
        for line in period_lines[period.pk]:
            row.total += line.amount
            if chosen:
                row.selected += line.amount
                lines_of(contract)[(line.amount, contract.taxable)] += 1
        fingerprint.append(("p", period.pk, str(sum((line.amount for line in period_lines[period.pk]), Decimal(0)))))
    for charge in charges:
        contract = contracts[charge.contract_id]
        amount = line_amount(quantity=charge.quantity, unit_price=charge_unit_price(charge), currency=contract.currency)
        row = figures[contract.pk]
        row.charges += 1
        row.total += amount
        if selection is None or (contract.pk in selection.contract_ids and charge.pk not in selection.excluded_charge_ids):
            row.selected += amount
            taxable = contract.taxable and (charge.product.taxable if charge.product_id else True)
            lines_of(contract)[(amount, taxable)] += 1
        fingerprint.append(("c", charge.pk, str(amount)))

    details = BatchDetails(tickets=tickets, hours=(Decimal(minutes) / 60).quantize(Decimal("0.01")))
    draft_lines = DraftLineFigures()
    specs_cache: dict = {}
    for customer, lines in invoices.values():
        if not lines:
            continue
        details.bills += 1
        currency = customer.currency
        if draft_lines.adjusted:  # shares of an invoice discount or surcharge depend on every line
            keys = list(lines)
            result = invoice_preview_totals(customer=customer, lines=[LineInput(description="-", amount=a, taxable=t) for a, t in keys],
                                            counts=[lines[k] for k in keys], config=draft_lines.config, specs_cache=specs_cache)
            subtotal, tax, total = result.total - result.tax_total, result.tax_total, result.total
        else:
            subtotal = tax = Decimal(0)
            for (amount, taxable), count in lines.items():
                subtotal += amount * count
                tax += draft_lines.line(amount, taxable=taxable, tax_exempt=customer.tax_exempt, currency=currency).tax_amount * count
            total = subtotal + tax
        sums = details.by_currency.setdefault(currency, {"billable": Decimal(0), "tax": Decimal(0), "total": Decimal(0)})
        sums["billable"] += subtotal
        sums["tax"] += tax
        sums["total"] += total
    token = hashlib.sha256(repr(fingerprint).encode()).hexdigest()[:40]
    return DueSummary(contracts={pk: row for pk, row in figures.items()}, details=details, token=token)
