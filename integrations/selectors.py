"""Reads for integrations: documents to export, open failures, runs, mappings."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection as db_connection
from django.db.models import Prefetch, QuerySet

from contracts.models import Customer, Product, RateItem
from integrations.models import ExportRun, IntegrationLog, RemoteMapping, System
from invoices.models import Invoice, InvoiceLine, InvoiceLineTax
from msp_billing.tenants.models import Msp

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


def home_currency() -> str:
    """This MSP's home currency (the tenant's); a QuickBooks company's home currency is taken to be the same."""


    tenant = Msp.objects.filter(schema_name=db_connection.schema_name).only("currency").first()
    return (getattr(tenant, "currency", "") or "USD").upper()


def open_failures() -> QuerySet[IntegrationLog]:
    """Failed calls nobody has resolved yet, newest first (dashboard, accounting page, e-mail)."""
    return (IntegrationLog.objects.filter(outcome=IntegrationLog.Outcome.FAILED, resolved_at__isnull=True)
            .select_related("invoice").order_by("-created_at", "-id"))


@dataclass(frozen=True)
class FailedSync:
    """One open failure as the dashboard shows it."""

    log_id: int
    document: str  # the invoice / credit note number, or what the call was about
    invoice_id: int | None
    system: str  # "QuickBooks Online", "Xero", "file.iif"
    operation: str
    message: str
    error_code: str
    created_at: dt.datetime


@dataclass(frozen=True)
class FailedSyncs:
    count: int
    latest: list[FailedSync]


def failed_syncs_summary(*, latest: int = 5) -> FailedSyncs | None:
    """How many failures are open and the newest ``latest`` of them; None when there are none."""
    failures = open_failures()
    count = failures.count()
    if not count:
        return None
    labels = dict(System.choices)
    rows = [
        FailedSync(log_id=log.pk, invoice_id=log.invoice_id,
                   document=(log.invoice.number or f"Draft #{log.invoice.pk}") if log.invoice else
                   (log.request_summary or log.operation),
                   system=labels.get(log.system, log.system), operation=log.operation, message=log.error,
                   error_code=log.error_code, created_at=log.created_at)
        for log in failures[:latest]
    ]
    return FailedSyncs(count=count, latest=rows)


@dataclass(frozen=True)
class Match:
    """One remembered match, as the accounting page lists it."""

    local_key: str  # "customer:12", "product:3", "rate_item:4"
    local_kind: str  # "Customer", "Product", "Rate item"
    local_name: str
    remote_id: str
    remote_name: str
    currency: str = ""  # customers: their currency in the accounting system, where known


@dataclass(frozen=True)
class MatchGroup:
    key: str  # "customers", "items"
    label: str
    rows: list[Match]


def matches(*, system: str) -> list[MatchGroup]:
    """The customers, then the products and rate items, matched to ``system`` (a group per kind, rows by name)."""

    mappings = list(RemoteMapping.objects.filter(
        system=system, local_type__in=[RemoteMapping.LocalType.CUSTOMER, RemoteMapping.LocalType.PRODUCT,
                                       RemoteMapping.LocalType.RATE_ITEM]))
    names: dict[str, dict[str, str]] = {}
    for local_type, model, field in ((RemoteMapping.LocalType.CUSTOMER, Customer, "legal_name"),
                                     (RemoteMapping.LocalType.PRODUCT, Product, "name"),
                                     (RemoteMapping.LocalType.RATE_ITEM, RateItem, "name")):
        ids = [int(m.local_id) for m in mappings if m.local_type == local_type and m.local_id.isdigit()]
        names[local_type] = {str(pk): name for pk, name in model.objects.filter(pk__in=ids).values_list("pk", field)}
    labels = dict(RemoteMapping.LocalType.choices)
    found: dict[str, list[Match]] = {"customers": [], "items": []}
    for mapping in mappings:
        name = names[mapping.local_type].get(mapping.local_id)
        if name is None:  # deleted here since
            continue
        group = "customers" if mapping.local_type == RemoteMapping.LocalType.CUSTOMER else "items"
        found[group].append(Match(local_key=f"{mapping.local_type}:{mapping.local_id}",
                                  local_kind=labels[mapping.local_type], local_name=name, remote_id=mapping.remote_id,
                                  remote_name=mapping.remote_name,
                                  currency=str((mapping.extra or {}).get("currency", ""))))
    for rows in found.values():
        rows.sort(key=lambda row: (row.local_kind, row.local_name.casefold()))
    return [MatchGroup("customers", "Customers", found["customers"]),
            MatchGroup("items", "Products and rates", found["items"])]


def recent_runs(*, limit: int = 10) -> QuerySet[ExportRun]:
    return ExportRun.objects.order_by("-created_at", "-id")[:limit]


def recent_log(*, limit: int = 50) -> QuerySet[IntegrationLog]:
    return IntegrationLog.objects.select_related("invoice").order_by("-created_at", "-id")[:limit]
