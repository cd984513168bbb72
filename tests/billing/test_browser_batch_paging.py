"""In Chromium: Create New Batch with more contracts than a page — search, untick a row,
turn the page, "Select all that match", Run: exactly the matching contracts are billed."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from billing import services
from billing.models import BillingBatch
from billing.wizard import PAGE_SIZE
from tests.billing.test_batch_paging import CUTOFF, retainers
from tests.support import PASSWORD, committed_billing_msp, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SCHEMA = "pagingit"


@pytest.fixture(scope="module")
def wind(django_db_setup, django_db_blocker):
    with committed_billing_msp(django_db_blocker, name="Paging IT", subdomain=SCHEMA,
                               build=lambda admin_email, tech_email: {"north": retainers("Northwind", PAGE_SIZE + 10),
                                                                      "south": retainers("Southwind", 5)}) as world:
        yield world


def test_search_select_all_that_match_and_run(server, browser, wind, django_db_blocker):
    base = f"http://{SCHEMA}.localhost:{server}"
    page = browser.new_page()
    sign_in(page, server, f"billing-admin@{SCHEMA}.example", subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")

    page.goto(base + f"/billing/batches/new/?cutoff={CUTOFF.isoformat()}")
    expect(page.locator('[data-figure="matching"]')).to_have_text("65")
    page.get_by_label("Search").fill("northwind")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**q=northwind**")
    details = page.locator("#batch-details")
    expect(details.locator('[data-figure="contracts"]')).to_have_text("60")  # loaded after the page
    first = page.locator('input[name="contract"]').first
    first.uncheck()
    expect(details.locator('[data-figure="contracts"]')).to_have_text("59")
    # The next page comes in place (htmx); the row unticked on the first page stays unticked.
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Page 2 of 2")).to_be_visible()
    assert page.locator('#batch-list input[name="contract"]').count() == 10
    expect(details.locator('[data-figure="contracts"]')).to_have_text("59")
    page.get_by_role("button", name="Select all 60 that match").click()
    expect(page.get_by_text("Page 1 of 2")).to_be_visible()
    expect(details.locator('[data-figure="contracts"]')).to_have_text("60")
    expect(details.locator('[data-figure="total-EUR"]')).to_have_text("6,000.00")
    assert page.locator('#batch-list input[name="contract"]:not(:checked)').count() == 0

    page.get_by_label("Save As").fill("Northwind March")
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Batch “Northwind March” billed").wait_for()
    with django_db_blocker.unblock(), schema_context(SCHEMA):
        invoices = services.batch_invoices(BillingBatch.objects.get(name="Northwind March"))
        assert set(invoices.values_list("lines__contract_id", flat=True)) == {c.pk for c in wind["north"]}
        assert sum((i.total for i in invoices), Decimal(0)) == Decimal("6000.00")
    page.close()
