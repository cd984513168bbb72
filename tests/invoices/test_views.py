"""The invoice pages: every page, every action, bad input, roles, and ids that are not this MSP's."""
from __future__ import annotations

import re

import datetime as dt

import pytest
from django.urls import reverse
from django_tenants.utils import schema_context

from invoices import services
from invoices.models import AuditEvent, Invoice, InvoiceSettings, Payment
from tests.invoices.builders import ISSUE_DAY, admin, customer, d, draft, issued, line, tax

pytestmark = pytest.mark.django_db


@pytest.fixture
def data(tenant):
    vat = tax("VAT", "19")
    cust = customer("Views GmbH")
    draft_invoice = draft(cust, [line("Support", "2", "50", taxes=("VAT",))])
    issued_invoice = issued(cust, [line("Backup", "1", "200", taxes=("VAT",)), line("Cable", "3", "4.99")])
    return {"vat": vat, "customer": cust, "draft": draft_invoice, "issued": issued_invoice}


@pytest.fixture
def admin_client(client_for):
    return client_for("alpha", "billing_admin")


def url(name: str, invoice: Invoice | None = None) -> str:
    return reverse(f"invoices:{name}", args=[invoice.pk] if invoice is not None else [])


def page(response) -> str:
    return response.content.decode()


def edit_post(invoice: Invoice, lines: list[dict], **header) -> dict:
    data = {
        "lines-TOTAL_FORMS": str(len(lines)), "lines-INITIAL_FORMS": str(sum(1 for l in lines if l.get("line_id"))),
        "lines-MIN_NUM_FORMS": "0", "lines-MAX_NUM_FORMS": "500",
        "discount_kind": "", "discount_value": "", "surcharge_kind": "", "surcharge_value": "",
        "payment_terms_days": str(invoice.payment_terms_days), "notes": invoice.notes, "terms": invoice.terms,
        "payment_instructions": invoice.payment_instructions,
    }
    if invoice.due_date:
        data["due_date"] = invoice.due_date.isoformat()
    for index, values in enumerate(lines):
        for key, value in values.items():
            data[f"lines-{index}-{key}"] = value
    data.update(header)
    return data


def existing_rows(invoice: Invoice) -> list[dict]:
    return [{"line_id": str(l.pk), "description": l.description, "quantity": str(l.quantity), "unit_price": str(l.unit_price),
             "discount_kind": l.discount_kind, "discount_value": str(l.discount_value) if l.discount_kind else "",
             **({"taxable": "on"} if l.taxable else {}), "tax_codes": list(l.tax_codes)}
            for l in invoice.lines.order_by("sort_order")]


# --- pages ---------------------------------------------------------------------------------


def test_every_page_opens_for_a_billing_admin(admin_client, data):
    credit = services.credit_note_create(invoice_id=data["issued"].pk, reason="Goodwill", acting_user=admin(),
                                         lines=[services.CreditLineInput(data["issued"].lines.first().pk, d("10"))],
                                         issue_date=ISSUE_DAY)
    for path in (url("list"), url("create"), url("aging"), url("outstanding"), url("settings"),
                 url("detail", data["draft"]), url("detail", data["issued"]), url("detail", credit),
                 url("edit", data["draft"]), url("void", credit), url("credit_note", data["issued"]),
                 url("payment", data["issued"])):
        response = admin_client.get(path)
        assert response.status_code == 200, path
    detail = page(admin_client.get(url("detail", data["issued"])))
    for text in ("INV-2026-00001", "Views GmbH", "DE123456789", "Backup", "VAT 19 %", "252.97", "Audit trail", "Invoice issued",
                 credit.number):
        assert text in detail, text


def test_the_list_searches_and_filters(admin_client, data):
    other = issued(customer("Elsewhere Ltd"), on=dt.date(2026, 1, 5))
    response = admin_client.get(url("list"), {"q": "INV-2026-0000"})
    assert response.status_code == 200
    assert {i.pk for i in response.context["listing"].objects} == {data["issued"].pk, other.pk}
    by_customer = admin_client.get(url("list"), {"customer": data["customer"].pk})
    assert {i.pk for i in by_customer.context["listing"].objects} == {data["issued"].pk, data["draft"].pk}
    drafts = admin_client.get(url("list"), {"status": "draft"})
    assert [i.pk for i in drafts.context["listing"].objects] == [data["draft"].pk]
    january = admin_client.get(url("list"), {"issued_from": "2026-01-01", "issued_to": "2026-01-31"})
    assert [i.pk for i in january.context["listing"].objects] == [other.pk]
    for bad in ({"status": "lost"}, {"issued_from": "yesterday"}, {"customer": "999999"}, {"batch": "999999"}):
        assert admin_client.get(url("list"), bad).status_code == 400


