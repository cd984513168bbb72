"""Background work for invoices: PDFs and e-mail (one invoice, or a job of many). Each task takes ids and calls one service.

Both are ``acks_late`` (and rejected when their worker dies), so a task whose worker is
killed is delivered again; the services make a second run a no-op. Tasks run in the
schema of the MSP that queued them (``@tenant_task``).
"""
from __future__ import annotations

import datetime as dt

from celery.signals import worker_ready
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.db import OperationalError
from django.utils import timezone

from invoices.delivery import email_job_run
from invoices.mail import invoice_email_deliver as deliver_email
from invoices.mail import invoice_email_refusal, invoice_email_send, invoice_emails_stale_fail
from invoices.models import Invoice
from invoices.pdf import invoice_pdf_ensure, invoice_pdfs_ensure, remove_stale_temporaries
from invoices.selectors import current_pdf, invoices_needing_pdf
from msp_billing.tasks import tenant_task


@tenant_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), retry_backoff=True,
             max_retries=5, ignore_result=True)  # progress is read from the database (selectors.pdf_progress)
def invoice_pdf_render(invoice_id: int, version: int | None = None) -> int | None:
    """Render the current PDF of ``invoice_id`` unless it exists; returns the version it has (None: no PDF)."""
    pdf = invoice_pdf_ensure(invoice_id=invoice_id, version=version)
    return pdf.version if pdf is not None else None


@tenant_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), retry_backoff=True,
             max_retries=5, ignore_result=True)
def invoice_pdfs_render(invoice_ids: list[int]) -> int:
    """Render the current PDFs of a chunk of invoices (``invoice_pdfs_ensure``); returns how many have theirs."""
    return sum(1 for pdf in invoice_pdfs_ensure(invoice_ids=invoice_ids).values() if pdf is not None)


# A few invoices still go out as several tasks, so that every worker gets its share.
PDF_TASKS_AT_LEAST = 8


