"""Invoices (with the PDF), credit notes and payments: billing roles read; recording a
payment and issuing a credit note need MANAGE_BILLING and go through ``invoices.services``
(``payment_record``, ``credit_note_create``), as on the invoice page."""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.core.files.storage import default_storage
from django.db import connection
from django.http import FileResponse, Http404
from ninja import Field, FilterLookup, FilterSchema, Query, Router, Schema, Status
from ninja.pagination import paginate

from api.endpoints._common import ERRORS, Id, IdempotencyKey, MAX_ID, get_or_404, needs
from api.pagination import IdCursorPagination
from invoices import selectors, services
from invoices.models import Invoice, Payment
from invoices.pdf import pdf_is_stored
from msp_billing.accounts.roles import Capability

router = Router(tags=["invoices"])


class InvoiceOut(Schema):
    id: int
    kind: str
    number: str | None
    status: str
    customer_id: int
    credited_invoice_id: int | None
    currency: str
    issue_date: dt.date | None
    due_date: dt.date | None
    subtotal: Decimal
    tax_total: Decimal
    total: Decimal
    amount_paid: Decimal
    amount_credited: Decimal
    amount_due: Decimal
    pdf_version: int


class LineOut(Schema):
    id: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    tax_amount: Decimal
    source_kind: str


class InvoiceDetailOut(InvoiceOut):
    lines: list[LineOut]

    @staticmethod
    def resolve_lines(obj):
        return list(obj.lines.all())


class PaymentOut(Schema):
    id: int
    invoice_id: int
    date: dt.date
    amount: Decimal
    method: str
    reference: str


class CreditLineIn(Schema):
    invoice_line: int = Field(..., ge=1, le=MAX_ID, description="Id of a line of the invoice credited.")
    amount: Decimal | None = Field(None, gt=0, max_digits=14, decimal_places=2,
                                   description="Part of the line to credit, before tax; null: all that is left of it.")


class CreditNoteIn(Schema):
    reason: str = Field(..., min_length=1, max_length=1000, description="Printed on the credit note.")
    issue_date: dt.date | None = Field(None, description="null: today in the MSP's time zone.")
    lines: list[CreditLineIn] | None = Field(None, max_length=500, description="null: credit all that is left of the invoice.")


class PaymentIn(Schema):
    amount: Decimal = Field(..., gt=0, max_digits=14, decimal_places=2)
    date: dt.date
    method: Payment.Method = Payment.Method.BANK_TRANSFER
    reference: str = Field("", max_length=200)


class InvoiceFilter(FilterSchema):
    customer: Annotated[int | None, FilterLookup("customer_id"), Field(ge=1, le=MAX_ID)] = None
    status: Invoice.Status | None = None
    issued_from: Annotated[dt.date | None, FilterLookup("issue_date__gte")] = None
    issued_to: Annotated[dt.date | None, FilterLookup("issue_date__lte")] = None


def _invoices(kind: str):
    return Invoice.objects.filter(kind=kind)


@router.get("/invoices", response={200: list[InvoiceOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def invoice_list(request, filters: Query[InvoiceFilter]):
    return filters.filter(_invoices(Invoice.Kind.INVOICE))


@router.get("/invoices/{invoice_id}", response={200: InvoiceDetailOut, **ERRORS})
@needs(Capability.VIEW_BILLING)
def invoice_get(request, invoice_id: Id):
    return get_or_404(_invoices(Invoice.Kind.INVOICE), "invoice", pk=invoice_id)


@router.get("/invoices/{invoice_id}/pdf", response={200: bytes, **ERRORS},
            openapi_extra={"responses": {200: {"description": "The current PDF", "content": {"application/pdf": {
                "schema": {"type": "string", "format": "binary"}}}}}})
@needs(Capability.VIEW_BILLING)
def invoice_pdf(request, invoice_id: Id):
    """The invoice's (or credit note's) current PDF; 404 while it is being rendered, as on the page."""
    invoice = get_or_404(Invoice.objects, "invoice", pk=invoice_id)
    pdf = selectors.current_pdf(invoice)
    if pdf is None or not pdf.file.name.startswith(f"{connection.schema_name}/") or not pdf_is_stored(pdf):
        raise Http404(f"{invoice} has no PDF yet; it is rendered after it is issued.")
    response = FileResponse(default_storage.open(pdf.file.name, "rb"), as_attachment=True,
                            filename=f"{invoice.number}.pdf", content_type="application/pdf")
    response["Cache-Control"] = "private, no-store"
    return response


@router.get("/credit-notes", response={200: list[InvoiceOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def credit_note_list(request, filters: Query[InvoiceFilter]):
    return filters.filter(_invoices(Invoice.Kind.CREDIT_NOTE))


@router.get("/credit-notes/{credit_note_id}", response={200: InvoiceDetailOut, **ERRORS})
@needs(Capability.VIEW_BILLING)
def credit_note_get(request, credit_note_id: Id):
    return get_or_404(_invoices(Invoice.Kind.CREDIT_NOTE), "credit note", pk=credit_note_id)


@router.get("/payments", response={200: list[PaymentOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def payment_list(request, invoice: int | None = Query(None, ge=1, le=MAX_ID), date_from: dt.date | None = None,
                 date_to: dt.date | None = None):
    payments = Payment.objects.all()
    if invoice:
        payments = payments.filter(invoice_id=invoice)
    if date_from:
        payments = payments.filter(date__gte=date_from)
    if date_to:
        payments = payments.filter(date__lte=date_to)
    return payments


@router.post("/invoices/{invoice_id}/payments", response={201: PaymentOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def payment_create(request, invoice_id: Id, payload: PaymentIn, idempotency_key: IdempotencyKey = None):
    """Record a (partial) payment: refused when the invoice cannot take one or more is paid than is due."""
    invoice = get_or_404(_invoices(Invoice.Kind.INVOICE), "invoice", pk=invoice_id)
    payment = services.payment_record(invoice_id=invoice.pk, amount=payload.amount, date=payload.date,
                                      method=payload.method, reference=payload.reference.strip(), acting_user=request.user)
    return Status(201, payment)


@router.post("/invoices/{invoice_id}/credit-notes", response={201: InvoiceDetailOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def credit_note_create(request, invoice_id: Id, payload: CreditNoteIn, idempotency_key: IdempotencyKey = None):
    """Issue a credit note against an issued invoice: all that is left of it, or the lines given."""
    invoice = get_or_404(_invoices(Invoice.Kind.INVOICE), "invoice", pk=invoice_id)
    lines = None if payload.lines is None else [
        services.CreditLineInput(invoice_line_id=line.invoice_line, amount=line.amount) for line in payload.lines]
    credit = services.credit_note_create(invoice_id=invoice.pk, reason=payload.reason, acting_user=request.user,
                                         lines=lines, issue_date=payload.issue_date)
    return Status(201, get_or_404(_invoices(Invoice.Kind.CREDIT_NOTE), "credit note", pk=credit.pk))
