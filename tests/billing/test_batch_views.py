"""The Create New Batch wizard and the batch page, as a billing admin uses them."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from billing.models import BillingBatch
from contracts.models import ContractPeriod
from msp_billing.accounts.models import User
from invoices.models import Invoice
from tests.billing.test_batches import CUTOFF, world  # noqa: F401  (fixture)
from tests.billing.wizard_pages import page_and_details
from tickets.models import Ticket, TimeEntry


def wizard_post(client, world, **extra):  # noqa: F811
    from billing.services import selection_everything_due

    selection = selection_everything_due(cutoff=CUTOFF)
    data = {"cutoff": CUTOFF.isoformat(), "contract": list(selection.contract_ids), "name": "March"}
    data.update(extra)
    return client.post("/billing/batches/new/", data)


def test_wizard_lists_due_contracts_preselected_and_locks_the_rest(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    html, details = page_and_details(client, {"cutoff": CUTOFF.isoformat()})
    assert "Managed Services" in html and "Onsite Block" in html and "Hourly T&amp;M" in html
    assert f'name="contract" value="{world["retainer"].pk}" id="contract-{world["retainer"].pk}" aria-label="Bill Managed Services" checked' in html
    assert 'data-figure="bills">3<' in details  # everything due is pre-selected
    assert 'data-figure="total-EUR"><strong>1,482.10<' in details
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
    assert 'data-figure="bills">1<' in html and 'data-figure="total-EUR"><strong>1,190.00<' in html
    # Waive March's retainer fee: shown in the expanded contract, then unticked.
    waived = client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "contract": [world["retainer"].pk, world["hourly"].pk],
                                                       "shown_period": [world["march"].pk]}).content.decode()
    assert 'data-figure="total-EUR"><strong>107.10<' in waived
    consolidated = client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "consolidated": "on",
                                                             "contract": [world["retainer"].pk, world["hourly"].pk]}).content.decode()
    assert 'data-figure="bills">1<' in consolidated and 'data-figure="total-EUR"><strong>1,297.10<' in consolidated
    tampered = client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "contract": ["x"]})
    assert tampered.status_code == 400
    assert client.post("/billing/batches/preview/", {"cutoff": CUTOFF.isoformat(), "due_token": "<script>"}).status_code == 400


def _confirmation(client, url: str) -> tuple[str, str]:
    """The confirmation page of ``url`` and the token its button posts."""
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    return html, re.search(r'name="confirmed" value="([0-9a-f]+)"', html).group(1)


def test_run_then_confirm_deleting_a_draft_generating_and_deleting_the_batch(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    response = wizard_post(client, world)
    batch = BillingBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/billing/batches/{batch.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert page.count("Draft</a>") == 3
    base = f"/billing/batches/{batch.pk}"

    # Deleting a draft: nothing happens without the confirmation, which names what is released.
    invoice = Invoice.objects.filter(status="draft", lines__time_allocation__isnull=False).distinct().first()
    url = f"{base}/invoices/{invoice.pk}/delete/"
    assert client.post(url).status_code == 409 and Invoice.objects.count() == 3
    html, token = _confirmation(client, url)
    entries = list(TimeEntry.objects.filter(allocations__invoice_lines__invoice=invoice).distinct())
    ticket = entries[0].ticket
    assert 'data-figure="count">1<' in html and f"Ticket #{ticket.pk} {ticket.title}" in html
    assert client.post(url, {"confirmed": token}).status_code == 302
    assert Invoice.objects.count() == 2 and not TimeEntry.objects.filter(pk__in=[e.pk for e in entries], billed_at__isnull=False).exists()

    # Generate: the numbers the drafts take and the total, "used for good"; the same numbers are issued.
    html, token = _confirmation(client, f"{base}/generate/")
    drafts = list(Invoice.objects.filter(status="draft").order_by("customer__legal_name", "pk"))
    total = sum(d.total for d in drafts)
    assert "These numbers are used for good" in html and 'data-figure="count">2<' in html
    assert f'data-figure="total-EUR">€{total:,.2f}<' in html
    numbers = re.findall(r"<tr><td>([A-Z]+-[\d-]+)</td>", html)
    assert len(numbers) == 2
    assert client.post(f"{base}/generate/", {"confirmed": token}).status_code == 302
    assert sorted(Invoice.objects.filter(status="issued").values_list("number", flat=True)) == sorted(numbers)

    # Delete batch: lists the invoices voided and the items released, then does exactly that.
    html, token = _confirmation(client, f"{base}/delete/")
    assert "Voided (2)" in html and all(number in html for number in numbers) and "Released for the next batch" in html
    assert client.post(f"{base}/delete/", {"confirmed": token}).status_code == 302
    assert not BillingBatch.objects.exists() and Invoice.objects.filter(status="void").count() == 2
    assert not Ticket.objects.filter(billed_at__isnull=False).exists()
    assert not TimeEntry.objects.filter(billed_at__isnull=False).exists()


def test_a_confirmation_outdated_by_a_change_does_nothing(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    wizard_post(client, world)
    batch = BillingBatch.objects.get()
    html, token = _confirmation(client, f"/billing/batches/{batch.pk}/generate/")
    assert client_for("alpha", "accountant").get(f"/billing/batches/{batch.pk}/generate/").content.decode().count(
        'name="confirmed"') == 0  # read-only: sees what would happen, no button
    first = Invoice.objects.filter(status="draft").order_by("pk").first()
    from billing import services

    services.batch_invoice_delete(batch_id=batch.pk, invoice_id=first.pk, acting_user=None,
                                  confirmed=_confirmation(client, f"/billing/batches/{batch.pk}/invoices/{first.pk}/delete/")[1])
    stale = client.post(f"/billing/batches/{batch.pk}/generate/", {"confirmed": token})
    assert stale.status_code == 409 and "changed since you confirmed" in stale.content.decode()
    assert not Invoice.objects.filter(status="issued").exists()


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
    _html, details = page_and_details(client, {"cutoff": CUTOFF.isoformat()})
    token = re.search(r'name="due_token" value="([0-9a-f]+)"', details).group(1)
    Ticket.objects.filter(pk=world["open_ticket"].pk).update(status=Ticket.Status.RESOLVED)
    stale = wizard_post(client, world, due_token=token)
    assert stale.status_code == 409 and "changed since this page was loaded" in stale.content.decode()
    assert not BillingBatch.objects.exists()


def test_another_msps_batch_is_not_found_and_technicians_are_refused(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    wizard_post(client, world)
    batch = BillingBatch.objects.get()
    invoice = Invoice.objects.first()
    assert client_for("beta", "billing_admin").get(f"/billing/batches/{batch.pk}/").status_code == 404
    assert client_for("beta", "billing_admin").post(f"/billing/batches/{batch.pk}/delete/").status_code == 404
    for confirmation in ("generate/", "delete/", f"invoices/{invoice.pk}/delete/"):  # what would happen: not shown either
        assert client_for("beta", "billing_admin").get(f"/billing/batches/{batch.pk}/{confirmation}").status_code == 404
    assert client_for("alpha", "technician").get("/billing/batches/new/").status_code == 403
    assert client_for("alpha", "accountant").post(f"/billing/batches/{batch.pk}/delete/").status_code == 403
    assert BillingBatch.objects.exists()


def test_audit_trail_on_the_batch_page_and_as_a_filterable_report(client_for, world):  # noqa: F811
    client = client_for("alpha", "billing_admin")
    wizard_post(client, world)
    batch = BillingBatch.objects.get()
    page = client.get(f"/billing/batches/{batch.pk}/").content.decode()
    assert "<strong>Batch run</strong>" in page and "batch_run" not in page and "billing-admin@alpha.example" in page
    report = client_for("alpha", "accountant").get("/billing/reports/audit/", {"action": "batch_run"}).content.decode()
    assert "<td>Batch run</td>" in report and f"<td>Billing batch {batch.name}</td>" in report
    assert "<td>Invoice created</td>" not in report
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


# --- periods exist as soon as the contract does; overdue stays overdue ------------------------------


def _period_badges(html: str) -> dict[str, str]:
    """{"1 Oct": "Overdue", …} from the wizard's expanded items or the contract page's period table."""
    if 'id="periods-h"' in html:  # the contract page: its period table only
        html = html.split('id="periods-h"')[1].split("</table>")[0]
    return dict(re.findall(r"(\d{1,2} \w{3,4})(?: \d{4})? – \d{1,2} \w{3,4} \d{4}(?:</td>.*?)?\s*<span class=\"badge[^\"]*\">(\w+)</span>",
                           html, re.DOTALL))


def test_a_contract_created_on_its_page_is_due_in_the_wizard_at_once(client_for, tenant):
    from contracts.models import Contract, Customer

    client = client_for("alpha", "billing_admin")
    customer = Customer.objects.create(legal_name="Form First GmbH", currency="EUR")
    response = client.post("/contracts/new/", {
        "customer": customer.pk, "name": "Managed Services", "type": "retainer", "status": "active", "fee": "430",
        "start_date": "2026-03-01", "billing_frequency": "monthly", "billing_timing": "advance", "anchor_day": "1",
        "priority": "10", "rounding_increment": "15", "rounding_direction": "up", "rounding_minimum": "0",
        "renewal_notice_days": "90", "renewal_term_months": "12", "alert_thresholds": "75,90,100", "included_quantity": "0",
    })
    contract = Contract.objects.get(name="Managed Services", customer=customer)
    assert response.status_code == 302 and response["Location"] == f"/contracts/{contract.pk}/"

    # Straight to Create New Batch: the March fee is listed, due, and in the totals (not taxable).
    page, details = page_and_details(client, {"cutoff": "2026-03-31"})
    assert "Managed Services <span class=\"muted\">(1 period)</span>" in page
    assert 'data-figure="total-EUR"><strong>430.00<' in details
    items = client.get(f"/billing/batches/new/contracts/{contract.pk}/items/", {"cutoff": "2026-03-31"}).content.decode()
    assert _period_badges(items) == {"1 Mar": "Due"}

    token = details.split('name="due_token" value="')[1].split('"')[0]
    run = client.post("/billing/batches/new/", {"cutoff": "2026-03-31", "contract": [contract.pk], "name": "March",
                                                 "due_token": token})
    assert run.status_code == 302
    invoice = Invoice.objects.get(customer=customer)
    assert (invoice.subtotal, invoice.total) == (Decimal("430.00"), Decimal("430.00"))
    assert invoice.lines.count() == 1


def test_a_period_left_out_stays_overdue_after_a_later_one_is_billed(client_for, tenant):
    from contracts.models import Contract, Customer
    from contracts.services import contract_create

    client = client_for("alpha", "billing_admin")
    customer = Customer.objects.create(legal_name="Skipped Month AG", currency="EUR")
    admin = User.objects.get(email="billing-admin@alpha.example")
    contract = contract_create(customer=customer, name="Managed Services", type=Contract.Type.RETAINER,
                               start_date=dt.date(2026, 9, 1), end_date=dt.date(2026, 11, 30), fee=Decimal("300.00"),
                               taxable=False, acting_user=admin)
    assert contract.periods.count() == 3  # September to November, stored with the contract
    oct_ = contract.periods.get(start=dt.date(2026, 10, 1))

    def run(cutoff: str, *, leave_out=()) -> None:
        data = {"cutoff": cutoff, "contract": [contract.pk], "name": f"To {cutoff}"}
        if leave_out:
            data["shown_period"] = [p.pk for p in leave_out]
        response = client.post("/billing/batches/new/", data)
        assert response.status_code == 302, response.content.decode()

    def badges(cutoff: str) -> dict[str, str]:
        return _period_badges(client.get(f"/billing/batches/new/contracts/{contract.pk}/items/", {"cutoff": cutoff}).content.decode())

    run("2026-09-30")
    assert badges("2026-10-31") == {"1 Oct": "Due"}  # no batch is run in October
    assert badges("2026-11-30") == {"1 Oct": "Overdue", "1 Nov": "Due"}
    run("2026-11-30", leave_out=[oct_])  # November billed, October left out
    # November is the period due by 30 November, and it is billed: October is overdue, not due.
    assert badges("2026-11-30") == {"1 Oct": "Overdue"}
    assert badges("2026-12-31") == {"1 Oct": "Overdue"}
    page = client.get(f"/contracts/{contract.pk}/").content.decode()
    assert _period_badges(page) == {"1 Sept": "Billed", "1 Oct": "Overdue", "1 Nov": "Billed"}
    # Billed at last, with a hand-computed amount: the full October fee.
    run("2026-12-31")
    assert Invoice.objects.filter(customer=customer).order_by("-pk").first().total == Decimal("300.00")
    assert ContractPeriod.objects.get(pk=oct_.pk).billed_at is not None
