"""The invoice list in bulk: selecting, a payment on each, the PDFs as one zip, the e-mail button,
the lists as CSV with their filters; accountants and other MSPs' ids.

Figures by hand: A = 2 × 50.00 + 19 % VAT = 119.00. B = 200.00 + 19 % VAT (38.00) + 3 × 4.99
(14.97, untaxed) = 252.97, of which 52.97 is paid beforehand, so 200.00 is due. Paying both
in full records 119.00 + 200.00 = 319.00.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.http import HttpResponse
from django.test import override_settings
from django.urls import NoReverseMatch, include, path, reverse
from django_tenants.utils import schema_context

from contracts.models import Customer
from invoices import services, urls as invoice_urls
from invoices.models import AuditEvent, Invoice, Payment
from invoices.pdf import invoice_pdf_ensure
from msp_billing.urls_tenant import urlpatterns as tenant_patterns
from tests.support import body
from tests.invoices.builders import ISSUE_DAY, admin, customer, d, draft, issued, line, tax

pytestmark = pytest.mark.django_db

PAY_DAY = dt.date(2026, 4, 1)


@pytest.fixture
def data(tenant):
    tax("VAT", "19")
    cust = customer("Bulk GmbH")
    a = issued(cust, [line("Support", "2", "50", taxes=("VAT",))])
    b = issued(customer("Second Ltd"), [line("Backup", "1", "200", taxes=("VAT",)), line("Cable", "3", "4.99")])
    services.payment_record(invoice_id=b.pk, amount=d("52.97"), date=ISSUE_DAY, acting_user=admin())
    return {"a": a, "b": b, "draft": draft(cust, [line("Later", "1", "10")])}


def ids(*invoices) -> dict:
    return {"invoice": [str(i.pk) for i in invoices]}


def csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(body(response).decode())))


@pytest.fixture
def beta_invoice(other_tenant):
    """An invoice of the other MSP (and its customer), with ids that alpha does not have."""
    with schema_context("beta"):
        cust = Customer.objects.create(pk=987654320, legal_name="Beta Kunde", currency="EUR")
        return Invoice.objects.create(pk=987654321, customer=cust, currency="EUR", status=Invoice.Status.ISSUED,
                                      number="INV-BETA-1", issue_date=ISSUE_DAY, due_date=ISSUE_DAY, total=d("10.00"))


# --- the list ------------------------------------------------------------------------------


def test_the_list_selects_many_and_offers_the_actions(client_for, data):
    page = client_for("alpha", "billing_admin").get(reverse("invoices:list")).content.decode()
    form = page[page.index('<form method="get" action="/invoices/selected/pdfs.zip" id="invoice-selection"'):]
    form = form[:form.index("</form>")]
    assert 'data-bulk-all aria-label="Select all on this page"' in form
    for invoice in (data["a"], data["b"], data["draft"]):
        assert f'name="invoice" value="{invoice.pk}"' in form
    for label in ("Download PDFs (zip)", "Record payment…"):
        assert label in form
    assert 'formaction="/invoices/selected/payments/"' in form
    assert "csrfmiddlewaretoken" not in form  # every action is a GET: no token ends up in a URL
    assert "js/bulk_select.js" in page


def test_an_accountant_sees_the_downloads_but_no_write_action(client_for, data):
    client = client_for("alpha", "accountant")
    page = client.get(reverse("invoices:list")).content.decode()
    assert "Download PDFs (zip)" in page and "Download CSV" in page
    assert "Record payment" not in page and "E-mail selected" not in page and "Export to" not in page
    assert client.get(reverse("invoices:bulk_payment"), ids(data["a"])).status_code == 403
    response = client.post(reverse("invoices:bulk_payment"), {**ids(data["a"]), "date": "2026-04-01", "method": "bank_transfer"})
    assert response.status_code == 403
    assert not Payment.objects.filter(invoice=data["a"]).exists()


def _stand_in(request):
    return HttpResponse("preview of " + ",".join(request.GET.getlist("invoice")))


def _urls_with_email_preview():
    """The tenant URLs, with a stand-in for the e-mail preview page until the real one exists."""
    try:
        reverse("invoices:email_preview")
        return None
    except NoReverseMatch:
        pass
    invoices_with_preview = (invoice_urls.urlpatterns + [path("email/preview/", _stand_in, name="email_preview")], "invoices")
    module = type("urls", (), {})
    module.urlpatterns = [path("invoices/", include(invoices_with_preview)),
                          *(p for p in tenant_patterns if getattr(p, "namespace", None) != "invoices")]
    return module


def test_e_mail_selected_sends_the_selection_to_the_preview_page(client_for, data):
    urls = _urls_with_email_preview()
    with override_settings(**({"ROOT_URLCONF": urls} if urls else {})):
        client = client_for("alpha", "billing_admin")
        page = client.get(reverse("invoices:list")).content.decode()
        target = reverse("invoices:email_preview")
        form = page[page.index('id="invoice-selection"') - 60:]
        form = form[:form.index("</form>")]
        assert 'method="get"' in form.split(">")[0]
        button = re.search(r'<button[^>]*formaction="([^"]+)"[^>]*>E-mail selected</button>', form)
        assert button and button.group(1) == target
        # What the browser sends on that button: the ticked boxes, repeated, by GET.
        response = client.get(button.group(1), ids(data["a"], data["b"]))
        if urls:
            assert response.content.decode() == f"preview of {data['a'].pk},{data['b'].pk}"
        assert "E-mail selected" not in client_for("alpha", "accountant").get(reverse("invoices:list")).content.decode()


# --- a payment on each ---------------------------------------------------------------------


def test_each_selected_invoice_is_paid_in_full(client_for, data):
    client = client_for("alpha", "billing_admin")
    page = client.get(reverse("invoices:bulk_payment"), ids(data["a"], data["b"]))
    text = page.content.decode()
    assert page.status_code == 200
    assert "€119.00" in text and "€200.00" in text and "Total EUR" in text and "€319.00" in text
    response = client.post(reverse("invoices:bulk_payment"), {**ids(data["a"], data["b"]), "date": PAY_DAY.isoformat(),
                                                                "method": "bank_transfer", "reference": "Statement 14"},
                           follow=True)
    assert "2 payments recorded (319.00 EUR); each invoice is paid in full." in response.content.decode()
    for invoice, amount in ((data["a"], "119.00"), (data["b"], "200.00")):
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID and invoice.amount_due == 0
        payment = invoice.payments.latest("id")
        assert (payment.amount, payment.date, payment.reference) == (d(amount), PAY_DAY, "Statement 14")
        assert AuditEvent.objects.filter(action="payment_recorded", object_id=invoice.pk,
                                         after__reference="Statement 14").exists()


def test_one_refusal_records_nothing_and_names_each_refused_invoice(client_for, data):
    paid = issued(customer("Paid AG"), [line("Done", "1", "30")])
    services.payment_record(invoice_id=paid.pk, amount=d("30.00"), date=ISSUE_DAY, acting_user=admin())
    before = Payment.objects.count()
    response = admin_post(client_for, [data["a"], paid, data["draft"], data["b"]])
    text = response.content.decode()
    assert response.status_code == 409
    assert "Nothing was recorded: 2 of the selected invoices cannot be paid." in text
    assert f"{paid}</a>: {paid} is paid" in text or f"{paid}</a>: {paid} has nothing left to pay." in text
    assert f"{data['draft']}</a>:" in text
    assert Payment.objects.count() == before
    data["a"].refresh_from_db()
    assert data["a"].status == Invoice.Status.ISSUED and data["a"].amount_paid == 0


def admin_post(client_for, invoices, **extra):
    payload = {**ids(*invoices), "date": PAY_DAY.isoformat(), "method": "bank_transfer", "reference": "x", **extra}
    return client_for("alpha", "billing_admin").post(reverse("invoices:bulk_payment"), payload)


def test_bad_payment_input_is_explained_and_nothing_is_recorded(client_for, data):
    future = dt.date.today() + dt.timedelta(days=40)
    response = admin_post(client_for, [data["a"]], date=future.isoformat())
    assert response.status_code == 400 and "A payment cannot be dated in the future." in response.content.decode()
    assert admin_post(client_for, [data["a"]], date="soon").status_code == 400
    assert admin_post(client_for, [data["a"]], method="gold").status_code == 400
    response = client_for("alpha", "billing_admin").post(reverse("invoices:bulk_payment"), {"invoice": ["x"]})
    assert response.status_code == 400 and "not an invoice" in response.content.decode()
    assert client_for("alpha", "billing_admin").get(reverse("invoices:pdf_zip"), {"invoice": ["-3"]}).status_code == 400
    response = client_for("alpha", "billing_admin").get(reverse("invoices:bulk_payment"), follow=True)
    assert "Select at least one invoice." in response.content.decode()
    assert not Payment.objects.filter(invoice=data["a"]).exists()


def test_another_msps_id_refuses_the_whole_selection(client_for, data, beta_invoice):
    response = admin_post(client_for, [data["a"], beta_invoice])
    assert response.status_code == 404
    assert not Payment.objects.filter(invoice=data["a"]).exists()
    with schema_context("beta"):
        assert not Payment.objects.filter(invoice_id=beta_invoice.pk).exists()
    assert client_for("alpha", "billing_admin").get(reverse("invoices:pdf_zip"), ids(beta_invoice)).status_code == 404


# --- PDFs as one zip -----------------------------------------------------------------------


def test_the_zip_holds_the_current_pdfs_and_names_the_rest(client_for, data):
    pdf = invoice_pdf_ensure(invoice_id=data["a"].pk)
    response = client_for("alpha", "accountant").get(reverse("invoices:pdf_zip"), ids(data["a"], data["b"], data["draft"]))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip" and "attachment" in response["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(body(response)))
    assert archive.testzip() is None
    assert archive.namelist() == [f"{data['a'].number}.pdf", "not-included.txt"]
    with default_storage.open(pdf.file.name, "rb") as stored:
        assert archive.read(f"{data['a'].number}.pdf") == stored.read()
    note = archive.read("not-included.txt").decode()
    assert f"{data['b']}: its PDF is still being prepared" in note
    assert f"{data['draft']}: a draft has no PDF; issue it first" in note


def test_no_zip_without_any_pdf(client_for, data):
    response = client_for("alpha", "billing_admin").get(reverse("invoices:pdf_zip"), ids(data["b"], data["draft"]))
    assert response.status_code == 409
    assert "None of the selected invoices has a PDF yet" in response.content.decode()


# --- CSV ------------------------------------------------------------------------------------


def test_the_invoice_csv_is_the_list_with_its_filters_in_plain_figures(client_for, data):
    client = client_for("alpha", "accountant")
    for filters in ({}, {"status": "partially_paid"}, {"q": "Bulk"}, {"issued_from": "2026-03-10", "status": "issued"}):
        page = client.get(reverse("invoices:list"), filters)
        rows = csv_rows(client.get(reverse("invoices:list_csv"), filters))
        assert [int(r["Id"]) for r in rows] == [i.pk for i in page.context["listing"].objects], filters
    (row,) = csv_rows(client.get(reverse("invoices:list_csv"), {"status": "partially_paid"}))
    assert (row["Number"], row["Issue date"], row["Subtotal"], row["Tax"], row["Total"], row["Paid"], row["Due now"]) == (
        data["b"].number, "2026-03-10", "214.97", "38.00", "252.97", "52.97", "200.00")
    assert client.get(reverse("invoices:list_csv"), {"status": "lost"}).status_code == 400


def test_the_customer_csv_follows_the_filters(client_for, data):
    customer("Dollar Inc", currency="USD", region="us")
    client = client_for("alpha", "accountant")
    rows = csv_rows(client.get(reverse("contracts:customer_list_csv"), {"currency": "USD"}))
    assert [(r["Customer"], r["Currency"], r["Active"]) for r in rows] == [("Dollar Inc", "USD", "yes")]
    rows = csv_rows(client.get(reverse("contracts:customer_list_csv"), {"q": "Bulk"}))
    assert [r["Legal name"] for r in rows] == ["Bulk GmbH"]
    assert client.get(reverse("contracts:customer_list_csv"), {"currency": "XXX"}).status_code == 400
    assert client_for("alpha", "technician").get(reverse("contracts:customer_list_csv")).status_code == 403


def test_the_csv_files_hold_only_this_msps_rows(client_for, data, beta_invoice):
    client = client_for("alpha", "accountant")
    invoices = body(client.get(reverse("invoices:list_csv"))).decode()
    customers = body(client.get(reverse("contracts:customer_list_csv"))).decode()
    assert data["a"].number in invoices and "INV-BETA-1" not in invoices
    assert "Bulk GmbH" in customers and "Beta Kunde" not in customers
    # Filtering by the other MSP's customer is refused, not ignored (which would list everything).
    assert client.get(reverse("invoices:list_csv"), {"customer": beta_invoice.customer_id}).status_code == 400
    assert client.get(reverse("contracts:list_csv"), {"customer": beta_invoice.customer_id}).status_code == 400
