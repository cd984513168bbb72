"""Running a billing batch: every picked item billed once, in one transaction, at any size.

Periods and charges (a few per contract) become invoice lines through the invoice
services like any other line. Time entries can number a million in a month-end run, so
their lines are written by PostgreSQL from the due rows themselves:

1. The picked time allocations are copied to a temporary table (one scan of the due rows).
2. Items are claimed by the apps that own them (``contracts.periods.periods_claim``,
   ``tickets.bulk``: ``UPDATE … SET billed_at … WHERE billed_at IS NULL``, periods and
   charges locked in id order first): an item another run billed a moment ago is not
   claimed again, and a claim that comes up short bills nothing ("billed by another batch
   a moment ago"). Unique constraints stay the last word: ``BatchItem``'s for periods and
   charges, ``line_time_billed_once`` on the time lines themselves.
3. One draft per contract (or per customer, consolidated) is created with its period and
   charge lines; then the invoices app adds the time lines, their taxes and the invoice
   totals set-based from the temporary table (``invoices.bulk``): the run hands over the
   rows to bill, grouped per contract by amount and work-type tax category.
4. The batch's invoices and items, ticket locks (``tickets.bulk.tickets_lock``) and the
   periods' snapshots follow.

What the run writes per time entry is kept to the minimum, because at a million entries
every row, index entry and foreign-key check counts: one invoice line (the billed-once
record too), its tax rows, and ``billed_at`` on the entry, updated in place (no index
depends on it; see tickets migration 0006).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from billing.due import CHARGED_BUCKETS, Selection, due_summary, riding_contracts
from billing.hooks import batch_ran_on_commit
from billing.models import BatchInvoice, BatchItem, BillingBatch
from billing.readiness import (
    periods_make_ready,
    ready_charges,
    ready_periods,
    ready_time_allocations,
)
from contracts.models import Contract, ContractPeriod, Customer
from contracts.period_charges import period_snapshot_take, periods_lines
from contracts.periods import periods_claim
from contracts.rules.rates import marked_up_price
from invoices import services as invoice_services
from invoices.audit import audit_record
from invoices.bulk import invoice_time_lines_bulk_insert
from invoices.models import Invoice, InvoiceLine
from invoices.services import DraftInput, LineInput
from msp_billing.claims import AlreadyClaimed
from msp_billing.money import line_amount
from tickets.bulk import charges_claim, tickets_lock, time_entries_claim
from tickets.models import Charge, TimeAllocation
from msp_billing.templatetags.formatting import day as format_day

ANOTHER_BATCH = "Nothing was billed: some of the selected items were billed by another batch a moment ago. Reload the page to see what is due now."
NOTHING_DUE = "Nothing was billed: select at least one contract with items due."
TEMP_TABLE = "batch_run_time"
# The run's joins and sorts over a month of time entries stay in memory up to this size
# (per sort or hash, for this transaction only) instead of spilling to temporary files.
RUN_WORK_MEM = "128MB"


def picked_time(*, cutoff: dt.date, selection: Selection) -> QuerySet[TimeAllocation]:
    return ready_time_allocations(cutoff=cutoff).filter(contract_id__in=selection.contract_ids).exclude(
        entry_id__in=selection.excluded_entry_ids)


def split_tickets(selection: Selection) -> list[int]:
    """Tickets whose picked time entries (in the run's temporary table) also have time on a
    contract that is not picked: an entry is billed whole, so such a selection cannot be
    billed as it stands. Every allocation of a ready entry with a contract is ready itself."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            SELECT DISTINCT e.ticket_id FROM {TEMP_TABLE} bt
            JOIN tickets_timeallocation other ON other.entry_id = bt.entry_id AND other.id <> bt.id AND other.superseded_at IS NULL
            JOIN tickets_timeentry e ON e.id = bt.entry_id
            WHERE other.contract_id IS NOT NULL AND other.contract_id <> ALL(%s::bigint[])
            ORDER BY 1 LIMIT 11
        """, [sorted(selection.contract_ids)])
        return [row[0] for row in cursor.fetchall()]


def selection_problems(*, selection: Selection, contracts: dict[int, Contract], split: list[int]) -> list[str]:
    problems = []
    missing = selection.contract_ids - set(contracts)
    if missing:
        problems.append(f"{len(missing)} contract(s) not found")
    if split:
        tickets = ", ".join(f"#{t}" for t in split[:10])
        problems.append(f"time on ticket(s) {tickets} is shared between a picked contract and one left out — "
                        "pick both contracts or leave those entries out")
    return problems


def billing_customer(contract: Contract, consolidated: bool) -> Customer:
    customer = contract.customer
    return customer.parent if consolidated and customer.parent_id else customer


def period_line_inputs(period: ContractPeriod, lines) -> list[LineInput]:
    kinds = {"block": InvoiceLine.SourceKind.BLOCK, "milestone": InvoiceLine.SourceKind.MILESTONE}
    return [
        LineInput(
            description=line.description, quantity=line.quantity, unit_price=line.unit_price, amount=line.amount,
            taxable=period.contract.taxable, tax_category_id=line.tax_category_id,
            source_kind=kinds.get(line.kind, InvoiceLine.SourceKind.PERIOD),
            contract_period_id=period.pk, contract_id=period.contract_id,
            detail={"period": [period.start.isoformat(), period.end.isoformat()], "kind": line.kind},
        )
        for line in lines
    ]


@transaction.atomic
def batch_run(*, name: str, cutoff: dt.date, selection: Selection, consolidated: bool, acting_user,
              origin: str = BillingBatch.Origin.WIZARD, run_key: str | None = None) -> BillingBatch:
    """Save the batch and bill it: items billed, tickets locked, draft invoices created."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the batch a name (Save As)."})
    # Periods missing by the cut-off are stored in the run's own transaction, their contracts
    # locked until it commits, before anything due is read: a contract imported or created
    # a moment ago bills its fees with its time.
    periods_make_ready(cutoff=cutoff)
    if selection.due_token and selection.due_token != due_summary(cutoff=cutoff, details=False).token:
        raise ValidationError("Nothing was billed: what is due changed since this page was loaded (new, changed or "
                              "billed items). Reload the page and check the batch again.")
    if not selection.contract_ids:
        raise ValidationError(NOTHING_DUE)
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in=selection.contract_ids).select_related("customer__parent")}
    periods = sorted(ready_periods(cutoff=cutoff).filter(contract_id__in=contracts).exclude(pk__in=selection.excluded_period_ids),
                     key=lambda p: (p.contract.priority, p.contract_id, p.start))
    charges = list(ready_charges(cutoff=cutoff).filter(contract_id__in=contracts).exclude(pk__in=selection.excluded_charge_ids)
                   .select_related("ticket", "product", "contract").order_by("date", "id"))
    time_sql, time_params = picked_time(cutoff=cutoff, selection=selection).order_by().annotate(
        ticket_id=F("entry__ticket_id"), work_tax_category=F("entry__work_type__tax_category_id")).values(
        "id", "entry_id", "ticket_id", "contract_id", "amount", "bucket", "work_tax_category").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{RUN_WORK_MEM}'")
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{TEMP_TABLE}")
        cursor.execute(f"CREATE TEMP TABLE {TEMP_TABLE} AS {time_sql}", time_params)
        cursor.execute(f"ANALYZE {TEMP_TABLE}")
    problems = selection_problems(selection=selection, contracts=contracts, split=split_tickets(selection))
    if problems:
        raise ValidationError("Nothing was billed: " + "; ".join(problems) + ". Reload the page to see what is due now.")
    with connection.cursor() as cursor:
        # Per contract, amount and the work type's tax category (-1: none): each group's lines
        # have the same figures and taxes.
        cursor.execute(f"""SELECT contract_id, CASE WHEN bucket = ANY(%s::text[]) THEN amount ELSE 0 END AS a,
                                  COALESCE(work_tax_category, -1), count(*)
                           FROM {TEMP_TABLE} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""", [list(CHARGED_BUCKETS)])
        time_groups: dict[int, list[tuple[Decimal, int, int]]] = defaultdict(list)
        for contract_id, amount, category, count in cursor.fetchall():
            time_groups[contract_id].append((amount, category, count))
    # A period with nothing to invoice (an Hourly contract's, a block period without a
    # purchase) is billed along with its contract's other items; alone it makes no invoice.
    lines_of = periods_lines(periods)
    invoiced = {p.contract_id for p in periods if lines_of[p.pk]} | set(time_groups) | {c.contract_id for c in charges}
    periods = [p for p in periods if p.contract_id in invoiced]
    if not (periods or charges or time_groups):
        raise ValidationError(NOTHING_DUE)

    charge_lines = {charge.pk: charge_line_input(charge) for charge in charges}
    picked_total: dict[int, Decimal] = defaultdict(Decimal)
    for period in periods:
        picked_total[period.contract_id] += sum((line.amount for line in lines_of[period.pk]), Decimal(0))
    for charge in charges:
        picked_total[charge.contract_id] += charge_lines[charge.pk].amount
    for contract_id, groups in time_groups.items():
        picked_total[contract_id] += sum((amount * count for amount, _category, count in groups), Decimal(0))
    # 0.00 contracts riding on a charged contract's invoice, read while the items are still unbilled.
    riding = riding_contracts(cutoff=cutoff, selection=selection, zero_ids={pk for pk, total in picked_total.items() if total == 0},
                              billed_to={pk: billing_customer(c, consolidated).pk for pk, c in contracts.items()})
    now = timezone.now()
    try:
        periods_claim(period_ids=[p.pk for p in periods], at=now)
        entries = time_entries_claim(source_table=TEMP_TABLE, at=now)
        charges_claim(charge_ids=[c.pk for c in charges], at=now)
    except AlreadyClaimed:
        raise ValidationError(ANOTHER_BATCH) from None
    try:
        with transaction.atomic():
            batch = BillingBatch.objects.create(name=name[:120], cutoff=cutoff, consolidated=consolidated, origin=origin,
                                                run_key=run_key, created_by=acting_user)
    except IntegrityError:
        raise ValidationError("This scheduled run has already billed its batch.") from None

    # One draft per contract, or per customer when consolidated, with its period and charge lines;
    # a contract billing only 0.00 that shares time entries with a charged one goes on its invoice.
    by_key: dict[tuple, dict] = {}

    def invoice_for(contract: Contract) -> dict:
        customer = billing_customer(contract, consolidated)
        key = (customer.pk,) if consolidated else (customer.pk, riding.get(contract.pk, contract.pk))
        plan = by_key.setdefault(key, {"customer": customer, "contracts": [], "lines": []})
        if contract.pk not in plan["contracts"]:
            plan["contracts"].append(contract.pk)
        return plan

    for period in periods:
        invoice_for(contracts[period.contract_id])["lines"] += period_line_inputs(period, lines_of[period.pk])
    for contract_id in time_groups:
        invoice_for(contracts[contract_id])
    for charge in charges:
        invoice_for(contracts[charge.contract_id])["lines"].append(charge_lines[charge.pk])

    plans = sorted(by_key.values(), key=lambda p: (p["customer"].legal_name, p["customer"].pk, p["contracts"]))
    created = invoice_services.invoice_create_drafts(drafts=[
        DraftInput(customer=plan["customer"], lines=plan["lines"]) for plan in plans],
        acting_user=acting_user)
    invoice_of_contract: dict[int, Invoice] = {}
    line_counts: dict[int, int] = {}
    for plan, invoice in zip(plans, created):
        line_counts[invoice.pk] = len(plan["lines"])
        for contract_id in plan["contracts"]:
            invoice_of_contract[contract_id] = invoice
    try:
        with transaction.atomic():
            time_lines = invoice_time_lines_bulk_insert(
                invoices_by_contract=invoice_of_contract, time_groups=time_groups, line_counts=line_counts,
                contracts=contracts, source_table=TEMP_TABLE, charged_buckets=CHARGED_BUCKETS, acting_user=acting_user)
            BatchInvoice.objects.bulk_create([BatchInvoice(batch=batch, invoice=invoice) for invoice in created])
            BatchItem.objects.bulk_create(
                [BatchItem(batch=batch, invoice=invoice_of_contract[p.contract_id], kind=BatchItem.Kind.PERIOD, period_id=p.pk) for p in periods]
                + [BatchItem(batch=batch, invoice=invoice_of_contract[c.contract_id], kind=BatchItem.Kind.CHARGE, charge_id=c.pk) for c in charges])
    except IntegrityError:
        raise ValidationError(ANOTHER_BATCH) from None
    invoice_ids = sorted({invoice.pk for invoice in invoice_of_contract.values()})
    for period in periods:
        period_snapshot_take(period_id=period.pk)
    tickets = tickets_lock(source_table=TEMP_TABLE, ticket_ids=[c.ticket_id for c in charges if c.ticket_id], at=now)
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{TEMP_TABLE}")
    audit_record(actor=acting_user, action="batch_run", obj=batch, after={
        "name": batch.name, "cutoff": cutoff.isoformat(), "consolidated": consolidated, "invoices": len(invoice_ids),
        "periods": len(periods), "time_entries": entries, "time_lines": time_lines, "charges": len(charges), "tickets": tickets})
    batch_ran_on_commit(batch.pk)
    return batch


def charge_line_input(charge: Charge) -> LineInput:
    contract = charge.contract
    unit = marked_up_price(unit_price=charge.unit_price.amount, markup_percent=charge.markup_percent)
    amount = line_amount(quantity=charge.quantity, unit_price=unit, currency=contract.currency)
    taxable = contract.taxable and (charge.product.taxable if charge.product_id else True)
    where = f" — #{charge.ticket_id} {charge.ticket.title}" if charge.ticket_id else ""
    return LineInput(
        description=f"{charge.description}{where}, {format_day(charge.date)}", quantity=charge.quantity,
        unit_price=Decimal(unit.numerator) / Decimal(unit.denominator), amount=amount, taxable=taxable,
        source_kind=InvoiceLine.SourceKind.CHARGE, charge_id=charge.pk, contract_id=contract.pk,
        product_id=charge.product_id, detail={"ticket": charge.ticket_id, "expense": charge.is_expense},
    )
