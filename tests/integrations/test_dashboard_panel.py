"""The billing dashboard's "Failed syncs" panel: open failures, newest first, linked to the accounting page."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django_tenants.utils import schema_context

from integrations import services
from integrations.models import IntegrationLog
from tests.integrations.conftest import URLS
from tests.invoices.builders import admin, customer, issued, line

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]
PANEL = 'data-panel="failed-syncs"'


def dashboard(client) -> str:
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    return response.content.decode()


def panel(html: str) -> str:
    found = re.search(r'<section[^>]*data-panel="failed-syncs".*?</section>', html, re.DOTALL)
    assert found, "no failed-syncs panel"
    return found.group(0)


def failure(**fields) -> IntegrationLog:
    fields.setdefault("system", "quickbooks")
    fields.setdefault("operation", "invoice.export")
    return IntegrationLog.objects.create(outcome=IntegrationLog.Outcome.FAILED, **fields)


def test_no_panel_without_failures(tenant, admin_client):
    IntegrationLog.objects.create(system="quickbooks", operation="invoice.export", outcome="ok")
    failure(error="settled", resolved_at="2026-03-01T10:00:00Z")
    assert PANEL not in dashboard(admin_client)


def test_a_failed_export_shows_until_it_is_resolved(connected, qbo, admin_client):
    invoice = issued(customer("Panel Dup GmbH"), [line("x", "1", "5", taxes=())])
    someone = qbo.add("Customer", {"DisplayName": "Typed In QuickBooks"})
    qbo.add("Invoice", {"DocNumber": invoice.number, "CustomerRef": {"value": someone["Id"]}, "Line": []})
    run = services.export_run_create(document_ids=[invoice.pk], acting_user=admin())
    services.export_run_execute(run_id=run.pk)
    log = IntegrationLog.objects.get(invoice=invoice, outcome="failed")

    shown = panel(dashboard(admin_client))
    assert 'data-figure="failed-syncs">1<' in shown
    assert invoice.number in shown and "QuickBooks Online" in shown and "[6140]" in shown
    assert "not exported from here" in shown
    assert f'data-failure="{log.pk}"' in shown
    assert reverse("invoices:detail", args=[invoice.pk]) in shown
    assert f'href="{reverse("integrations:accounting")}#failures-heading"' in shown
    # The link leads to the row with Retry / Mark resolved; resolving it there hides the panel.
    accounting = admin_client.get(reverse("integrations:accounting")).content.decode()
    assert 'id="failures-heading"' in accounting and f'data-failure="{log.pk}"' in accounting
    assert admin_client.post(reverse("integrations:failure_resolve", args=[log.pk])).status_code == 302
    assert PANEL not in dashboard(admin_client)


def test_newest_first_and_only_the_latest_five(tenant, admin_client):
    for number in range(7):
        failure(error=f"refusal number {number}", error_code="2500")
    shown = panel(dashboard(admin_client))
    assert 'data-figure="failed-syncs">7<' in shown and "The latest 5 of 7" in shown
    assert [int(n) for n in re.findall(r"refusal number (\d)", shown)] == [6, 5, 4, 3, 2]


def test_a_failure_without_an_invoice_names_the_call(tenant, admin_client):
    failure(system="xero", operation="oauth.refresh", error="Refresh token expired", request_summary="POST token")
    shown = panel(dashboard(admin_client))
    assert "Xero" in shown and "POST token" in shown and "Refresh token expired" in shown


def test_each_msp_sees_only_its_own_failures(tenant, client_for):
    failure(error="refused for alpha only")
    with schema_context("beta"):
        failure(error="refused for beta only")
    alpha = dashboard(client_for("alpha", "billing_admin"))
    beta = dashboard(client_for("beta", "billing_admin"))
    assert "refused for alpha only" in panel(alpha) and "refused for beta only" not in alpha
    assert "refused for beta only" in panel(beta) and "refused for alpha only" not in beta
    with schema_context("beta"):
        IntegrationLog.objects.update(resolved_at="2026-03-01T10:00:00Z")
    assert PANEL not in dashboard(client_for("beta", "billing_admin"))
    assert PANEL in dashboard(client_for("alpha", "billing_admin"))


def test_roles_that_see_billing_see_the_panel(tenant, client_for):
    failure(error="visible to billing roles")
    assert "visible to billing roles" in dashboard(client_for("alpha", "accountant"))
    assert "visible to billing roles" in dashboard(client_for("alpha", "owner"))
    technician = client_for("alpha", "technician").get(reverse("dashboard"))
    assert technician.status_code in (302, 403) and b"visible to billing roles" not in technician.content
