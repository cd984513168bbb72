"""Reads for integrations: documents to export, open failures, runs, mappings."""
from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Prefetch, QuerySet

from integrations.models import ExportRun, IntegrationLog
from invoices.models import Invoice, InvoiceLine, InvoiceLineTax

EXPORTABLE_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID, Invoice.Status.PAID)


def documents_for_export(*, ids: Sequence[int]) -> list[Invoice]:
    """The invoices / credit notes ``ids`` with everything an export reads, in the order asked.

    Ids that do not exist in this MSP's schema are simply absent (callers compare).
    """
    lines = InvoiceLine.objects.select_related("product", "rate_item").prefetch_related(
        Prefetch("taxes", queryset=InvoiceLineTax.objects.order_by("sort_order", "id"))
    ).order_by("sort_order", "id")
    found = {
        invoice.pk: invoice
        for invoice in Invoice.objects.filter(pk__in=list(ids))
        .select_related("customer", "credited_invoice")
        .prefetch_related(Prefetch("lines", queryset=lines))
    }
    return [found[pk] for pk in ids if pk in found]


def open_failures() -> QuerySet[IntegrationLog]:
    """Failed calls nobody has resolved yet, newest first (dashboard, accounting page, e-mail)."""
    return (IntegrationLog.objects.filter(outcome=IntegrationLog.Outcome.FAILED, resolved_at__isnull=True)
            .select_related("invoice").order_by("-created_at", "-id"))


def recent_runs(*, limit: int = 10) -> QuerySet[ExportRun]:
    return ExportRun.objects.order_by("-created_at", "-id")[:limit]


def recent_log(*, limit: int = 50) -> QuerySet[IntegrationLog]:
    return IntegrationLog.objects.select_related("invoice").order_by("-created_at", "-id")[:limit]
