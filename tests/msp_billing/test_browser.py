"""In headless Chromium, on the real server (gunicorn) and the real database."""
from __future__ import annotations

import pytest

from tests.support import sign_in

# django_db: pytest-django creates the test database only for tests that ask for it.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]
def test_billing_admin_signs_in_on_the_demo_host_and_sees_the_dashboard(server, browser):
    page = browser.new_page()
    sign_in(page, server, "billing@demo.example")
    page.wait_for_url(f"http://demo.localhost:{server}/dashboard/")
    assert page.get_by_role("heading", name="Billing dashboard").is_visible()
    nav = page.get_by_role("navigation", name="Main")
    for section in ("Dashboard", "Billing", "Tickets", "Contracts", "Customers", "Invoices", "Reports", "Settings"):
        assert nav.get_by_role("link", name=section).count() == 1
    assert "Demo IT Services" in page.content()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"http://demo.localhost:{server}/accounts/login/")
    page.close()


def test_technician_on_a_phone_lands_on_tickets_and_is_refused_invoices(server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, server, "tech1@demo.example")
    page.wait_for_url(f"http://demo.localhost:{server}/tickets/")
    assert page.get_by_role("heading", name="Tickets").is_visible()
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").count() == 0
    response = page.goto(f"http://demo.localhost:{server}/invoices/")
    assert response.status == 403
    # Nothing overflows the phone's width.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_failed_sign_in_shows_the_message(server, browser):
    page = browser.new_page()
    page.goto(f"http://demo.localhost:{server}/accounts/login/")
    page.get_by_label("E-mail").fill("owner@demo.example")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_text("Please enter a correct e-mail and password").is_visible()
    page.close()
