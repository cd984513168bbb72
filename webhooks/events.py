"""What each event says, and the listeners the inner apps' hooks call (``WebhooksConfig.ready``).

Listeners run after the change is committed, in the MSP's schema. Each reads the row once,
writes the ``data`` of the event (amounts as strings, dates as ISO text) and hands it to
``webhooks.services.event_raise``, which does nothing when no active subscription wants it.
"""
from __future__ import annotations

from typing import Any

from billing.models import BatchInvoice, BillingBatch
from integrations.models import IntegrationLog
from invoices.models import Invoice
from webhooks.models import EventType
from webhooks.services import event_raise, wanted

INVOICE_EVENTS = {
    "issued": EventType.INVOICE_ISSUED,
    "paid": EventType.INVOICE_PAID,
    "voided": EventType.INVOICE_VOIDED,
    "exported": EventType.INVOICE_EXPORTED,
}


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def invoice_data(invoice: Invoice) -> dict[str, Any]:
    return {"invoice": {
        "id": invoice.pk,
        "number": invoice.number,
        "kind": invoice.kind,
        "status": invoice.status,
        "currency": invoice.currency,
        "issue_date": _iso(invoice.issue_date),
        "due_date": _iso(invoice.due_date),
        "subtotal": str(invoice.subtotal),
        "discount_total": str(invoice.discount_total),
        "surcharge_total": str(invoice.surcharge_total),
        "tax_total": str(invoice.tax_total),
        "total": str(invoice.total),
        "amount_paid": str(invoice.amount_paid),
        "amount_credited": str(invoice.amount_credited),
        "amount_due": str(invoice.amount_due),
        "customer": {"id": invoice.customer_id, "name": invoice.display_customer_name,
                     "email": invoice.customer_email or None},
        "exported_to": invoice.exported_to or None,
        "remote_id": invoice.remote_id or None,
        "voided_at": _iso(invoice.voided_at),
        "void_reason": invoice.void_reason or None,
    }}


def on_invoice_changed(*, invoice_id: int, action: str) -> None:
    event_type = INVOICE_EVENTS.get(action)
    if event_type is None or not wanted(event_type):
        return
    invoice = Invoice.objects.select_related("customer").filter(pk=invoice_id).first()
    if invoice is None:
        return
    event_raise(event_type, invoice_data(invoice))


def on_batch_run(*, batch_id: int) -> None:
    if not wanted(EventType.BATCH_RUN):
        return
    batch = BillingBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return
    invoices = list(Invoice.objects.filter(pk__in=BatchInvoice.objects.filter(batch_id=batch_id).values("invoice_id"))
                    .order_by("pk").values("pk", "currency", "total"))
    totals: dict[str, Any] = {}
    for row in invoices:
        totals[row["currency"]] = totals.get(row["currency"], 0) + row["total"]
    event_raise(EventType.BATCH_RUN, {"batch": {
        "id": batch.pk, "name": batch.name, "cutoff": _iso(batch.cutoff), "consolidated": batch.consolidated,
        "origin": batch.origin, "status": batch.status, "invoice_count": len(invoices),
        "invoice_ids": [row["pk"] for row in invoices],
        "totals": {currency: str(total) for currency, total in sorted(totals.items())},
    }})


def on_sync_failed(*, log_id: int) -> None:
    if not wanted(EventType.SYNC_FAILED):
        return
    log = IntegrationLog.objects.select_related("invoice").filter(pk=log_id).first()
    if log is None:
        return
    event_raise(EventType.SYNC_FAILED, {"failure": {
        "id": log.pk, "system": log.system, "operation": log.operation,
        "invoice": {"id": log.invoice_id, "number": log.invoice.number} if log.invoice_id else None,
        "error": log.error, "error_code": log.error_code or None, "http_status": log.http_status,
        "at": _iso(log.created_at),
    }})
