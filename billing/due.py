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
from invoices.models import InvoiceSettings
from invoices.services import LineInput, invoice_preview_totals
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


@dataclass
class _InvoiceGroup:
    customer: Customer
    lines: list[LineInput] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)


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
    periods = list(ready_periods(cutoff=cutoff))
    period_lines = periods_lines(periods)
    charges = list(ready_charges(cutoff=cutoff).select_related("contract", "product"))
    contract_ids = {row[0] for row in time_rows} | {p.contract_id for p in periods} | {c.contract_id for c in charges}
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in=contract_ids).select_related("customer__parent")}

    def picked(contract_id: int, excluded: bool) -> bool:
        return not excluded and (selection is None or contract_id in selection.contract_ids)

    figures: dict[int, ContractDue] = defaultdict(ContractDue)
    groups: dict[tuple, _InvoiceGroup] = {}
    fingerprint: list[tuple] = []
    due_time: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    minutes = 0

    def group_for(contract: Contract) -> _InvoiceGroup:
        customer = contract.customer.parent if consolidated and contract.customer.parent_id else contract.customer
        key = (customer.pk,) if consolidated else (customer.pk, contract.pk)
        return groups.setdefault(key, _InvoiceGroup(customer=customer))

    def add(contract: Contract, amount: Decimal, count: int, *, chosen: bool) -> None:
        row = figures[contract.pk]
        row.total += amount * count
        if chosen:
            row.selected += amount * count
            group = group_for(contract)
            group.lines.append(LineInput(description="-", amount=amount, taxable=contract.taxable))
            group.counts.append(count)

    for contract_id, amount, excluded, count, billed_minutes, ids in time_rows:
        chosen = picked(contract_id, excluded)
        add(contracts[contract_id], amount, count, chosen=chosen)
        figures[contract_id].entries += count
        minutes += billed_minutes if chosen else 0
        due_time[(contract_id, str(amount))][0] += count
        due_time[(contract_id, str(amount))][1] += ids
    for period in periods:
        contract = contracts[period.contract_id]
        excluded = selection is not None and period.pk in selection.excluded_period_ids
        chosen = picked(contract.pk, excluded)
        figures[contract.pk].periods += 1
        for line in period_lines[period.pk]:
            add(contract, line.amount, 1, chosen=chosen)
        fingerprint.append(("p", period.pk, str(sum((line.amount for line in period_lines[period.pk]), Decimal(0)))))
    for charge in charges:
        contract = contracts[charge.contract_id]
        amount = line_amount(quantity=charge.quantity, unit_price=charge_unit_price(charge), currency=contract.currency)
        excluded = selection is not None and charge.pk in selection.excluded_charge_ids
        taxable = contract.taxable and (charge.product.taxable if charge.product_id else True)
        figures[contract.pk].charges += 1
        figures[contract.pk].total += amount
        if picked(contract.pk, excluded):
            figures[contract.pk].selected += amount
            group = group_for(contract)
            group.lines.append(LineInput(description="-", amount=amount, taxable=taxable))
            group.counts.append(1)
        fingerprint.append(("c", charge.pk, str(amount)))

    fingerprint += [("t", *key, *value) for key, value in due_time.items()]
    details = BatchDetails(tickets=tickets, hours=(Decimal(minutes) / 60).quantize(Decimal("0.01")))
    config = InvoiceSettings.load()
    for group in groups.values():
        if not group.lines:
            continue
        details.bills += 1
        result = invoice_preview_totals(customer=group.customer, lines=group.lines, counts=group.counts, config=config)
        currency = group.customer.currency
        sums = details.by_currency.setdefault(currency, {"billable": Decimal(0), "tax": Decimal(0), "total": Decimal(0)})
        sums["billable"] += result.total - result.tax_total
        sums["tax"] += result.tax_total
        sums["total"] += result.total
    token = hashlib.sha256(repr(sorted(fingerprint, key=repr)).encode()).hexdigest()[:40]
    return DueSummary(contracts=dict(figures), details=details, token=token)
