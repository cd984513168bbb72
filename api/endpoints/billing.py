"""Batches: the preview (the wizard's figures and its due token), the run (what the preview
showed, refused when it changed since), the list, and e-mailing a batch's invoices."""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from api.endpoints._common import ERRORS, Id, IdempotencyKey, MAX_ID, get_or_404, needs
from api.pagination import IdCursorPagination
from billing import services
from billing.due import due_summary
from billing.models import BillingBatch
from invoices.delivery import invoice_set, invoices_email
from msp_billing.accounts.roles import Capability
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors, check_date

router = Router(tags=["batches"])


class BatchOut(Schema):
    id: int
    name: str
    cutoff: dt.date
    consolidated: bool
    status: str
    origin: str
    created_at: dt.datetime
    generated_at: dt.datetime | None


class SelectionIn(Schema):
    cutoff: dt.date | None = Field(None, description="Bill what is due up to this day; default today.")
    contracts: list[int] = Field(default_factory=list, max_length=10_000,
                                 description="Contract ids to bill; empty: every contract with something due.")
    consolidated: bool = Field(False, description="One invoice per customer instead of one per contract.")


class RunIn(SelectionIn):
    name: str = Field(..., min_length=1, max_length=120)
    due_token: str = Field(..., min_length=1, max_length=64, description="The preview's due_token: the run bills what the preview showed.")


class PreviewOut(Schema):
    cutoff: dt.date
    bills: int
    tickets: int
    hours: Decimal
    by_currency: dict[str, dict[str, Decimal]]
    due_token: str


class EmailJobOut(Schema):
    id: int
    total: int


def _selection(payload: SelectionIn, due_token: str | None = None):
    cutoff = payload.cutoff or tenant_today()
    errors = Errors()
    check_date(errors, "cutoff", cutoff)
    if any(not 1 <= pk <= MAX_ID for pk in payload.contracts):
        errors.add("contracts", "Contract ids are whole numbers from 1.")
    errors.raise_if_any()
    contracts = frozenset(payload.contracts)
    if not contracts and due_token is not None:  # a run of "everything due": the contracts the preview counted
        contracts = due_summary(cutoff=cutoff, selection=None).selection.contract_ids
    return cutoff, services.Selection(contract_ids=contracts, due_token=due_token)


@router.get("", response={200: list[BatchOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def batch_list(request, status: BillingBatch.Status | None = None):
    batches = BillingBatch.objects.all()
    return batches if status is None else batches.filter(status=status)


@router.post("/preview", response={200: PreviewOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def batch_preview(request, payload: SelectionIn, idempotency_key: IdempotencyKey = None):
    """What a run of this selection would bill, from the run's own arithmetic (changes nothing)."""
    cutoff, selection = _selection(payload)
    summary = due_summary(cutoff=cutoff, selection=selection if payload.contracts else None, consolidated=payload.consolidated)
    details = summary.details
    return {"cutoff": cutoff, "bills": details.bills, "tickets": details.tickets, "hours": details.hours,
            "by_currency": details.by_currency, "due_token": summary.token}


@router.post("/run", response={201: BatchOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def batch_run(request, payload: RunIn, idempotency_key: IdempotencyKey = None):
    """Bill the selection into draft invoices; refused (422) when what is due changed since the preview."""
    cutoff, selection = _selection(payload, due_token=payload.due_token)
    batch = services.batch_run(name=payload.name.strip(), cutoff=cutoff, selection=selection,
                               consolidated=payload.consolidated, acting_user=request.user)
    return Status(201, batch)


# After /preview and /run: Django tries the paths in order and "/{batch_id}" would take them.
@router.get("/{batch_id}", response={200: BatchOut, **ERRORS})
@needs(Capability.VIEW_BILLING)
def batch_get(request, batch_id: Id):
    return get_or_404(BillingBatch.objects, "billing batch", pk=batch_id)


@router.post("/{batch_id}/email", response={202: EmailJobOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def batch_email(request, batch_id: Id, idempotency_key: IdempotencyKey = None):
    """E-mail the batch's issued invoices with their PDFs (a worker sends them), as the batch page does."""
    found = invoice_set("batch", batch_id)
    if found is None:
        get_or_404(BillingBatch.objects, "billing batch", pk=batch_id)
    ids = found[0] if found else []
    with transaction.atomic():
        job = invoices_email(invoice_ids=ids, acting_user=request.user)
    return Status(202, job)
