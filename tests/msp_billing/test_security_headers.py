"""Every page carries a Content-Security-Policy without inline scripts, and a Permissions-Policy;
no template relies on what that policy forbids."""
from __future__ import annotations

import re

from django.conf import settings

TEMPLATES = sorted((settings.BASE_DIR / "templates").rglob("*.html"))


def test_pages_carry_the_policies(client_for):
    for host, path in (("alpha.localhost", "/accounts/login/"), ("localhost", "/")):
        from django.test import Client

        response = Client(HTTP_HOST=host).get(path)
        policy = response["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
        assert "'unsafe-inline'" not in directives["style-src"]  # a nonce is added where a page uses one
        assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
    page = client_for("alpha", "billing_admin").get("/dashboard/")
    assert page.status_code == 200 and "Content-Security-Policy" in page


def test_no_template_has_an_inline_script_or_event_handler():
    assert TEMPLATES
    for template in TEMPLATES:
        text = template.read_text(encoding="utf-8")
        inline = [tag for tag in re.findall(r"<script\b[^>]*>", text) if "src=" not in tag]
        assert inline == [], f"{template}: inline <script> (move it to static/js/)"
        assert not re.search(r"\son[a-z]+\s*=", text), f"{template}: inline event handler"
        assert "hx-on" not in text and "js:" not in text, f"{template}: htmx would need eval"
        for tag in re.findall(r"<style\b[^>]*>", text):
            assert "csp_nonce" in tag, f"{template}: <style> without the CSP nonce"


def test_the_print_page_style_carries_the_nonce_of_its_response(client_for):
    from tests.invoices.builders import customer, issued, line

    from msp_billing.tenants.models import Msp
    from django.db import connection

    connection.set_tenant(Msp.objects.get(schema_name="alpha"))
    invoice = issued(customer("Nonce GmbH"), [line("Support", "1", "10")])
    response = client_for("alpha", "billing_admin").get(f"/invoices/{invoice.pk}/print/")
    assert response.status_code == 200, response.status_code
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"]).group(1)
    assert f'<style nonce="{nonce}">' in response.content.decode()
