"""E-mailing an invoice to the customer with its PDF attached.

One path for every e-mail, whether one invoice from its page or a whole batch:

* ``invoice_recipients``: To (the billing e-mail and the "to" contacts) and Cc (the "cc"
  contacts), each address once.
* ``invoice_email_content``: subject and body from the MSP's template (Invoice settings),
  its placeholders filled (``PLACEHOLDERS``).
* ``invoice_email_claim_row``: the one row per invoice and version (``InvoiceEmail``); a
  version already sent gets no second row unless it is an explicit resend.
* ``invoice_email_send``: the user's action on the invoice page (first e-mail or resend);
  records the row and the audit event, and after commit queues ``invoice_email_deliver``.
* ``invoice_email_deliver``: the worker's part. It claims the row (queued or failed →
  sending) in a committed update *before* handing the message to the mail server, sends,
  then marks it sent or failed with the reason. A row that is sending or sent is never
  claimed again, so a retried task or job cannot send the same version twice.

The task lives in ``invoices.tasks``, which calls this module; so that this module need
not import the tasks back, ``InvoicesConfig.ready`` registers how a queued e-mail reaches
a worker (``register_email_delivery``).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from invoices import selectors
from invoices.audit import audit_record
from invoices.models import Invoice, InvoiceEmail, InvoiceEmailJob, InvoiceSettings
from invoices.pdf import pdf_is_stored, seller_name
from msp_billing.templatetags.formatting import day, money

logger = logging.getLogger(__name__)

_queue_delivery: Callable[[int], None] | None = None


def register_email_delivery(queue: Callable[[int], None]) -> None:
    """``queue(email_id)`` hands a recorded e-mail to a worker; called once at start-up."""
    global _queue_delivery
    _queue_delivery = queue


PLACEHOLDERS = {
    "invoice_number": "the invoice's number",
    "customer": "the customer's name as printed on the invoice",
    "total": "the total with its currency",
    "due_date": "the due date",
    "issue_date": "the issue date",
    "seller": "your company's name",
    "document": "Invoice or Credit note",
    "document_lower": "invoice or credit note",
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def template_problems(text: str) -> list[str]:
    """The placeholders in ``text`` that are not in ``PLACEHOLDERS`` (empty: the text is fine)."""
    return sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})


@transaction.atomic
def invoice_email_template_update(*, subject: str, body: str, acting_user) -> InvoiceSettings:
    """Change the MSP's e-mail template; every placeholder must be one of ``PLACEHOLDERS``."""
    from msp_billing.validation import Errors, clean_text

    errors = Errors()
    subject, body = clean_text(subject), (body or "").strip()
    for name, text, limit in (("email_subject", subject, 200), ("email_body", body, 10000)):
        if not text:
            errors.add(name, "Enter the text of the e-mail.")
        elif len(text) > limit:
            errors.add(name, f"At most {limit} characters.")
        unknown = template_problems(text)
        if unknown:
            errors.add(name, "Unknown placeholder " + ", ".join("{" + u + "}" for u in unknown) + ": use "
                       + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + ".")
    errors.raise_if_any()
    row = InvoiceSettings.objects.select_for_update().get(pk=InvoiceSettings.load().pk)
    before = {"email_subject": row.email_subject, "email_body": row.email_body}
    row.email_subject, row.email_body = subject, body + "\n"
    row.save(update_fields=["email_subject", "email_body", "updated_at"])
    audit_record(actor=acting_user, action="invoice_settings_updated", obj=row, before=before,
                 after={"email_subject": row.email_subject, "email_body": row.email_body})
    return row


def _fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.to)


def invoice_recipients(invoice: Invoice) -> Recipients:
    """To: the customer's billing e-mail (else the one frozen on the invoice) and its "to"
    contacts; Cc: its "cc" contacts. Each address once, To first."""
    to: list[str] = []
    cc: list[str] = []
    primary = (invoice.customer.billing_email or invoice.customer_email or "").strip().lower()
    if primary:
        to.append(primary)
    for contact in invoice.customer.billing_contacts.all():
        target = cc if contact.kind == "cc" else to
        if contact.email not in to and contact.email not in cc:
            target.append(contact.email)
    return Recipients(to=tuple(to), cc=tuple(cc))


