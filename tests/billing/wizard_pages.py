"""Create New Batch as a browser without scripts sees it: the page, its batch form as it
stands, and the batch details the page loads for that form once it has come."""
from __future__ import annotations

from urllib.parse import urlencode

from tests.chaos.wizard import forms_of

PAGE = "/billing/batches/new/"


def batch_form(html: str) -> list[tuple[str, str]]:
    """The fields the batch form sends as the page stands (ticked checkboxes, hidden fields)."""
    [form] = [form for form in forms_of(html) if form["id"] == "batch-form"]
    return form["fields"]


def post_form(client, path: str, fields: list[tuple[str, str]], **headers):
    """POST ``fields`` (repeated names kept, in order) as a browser sends a form."""
    return client.post(path, urlencode(fields), content_type="application/x-www-form-urlencoded", headers=headers)


def page_and_details(client, params: dict) -> tuple[str, str]:
    """The page, and the batch details it loads after it (the form posted to the preview)."""
    page = client.get(PAGE, params)
    assert page.status_code == 200, page.status_code
    html = page.content.decode()
    details = post_form(client, "/billing/batches/preview/", batch_form(html))
    assert details.status_code == 200, details.status_code
    return html, details.content.decode()
