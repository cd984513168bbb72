"""The Create New Batch wizard and the batch page, as a billing admin uses them."""
from __future__ import annotations



from billing.models import BillingBatch
from invoices.models import Invoice
from tests.billing.test_batches import CUTOFF, world  # noqa: F401  (fixture)
from tickets.models import Ticket, TimeEntry


def wizard_post(client, world, **extra):  # noqa: F811
    from billing.services import selection_everything_due

    selection = selection_everything_due(cutoff=CUTOFF)
    data = {"cutoff": CUTOFF.isoformat(), "contract": list(selection.contract_ids), "name": "March"}
    data.update(extra)
    return client.post("/billing/batches/new/", data)


def test_wizard_lists_due_contracts_preselected_and_locks_the_rest(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    page = client.get("/billing/batches/new/", {"cutoff": CUTOFF.isoformat()})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Managed Services" in html and "Onsite Block" in html and "Hourly T&amp;M" in html
    assert f'name="contract" value="{world["retainer"].pk}" id="contract-{world["retainer"].pk}" aria-label="Bill Managed Services" checked' in html
    assert 'data-figure="bills">3<' in html  # everything due is pre-selected
    assert 'data-figure="total-EUR"><strong>1482.10<' in html
    # Expanding a contract loads its single items, all ticked.
    items_url = f"/billing/batches/new/contracts/{world['retainer'].pk}/items/"
    assert items_url in html
    items = client.get(items_url, {"cutoff": CUTOFF.isoformat()}).content.decode()
    assert f'name="period" value="{world["march"].pk}" checked' in items and 'name="shown_period"' in items
    assert client.get("/billing/batches/new/contracts/999999/items/", {"cutoff": CUTOFF.isoformat()}).status_code == 404
    assert client.get(items_url, {"cutoff": "yesterday"}).status_code == 400


def test_preview_follows_the_selection(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    response = client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "contract": [world["retainer"].pk]})
    html = response.content.decode()
    assert 'data-figure="bills">1<' in html and 'data-figure="total-EUR"><strong>1190.00<' in html
    # Waive March's retainer fee: shown in the expanded contract, then unticked.
    waived = client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "contract": [world["retainer"].pk, world["hourly"].pk],
                                                       "shown_period": [world["march"].pk]}).content.decode()
    assert 'data-figure="total-EUR"><strong>107.10<' in waived
    consolidated = client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "consolidated": "on",
                                                             "contract": [world["retainer"].pk, world["hourly"].pk]}).content.decode()
    assert 'data-figure="bills">1<' in consolidated and 'data-figure="total-EUR"><strong>1297.10<' in consolidated
    tampered = client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "contract": ["x"]})
    assert tampered.status_code == 400
    assert client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "due_token": "<script>"}).status_code == 400


