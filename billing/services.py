"""Billing batches: plan, run, release, generate (DESIGN.md §2 "Billing batches").

* ``batch_plan`` turns a selection (contracts, and within them periods, time entries and
  charges) into the invoices a run would create — the preview and the run use the same plan.
* ``batch_run`` bills the plan in one transaction: items are locked and checked, marked
  billed, their tickets locked, one draft invoice created per contract (or per customer
  when consolidated), and each item recorded in ``BatchItem`` whose unique constraints
  make billing an item twice impossible.
* ``batch_invoice_delete`` and ``batch_delete`` release items for rebilling.
* ``batch_generate`` issues the drafts (numbers; PDFs follow in the background).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing.due import BatchDetails, Selection, due_summary
from billing.models import BatchItem, BillingBatch
from billing.readiness import ready_charges, ready_periods, ready_time_allocations
from billing.selectors import charge_unit_price
from contracts.models import Contract, ContractPeriod, Customer
from contracts.period_charges import period_lines, period_snapshot_take
from contracts.rules.routing import Bucket
from invoices import services as invoice_services
from invoices.audit import audit_record
from invoices.models import Invoice, InvoiceLine
from invoices.services import LineInput
from msp_billing.money import line_amount
from tickets.models import Charge, Ticket, TimeAllocation, TimeEntry

HOURS = Decimal("0.0001")
PAID_OR_EXPORTED = "paid or exported"


@dataclass
class PlannedInvoice:
    customer: Customer
    contracts: list[Contract] = field(default_factory=list)
    lines: list[LineInput] = field(default_factory=list)
    period_ids: set[int] = field(default_factory=set)
    allocation_ids: set[int] = field(default_factory=set)
    charge_ids: set[int] = field(default_factory=set)
    entry_ids: set[int] = field(default_factory=set)
    ticket_ids: set[int] = field(default_factory=set)
    minutes: int = 0


def _entry_line(allocation: TimeAllocation) -> LineInput:
    entry = allocation.entry
    hours = (Decimal(allocation.billed_minutes) / 60).quantize(HOURS)
    what = f"#{entry.ticket_id} {entry.ticket.title} — {entry.work_type.name}, {entry.date:%d %b %Y}, {entry.technician}"
    detail = {"ticket": entry.ticket_id, "entry": entry.pk, "minutes": entry.minutes, "billed_minutes": allocation.billed_minutes,
              "bucket": allocation.bucket, "rate_rule": allocation.rate_explanation}
    charged = allocation.bucket in (Bucket.CHARGED, Bucket.OVERAGE)
    if not charged:
        covered = "deducted from the block" if allocation.bucket == Bucket.DEDUCTED else "covered by the contract"
        what += f" ({covered})"
    elif allocation.bucket == Bucket.OVERAGE:
        what += " (overage)"
    return LineInput(
        description=what, quantity=hours, unit_price=allocation.rate.amount if allocation.rate else Decimal(0),
        amount=allocation.amount.amount if charged else Decimal("0.00"), taxable=allocation.contract.taxable,
        source_kind=InvoiceLine.SourceKind.TIME, time_allocation_id=allocation.pk, contract_id=allocation.contract_id,
        detail=detail,
    )


def _charge_line(charge: Charge) -> LineInput:
    contract = charge.contract
    currency = contract.currency
    unit = charge_unit_price(charge)
    amount = line_amount(quantity=charge.quantity, unit_price=unit, currency=currency)
    taxable = contract.taxable and (charge.product.taxable if charge.product_id else True)
    where = f" — #{charge.ticket_id} {charge.ticket.title}" if charge.ticket_id else ""
    return LineInput(
        description=f"{charge.description}{where}, {charge.date:%d %b %Y}", quantity=charge.quantity,
        unit_price=Decimal(unit.numerator) / Decimal(unit.denominator), amount=amount, taxable=taxable,
        source_kind=InvoiceLine.SourceKind.CHARGE, charge_id=charge.pk, contract_id=contract.pk,
        product_id=charge.product_id, detail={"ticket": charge.ticket_id, "expense": charge.is_expense},
    )


def _period_lines(period: ContractPeriod) -> list[LineInput]:
    kinds = {"block": InvoiceLine.SourceKind.BLOCK, "milestone": InvoiceLine.SourceKind.MILESTONE}
    return [
        LineInput(
            description=line.description, quantity=line.quantity, unit_price=line.unit_price, amount=line.amount,
            taxable=period.contract.taxable, source_kind=kinds.get(line.kind, InvoiceLine.SourceKind.PERIOD),
            contract_period_id=period.pk, contract_id=period.contract_id,
            detail={"period": [period.start.isoformat(), period.end.isoformat()], "kind": line.kind},
        )
        for line in period_lines(period=period)
    ]


def _billing_customer(contract: Contract, consolidated: bool) -> Customer:
    customer = contract.customer
    return customer.parent if consolidated and customer.parent_id else customer


def batch_plan(*, cutoff: dt.date, selection: Selection, consolidated: bool, strict: bool = True) -> list[PlannedInvoice]:
    """The invoices a run over ``selection`` would create: everything due on the picked
    contracts except the items left out. With ``strict``, unknown contracts and time
    entries split between a picked and an unpicked contract are errors."""
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in=selection.contract_ids).select_related("customer__parent")}
    periods = list(ready_periods(cutoff=cutoff).filter(contract_id__in=contracts).exclude(pk__in=selection.excluded_period_ids))
    picked_time = ready_time_allocations(cutoff=cutoff).filter(contract_id__in=contracts).exclude(entry_id__in=selection.excluded_entry_ids)
    allocations = list(
        picked_time.select_related("entry__ticket", "entry__work_type", "entry__technician", "contract__customer__parent")
        .order_by("entry__date", "entry_id", "id")
    )
    charges = list(
        ready_charges(cutoff=cutoff).filter(contract_id__in=contracts).exclude(pk__in=selection.excluded_charge_ids)
        .select_related("ticket", "product", "contract__customer__parent").order_by("date", "id")
    )
    if strict:
        problems = []
        missing_contracts = selection.contract_ids - set(contracts)
        if missing_contracts:
            problems.append(f"{len(missing_contracts)} contract(s) not found")
        split = split_entries(cutoff=cutoff, selection=selection)
        if split:
            tickets = ", ".join(f"#{t}" for t in sorted(split)[:10])
            problems.append(f"time on ticket(s) {tickets} is shared between a picked contract and one left out — "
                            "pick both contracts or leave those entries out")
        if problems:
            raise ValidationError("Nothing was billed: " + "; ".join(problems) + ". Reload the page to see what is due now.")

    plans: dict[tuple, PlannedInvoice] = {}

    def plan_for(contract: Contract) -> PlannedInvoice:
        customer = _billing_customer(contract, consolidated)
        key = (customer.pk,) if consolidated else (customer.pk, contract.pk)
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = PlannedInvoice(customer=customer)
        if contract not in plan.contracts:
            plan.contracts.append(contract)
        return plan

    for period in sorted(periods, key=lambda p: (p.contract.priority, p.contract_id, p.start)):
        plan = plan_for(contracts[period.contract_id])
        plan.lines.extend(_period_lines(period))
        plan.period_ids.add(period.pk)
    for allocation in allocations:
        plan = plan_for(allocation.contract)
        plan.lines.append(_entry_line(allocation))
        plan.allocation_ids.add(allocation.pk)
        plan.entry_ids.add(allocation.entry_id)
        plan.ticket_ids.add(allocation.entry.ticket_id)
        plan.minutes += allocation.billed_minutes
    for charge in charges:
        plan = plan_for(charge.contract)
        plan.lines.append(_charge_line(charge))
        plan.charge_ids.add(charge.pk)
        if charge.ticket_id:
            plan.ticket_ids.add(charge.ticket_id)
    return [plan for plan in plans.values() if plan.lines]


def split_entries(*, cutoff: dt.date, selection: Selection) -> set[int]:
    """Tickets whose due, picked time entries also have time on a contract not picked (an
    entry is billed whole, so such a selection cannot be billed as it stands)."""
    picked = ready_time_allocations(cutoff=cutoff).filter(contract_id__in=selection.contract_ids).exclude(
        entry_id__in=selection.excluded_entry_ids)
    return set(
        ready_time_allocations(cutoff=cutoff).filter(entry_id__in=picked.values("entry_id"))
        .exclude(contract_id__in=selection.contract_ids).values_list("entry__ticket_id", flat=True).distinct()
    )


def batch_details(*, cutoff: dt.date, selection: Selection | None, consolidated: bool = False) -> BatchDetails:
    """The wizard's live figures for ``selection`` (None: everything due)."""
    return due_summary(cutoff=cutoff, selection=selection, consolidated=consolidated).details


