"""Under the Content-Security-Policy the htmx pages, the contract form's script and the print
page still work in Chromium, and the browser reports no violation."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from django_tenants.utils import schema_context

from tests.billing.test_batches import build_world
from tests.support import PASSWORD, committed_msp, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SCHEMA = "cspcheck"
ADMIN = f"billing-admin@{SCHEMA}.example"

# Injected by the browser itself (not subject to the page's policy): collects every violation.
LISTEN = ("window.__violations = [];"
          "document.addEventListener('securitypolicyviolation', e => "
          "window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile));")


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    from msp_billing.accounts.services import user_create

    with committed_msp(django_db_blocker, name="CSP Check IT", subdomain=SCHEMA, admin_email=ADMIN):
        with django_db_blocker.unblock(), schema_context(SCHEMA):
            user_create(email=f"technician@{SCHEMA}.example", role="technician", password=PASSWORD)
            yield build_world(admin_email=ADMIN, tech_email=f"technician@{SCHEMA}.example")


def test_htmx_pages_work_under_the_policy_without_a_violation(server, browser, world):
    base = f"http://{SCHEMA}.localhost:{server}"
    page = browser.new_page()
    page.add_init_script(LISTEN)
    console = []
    page.on("console", lambda message: console.append(message.text))
    sign_in(page, server, ADMIN, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")
    violations = []

    def collect() -> None:
        violations.extend(page.evaluate("window.__violations"))

    # Create New Batch: the live details come from the server through htmx.
    response = page.goto(base + "/billing/batches/new/?cutoff=2026-03-31")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    assert "script-src 'self' 'unsafe-inline'" not in policy
    assert "camera=()" in response.headers["permissions-policy"]
    assert page.locator('#batch-details [data-figure="bills"]').inner_text() == "3"
    page.get_by_text("Managed Services").click()
    page.locator(f'input[name="period"][value="{world["march"].pk}"]').uncheck()
    expect(page.locator('[data-figure="total-EUR"]')).to_contain_text("292.10")
    collect()

    # The contract form's script (a static file now) still shows the chosen type's fieldsets.
    page.goto(base + "/contracts/new/")
    page.locator("#id_type").select_option("retainer")
    # Playwright's own waits cannot evaluate strings in a page that forbids eval; locators can.
    expect(page.locator('fieldset[data-types]:not([hidden])').first).to_be_visible()
    assert page.locator("fieldset[data-types][hidden]").count() > 0
    # Switching type keeps what was typed, and the labels follow the type.
    overage_required = page.locator('[data-required-types] label[for="id_overage_rate"] [data-when="required"]')
    expect(overage_required).to_be_hidden()
    page.locator("#id_type").select_option("block_hours")
    expect(overage_required).to_be_visible()
    page.locator("#id_block_hours").fill("10")
    page.locator("#id_type").select_option("retainer")
    expect(page.locator("#id_block_hours")).to_be_hidden()
    page.locator("#id_type").select_option("block_hours")
    expect(page.locator("#id_block_hours")).to_have_value("10")
    collect()

    # A batch and its PDF progress (htmx, loaded on arrival); then the print page with its brand colour.
    page.goto(base + "/billing/batches/new/?cutoff=2026-03-31")
    page.get_by_label("Save As").fill("CSP check")
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Batch “CSP check” billed").wait_for()
    page.get_by_role("link", name="Generate invoices").click()
    collect()  # the confirmation page
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("invoice(s) issued").wait_for()
    page.locator("#pdf-progress .progress-label").wait_for()
    collect()
    page.locator("table.data tbody tr a").first.click()
    page.goto(base + page.get_by_role("link", name="Print").first.get_attribute("href"))  # opens a tab otherwise
    page.get_by_role("button", name="Print").wait_for()
    brand = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--brand').trim()")
    assert brand.startswith("#")  # the nonce-carrying <style> was applied
    collect()
    page.close()

    assert violations == []
    assert [text for text in console if "Content Security Policy" in text] == []
