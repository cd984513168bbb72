"""Billing batches: details, run, release, generate (docs/design.md § Billing batches).

* ``batch_details``: the wizard's live figures for a selection (``billing.due``).
* ``batch_run`` (``billing.run``) bills a selection in one transaction: items claimed,
  tickets locked, one draft invoice per contract (or per customer when consolidated);
  periods and charges recorded in ``BatchItem``, time by its invoice lines, whose unique
  constraints make billing an item twice impossible.
* ``batch_invoice_delete`` and ``batch_delete`` release items for rebilling.
* ``batch_generate`` issues the drafts (numbers; PDFs follow in the background).
"""
from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.due import BatchDetails, Selection, due_summary, issue_zero_invoices, preselection
from billing.models import BatchInvoice, BatchItem, BillingBatch
from billing.readiness import (
    ready_charges,
    ready_periods,
    ready_time_allocations,
)
from billing.consequences import (
    Consequences,
    Release,
    delete_consequences,
    draft_delete_consequences,
    generate_consequences,
)
from billing.run import batch_run
from contracts.periods import periods_release
from invoices import services as invoice_services
from invoices.audit import audit_record
from invoices.bulk import invoice_time_lines_release
from invoices.models import Invoice
from tickets.bulk import billed_release

__all__ = ["Selection", "batch_details", "batch_run", "batch_invoice_delete", "batch_delete", "batch_generate",
           "batch_invoices", "selection_everything_due", "contracts_with_due_items"]

CHANGED_SINCE_CONFIRMED = "The batch changed since you confirmed (an invoice or item was added, changed or removed): review what will happen again."


def batch_details(*, cutoff: dt.date, selection: Selection | None, consolidated: bool = False) -> BatchDetails:
    """The wizard's live figures for ``selection`` (None: everything due)."""
    return due_summary(cutoff=cutoff, selection=selection, consolidated=consolidated).details


def _release(release: Release) -> int:
    """Make the released batch items and the time on the released invoices unbilled again; a
    ticket unlocks once none of its items is billed. Returns how many items were released."""
    now = timezone.now()
    BatchItem.objects.filter(pk__in=[i.pk for i in release.items]).delete()
    # Before the time lines are released: the entries are those the released lines billed.
    billed_release(entry_ids=release.entry_ids, charge_ids=release.charge_ids)
    released_time = invoice_time_lines_release(invoice_ids=release.invoice_ids, at=now)
    periods_release(period_ids=release.period_ids)
    return len(release.items) + released_time


def _confirmed(consequences: Consequences, confirmed: str | None) -> Consequences:
    """Refuse when the action is refused, or when it would now do other than what was confirmed."""
    if consequences.refusal:
        raise ValidationError(consequences.refusal)
    if confirmed is not None and confirmed != consequences.token:
        raise ValidationError(CHANGED_SINCE_CONFIRMED)
    return consequences


@transaction.atomic
def batch_invoice_delete(*, batch_id: int, invoice_id: int, acting_user, confirmed: str | None = None) -> None:
    """Take one draft invoice out of its batch; its items become unbilled again. ``confirmed``:
    the token of the consequences the admin saw (``draft_delete_consequences``)."""
    batch = BillingBatch.objects.select_for_update().get(pk=batch_id)
    if not BatchInvoice.objects.filter(batch=batch, invoice_id=invoice_id).exists():
        raise Invoice.DoesNotExist  # not an invoice of this batch
    Invoice.objects.select_for_update().get(pk=invoice_id)
    plan = _confirmed(draft_delete_consequences(batch, invoice_id), confirmed)
    released = _release(plan.release)
    BatchInvoice.objects.filter(batch=batch, invoice_id=invoice_id).delete()
    invoice_services.invoice_delete_draft(invoice_id=invoice_id, acting_user=acting_user)
    audit_record(actor=acting_user, action="batch_invoice_deleted", obj=batch, after={"invoice": invoice_id, "released_items": released})


@transaction.atomic
def batch_delete(*, batch_id: int, acting_user, confirmed: str | None = None) -> int:
    """Delete a batch and release every item. Drafts are deleted; issued invoices are voided
    (their numbers stay, so the series has no gap). Refused if any invoice is paid or exported.
    ``confirmed``: the token of the consequences the admin saw (``delete_consequences``)."""
    batch = BillingBatch.objects.select_for_update().get(pk=batch_id)
    list(Invoice.objects.select_for_update().filter(pk__in=batch.invoice_links.values("invoice_id")).order_by("pk"))
    plan = _confirmed(delete_consequences(batch), confirmed)
    released = _release(plan.release)
    batch.invoice_links.all().delete()
    for invoice in plan.delete:
        invoice_services.invoice_delete_draft(invoice_id=invoice.pk, acting_user=acting_user)
    for invoice in plan.void:
        invoice_services.invoice_void(invoice_id=invoice.pk, acting_user=acting_user, reason=f"Billing batch {batch.name} deleted")
    audit_record(actor=acting_user, action="batch_deleted", obj=batch,
                 before={"name": batch.name, "invoices": plan.count, "items": released})
    batch.delete()
    return released


@transaction.atomic
def batch_generate(*, batch_id: int, acting_user, issue_date: dt.date | None = None, confirmed: str | None = None) -> list[int]:
    """Issue every draft of the batch (numbers in order; PDFs render in the background).
    ``confirmed``: the token of the consequences the admin saw (``generate_consequences``)."""
    batch = BillingBatch.objects.select_for_update().get(pk=batch_id)
    plan = generate_consequences(batch, issue_date=issue_date)
    if plan.issue or confirmed is not None:
        _confirmed(plan, confirmed)
    issued = [invoice_services.invoice_issue(invoice_id=invoice.pk, acting_user=acting_user, issue_date=issue_date).pk
              for invoice in plan.issue]
    batch.status = BillingBatch.Status.GENERATED
    batch.generated_at = timezone.now()
    batch.save(update_fields=["status", "generated_at"])
    audit_record(actor=acting_user, action="batch_generated", obj=batch, after={"issued": len(issued)})
    return issued


def batch_invoices(batch: BillingBatch):
    ids = BatchInvoice.objects.filter(batch=batch).values("invoice_id")
    return Invoice.objects.filter(pk__in=ids).select_related("customer").order_by("customer__legal_name", "pk")


def selection_everything_due(*, cutoff: dt.date, contract_ids=None) -> Selection:
    """What a run with nothing left out bills: every contract (of ``contract_ids``, None:
    all) with anything due by the cut-off, overdue included — but not a contract whose due
    total is 0.00 unless the tenant issues zero invoices (``billing.due.preselection``).
    Periods missing by the cut-off are stored first (``due_summary``), so a contract with
    only a fee due is picked."""
    candidates = None if contract_ids is None else set(contract_ids)
    zero_invoices = issue_zero_invoices()
    summary = due_summary(cutoff=cutoff, details=False, preselect=lambda figures: preselection(
        figures, cutoff=cutoff, candidates=candidates, zero_invoices=zero_invoices))
    return Selection(contract_ids=summary.selection.contract_ids)


def contracts_with_due_items(*, cutoff: dt.date) -> Q:
    """Lookup for contracts that have anything due by the cut-off."""
    return (
        Q(pk__in=ready_periods(cutoff=cutoff).values("contract_id"))
        | Q(pk__in=ready_time_allocations(cutoff=cutoff).values("contract_id"))
        | Q(pk__in=ready_charges(cutoff=cutoff).values("contract_id"))
    )
