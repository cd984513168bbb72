"""In headless Chromium, on the real server (gunicorn) and the real database."""
from __future__ import annotations

import urllib.request

import pytest

from tests.support import free_port, process_env, running

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    port = free_port()
    with django_db_blocker.unblock():
        env = process_env(PUBLIC_URL_PORT=str(port))

    def ready() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except urllib.error.HTTPError:
            return True  # 503 without a worker: the server answers
        except OSError:
            return False
        return True

    log = tmp_path_factory.mktemp("logs") / "gunicorn.log"
    command = ["gunicorn", "msp_billing.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    import sys
    from pathlib import Path

    command[0] = str(Path(sys.executable).with_name("gunicorn"))
    with running(command, env=env, ready=ready, timeout=60, log=log):
        yield port


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def sign_in(page, port: int, email: str) -> None:
    from msp_billing.tenants.demo import DEMO_PASSWORD

    page.goto(f"http://demo.localhost:{port}/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


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
