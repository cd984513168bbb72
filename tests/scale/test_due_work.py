"""Beat finds due work with one query across the MSP schemas, not one task per MSP."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from integrations.models import ExportRun
from integrations.services import export_runs_due
from invoices.tasks import invoice_pdfs_missing
from msp_billing.tenant_scan import schemas_with, tenant_schemas

pytestmark = pytest.mark.django_db


def _run(state: str, *, minutes_ago: int, next_attempt_in: int | None = None) -> ExportRun:
    run = ExportRun.objects.create(system="xero", document_ids=[1], total=1, state=state,
                                   next_attempt_at=None if next_attempt_in is None
                                   else timezone.now() + dt.timedelta(minutes=next_attempt_in))
    ExportRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=minutes_ago))
    return run


def test_only_msps_with_due_export_runs_are_found_in_one_query():
    with schema_context("alpha"):
        _run("running", minutes_ago=10)  # its worker died
    with schema_context("beta"):
        _run("waiting", minutes_ago=600, next_attempt_in=600)  # a daily limit, hours away: not due
        _run("running", minutes_ago=0)  # a worker is on it
    with schema_context("demo"):
        _run("done", minutes_ago=600)
    assert {"alpha", "beta", "demo"} <= set(tenant_schemas())
    with CaptureQueriesContext(connection) as queries:
        due = schemas_with(export_runs_due)
    assert due == ["alpha"]
    assert len(queries) == 2  # the MSPs' schema names, then one query across all of them

    with schema_context("beta"):
        ExportRun.objects.filter(state="waiting").update(next_attempt_at=timezone.now() - dt.timedelta(minutes=3))
    assert schemas_with(export_runs_due) == ["alpha", "beta"]  # its time has come


def test_the_scan_and_the_task_agree_on_what_is_due():
    """The scan runs the task's own queryset: in each schema it finds exactly what the task would."""
    with schema_context("beta"):
        _run("queued", minutes_ago=30)
    for schema in tenant_schemas():
        with schema_context(schema):
            expected = export_runs_due().exists()
            pdfs = invoice_pdfs_missing().exists()
        assert (schema in schemas_with(export_runs_due, [schema])) == expected
        assert (schema in schemas_with(invoice_pdfs_missing, [schema])) == pdfs
