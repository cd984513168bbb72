"""Every tenant URL declares who may open it, and technicians never reach money or settings."""
from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from msp_billing.accounts.roles import ROLE_CAPABILITIES, Capability, Role
from tests.support import TENANTS

MONEY_OR_SETTINGS = {Capability.VIEW_BILLING, Capability.MANAGE_BILLING, Capability.MANAGE_SETTINGS, Capability.MANAGE_USERS}


def tenant_urls():
    """(path, view) for every route of the tenant URLconf, with sample arguments filled in."""
    found = []

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
            elif isinstance(pattern, URLPattern):
                path = (prefix + route).replace("^", "").replace("$", "")
                for converter, sample in (("<int:", "1"), ("<uidb64>", "MQ"), ("<token>", "set-password"), ("<slug:", "x"), ("<", "x")):
                    while converter in path:
                        start = path.index(converter)
                        path = path[:start] + sample + path[path.index(">", start) + 1:]
                found.append(("/" + path, pattern.callback))

    walk(get_resolver("msp_billing.urls_tenant").url_patterns)
    return found


URLS = tenant_urls()


def test_every_tenant_view_declares_who_may_open_it():
    undeclared = [path for path, view in URLS if not hasattr(view, "required_capability")]
    assert undeclared == [], f"views without requires()/open_to_all: {undeclared}"


def test_the_walk_covers_every_section_of_the_navigation():
    paths = {path for path, _ in URLS}
    for section in ("/dashboard/", "/billing/", "/tickets/", "/contracts/", "/customers/", "/invoices/", "/billing/reports/", "/settings/"):
        assert section in paths


@pytest.mark.parametrize("path,view", [(p, v) for p, v in URLS if getattr(v, "required_capability", None) in MONEY_OR_SETTINGS])
def test_technician_gets_403_on_every_billing_url(client_for, path, view):
    client = client_for("alpha", "technician")
    assert client.get(path).status_code == 403
    assert client.post(path, {}).status_code == 403


@pytest.mark.parametrize("path,view", [(p, v) for p, v in URLS if getattr(v, "required_capability", None)])
def test_anonymous_visitors_are_sent_to_sign_in(client_for, path, view):
    response = client_for("alpha").get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("subdomain", TENANTS)
@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize("path,view", [(p, v) for p, v in URLS if getattr(v, "required_capability", None)])
def test_each_role_opens_exactly_what_its_capabilities_allow(client_for, subdomain, role, path, view):
    response = client_for(subdomain, role).get(path)
    status = response.status_code
    allowed = view.required_capability in ROLE_CAPABILITIES[role]
    if allowed:
        # 404: the sample id does not exist; 302: a POST-only action sends GETs back to its page;
        # 405: a POST-only endpoint (htmx fragments).
        assert status in (200, 404, 405) or (status == 302 and "/accounts/login/" not in response["Location"]), f"{role} should open {path}, got {status}"
    else:
        assert status == 403, f"{role} must not open {path}, got {status}"


@pytest.mark.parametrize("path,view", [(p, v) for p, v in URLS if getattr(v, "write_capability", None)])
def test_accountant_reads_billing_but_cannot_change_it(client_for, path, view):
    client = client_for("alpha", "accountant")
    assert client.get(path).status_code in (200, 302, 404, 405)
    assert client.post(path, {}).status_code == 403


@pytest.mark.parametrize("path,view", [(p, v) for p, v in URLS if getattr(v, "required_capability", None)])
def test_an_accountant_post_is_refused_on_every_page(client_for, path, view):
    """An accountant only looks: a POST anywhere (a read-only report as much as a form) is 403,
    never a 200 that quietly changes nothing."""
    client = client_for("alpha", "accountant")
    assert client.post(path, {}).status_code == 403, f"accountant POST to {path}"
    assert client.post(path, {}, HTTP_HX_REQUEST="true").status_code == 403, f"accountant htmx POST to {path}"


def test_technician_lands_on_tickets_and_sees_no_money_in_the_navigation(client_for):
    client = client_for("alpha", "technician")
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/tickets/"
    labels = [item["label"] for item in response.context["nav_items"]]
    assert labels == ["Tickets"]


def test_billing_admin_lands_on_the_dashboard_with_the_full_navigation(client_for):
    response = client_for("alpha", "billing_admin").get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/dashboard/"
    labels = [item["label"] for item in response.context["nav_items"]]
    assert labels == ["Dashboard", "Billing", "Tickets", "Contracts", "Customers", "Invoices", "Reports", "Settings"]
    assert any(item["active"] and item["label"] == "Dashboard" for item in response.context["nav_items"])
