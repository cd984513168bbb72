"""E-mailing a set of invoices at once: the preview, the job that sends them, its progress,
and the delivery state shown beside each invoice.

The set is a billing batch (``?batch=<id>``, resolved by the resolver billing registers
here, since invoices/ knows no batches) or invoices picked on the list (``?invoice=<id>``).
Each invoice goes through ``invoices.mail``: the preview shows exactly what
``invoice_email_content`` and ``invoice_recipients`` will produce, and Send claims one row
per invoice and version, so pressing Send again, or a retried job, sends no version twice.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from invoices.audit import audit_record
from invoices.mail import EmailContent, Recipients, invoice_email_claim_row, invoice_email_content, \
    invoice_email_deliver, invoice_email_refusal, invoice_recipients
from invoices.models import Invoice, InvoiceEmail, InvoiceEmailJob, InvoiceSettings

logger = logging.getLogger(__name__)
MAX_INVOICES = 500

# name → (function(id) returning the invoice ids of that set or None when there is no such set, its page's URL)
_set_resolvers: dict[str, tuple[Callable[[int], list[int] | None], Callable[[int], str]]] = {}


def register_invoice_set(name: str, resolver: Callable[[int], list[int] | None], *, back_url: Callable[[int], str]) -> None:
    """Let ``?<name>=<id>`` name a set of invoices (billing registers ``batch``)."""
    _set_resolvers[name] = (resolver, back_url)


def invoice_set(name: str, pk: int) -> tuple[list[int], str] | None:
    """The invoice ids of the set and the URL of its page, or None when there is no such set."""
    if name not in _set_resolvers:
        return None
    resolver, back_url = _set_resolvers[name]
    ids = resolver(pk)
    return None if ids is None else (ids, back_url(pk))


@dataclass
class PreviewRow:
    invoice: Invoice
    recipients: Recipients | None = None
    content: EmailContent | None = None
    refusal: str | None = None
    already_sent: InvoiceEmail | None = None  # this version went out before: Send skips it

    @property
    def goes(self) -> bool:
        return self.refusal is None and self.already_sent is None


@dataclass
class Preview:
    rows: list[PreviewRow] = field(default_factory=list)

    @property
    def sending(self) -> list[PreviewRow]:
        return [row for row in self.rows if row.goes]

    @property
    def skipped(self) -> list[PreviewRow]:
        return [row for row in self.rows if not row.goes]


def _invoices(invoice_ids: Iterable[int]) -> QuerySet[Invoice]:
    return Invoice.objects.filter(pk__in=list(invoice_ids)).select_related("customer").prefetch_related(
        "customer__billing_contacts").order_by("customer__legal_name", "number", "pk")


def email_preview(invoice_ids: Iterable[int]) -> Preview:
    """What Send would do for each invoice: recipients, subject, body and attachment, or why it is skipped."""
    template = InvoiceSettings.load()
    invoices = list(_invoices(invoice_ids))
    sent = {(e.invoice_id, e.version): e for e in InvoiceEmail.objects.filter(
        invoice__in=invoices, resend=False).exclude(status=InvoiceEmail.Status.FAILED)}
    preview = Preview()
    for invoice in invoices:
        row = PreviewRow(invoice=invoice, refusal=invoice_email_refusal(invoice, need_pdf=False))
        if row.refusal is None:
            row.already_sent = sent.get((invoice.pk, invoice.pdf_version))
            row.recipients = invoice_recipients(invoice)
            row.content = invoice_email_content(invoice, template)
        preview.rows.append(row)
    return preview


_queue_job: Callable[[int], None] | None = None


def register_email_job(queue: Callable[[int], None]) -> None:
    """``queue(job_id)`` hands an e-mail job to a worker; called once at start-up."""
    global _queue_job
    _queue_job = queue


@transaction.atomic
def invoices_email(*, invoice_ids: Iterable[int], acting_user) -> InvoiceEmailJob:
    """Queue the e-mail of every invoice of the set that can go and has not gone in this version;
    the job's task (queued after commit) sends them. Refused when none would go."""
    queue = _queue_job
    if queue is None:
        raise RuntimeError("no e-mail job runner is registered: the invoices app is not ready")
    ids = sorted(set(invoice_ids))
    if len(ids) > MAX_INVOICES:
        raise ValidationError(f"E-mail at most {MAX_INVOICES} invoices at once.")
    invoices = list(Invoice.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk"))
    job = InvoiceEmailJob.objects.create(created_by=acting_user if getattr(acting_user, "pk", None) else None)
    queued = []
    for invoice in _invoices(i.pk for i in invoices):
        if invoice_email_refusal(invoice, need_pdf=False) is None:
            email = invoice_email_claim_row(invoice, acting_user=acting_user, job=job)
            if email is not None:
                queued.append(email)
    if not queued:
        raise ValidationError("Nothing to send: every invoice was already e-mailed in its current version, "
                              "or cannot be e-mailed (see the reasons).")
    job.total = len(queued)
    job.save(update_fields=["total"])
    for email in queued:
        audit_record(actor=acting_user, action="invoice_email_queued", obj=email.invoice,
                     after={"to": email.to, "cc": email.cc, "pdf_version": email.version, "job": job.pk})
    transaction.on_commit(lambda: queue(job.pk))
    return job


def email_job_run(*, job_id: int) -> int:
    """Send the job's queued e-mails through one mail connection; returns how many were sent now.

    Each e-mail is claimed before it is sent (``invoice_email_deliver``): a job run twice, or
    retried after its worker died, skips what was sent or is being sent.
    """
    from django.core.mail import get_connection

    job = InvoiceEmailJob.objects.get(pk=job_id)
    sent = 0
    connection = get_connection()
    try:
        connection.open()
    except Exception:  # noqa: BLE001 — each e-mail tries again and records the reason
        logger.warning("opening the mail connection for e-mail job %s failed", job_id, exc_info=True)
    try:
        for email_id in job.emails.filter(status=InvoiceEmail.Status.QUEUED).order_by("pk").values_list("pk", flat=True):
            email = invoice_email_deliver(email_id=email_id, connection=connection, raise_failure=False)
            sent += email.status == InvoiceEmail.Status.SENT
    finally:
        connection.close()
    InvoiceEmailJob.objects.filter(pk=job.pk, finished_at__isnull=True).update(finished_at=timezone.now())
    return sent


@dataclass(frozen=True)
class JobProgress:
    total: int
    sent: int
    failed: int
    finished: bool

    @property
    def done(self) -> int:
        return self.sent + self.failed


def email_job_progress(job: InvoiceEmailJob) -> JobProgress:
    counts = job.emails.aggregate(sent=Count("pk", filter=Q(status=InvoiceEmail.Status.SENT)),
                                  failed=Count("pk", filter=Q(status=InvoiceEmail.Status.FAILED)),
                                  waiting=Count("pk", filter=Q(status=InvoiceEmail.Status.QUEUED)))
    finished = job.finished_at is not None and not counts["waiting"]
    return JobProgress(total=job.total, sent=counts["sent"], failed=counts["failed"], finished=finished)


def with_email_state(invoices: QuerySet[Invoice]) -> QuerySet[Invoice]:
    """``invoices`` with their latest e-mail's ``email_status``, ``email_error`` and ``email_sent_at``."""
    latest = InvoiceEmail.objects.filter(invoice=OuterRef("pk")).order_by("-requested_at", "-id")
    return invoices.annotate(email_status=Subquery(latest.values("status")[:1]),
                             email_error=Subquery(latest.values("error")[:1]),
                             email_sent_at=Subquery(latest.values("sent_at")[:1]))


def draft_delete_token(invoice: Invoice) -> str:
    """What the delete confirmation of a draft showed: its total, lines and last change."""
    import hashlib

    text = f"{invoice.pk}|{invoice.total}|{invoice.currency}|{invoice.updated_at.isoformat()}|{invoice.lines.count()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def latest_email_job(invoice_ids: Iterable[int]) -> InvoiceEmailJob | None:
    """The newest job that e-mailed any of ``invoice_ids`` (what a batch page shows the progress of)."""
    return InvoiceEmailJob.objects.filter(emails__invoice_id__in=list(invoice_ids)).order_by("-created_at", "-pk").first()
