"""An accountant looks and changes nothing: the pages they reach offer no control they cannot use.

The walk starts at the dashboard of the demo MSP (which has customers, contracts, batches
and invoices) and follows every link an accountant is shown. On each page it looks for
what would change data — a form that posts, a button outside a search form, an htmx
``hx-post`` — and for links to pages that only exist to change data (new, edit, add, …).
"""
from __future__ import annotations

import re

from collections import deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
from django.urls import Resolver404, resolve

# Pages whose only purpose is a change: a link to them is a button the accountant cannot use.
# Words of a URL name that make it a page that changes data (``contracts:rate_line_add``), matched
# as whole words so that a read page such as ``reports:renewals`` is not taken for one.
WRITE_PAGE = {"create", "edit", "add", "new", "delete", "void", "issue", "credit", "payment", "record", "end",
              "generate", "import", "connect", "disconnect", "wizard"}
LOGOUT = "/accounts/logout/"
# Pages where every user manages their own things, not the MSP's data: an accountant's own API
# tokens (read-only tokens, as the accountant is).
OWN_PAGES = ("/settings/api-tokens/",)


class ControlFinder(HTMLParser):
    """Forms, buttons, htmx writes and links of one page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.writes: list[str] = []
        self._form_methods: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for verb in ("hx-post", "hx-put", "hx-patch", "hx-delete"):
            if verb in attrs:
                self.writes.append(f"<{tag} {verb}={attrs[verb]}>")
        if tag == "form":
            method, action = (attrs.get("method") or "get").lower(), attrs.get("action") or ""
            self._form_methods.append((method, action))
            if method != "get" and action != LOGOUT and not action.startswith(OWN_PAGES):
                self.writes.append(f"<form method={method} action={action or '(this page)'}>")
        elif tag == "button" or (tag == "input" and (attrs.get("type") or "").lower() == "submit"):
            inside = self._form_methods[-1] if self._form_methods else None
            if (attrs.get("type") or "submit").lower() == "submit" and inside is None and "form" not in attrs:
                self.writes.append(f"<{tag}> {attrs.get('name', '')} outside any form")
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "form" and self._form_methods:
            self._form_methods.pop()


def _route(path: str):
    try:
        return resolve(path)
    except Resolver404:
        return None


def _write_page(match) -> bool:
    return bool(WRITE_PAGE & set(re.split(r"[_:-]", match.url_name or "")))


@pytest.fixture(scope="module")
def accountant_walk(django_db_setup, django_db_blocker):
    """(pages visited, problems found) for the demo MSP's accountant."""
    from django.db import transaction
    from django.test import Client
    from django_tenants.utils import schema_context

    from billing import services as billing
    from msp_billing.accounts.models import User
    from msp_billing.tenants.today import tenant_today

    with django_db_blocker.unblock(), transaction.atomic():
        client = Client(HTTP_HOST="demo.localhost")
        with schema_context("demo"):
            client.force_login(User.objects.get(email="accountant@demo.example"))
            # Month end in the demo, rolled back after the walk: a batch with issued invoices.
            owner = User.objects.get(email="owner@demo.example")
            today = tenant_today()
            batch = billing.batch_run(name="Walk", cutoff=today, selection=billing.selection_everything_due(cutoff=today),
                                      consolidated=False, acting_user=owner)
            billing.batch_generate(batch_id=batch.pk, acting_user=owner)
        seen_views: dict[str, int] = {}
        queue, visited, problems = deque(["/dashboard/"]), set(), []
        referrer: dict[str, str] = {}
        while queue:
            path = queue.popleft()
            if path in visited:
                continue
            visited.add(path)
            response = client.get(path)
            if response.status_code == 403:
                problems.append(f"{path}: a link the accountant may not open ({referrer.get(path)})")
                continue
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            page = ControlFinder()
            page.feed(response.content.decode())
            problems.extend(f"{path}: {write}" for write in page.writes)
            for href in page.links:
                href = urldefrag(href)[0]
                parts = urlsplit(href)
                if parts.netloc or not parts.path.startswith("/") or parts.path == LOGOUT:
                    continue
                match = _route(parts.path)
                if match is None:
                    continue
                if _write_page(match):
                    problems.append(f"{path}: link to {href} ({match.view_name})")
                    continue
                # Every kind of page a few times (a list's pages, a handful of details) is enough.
                key = match.view_name
                if href not in visited and seen_views.get(key, 0) < 3:
                    seen_views[key] = seen_views.get(key, 0) + 1
                    referrer.setdefault(href, path)
                    queue.append(href)
        transaction.set_rollback(True)
        return visited, problems


def test_the_walk_reaches_every_area_an_accountant_may_read(accountant_walk):
    visited, _ = accountant_walk
    views = {match.view_name for match in map(_route, (urlsplit(path).path for path in visited)) if match}
    for expected in ("dashboard", "billing:home", "contracts:list", "contracts:detail",
                     "contracts:customer_detail", "invoices:list", "billing:batch_detail", "invoices:detail", "billing:audit"):
        assert expected in views, f"the walk never reached {expected}"


def test_an_accountant_sees_no_control_that_would_change_data(accountant_walk):
    _, problems = accountant_walk
    assert problems == [], "\n".join(problems)
