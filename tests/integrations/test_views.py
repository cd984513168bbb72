"""The accounting page, exports from the pages, the run page, failures: roles and bad input."""
from __future__ import annotations

import pytest
from django.urls import reverse

from integrations import services
from integrations.models import ExportRun, IntegrationLog
from tests.integrations.conftest import URLS
from tests.invoices.builders import admin, customer, draft, issued, line

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]


def test_accounting_page_before_connecting(tenant, qbo, admin_client):
    page = admin_client.get(reverse("integrations:accounting"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "QuickBooks Online" in text and ">Connect</button>" in text and "No failed syncs." in text


def test_export_from_the_page_runs_in_the_background_and_links_back(connected, qbo, admin_client, django_capture_on_commit_callbacks):
    invoices = [issued(customer(f"Page {n} Ltd"), [line("x", "1", "5", taxes=())]) for n in range(2)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(reverse("integrations:export"), {"ids": ",".join(str(i.pk) for i in invoices)})
    assert response.status_code == 302
    run = ExportRun.objects.get()
    assert response["Location"] == reverse("integrations:run", args=[run.pk])
    assert len(callbacks) == 1  # the task is queued only after commit
    page = admin_client.get(response["Location"]).content.decode()
    assert "Queued" in page and 'hx-trigger="every 2s"' in page
    services.export_run_execute(run_id=run.pk)  # what the worker does
    fragment = admin_client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "2 of 2 exported" in fragment and "Open in QuickBooks Online" in fragment and "every 2s" not in fragment
    assert 'aria-valuenow="100"' in fragment


def test_export_bad_input_and_states(connected, admin_client):
    assert admin_client.post(reverse("integrations:export"), {"ids": "x,y"}).status_code == 400
    assert admin_client.post(reverse("integrations:export"), {}).status_code == 400
    assert admin_client.post(reverse("integrations:export"), {"ids": "987654321"}).status_code == 404
    assert admin_client.get(reverse("integrations:export")).status_code == 405
    a_draft = draft(customer(), [line()])
    assert admin_client.post(reverse("integrations:export"), {"ids": str(a_draft.pk)}).status_code == 409
    assert admin_client.get(reverse("integrations:run", args=[424242])).status_code == 404


def test_export_roles(connected, client_for):
    invoice = issued(customer("Roles GmbH"), [line("x", "1", "5", taxes=())])
    assert client_for("alpha", "accountant").post(reverse("integrations:export"), {"ids": str(invoice.pk)}).status_code == 403
    assert client_for("alpha", "technician").post(reverse("integrations:export"), {"ids": str(invoice.pk)}).status_code == 403
    assert not ExportRun.objects.exists()


def test_failures_resolve_and_roles(connected, admin_client, client_for):
    log = IntegrationLog.objects.create(system="quickbooks", operation="payment.query", outcome="failed", error="boom")
    accountant = client_for("alpha", "accountant")
    assert "boom" in accountant.get(reverse("integrations:accounting")).content.decode()
    assert accountant.post(reverse("integrations:failure_resolve", args=[log.pk])).status_code == 403
    assert client_for("alpha", "technician").get(reverse("integrations:accounting")).status_code == 403
    assert admin_client.post(reverse("integrations:failure_resolve", args=[log.pk])).status_code == 302
    log.refresh_from_db()
    assert log.resolved_at is not None and log.resolved_by.email == "billing-admin@alpha.example"
    assert admin_client.post(reverse("integrations:failure_resolve", args=[999999])).status_code == 404
    assert admin_client.post(reverse("integrations:failure_retry", args=[999999])).status_code == 404
    assert admin_client.post(reverse("integrations:failure_retry", args=[log.pk])).status_code == 409  # already resolved


def test_payments_pull_button(connected, admin_client, client_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert admin_client.post(reverse("integrations:payments_pull")).status_code == 302
    assert len(callbacks) == 1
    assert client_for("alpha", "accountant").post(reverse("integrations:payments_pull")).status_code == 403


def test_another_msps_run_is_404(connected, client_for):
    invoice = issued(customer("Mine GmbH"), [line("x", "1", "5", taxes=())])
    run = services.export_run_create(document_ids=[invoice.pk], acting_user=admin())
    from django_tenants.utils import schema_context

    with schema_context("beta"):
        exists_in_beta = ExportRun.objects.filter(pk=run.pk).exists()
    assert not exists_in_beta
    assert client_for("beta", "billing_admin").get(reverse("integrations:run", args=[run.pk])).status_code == 404
