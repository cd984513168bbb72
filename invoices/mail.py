"""E-mailing an invoice to the customer with its PDF attached.

``invoice_email_send`` is the user's action: it checks that the invoice can go out (issued,
not void, a billing e-mail to send to, its current PDF rendered), records an
``InvoiceEmail`` and the audit event, and — after commit — queues the task that
delivers it. ``invoice_email_deliver`` is that task's work: it sends through Django's
e-mail backend and marks the e-mail sent; run again for a sent e-mail, it does nothing.

The task lives in ``invoices.tasks``, which calls this module; so that this module need
not import the tasks back, ``InvoicesConfig.ready`` registers how a queued e-mail reaches
a worker (``register_email_delivery``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from invoices import selectors
from invoices.audit import audit_record
from invoices.models import Invoice, InvoiceEmail
from invoices.pdf import seller_name, pdf_is_stored

logger = logging.getLogger(__name__)

_queue_delivery: Callable[[int], None] | None = None


def register_email_delivery(queue: Callable[[int], None]) -> None:
    """``queue(email_id)`` hands a recorded e-mail to a worker; called once at start-up."""
    global _queue_delivery
    _queue_delivery = queue


def invoice_recipient(invoice: Invoice) -> str:
    """The customer's billing e-mail as it is now, else the one frozen on the invoice at issue."""
    return (invoice.customer.billing_email or invoice.customer_email or "").strip()


def invoice_email_refusal(invoice: Invoice) -> str | None:
    """Why ``invoice`` cannot be e-mailed now, or None when it can."""
    label = "credit note" if invoice.is_credit_note else "invoice"
    if invoice.status == Invoice.Status.DRAFT:
        return f"Issue the {label} before e-mailing it."
    if invoice.status == Invoice.Status.VOID:
        return f"{invoice} is void; it is not sent to the customer."
    if not invoice_recipient(invoice):
        name = invoice.customer.display_name or invoice.customer.legal_name
        return f"{name} has no billing e-mail. Add one on the customer's page, then send the {label}."
    if selectors.current_pdf(invoice) is None:
        return f"The PDF of {invoice} is still being prepared; try again in a moment."
    return None


@transaction.atomic
def invoice_email_send(*, invoice_id: int, acting_user) -> InvoiceEmail:
    """Queue the e-mail of ``invoice_id`` with its current PDF to the customer's billing e-mail."""
    queue = _queue_delivery
    if queue is None:
        raise RuntimeError("no e-mail delivery is registered: the invoices app is not ready")
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice_id)
    refusal = invoice_email_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    pdf = selectors.current_pdf(invoice)
    email = InvoiceEmail.objects.create(invoice=invoice, pdf=pdf, to=invoice_recipient(invoice),
                                        requested_by=acting_user if getattr(acting_user, "pk", None) else None)
    audit_record(actor=acting_user, action="invoice_email_queued", obj=invoice,
                 after={"to": email.to, "pdf_version": pdf.version})
    transaction.on_commit(lambda: queue(email.pk))
    return email


def _message(email: InvoiceEmail, content: bytes) -> EmailMessage:
    invoice = email.invoice
    seller = seller_name()
    context = {"invoice": invoice, "seller_name": seller,
               "title": "Credit note" if invoice.is_credit_note else "Invoice",
               "customer_name": invoice.customer_name or invoice.customer.legal_name}
    subject = f"{context['title']} {invoice.number} from {seller}".strip()
    body = render_to_string("invoices/email/invoice_email.txt", context)
    message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[email.to])
    message.attach(f"{invoice.number}.pdf", content, "application/pdf")
    return message


def invoice_email_deliver(*, email_id: int) -> InvoiceEmail:
    """Send a queued invoice e-mail (a sent one is left alone). A failure is recorded, then raised for a retry."""
    failure: Exception | None = None
    with transaction.atomic():
        email = InvoiceEmail.objects.select_for_update(of=("self",)).select_related("invoice__customer", "pdf") \
            .get(pk=email_id)
        if email.status == InvoiceEmail.Status.SENT:
            return email
        invoice = email.invoice
        # The copy that is current now: an invoice edited after the request goes out as edited.
        pdf = selectors.current_pdf(invoice) or email.pdf
        if pdf is None or not pdf_is_stored(pdf):
            email.status = InvoiceEmail.Status.FAILED
            email.error = "The invoice's PDF is not available."
            email.save(update_fields=["status", "error"])
            return email
        with default_storage.open(pdf.file.name, "rb") as handle:
            content = handle.read()
        try:
            _message(email, content).send()
        except Exception as error:  # noqa: BLE001 — recorded, then raised for the task's retry
            logger.warning("sending invoice e-mail %s failed", email_id, exc_info=True)
            email.status = InvoiceEmail.Status.FAILED
            email.error = str(error)[:2000] or type(error).__name__
            email.save(update_fields=["status", "error"])
            failure = error
        else:
            email.status = InvoiceEmail.Status.SENT
            email.sent_at = timezone.now()
            email.pdf = pdf
            email.error = ""
            email.save(update_fields=["status", "sent_at", "pdf", "error"])
            audit_record(actor=email.requested_by, action="invoice_emailed", obj=invoice,
                         after={"to": email.to, "pdf_version": pdf.version})
    if failure is not None:
        raise failure
    return email
