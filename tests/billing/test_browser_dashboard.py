"""The billing dashboard in headless Chromium, on the real server and the demo MSP: at a desk
(1440 px) and on a phone (390 px) nothing overflows sideways, both charts draw with their
table, a widget opens the list whose total it shows, and the invoice search narrows the list
as one types. Screenshots go to $DASHBOARD_SCREENSHOTS when set (docs/screenshots/)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.mark.parametrize("width,height", [(1440, 1000), (390, 844)])
def test_the_dashboard_reads_at_a_desk_and_on_a_phone(server, browser, tmp_path, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    sign_in(page, server, "billing@demo.example")
    page.wait_for_url(f"http://demo.localhost:{server}/dashboard/")
    assert page.get_by_role("heading", name="Unbilled revenue").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    charts = page.locator("svg.chart-svg")
    assert charts.count() >= 2 and charts.first.bounding_box()["width"] > 200
    for title in ("Unbilled work by age", "Invoiced per month by contract type"):
        table = page.locator("table", has=page.locator("caption", has_text=title))
        assert table.count() == 1 and table.locator("tbody tr").count() >= 4
    folder = Path(os.environ.get("DASHBOARD_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"dashboard-{width}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # The "All unbilled" figure is the total of the list it opens.
    figure = page.locator('[data-widget="total"]').locator("xpath=..").locator("span.num").first.inner_text()
    page.locator('[data-widget="total"]').click()
    page.wait_for_url("**/reports/unbilled/")
    assert page.locator("[data-total]").last.inner_text() == figure
    context.close()


def test_the_invoice_search_narrows_the_recent_invoices_as_one_types(server, browser):
    page = browser.new_page()
    sign_in(page, server, "billing@demo.example")
    page.wait_for_url(f"http://demo.localhost:{server}/dashboard/")
    page.get_by_label("Search invoices").fill("no invoice is called this")
    page.locator("#recent-invoices").get_by_text("No invoice matches").wait_for()
    assert page.url.endswith("/dashboard/")  # searched in place, no reload
    page.close()