def test_run_from_the_wizard_then_delete_an_invoice_and_the_batch(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    response = wizard_post(client, world)
    batch = BillingBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/billing/batches/{batch.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert page.count("Draft</a>") == 3
    invoice = Invoice.objects.filter(status="draft").first()
    assert client.post(f"/billing/batches/{batch.pk}/invoices/{invoice.pk}/delete/").status_code == 302
    assert Invoice.objects.count() == 2
    assert client.post(f"/billing/batches/{batch.pk}/generate/").status_code == 302
    assert Invoice.objects.filter(status="issued").count() == 2
    assert client.post(f"/billing/batches/{batch.pk}/delete/").status_code == 302
    assert not BillingBatch.objects.exists()
    assert not Ticket.objects.filter(billed_at__isnull=False).exists()
    assert not TimeEntry.objects.filter(billed_at__isnull=False).exists()


def test_stale_or_tampered_wizard_state_bills_nothing(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    assert wizard_post(client, world).status_code == 302
    again = wizard_post(client, world, name="Twice")
    assert again.status_code == 400 and "Nothing was billed" in again.content.decode()
    assert BillingBatch.objects.count() == 1
    bad = client.post("/billing/batches/new/", {"cutoff": CUTOFF.isoformat(), "contract": ["1; DROP"], "name": "x"})
    assert bad.status_code == 400
    assert client.post("/billing/batches/new/", {"cutoff": "31/31/2026", "name": "x"}).status_code == 400


def test_a_page_loaded_before_new_time_became_due_bills_nothing(client_for, world):  # noqa: F811
    import re

    client = client_for("alpha", "billing_admin")
    html = client.get("/billing/batches/new/", {"cutoff": CUTOFF.isoformat()}).content.decode()
    token = re.search(r'name="due_token" value="([0-9a-f]+)"', html).group(1)
    Ticket.objects.filter(pk=world["open_ticket"].pk).update(status=Ticket.Status.RESOLVED)
    stale = wizard_post(client, world, due_token=token)
    assert stale.status_code == 409 and "changed since this page was loaded" in stale.content.decode()
    assert not BillingBatch.objects.exists()


def test_another_msps_batch_is_not_found_and_technicians_are_refused(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    wizard_post(client, world)
    batch = BillingBatch.objects.get()
    assert client_for("beta", "billing_admin").get(f"/billing/batches/{batch.pk}/").status_code == 404
    assert client_for("beta", "billing_admin").post(f"/billing/batches/{batch.pk}/delete/").status_code == 404
    assert client_for("alpha", "technician").get("/billing/batches/new/").status_code == 403
    assert client_for("alpha", "accountant").post(f"/billing/batches/{batch.pk}/delete/").status_code == 403
    assert BillingBatch.objects.exists()


def test_audit_trail_on_the_batch_page_and_as_a_filterable_report(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    wizard_post(client, world)
    batch = BillingBatch.objects.get()
    page = client.get(f"/billing/batches/{batch.pk}/").content.decode()
    assert "batch_run" in page and "billing-admin@alpha.example" in page
    report = client_for("alpha", "accountant").get("/billing/reports/audit/", {"action": "batch_run"}).content.decode()
    assert "batch_run" in report and "invoice_created" not in report
    csv = client_for("alpha", "accountant").get("/billing/reports/audit/", {"action": "batch", "format": "csv"})
    assert csv["Content-Type"] == "text/csv" and "batch_run" in csv.content.decode()
    assert client_for("alpha", "accountant").get("/billing/reports/audit/", {"start": "not a date"}).status_code == 400
    assert client_for("alpha", "technician").get("/billing/reports/audit/").status_code == 403


def test_batch_invoices_are_found_from_the_invoice_pages_and_keep_their_time_lines(client_for, world):  # noqa: F811
    from tests.invoices.test_views import edit_post, existing_rows

    client = client_for("alpha", "billing_admin")
    assert wizard_post(client, world).status_code == 302
    batch = BillingBatch.objects.get()
    invoice = Invoice.objects.filter(batch_link__batch=batch, lines__time_allocation__isnull=False).distinct().first()
    from invoices.services import invoice_create_draft

    by_hand = invoice_create_draft(customer=invoice.customer, acting_user=world["admin"], notes="Not from a batch")
    assert by_hand.pk in {i.pk for i in client.get("/invoices/").context["listing"].objects}
    listed = client.get("/invoices/", {"batch": batch.pk})
    assert listed.status_code == 200
    assert {i.pk for i in listed.context["listing"].objects} == set(batch.invoice_links.values_list("invoice_id", flat=True))
    assert f"/billing/batches/{batch.pk}/" in client.get(f"/invoices/{invoice.pk}/").content.decode()
    # Ticking "Remove" on a time line of the batch's draft is refused with a message; nothing changes.
    rows = existing_rows(invoice)
    time_line = invoice.lines.filter(time_allocation__isnull=False).order_by("sort_order").first()
    for row in rows:
        if row["line_id"] == str(time_line.pk):
            row["DELETE"] = "on"
    before = invoice.lines.count()
    response = client.post(f"/invoices/{invoice.pk}/edit/", edit_post(invoice, rows))
    assert response.status_code == 400
    assert "cannot be removed: delete the invoice from its billing batch" in response.content.decode()
    assert invoice.lines.count() == before and TimeEntry.objects.get(pk=time_line.time_allocation.entry_id).billed_at
