"""An invoice's export to an accounting system, as the invoice records it: where it went,
when, and its id and address there. ``integrations/`` does the export and calls this."""
from __future__ import annotations

import datetime as dt

from django.db import transaction

from invoices.audit import audit_record
from invoices.models import Invoice
from invoices.services._common import _notify


@transaction.atomic
def invoice_mark_exported(*, invoice_id: int, system: str, at: dt.datetime, remote_id: str, remote_url: str,
                          acting_user, export_run_id: int | None = None) -> Invoice:
    """Record that ``invoice_id`` is in ``system`` as ``remote_id`` (audited, the row locked)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice_id)
    before = {"exported_to": invoice.exported_to, "remote_id": invoice.remote_id}
    invoice.exported_to, invoice.exported_at = system, at
    invoice.remote_id, invoice.remote_url = remote_id[:100], remote_url[:500]
    invoice.save(update_fields=["exported_to", "exported_at", "remote_id", "remote_url", "updated_at"])
    audit_record(actor=acting_user, action="invoice_exported", obj=invoice, before=before,
                 after={"exported_to": system, "remote_id": invoice.remote_id, "export_run": export_run_id})
    _notify(invoice.pk, "exported")
    return invoice
