"""The benchmark page in headless Chromium on the real server: wide screen and phone.

Screenshots go to docs/screenshots/ (benchmark-1440.png, benchmark-390.png).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.support import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.mark.parametrize("width,height", [(1440, 1000), (390, 844)])
def test_the_benchmark_page_reads_on_a_wide_screen_and_a_phone(server, browser, width, height):
    context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=width < 500, has_touch=width < 500)
    page = context.new_page()
    sign_in(page, server, "billing@demo.example")
    page.wait_for_url(f"http://demo.localhost:{server}/dashboard/")
    expect(page.get_by_role("heading", name="Benchmark", exact=True)).to_be_visible()  # the dashboard card
    page.get_by_role("link", name="Open the benchmark").click()
    page.wait_for_url(f"http://demo.localhost:{server}/benchmark/")
    assert page.get_by_role("heading", name="Benchmark: effective hourly rate").is_visible()
    assert page.get_by_role("heading", name="How the rate is worked out").is_visible()
    assert page.get_by_role("heading", name="Labour-cost floor: published wages").is_visible()
    assert page.get_by_text("Not enough MSPs in your region yet.").first.is_visible()
    page.get_by_label("Periods closed in").select_option("24")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/benchmark/?months=24*")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"benchmark-{width}.png"), full_page=True)
    context.close()
