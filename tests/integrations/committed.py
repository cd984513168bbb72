"""Issued invoices committed in alpha for tests that run real worker processes against them.

A worker is another process: it sees only what is committed. ``issued_in_alpha`` connects
alpha to a fake QuickBooks, issues the invoices, and on the way out removes all of it again —
numbering and audit trail included — so the rest of the session sees alpha as it was.
"""
from __future__ import annotations

import os
from contextlib import contextmanager

from django_tenants.utils import schema_context


@contextmanager
def fake_in_environ(fake):
    """The fake's URLs in this process's environment (the workers it starts inherit them)."""
    saved = {key: os.environ.get(key) for key in fake.environ()}
    os.environ.update(fake.environ())
    try:
        yield fake
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def issued_in_alpha(django_db_blocker, fake, *, name: str, count: int):
    """Alpha connected to ``fake`` with ``count`` issued invoices for three customers named
    ``name`` 0–2; yields the invoice ids. Everything is removed again on the way out."""
    from contracts.models import Customer
    from integrations.models import AccountingConnection, ExportRun, IntegrationLog, RemoteMapping
    from integrations.services import connection_store
    from invoices.models import AuditEvent, Invoice, InvoicePdf, NumberSequence
    from tests.invoices.builders import admin, issued, line

    with django_db_blocker.unblock(), schema_context("alpha"):
        assert not AccountingConnection.objects.exists()
        sequences = {(s.series, s.year): s.next_number for s in NumberSequence.objects.all()}
        last_audit = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        company = fake.company()
        tokens = fake.issue_tokens(company.realm)
        connection_store(system="quickbooks", acting_user=admin(), tokens={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"], "expires_in": 3600,
            "remote_tenant_id": company.realm, "remote_name": company.name})
        customers = [Customer.objects.create(legal_name=f"{name} {n} GmbH", currency="EUR") for n in range(3)]
        ids = [issued(customers[n % 3], [line(f"Managed service {n}", "1", str(100 + n), taxes=())]).pk
               for n in range(count)]
    try:
        yield ids
    finally:
        with django_db_blocker.unblock(), schema_context("alpha"):
            IntegrationLog.objects.all().delete()
            ExportRun.objects.all().delete()
            RemoteMapping.objects.all().delete()
            AccountingConnection.objects.all().delete()
            InvoicePdf.objects.filter(invoice_id__in=ids).delete()
            Invoice.objects.filter(pk__in=ids).delete()
            Customer.objects.filter(legal_name__startswith=f"{name} ").delete()
            AuditEvent.objects.filter(id__gt=last_audit).delete()
            for sequence in NumberSequence.objects.all():
                key = (sequence.series, sequence.year)
                if key in sequences:
                    NumberSequence.objects.filter(pk=sequence.pk).update(next_number=sequences[key])
                else:
                    sequence.delete()