def test_the_list_filters_by_billing_batch(admin_client, data):
    from billing.models import BatchInvoice, BillingBatch

    batch = BillingBatch.objects.create(name="January run", cutoff=dt.date(2026, 1, 31))
    BatchInvoice.objects.create(batch=batch, invoice=data["draft"])
    response = admin_client.get(url("list"), {"batch": batch.pk})
    assert response.status_code == 200
    assert [i.pk for i in response.context["listing"].objects] == [data["draft"].pk]
    assert "January run" in response.content.decode()
    detail = admin_client.get(url("detail", data["draft"])).content.decode()
    assert "Billing batch" in detail and f"/billing/batches/{batch.pk}/" in detail


def test_create_edit_issue_pay_and_credit_through_the_pages(admin_client, data):
    response = admin_client.post(url("create"), {"customer": data["customer"].pk, "notes": "By hand"})
    invoice = Invoice.objects.latest("id")
    assert response.status_code == 302 and response["Location"] == url("edit", invoice)
    assert (invoice.status, invoice.notes, invoice.currency) == ("draft", "By hand", "EUR")

    response = admin_client.post(url("edit", invoice), edit_post(invoice, [
        {"description": "Onsite visit", "quantity": "1.5", "unit_price": "120", "taxable": "on", "tax_codes": ["VAT"]},
        {"description": "Travel", "quantity": "1", "unit_price": "30", "discount_kind": "percent", "discount_value": "10"},
        {"description": "", "quantity": "", "unit_price": "", "taxable": "on"},  # an untouched spare row
    ], discount_kind="amount", discount_value="7"))
    assert response.status_code == 302, page(response)
    invoice.refresh_from_db()
    # 180.00 + 27.00 = 207.00; discount 7.00 spread 6.09 / 0.91; VAT on 173.91 = 33.04
    assert (invoice.subtotal, invoice.discount_total, invoice.tax_total, invoice.total) == (
        d("207.00"), d("7.00"), d("33.04"), d("233.04"))

    response = admin_client.post(url("issue", invoice), {"issue_date": "2026-03-10"})
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.number == "INV-2026-00002" and invoice.due_date == dt.date(2026, 3, 24)

    response = admin_client.post(url("payment", invoice), {"amount": "100", "date": "2026-03-12", "method": "bank_transfer",
                                                           "reference": "SEPA 1"})
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == ("partially_paid", d("133.04"))

    response = admin_client.post(url("credit_note", invoice), {"what": "whole", "reason": "Visit cancelled"})
    credit = Invoice.objects.get(credited_invoice=invoice)
    assert response.status_code == 302 and response["Location"] == url("detail", credit)
    assert credit.total == -invoice.total and credit.number == "CN-2026-00001"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == ("paid", d("-100.00"))
    # Paid 100.00, then credited in full: the customer is owed 100.00, netted with its other open invoice.
    assert "152.97" in page(admin_client.get(url("outstanding")))  # 252.97 − 100.00

    response = admin_client.post(url("void", credit), {"reason": "Visit happened after all"})
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.amount_due == d("133.04")


def test_an_issued_invoice_is_edited_from_its_page(admin_client, data):
    invoice = data["issued"]
    rows = existing_rows(invoice)
    rows[1]["quantity"] = "4"
    rows[1]["DELETE"] = ""
    response = admin_client.post(url("edit", invoice), edit_post(invoice, rows, notes="Corrected"))
    assert response.status_code == 302, page(response)
    invoice.refresh_from_db()
    assert (invoice.number, invoice.pdf_version, invoice.notes) == ("INV-2026-00001", 2, "Corrected")
    assert invoice.subtotal == d("219.96")  # 200.00 + 4 × 4.99
    assert AuditEvent.objects.filter(action="invoice_edited", object_id=str(invoice.pk)).exists()
    # Ticking Remove drops a line.
    rows = existing_rows(invoice)
    rows[1]["DELETE"] = "on"
    assert admin_client.post(url("edit", invoice), edit_post(invoice, rows)).status_code == 302
    assert invoice.lines.count() == 1


