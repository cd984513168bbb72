"""In headless Chromium on gunicorn: a technician makes a token on Settings → API tokens and
reads the API documentation page, which runs under the site's Content-Security-Policy."""
from __future__ import annotations

import uuid

import pytest

from tests.support import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]


def test_a_technician_makes_a_token_sees_it_once_and_reads_the_docs_without_csp_violations(server, browser):
    page = browser.new_page()
    violations = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    sign_in(page, server, "tech1@demo.example")
    page.wait_for_url(f"http://demo.localhost:{server}/tickets/")
    page.goto(f"http://demo.localhost:{server}/settings/api-tokens/")
    name = f"Phone script {uuid.uuid4().hex[:6]}"  # the demo MSP is committed and kept with --reuse-db
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text()
    assert secret.startswith("msp_")
    page.goto(f"http://demo.localhost:{server}/settings/api-tokens/")
    assert page.locator("#new-token").count() == 0 and secret not in page.content()
    row = page.get_by_role("row").filter(has_text=name)
    assert row.count() == 1 and row.get_by_text("active").count() == 1

    page.goto(f"http://demo.localhost:{server}/api/v1/docs")
    page.get_by_text("/api/v1/tickets/{ticket_id}/time-entries").first.wait_for()
    assert page.get_by_text("MSP Billing API").first.is_visible()
    assert violations == []

    page.goto(f"http://demo.localhost:{server}/settings/api-tokens/")
    page.get_by_role("row").filter(has_text=name).get_by_role("button", name="Revoke").click()
    assert page.get_by_text("is revoked").is_visible()
    page.close()