def _lock_items(plans: list[PlannedInvoice]) -> None:
    """Lock every item in id order (no deadlocks between runs) and make sure none is billed."""
    period_ids = sorted(set().union(*(p.period_ids for p in plans)))
    entry_ids = sorted(set().union(*(p.entry_ids for p in plans)))
    charge_ids = sorted(set().union(*(p.charge_ids for p in plans)))
    billed = (
        ContractPeriod.objects.select_for_update().filter(pk__in=period_ids).order_by("pk").exclude(billed_at=None).count()
        + TimeEntry.objects.select_for_update().filter(pk__in=entry_ids).order_by("pk").exclude(billed_at=None).count()
        + Charge.objects.select_for_update().filter(pk__in=charge_ids).order_by("pk").exclude(billed_at=None).count()
    )
    if billed:
        raise ValidationError(f"Nothing was billed: {billed} of the selected items were billed by another batch a moment ago. "
                              "Reload the page to see what is due now.")


@transaction.atomic
def batch_run(*, name: str, cutoff: dt.date, selection: Selection, consolidated: bool, acting_user,
              origin: str = BillingBatch.Origin.WIZARD, run_key: str | None = None) -> BillingBatch:
    """Save the batch and bill it: items billed, tickets locked, draft invoices created."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Give the batch a name (Save As)."})
    if selection.due_token and selection.due_token != due_summary(cutoff=cutoff).token:
        raise ValidationError("Nothing was billed: what is due changed since this page was loaded (new, changed or "
                              "billed items). Reload the page and check the batch again.")
    plans = batch_plan(cutoff=cutoff, selection=selection, consolidated=consolidated)
    if not plans:
        raise ValidationError("Nothing was billed: select at least one contract with items due.")
    _lock_items(plans)
    try:
        with transaction.atomic():
            batch = BillingBatch.objects.create(name=name[:120], cutoff=cutoff, consolidated=consolidated, origin=origin,
                                                run_key=run_key, created_by=acting_user)
    except IntegrityError:
        raise ValidationError("This scheduled run has already billed its batch.") from None
    now = timezone.now()
    items: list[BatchItem] = []
    for plan in plans:
        invoice = invoice_services.invoice_create_draft(customer=plan.customer, lines=plan.lines, acting_user=acting_user,
                                                        notes=f"Billing batch {batch.name}")
        items += [BatchItem(batch=batch, invoice=invoice, kind=BatchItem.Kind.PERIOD, period_id=pk) for pk in plan.period_ids]
        items += [BatchItem(batch=batch, invoice=invoice, kind=BatchItem.Kind.TIME, allocation_id=pk) for pk in plan.allocation_ids]
        items += [BatchItem(batch=batch, invoice=invoice, kind=BatchItem.Kind.CHARGE, charge_id=pk) for pk in plan.charge_ids]
        for period_id in plan.period_ids:
            period_snapshot_take(period_id=period_id)
    try:
        with transaction.atomic():
            BatchItem.objects.bulk_create(items)
    except IntegrityError:
        raise ValidationError("Nothing was billed: some items were billed by another batch a moment ago.") from None
    period_ids = [i.period_id for i in items if i.period_id]
    entry_ids = set().union(*(p.entry_ids for p in plans))
    charge_ids = [i.charge_id for i in items if i.charge_id]
    ticket_ids = set().union(*(p.ticket_ids for p in plans))
    ContractPeriod.objects.filter(pk__in=period_ids).update(billed_at=now)
    TimeEntry.objects.filter(pk__in=entry_ids).update(billed_at=now)
    Charge.objects.filter(pk__in=charge_ids).update(billed_at=now)
    Ticket.objects.filter(pk__in=ticket_ids, billed_at__isnull=True).update(billed_at=now)
    audit_record(actor=acting_user, action="batch_run", obj=batch, after={
        "name": batch.name, "cutoff": cutoff.isoformat(), "consolidated": consolidated, "invoices": len(plans),
        "periods": len(period_ids), "time_entries": len(entry_ids), "charges": len(charge_ids), "tickets": len(ticket_ids)})
    return batch


def _release(items: list[BatchItem]) -> None:
    """Make items unbilled again; a ticket unlocks once none of its items is billed."""
    allocation_ids = [i.allocation_id for i in items if i.allocation_id]
    entry_ids = set(TimeAllocation.objects.filter(pk__in=allocation_ids).values_list("entry_id", flat=True))
    charge_ids = [i.charge_id for i in items if i.charge_id]
    period_ids = [i.period_id for i in items if i.period_id]
    ticket_ids = set(TimeEntry.objects.filter(pk__in=entry_ids).values_list("ticket_id", flat=True)) | set(
        Charge.objects.filter(pk__in=charge_ids, ticket__isnull=False).values_list("ticket_id", flat=True))
    BatchItem.objects.filter(pk__in=[i.pk for i in items]).delete()
    TimeEntry.objects.filter(pk__in=entry_ids).update(billed_at=None)
    Charge.objects.filter(pk__in=charge_ids).update(billed_at=None)
    ContractPeriod.objects.filter(pk__in=period_ids).update(billed_at=None)
    still_billed = set(TimeEntry.objects.filter(ticket_id__in=ticket_ids, billed_at__isnull=False).values_list("ticket_id", flat=True)) | set(
        Charge.objects.filter(ticket_id__in=ticket_ids, billed_at__isnull=False).values_list("ticket_id", flat=True))
    Ticket.objects.filter(pk__in=ticket_ids - still_billed).update(billed_at=None)


def _releasable(invoice: Invoice) -> None:
    if invoice.exported_at or invoice.amount_paid:
        raise ValidationError(f"Invoice {invoice.number or invoice.pk} is {PAID_OR_EXPORTED}: correct it with a credit note instead.")


@transaction.atomic
def batch_invoice_delete(*, batch_id: int, invoice_id: int, acting_user) -> None:
    """Take one draft invoice out of its batch; its items become unbilled again."""
    batch = BillingBatch.objects.select_for_update().get(pk=batch_id)
    items = list(BatchItem.objects.filter(batch=batch, invoice_id=invoice_id))
    if not items:
        raise Invoice.DoesNotExist  # not an invoice of this batch
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    if invoice.status != Invoice.Status.DRAFT:
        raise ValidationError(f"Invoice {invoice.number} is issued: void it or credit it instead of deleting it.")
    _release(items)
    invoice_services.invoice_delete_draft(invoice_id=invoice.pk, acting_user=acting_user)
    audit_record(actor=acting_user, action="batch_invoice_deleted", obj=batch, after={"invoice": invoice_id, "released_items": len(items)})


@transaction.atomic
def batch_delete(*, batch_id: int, acting_user) -> int:
    """Delete a batch and release every item. Drafts are deleted; issued invoices are voided
    (their numbers stay, so the series has no gap). Refused if any invoice is paid or exported."""
    batch = BillingBatch.objects.select_for_update().get(pk=batch_id)
    invoice_ids = set(batch.items.values_list("invoice_id", flat=True))
    invoices = list(Invoice.objects.select_for_update().filter(pk__in=invoice_ids).order_by("pk"))
    for invoice in invoices:
        _releasable(invoice)
    items = list(batch.items.all())
    _release(items)
    for invoice in invoices:
        if invoice.status == Invoice.Status.DRAFT:
            invoice_services.invoice_delete_draft(invoice_id=invoice.pk, acting_user=acting_user)
        elif invoice.status != Invoice.Status.VOID:
            invoice_services.invoice_void(invoice_id=invoice.pk, acting_user=acting_user, reason=f"Billing batch {batch.name} deleted")
    audit_record(actor=acting_user, action="batch_deleted", obj=batch, before={"name": batch.name, "invoices": len(invoices), "items": len(items)})
    batch.delete()
    return len(items)


@transaction.atomic
def batch_generate(*, batch_id: int, acting_user, issue_date: dt.date | None = None) -> list[int]:
    """Issue every draft of the batch (numbers in order; PDFs render in the background)."""
    batch = BillingBatch.objects.select_for_update().get(pk=batch_id)
    drafts = batch_invoices(batch).filter(status=Invoice.Status.DRAFT)
    issued = [invoice_services.invoice_issue(invoice_id=invoice.pk, acting_user=acting_user, issue_date=issue_date).pk for invoice in drafts]
    batch.status = BillingBatch.Status.GENERATED
    batch.generated_at = timezone.now()
    batch.save(update_fields=["status", "generated_at"])
    audit_record(actor=acting_user, action="batch_generated", obj=batch, after={"issued": len(issued)})
    return issued


def batch_invoices(batch: BillingBatch):
    ids = BatchItem.objects.filter(batch=batch).values("invoice_id")
    return Invoice.objects.filter(pk__in=ids).select_related("customer").order_by("customer__legal_name", "pk")


def selection_everything_due(*, cutoff: dt.date, contract_ids=None) -> Selection:
    """Everything due by the cut-off, overdue included (the wizard's pre-selection)."""
    due = set(Contract.objects.filter(contracts_with_due_items(cutoff=cutoff)).values_list("pk", flat=True))
    if contract_ids is not None:
        due &= set(contract_ids)
    return Selection(contract_ids=frozenset(due))


def contracts_with_due_items(*, cutoff: dt.date) -> Q:
    """Lookup for contracts that have anything due by the cut-off."""
    return (
        Q(pk__in=ready_periods(cutoff=cutoff).values("contract_id"))
        | Q(pk__in=ready_time_allocations(cutoff=cutoff).values("contract_id"))
        | Q(pk__in=ready_charges(cutoff=cutoff).values("contract_id"))
    )