def pdf_chunks(invoice_ids: list[int]) -> list[list[int]]:
    """``invoice_ids`` in chunks of at most ``INVOICE_PDF_CHUNK``, and in at least ``PDF_TASKS_AT_LEAST`` when there are as many."""
    size = max(1, min(settings.INVOICE_PDF_CHUNK, -(-len(invoice_ids) // PDF_TASKS_AT_LEAST)))
    return [invoice_ids[start:start + size] for start in range(0, len(invoice_ids), size)]


def queue_pdf_renders(invoice_ids: list[int]) -> int:
    """Queue renders of many invoices, one task per chunk (``pdf_chunks``); returns the tasks queued."""
    chunks = pdf_chunks(list(invoice_ids))
    for chunk in chunks:
        invoice_pdfs_render.delay(chunk)
    return len(chunks)


@tenant_task
def invoice_pdfs_sweep(missing_for_seconds: int = 0, clean_temporaries: bool = True) -> int:
    """Queue a render for every issued invoice still without its current PDF (a lost task, a deleted file),
    and remove temporary files that killed renders left behind.

    ``missing_for_seconds``: only invoices unchanged for at least that long, each queued again at
    most once per ``INVOICE_PDF_REQUEUE_PAUSE_SECONDS`` (the frequent sweep: a render still
    waiting in a long queue is not queued a second, third… time). Meant for beat and worker start
    through ``msp_billing.tasks.fan_out_to_tenants``; returns how many were queued.
    """
    if clean_temporaries:
        remove_stale_temporaries()
    needing = invoice_pdfs_missing(missing_for_seconds) if missing_for_seconds else invoices_needing_pdf()
    queued = []
    for invoice_id, version in needing.values_list("pk", "pdf_version").iterator():
        if missing_for_seconds and not cache.add(f"invoice-pdf-requeued:{invoice_id}:{version}", True,
                                                 timeout=settings.INVOICE_PDF_REQUEUE_PAUSE_SECONDS):
            continue
        queued.append(invoice_id)
    queue_pdf_renders(queued)
    return len(queued)


@tenant_task
def invoice_emails_stale_sweep() -> int:
    """Mark failed the e-mails left "sending" by a worker that died (``invoices.mail.invoice_emails_stale_fail``)."""
    return invoice_emails_stale_fail(older_than=dt.timedelta(seconds=settings.INVOICE_EMAIL_SENDING_STALE_SECONDS))


def invoice_pdfs_missing(missing_for_seconds: int | None = None):
    """Invoices without their PDF for a while (``INVOICE_PDF_MISSING_AFTER_SECONDS``): what the frequent
    sweep queues. Beat asks this of every MSP at once and runs the sweep only where there are some."""
    seconds = settings.INVOICE_PDF_MISSING_AFTER_SECONDS if missing_for_seconds is None else missing_for_seconds
    return invoices_needing_pdf().filter(updated_at__lte=timezone.now() - dt.timedelta(seconds=seconds))


@worker_ready.connect(weak=False)
def _pdfs_after_worker_start(sender=None, **kwargs) -> None:
    """A worker that starts (after a crash, a deploy, a killed machine) first queues every
    issued invoice's missing PDF in every MSP: renders lost with a killed worker are not
    redelivered before the broker's visibility timeout. A render that is merely still queued
    is queued twice; the second run finds the PDF and does nothing."""
    if settings.INVOICE_PDF_SWEEP_ON_WORKER_START:
        sender.app.send_task("msp_billing.tasks.fan_out_to_tenants",
                             args=("invoices.tasks.invoice_pdfs_sweep", {"clean_temporaries": False}))


@tenant_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(Exception,),
             dont_autoretry_for=(ObjectDoesNotExist,), retry_backoff=30, max_retries=5)
def invoice_email_deliver(email_id: int) -> str:
    """Send one queued invoice e-mail; returns its status."""
    return deliver_email(email_id=email_id).status


def queue_email_job(job_id: int) -> None:
    """How ``invoices.delivery`` hands an e-mail job to a worker (registered in ``InvoicesConfig.ready``)."""
    invoice_email_job_run.delay(job_id)


def queue_email_delivery(email_id: int) -> None:
    """How ``invoices.mail`` hands a recorded e-mail to a worker (registered in ``InvoicesConfig.ready``)."""
    invoice_email_deliver.delay(email_id)


@tenant_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OperationalError,), retry_backoff=True,
             max_retries=5, ignore_result=True)  # progress is read from the database (delivery.email_job_progress)
def invoice_email_job_run(job_id: int) -> int:
    """Send the e-mails of one job (E-mail a batch); returns how many went out in this run."""

    return email_job_run(job_id=job_id)


def queue_pdf_render(*, invoice_id: int, action: str) -> None:
    """Invoice listener (registered in ``InvoicesConfig.ready``): a changed printed invoice gets a new PDF."""
    if action not in PRINTED_CHANGES:
        return
    row = Invoice.objects.filter(pk=invoice_id).values("status", "pdf_version").first()
    if row is None or row["status"] == Invoice.Status.DRAFT:
        return
    invoice_pdf_render.delay(invoice_id, row["pdf_version"])


# The actions after which the printed invoice differs (each raised pdf_version).
PRINTED_CHANGES = frozenset({"issued", "edited", "voided", "credit_note_issued"})


class PdfNotReady(Exception):
    """The invoice's PDF is still being rendered; the e-mail waits for it."""


@tenant_task(bind=True, autoretry_for=(PdfNotReady,), retry_backoff=10, retry_backoff_max=120, max_retries=20, ignore_result=True)
def invoice_email_when_ready(self, invoice_id: int) -> str:
    """E-mail an issued invoice once its PDF exists (scheduled runs in "issue and e-mail" mode).

    Returns what happened: "queued", or why nothing was sent (no billing e-mail, void…);
    a missing PDF retries with back-off rather than failing.
    """
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    if invoice.emails.exists():
        return "already sent"
    if current_pdf(invoice) is None and invoice.status != Invoice.Status.VOID:
        raise PdfNotReady(invoice_id)
    refusal = invoice_email_refusal(invoice)
    if refusal:
        return refusal
    invoice_email_send(invoice_id=invoice_id, acting_user=None)
    return "queued"
