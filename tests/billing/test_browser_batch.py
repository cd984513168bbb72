"""The month-end flow in Chromium: select, waive a retainer period, run, delete an invoice,
generate, print, delete the batch and see the ticket released; a billed ticket refuses reopening."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.billing.test_batches import build_world
from tests.support import PASSWORD, committed_billing_msp, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SCHEMA = "monthend"


@pytest.fixture(scope="module")
def monthend(django_db_setup, django_db_blocker):
    with committed_billing_msp(django_db_blocker, name="Month End IT", subdomain=SCHEMA, build=build_world) as world:
        yield world


def test_month_end_in_the_browser(server, browser, monthend):
    base = f"http://{SCHEMA}.localhost:{server}"
    page = browser.new_page()
    sign_in(page, server, "billing-admin@monthend.example", subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")

    page.goto(base + "/billing/batches/new/?cutoff=2026-03-31")
    details = page.locator("#batch-details")
    assert details.locator('[data-figure="bills"]').inner_text() == "3"
    # Waive the retainer's March fee as goodwill: the details follow from the server.
    page.get_by_text("Managed Services").click()
    page.locator(f'input[name="period"][value="{monthend["march"].pk}"]').uncheck()
    expect(page.locator('[data-figure="total-EUR"]')).to_contain_text("292.10")  # no eval: the pages forbid it (CSP)
    page.get_by_label("Save As").fill("March goodwill")
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Batch “March goodwill” billed").wait_for()
    batch_url = page.url
    invoices_table = page.get_by_role("region", name="Invoices of this batch")
    assert invoices_table.locator("tbody tr").count() == 3  # retainer still bills its absorbed time at zero

    # Delete one draft, then generate the rest.
    invoices_table.locator("tbody tr").filter(has_text="Draft").first.get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete draft").click()
    page.get_by_text("Invoice deleted; its items are unbilled again.").wait_for()
    assert invoices_table.locator("tbody tr").count() == 2
    page.get_by_role("link", name="Generate invoices").click()
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("invoice(s) issued").wait_for()
    page.locator("table.data tbody tr a").first.click()
    page.get_by_role("link", name="Print").first.click()
    assert "Month End IT" in page.content()

    # A billed ticket refuses reopening.
    ticket_url = f"{base}/tickets/{monthend['ticket'].pk}/"
    page.goto(ticket_url)
    page.get_by_role("combobox", name="Status").select_option("open")
    page.get_by_role("button", name="Change status").click()
    page.get_by_text("cannot be reopened. Open a new ticket for further work.").wait_for()

    # Deleting the batch releases everything.
    page.goto(batch_url)
    page.get_by_role("link", name="Delete batch").click()
    page.get_by_role("button", name="Delete batch").click()
    page.get_by_text("item(s) released for rebilling").wait_for()
    page.goto(ticket_url)
    assert page.get_by_role("heading", name="Log time").is_visible()
    page.close()