def invoice_email_refusal(invoice: Invoice, *, need_pdf: bool = True) -> str | None:
    """Why ``invoice`` cannot be e-mailed now, or None when it can. ``need_pdf=False``: a PDF
    still rendering is no reason (a job renders what is missing before it sends)."""
    label = "credit note" if invoice.is_credit_note else "invoice"
    if invoice.status == Invoice.Status.DRAFT:
        return f"Issue the {label} before e-mailing it."
    if invoice.status == Invoice.Status.VOID:
        return f"{invoice} is void; it is not sent to the customer."
    if not invoice_recipients(invoice):
        name = invoice.customer.display_name or invoice.customer.legal_name
        return f"{name} has no billing e-mail. Add one on the customer's page, then send the {label}."
    if need_pdf and selectors.current_pdf(invoice) is None:
        return f"The PDF of {invoice} is still being prepared; try again in a moment."
    return None


@dataclass(frozen=True)
class EmailContent:
    subject: str
    body: str
    attachment: str


def invoice_email_content(invoice: Invoice, template: InvoiceSettings | None = None) -> EmailContent:
    """Subject, body and attachment name of ``invoice``'s e-mail, from the MSP's template."""
    template = template or InvoiceSettings.load()
    document = "Credit note" if invoice.is_credit_note else "Invoice"
    values = {
        "invoice_number": invoice.number or "",
        "customer": invoice.customer_name or invoice.customer.display_name or invoice.customer.legal_name,
        "total": money(invoice.total, invoice.currency),
        "due_date": day(invoice.due_date) if invoice.due_date else "",
        "issue_date": day(invoice.issue_date) if invoice.issue_date else "",
        "seller": seller_name(),
        "document": document,
        "document_lower": document.lower(),
    }
    subject = " ".join(_fill(template.email_subject, values).split())[:300]
    body = _fill(template.email_body, values)
    if invoice.payment_instructions and not invoice.is_credit_note:
        body = f"{body.rstrip()}\n\nHow to pay:\n{invoice.payment_instructions}\n"
    return EmailContent(subject=subject, body=body, attachment=f"{invoice.number}.pdf")


def invoice_email_claim_row(invoice: Invoice, *, acting_user, job=None, resend: bool = False) -> InvoiceEmail | None:
    """The row that sends ``invoice``'s current version (call inside a transaction, the invoice locked).

    Not a resend: the version's one row — created, or a failed one queued again; None when
    the version is already queued, being sent or sent. A resend: a new row of its own.
    """
    version = invoice.pdf_version
    recipients = invoice_recipients(invoice)
    fields = {"to": ", ".join(recipients.to), "cc": ", ".join(recipients.cc),
              "subject": invoice_email_content(invoice).subject,
              "requested_by": acting_user if getattr(acting_user, "pk", None) else None, "job": job}
    if resend:
        return InvoiceEmail.objects.create(invoice=invoice, version=version, resend=True, **fields)
    existing = InvoiceEmail.objects.select_for_update().filter(invoice=invoice, version=version, resend=False).first()
    if existing is None:
        try:
            with transaction.atomic():
                return InvoiceEmail.objects.create(invoice=invoice, version=version, **fields)
        except IntegrityError:  # another request claimed the version first
            return None
    if existing.status != InvoiceEmail.Status.FAILED:
        return None
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.status, existing.error = InvoiceEmail.Status.QUEUED, ""
    existing.save(update_fields=[*fields, "status", "error"])
    return existing


@transaction.atomic
def invoice_email_send(*, invoice_id: int, acting_user) -> InvoiceEmail:
    """E-mail ``invoice_id``'s current version with its PDF: the first time, or again (a resend)."""
    queue = _queue_delivery
    if queue is None:
        raise RuntimeError("no e-mail delivery is registered: the invoices app is not ready")
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=invoice_id)
    refusal = invoice_email_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    email = invoice_email_claim_row(invoice, acting_user=acting_user)
    if email is None:
        if InvoiceEmail.objects.filter(invoice=invoice, version=invoice.pdf_version).exclude(
                status__in=(InvoiceEmail.Status.SENT, InvoiceEmail.Status.FAILED)).exists():
            raise ValidationError(f"{invoice} is already being e-mailed; its state shows on this page.")
        email = invoice_email_claim_row(invoice, acting_user=acting_user, resend=True)
    audit_record(actor=acting_user, action="invoice_email_queued", obj=invoice,
                 after={"to": email.to, "cc": email.cc, "pdf_version": email.version, "resend": email.resend})
    transaction.on_commit(lambda: queue(email.pk))
    return email


def _message(email: InvoiceEmail, content: bytes, *, connection=None) -> EmailMessage:
    invoice = email.invoice
    text = invoice_email_content(invoice)
    message = EmailMessage(subject=email.subject or text.subject, body=text.body, from_email=settings.DEFAULT_FROM_EMAIL,
                           to=email.to_list, cc=email.cc_list, connection=connection)
    message.attach(text.attachment, content, "application/pdf")
    return message


