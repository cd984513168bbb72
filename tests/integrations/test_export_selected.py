"""The invoice list's selection exported to the connected accounting system: the button, the
confirmation page, the existing export run; roles, refusals and another MSP's ids."""
from __future__ import annotations

import pytest
from django.urls import reverse

from integrations.models import ExportRun
from tests.integrations.conftest import URLS
from tests.invoices.builders import customer, draft, issued, line

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]


def test_no_export_button_without_a_connection(tenant, client_for):
    issued(customer("Unconnected GmbH"), [line("x", "1", "5", taxes=())])
    page = client_for("alpha", "billing_admin").get(reverse("invoices:list")).content.decode()
    assert "Export to" not in page


def test_selected_invoices_are_exported_through_the_export_run(connected, client_for, django_capture_on_commit_callbacks):
    invoices = [issued(customer(f"Selected {n} Ltd"), [line("x", "1", "5", taxes=())]) for n in range(2)]
    admin = client_for("alpha", "billing_admin")
    page = admin.get(reverse("invoices:list")).content.decode()
    assert f'formaction="{reverse("integrations:export_confirm")}" formmethod="get" data-bulk-action>Export to QuickBooks Online…' in page
    assert "Export to" not in client_for("alpha", "accountant").get(reverse("invoices:list")).content.decode()

    confirm = admin.get(reverse("integrations:export_confirm"), {"invoice": [str(i.pk) for i in invoices]})
    text = confirm.content.decode()
    assert confirm.status_code == 200 and "2 documents go to QuickBooks Online" in text
    ids = ",".join(str(i.pk) for i in invoices)
    assert f'name="ids" value="{ids}"' in text
    with django_capture_on_commit_callbacks(execute=False):
        response = admin.post(reverse("integrations:export"), {"ids": ids})
    run = ExportRun.objects.get()
    assert response["Location"] == reverse("integrations:run", args=[run.pk])
    assert run.document_ids == [i.pk for i in invoices]


def test_a_selection_that_cannot_be_exported_is_explained(connected, client_for):
    good = issued(customer("Good Ltd"), [line("x", "1", "5", taxes=())])
    a_draft = draft(customer("Draft Ltd"), [line()])
    admin = client_for("alpha", "billing_admin")
    response = admin.get(reverse("integrations:export_confirm"), {"invoice": [str(good.pk), str(a_draft.pk)]})
    assert response.status_code == 409
    text = response.content.decode()
    assert "only issued invoices and credit notes are exported" in text and 'name="ids"' not in text
    assert admin.get(reverse("integrations:export_confirm"), {"invoice": ["987654321"]}).status_code == 404
    assert admin.get(reverse("integrations:export_confirm"), {"invoice": ["x"]}).status_code == 400
    assert client_for("alpha", "accountant").get(reverse("integrations:export_confirm"),
                                                 {"invoice": [str(good.pk)]}).status_code == 403
    assert not ExportRun.objects.exists()
