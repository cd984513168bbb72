"""In Chromium: Create New Batch filtered to one customer shows that customer's figures only,
and Run creates exactly the invoices those figures promised."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing import services
from billing.models import BillingBatch
from tests.billing.generated_tenant import CUTOFF, build_generated_tenant
from tests.support import PASSWORD, committed_billing_msp, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SCHEMA = "previewit"


@pytest.fixture(scope="module")
def generated(django_db_setup, django_db_blocker):
    with committed_billing_msp(django_db_blocker, name="Preview IT", subdomain=SCHEMA,
                               build=lambda admin_email, tech_email: build_generated_tenant(tech_email=tech_email)) as world:
        yield world


def test_one_customer_previewed_and_billed(server, browser, generated, django_db_blocker):
    base = f"http://{SCHEMA}.localhost:{server}"
    acme = generated["customers"]["Acme GmbH"]
    page = browser.new_page()
    sign_in(page, server, "billing-admin@previewit.example", subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")

    page.goto(base + f"/billing/batches/new/?cutoff={CUTOFF.isoformat()}")
    page.get_by_label("Customer", exact=True).select_option(label="Acme GmbH")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**customer={acme.pk}**")
    assert "Contracts the filters hide are not in this batch" in page.locator("#batch-scope").inner_text()
    details = page.locator("#batch-details")
    figure = lambda name: details.locator(f'[data-figure="{name}"]').inner_text()
    shown = {"bills": figure("bills"), "tickets": figure("tickets"), "hours": figure("hours"),
             "billable": figure("billable-EUR"), "tax": figure("tax-EUR"), "total": figure("total-EUR")}
    # Acme alone (worked out by hand in tests/billing/generated_tenant.py); no other currency.
    assert shown == {"bills": "2", "tickets": "2", "hours": "2.25", "billable": "1,051.00", "tax": "199.69", "total": "1,250.69"}
    assert details.locator('[data-figure="total-USD"]').count() == 0

    page.get_by_label("Save As").fill("Acme March")
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Batch “Acme March” billed").wait_for()
    assert page.get_by_role("region", name="Invoices of this batch").locator("tbody tr").count() == 2

    with django_db_blocker.unblock(), schema_context(SCHEMA):
        batch = BillingBatch.objects.get(name="Acme March")
        invoices = list(services.batch_invoices(batch))
        assert {invoice.customer_id for invoice in invoices} == {acme.pk}
        assert len(invoices) == int(shown["bills"])
        assert sum((i.total - i.tax_total for i in invoices), Decimal(0)) == Decimal(shown["billable"].replace(",", ""))
        assert sum((i.tax_total for i in invoices), Decimal(0)) == Decimal(shown["tax"].replace(",", ""))
        assert sum((i.total for i in invoices), Decimal(0)) == Decimal(shown["total"].replace(",", ""))
        tickets = {line.time_allocation.entry.ticket_id for i in invoices for line in i.lines.all() if line.time_allocation_id}
        assert len(tickets) == int(shown["tickets"])
        minutes = sum(line.time_allocation.billed_minutes for i in invoices for line in i.lines.all() if line.time_allocation_id)
        assert Decimal(minutes) / 60 == Decimal(shown["hours"])
        # The other customers' items are still due.
        assert services.selection_everything_due(cutoff=CUTOFF).contract_ids
    page.close()