def _claim(email_id: int) -> bool:
    """Queued or failed → sending, committed at once; False when another run has it or sent it."""
    with transaction.atomic():
        return bool(InvoiceEmail.objects.filter(pk=email_id).filter(
            Q(status=InvoiceEmail.Status.QUEUED) | Q(status=InvoiceEmail.Status.FAILED))
            .update(status=InvoiceEmail.Status.SENDING, sending_since=timezone.now(), error=""))


STOPPED_WHILE_SENDING = ("Sending stopped part-way (the mail worker stopped): the customer may or may not have "
                         "received it. Check with them or send it again.")


def invoice_emails_stale(older_than: dt.timedelta | None = None):
    """E-mails "sending" for longer than ``older_than`` (default ``INVOICE_EMAIL_SENDING_STALE_SECONDS``).
    Beat asks this of every MSP at once and runs the sweep only where there are some."""
    if older_than is None:
        older_than = dt.timedelta(seconds=settings.INVOICE_EMAIL_SENDING_STALE_SECONDS)
    return InvoiceEmail.objects.filter(status=InvoiceEmail.Status.SENDING, sending_since__lt=timezone.now() - older_than)


def invoice_emails_stale_fail(*, older_than: dt.timedelta) -> int:
    """E-mails left "sending" for longer than ``older_than`` (their worker died between the claim
    and the answer of the mail server) become failed with the reason, so the invoice list shows
    them and Send or Resend can be used; their jobs count as finished. Returns how many."""
    stale = invoice_emails_stale(older_than)
    job_ids = set(stale.exclude(job=None).values_list("job_id", flat=True))
    count = stale.update(status=InvoiceEmail.Status.FAILED, error=STOPPED_WHILE_SENDING)
    if job_ids:
        (InvoiceEmailJob.objects.filter(pk__in=job_ids, finished_at__isnull=True)
         .exclude(emails__status__in=(InvoiceEmail.Status.QUEUED, InvoiceEmail.Status.SENDING))
         .update(finished_at=timezone.now()))
    if count:
        logger.warning("%s invoice e-mail(s) were left sending and are now marked failed", count)
    return count


def _finish(email: InvoiceEmail, *, error: str = "", pdf=None) -> InvoiceEmail:
    if error:
        email.status, email.error = InvoiceEmail.Status.FAILED, error[:2000]
        email.save(update_fields=["status", "error"])
        return email
    email.status, email.sent_at, email.pdf, email.error = InvoiceEmail.Status.SENT, timezone.now(), pdf, ""
    email.save(update_fields=["status", "sent_at", "pdf", "error"])
    audit_record(actor=email.requested_by, action="invoice_emailed", obj=email.invoice,
                 after={"to": email.to, "cc": email.cc, "pdf_version": pdf.version})
    return email


def invoice_email_deliver(*, email_id: int, connection=None, raise_failure: bool = True) -> InvoiceEmail:
    """Send a queued (or failed) invoice e-mail; one that is being sent or was sent is left alone.

    A missing PDF of the version is rendered first. A failure is recorded with its reason,
    then raised for the task's retry unless ``raise_failure`` is off (a job goes on with
    the next invoice). ``connection``: an open mail connection to reuse (a job's).
    """
    from invoices.pdf import invoice_pdf_ensure

    if not _claim(email_id):
        return InvoiceEmail.objects.get(pk=email_id)
    email = InvoiceEmail.objects.select_related("invoice__customer").get(pk=email_id)
    invoice = email.invoice
    if invoice.status == Invoice.Status.VOID or invoice.pdf_version != email.version:
        reason = "The invoice was voided before it went out." if invoice.status == Invoice.Status.VOID else \
            f"The invoice changed (version {invoice.pdf_version}) before it went out; send it again."
        return _finish(email, error=reason)
    try:
        pdf = selectors.current_pdf(invoice) or invoice_pdf_ensure(invoice_id=invoice.pk, version=email.version)
    except Exception as error:  # noqa: BLE001 — recorded as the reason
        logger.warning("rendering the PDF for invoice e-mail %s failed", email_id, exc_info=True)
        pdf, failure = None, error
    else:
        failure = None
    if pdf is None or not pdf_is_stored(pdf) or pdf.version != email.version:
        return _finish(email, error=f"The invoice's PDF is not available{f': {failure}' if failure else ''}.")
    with default_storage.open(pdf.file.name, "rb") as handle:
        content = handle.read()
    try:
        _message(email, content, connection=connection).send()
    except Exception as error:  # noqa: BLE001 — recorded, then raised for the task's retry
        logger.warning("sending invoice e-mail %s failed", email_id, exc_info=True)
        _finish(email, error=str(error) or type(error).__name__)
        if raise_failure:
            raise
        return email
    return _finish(email, pdf=pdf)