def test_bad_input_is_explained_with_status_400(admin_client, data):
    invoice = data["draft"]
    rows = existing_rows(invoice)
    rows[0]["quantity"] = "lots"
    response = admin_client.post(url("edit", invoice), edit_post(invoice, rows))
    assert response.status_code == 400 and "Enter a number" in page(response)
    rows = existing_rows(invoice)
    response = admin_client.post(url("edit", invoice), edit_post(invoice, rows, discount_kind="amount", discount_value="5000"))
    assert response.status_code == 400 and "larger than the invoice" in page(response)
    rows[0]["tax_codes"] = ["NOPE"]
    assert admin_client.post(url("edit", invoice), edit_post(invoice, rows)).status_code == 400
    rows = existing_rows(invoice)
    rows[0]["line_id"] = str(data["issued"].lines.first().pk)  # a line of another invoice
    response = admin_client.post(url("edit", invoice), edit_post(invoice, rows))
    assert response.status_code == 400 and "not on this invoice" in page(response)
    broken = edit_post(invoice, existing_rows(invoice))
    del broken["lines-TOTAL_FORMS"]
    assert admin_client.post(url("edit", invoice), broken).status_code == 400

    assert admin_client.post(url("issue", invoice), {"issue_date": "31/02/2026"}).status_code == 400
    assert admin_client.post(url("create"), {"customer": "999999"}).status_code == 400

    issued_invoice = data["issued"]
    response = admin_client.post(url("payment", issued_invoice), {"amount": "1000", "date": "2026-03-12", "method": "card"})
    assert response.status_code == 400 and "overpayments are not recorded" in page(response)
    assert admin_client.post(url("payment", issued_invoice), {"amount": "-1", "date": "2026-03-12", "method": "card"}).status_code == 400
    assert admin_client.post(url("payment", issued_invoice), {"amount": "1", "date": "2026-03-12", "method": "barter"}).status_code == 400
    assert not Payment.objects.exists()

    first_line = issued_invoice.lines.order_by("sort_order").first()
    response = admin_client.post(url("credit_note", issued_invoice),
                                 {"what": "chosen", "reason": "x", f"line_{first_line.pk}": "999"})
    assert response.status_code == 400 and "left to credit" in page(response)
    assert admin_client.post(url("credit_note", issued_invoice), {"what": "chosen", "reason": "x"}).status_code == 400
    assert admin_client.post(url("credit_note", issued_invoice), {"what": "whole", "reason": ""}).status_code == 400
    assert admin_client.post(url("void", issued_invoice), {"reason": ""}).status_code == 400

    assert admin_client.get(url("aging"), {"as_of": "not-a-date"}).status_code == 400
    assert admin_client.get(url("outstanding"), {"as_of": "2026-13-01"}).status_code == 400
    response = admin_client.post(url("settings"), {"number_prefix": "INV", "number_padding": "0", "credit_note_prefix": "INV",
                                                   "default_discount_percent": "0", "default_surcharge_percent": "0",
                                                   "default_payment_terms_days": "30"})
    assert response.status_code == 400
    assert Invoice.objects.filter(status="void").count() == 0


def test_actions_the_state_does_not_allow_are_refused_with_409(admin_client, data):
    invoice = data["issued"]
    services.payment_record(invoice_id=invoice.pk, amount=invoice.total, date=ISSUE_DAY, acting_user=admin())
    response = admin_client.get(url("edit", invoice))
    assert response.status_code == 409 and "has payments" in page(response)
    assert admin_client.post(url("edit", invoice), edit_post(invoice, existing_rows(invoice))).status_code == 409
    assert admin_client.post(url("void", invoice), {"reason": "x"}).status_code == 409
    assert admin_client.post(url("payment", invoice), {"amount": "1", "date": "2026-03-12", "method": "card"}).status_code == 409
    assert admin_client.post(url("issue", invoice), {}).status_code == 409
    assert admin_client.post(url("delete", invoice)).status_code == 409
    assert admin_client.post(url("credit_note", data["draft"]), {"what": "whole", "reason": "x"}).status_code == 409


def test_a_draft_is_deleted_from_its_page_after_the_confirmation(admin_client, data):
    draft = data["draft"]
    confirmation = admin_client.get(url("delete", draft))  # GET shows what goes and changes nothing
    html = page(confirmation)
    assert confirmation.status_code == 200 and 'data-figure="count">1<' in html and "no number is used" in html
    assert Invoice.objects.filter(pk=draft.pk).exists()
    assert admin_client.post(url("delete", draft)).status_code == 409  # no confirmation: nothing happens
    token = re.search(r'name="confirmed" value="([0-9a-f]+)"', html).group(1)
    response = admin_client.post(url("delete", draft), {"confirmed": token})
    assert response.status_code == 302 and not Invoice.objects.filter(pk=draft.pk).exists()


def test_settings_page_saves_numbering_and_texts(admin_client, data):
    response = admin_client.post(url("settings"), {
        "number_prefix": "RE", "number_padding": "4", "number_yearly_reset": "", "credit_note_prefix": "GS",
        "default_discount_percent": "2.5", "default_surcharge_percent": "0", "default_payment_terms_days": "21",
        "default_tax_codes": ["VAT"], "terms": "Net 21", "payment_instructions": "IBAN DE00", "footer": "Thanks",
    })
    assert response.status_code == 302
    row = InvoiceSettings.load()
    assert (row.number_prefix, row.number_padding, row.number_yearly_reset, row.default_tax_codes) == ("RE", 4, False, "VAT")
    assert issued(data["customer"]).number == "RE-0001"
    assert AuditEvent.objects.filter(action="invoice_settings_updated").exists()
    assert "RE-0042" in page(admin_client.get(url("settings")))


def test_aging_and_outstanding_pages_show_the_buckets(admin_client, data):
    old = issued(data["customer"], [line("Old", "1", "80")], on=dt.date(2025, 12, 1))  # due 15 Dec 2025
    response = admin_client.get(url("aging"), {"as_of": "2026-03-31"})
    assert response.status_code == 200
    (row,) = response.context["report"].rows
    assert row.buckets["days_over_90"] == d("80.00")  # 106 days past due
    assert row.buckets["days_1_30"] == data["issued"].total  # due 24 Mar 2026: 7 days past due
    response = admin_client.get(url("outstanding"), {"as_of": "2026-03-31"})
    (balance,) = response.context["balances"]
    assert balance.outstanding == d("80.00") + data["issued"].total and balance.oldest_due_date == old.due_date


# --- roles and tenants ---------------------------------------------------------------------


def test_an_accountant_reads_but_cannot_change_anything(client_for, data):
    client = client_for("alpha", "accountant")
    assert client.get(url("list")).status_code == 200
    assert client.get(url("detail", data["issued"])).status_code == 200
    assert client.get(url("aging")).status_code == 200
    for path, body in ((url("create"), {"customer": data["customer"].pk}),
                       (url("edit", data["draft"]), edit_post(data["draft"], existing_rows(data["draft"]))),
                       (url("issue", data["draft"]), {}), (url("delete", data["draft"]), {}),
                       (url("void", data["issued"]), {"reason": "x"}),
                       (url("credit_note", data["issued"]), {"what": "whole", "reason": "x"}),
                       (url("payment", data["issued"]), {"amount": "1", "date": "2026-03-12", "method": "card"})):
        assert client.post(path, body).status_code == 403, path
    assert client.get(url("settings")).status_code == 403  # invoice settings are MANAGE_SETTINGS
    assert Invoice.objects.get(pk=data["draft"].pk).status == "draft"


def test_a_technician_sees_no_invoice_page(client_for, data):
    client = client_for("alpha", "technician")
    for path in (url("list"), url("detail", data["issued"]), url("aging"), url("outstanding"), url("settings"),
                 url("edit", data["draft"])):
        assert client.get(path).status_code == 403, path
    assert client.post(url("payment", data["issued"]), {"amount": "1"}).status_code == 403


def test_another_msps_invoice_is_404(client_for, tenant):
    with schema_context("beta"):
        from tests.invoices.builders import customer as make_customer

        theirs = services.invoice_create_draft(customer=make_customer("Beta Kunde"), lines=[line()], acting_user=None)
    client = client_for("alpha", "billing_admin")
    assert not Invoice.objects.filter(pk=theirs.pk).exists()  # schema alpha holds no invoice with that id
    for name in ("detail", "edit", "void", "credit_note", "payment"):
        assert client.get(url(name, theirs)).status_code == 404, name
    for name in ("issue", "delete", "void", "payment"):
        assert client.post(url(name, theirs), {"reason": "x", "amount": "1"}).status_code == 404, name
    assert client.get("/invoices/99999999/").status_code == 404
