"""IIF, Xero CSV and plain CSV: parsed back and checked line by line; the download views."""
from __future__ import annotations

import csv
import io
import zipfile
from decimal import Decimal

import pytest
from django.urls import reverse

from contracts.models import Product, RateItem
from integrations import files
from integrations.models import IntegrationLog, RemoteMapping
from integrations.selectors import documents_for_export
from invoices import services
from tests.integrations.conftest import URLS
from tests.invoices.builders import ISSUE_DAY, admin, customer, d, draft, issued, line, percent, tax

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]


@pytest.fixture
def catalogue(tenant):
    product = Product.objects.create(sku="FW-100", name="Firewall appliance", price=d("250"), price_currency="EUR",
                                     cost=d("150"), cost_currency="EUR", accounting_code="4000")
    rate_item = RateItem.objects.create(name="Remote Support", rate=d("95"), rate_currency="EUR", accounting_code="4100")
    return product, rate_item


@pytest.fixture
def invoices(tenant, catalogue):
    product, rate_item = catalogue
    tax("VAT", "19", name="VAT 19%")
    tax("RED", "7", name="VAT 7%")
    first = issued(customer("Müller & Söhne GmbH", billing_email="ap@mueller.example"), [
        line("Remote support\tMarch", "2.5", "95", taxes=("VAT",), rate_item_id=rate_item.pk),
        line("Firewall appliance", "1", "250", taxes=("VAT",), product_id=product.pk),
        line("Books", "3", "10.00", taxes=("RED",)),
        line("Travel (not taxed)", "1", "33.33", taxes=()),
    ], discount=percent("10"))
    second = issued(customer("=HYPERLINK(\"x\") Ltd"), [line("Onsite", "1", "100", taxes=("VAT",))])
    credit = services.credit_note_create(invoice_id=second.pk, reason="Wrong rate", acting_user=admin(), issue_date=ISSUE_DAY)
    return [first, second, credit]


def loaded(ids):
    return documents_for_export(ids=ids)


def test_iif_rows_of_each_invoice_sum_to_zero_and_match_the_invoice(invoices):
    first, second, credit = invoices
    export = files.iif_file(loaded([first.pk, second.pk, credit.pk]))
    text = export.content.decode(files.IIF_ENCODING)
    rows = text.split("\r\n")
    assert rows[0].split("\t")[0] == "!TRNS" and rows[1].split("\t")[0] == "!SPL" and rows[2] == "!ENDTRNS"
    transactions = files.parse_iif(export.content)
    assert len(transactions) == 3
    for transaction, invoice in zip(transactions, [first, second, credit], strict=True):
        trns = transaction["TRNS"]
        amounts = [Decimal(trns["AMOUNT"])] + [Decimal(spl["AMOUNT"]) for spl in transaction["SPL"]]
        assert sum(amounts) == 0
        assert Decimal(trns["AMOUNT"]) == invoice.total
        assert trns["DOCNUM"] == invoice.number
        assert trns["DATE"] == f"{invoice.issue_date:%m/%d/%Y}" == ISSUE_DAY.strftime("%m/%d/%Y")
        assert trns["ACCNT"] == "Accounts Receivable"
        assert trns["NAME"] == invoice.customer_name
    trns, spls = transactions[0]["TRNS"], transactions[0]["SPL"]
    assert trns["TRNSTYPE"] == "INVOICE" and Decimal(trns["AMOUNT"]) > 0
    lines = list(first.lines.order_by("sort_order"))
    for spl, invoice_line in zip(spls, lines, strict=False):
        assert Decimal(spl["AMOUNT"]) == -invoice_line.taxable_amount
        assert Decimal(spl["QNTY"]) * Decimal(spl["PRICE"]) == Decimal(spl["AMOUNT"]).quantize(Decimal("0.01")) or \
            (Decimal(spl["QNTY"]) * Decimal(spl["PRICE"])).quantize(Decimal("0.01")) == Decimal(spl["AMOUNT"])
        assert "\t" not in spl["MEMO"]
    assert spls[0]["MEMO"] == "Remote support March" and spls[0]["INVITEM"] == "Remote Support" and spls[0]["ACCNT"] == "4100"
    assert spls[1]["INVITEM"] == "Firewall appliance" and spls[1]["ACCNT"] == "4000"
    assert spls[3]["ACCNT"] == files.IIF_INCOME_ACCOUNT and spls[3]["TAXABLE"] == "N"
    tax_rows = spls[len(lines):]
    assert [(row["ACCNT"], row["INVITEM"]) for row in tax_rows] == [("Sales Tax Payable", "VAT 19%"),
                                                                     ("Sales Tax Payable", "VAT 7%")]
    assert -sum(Decimal(row["AMOUNT"]) for row in tax_rows) == first.tax_total
    # Credit note: a CREDIT MEMO with every sign turned over.
    credit_trns = transactions[2]["TRNS"]
    assert credit_trns["TRNSTYPE"] == "CREDIT MEMO" and Decimal(credit_trns["AMOUNT"]) == credit.total < 0
    assert all(Decimal(spl["AMOUNT"]) > 0 for spl in transactions[2]["SPL"])


def test_iif_is_windows_ansi_with_umlauts(invoices):
    content = files.iif_file(loaded([invoices[0].pk])).content
    assert "Müller & Söhne GmbH".encode("cp1252") in content


def read_csv(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def test_xero_csv_has_the_exact_header_dates_and_one_row_per_line(invoices):
    first, second, _credit = invoices
    export = files.xero_csv_file(loaded([first.pk, second.pk]))
    header = export.content.decode().split("\r\n")[0]
    assert header == ",".join(files.XERO_HEADER)
    assert header.startswith("*ContactName,EmailAddress,POAddressLine1") and header.endswith("Currency,BrandingTheme")
    rows = read_csv(export.content)
    assert len(rows) == first.lines.count() + second.lines.count()
    first_rows = [row for row in rows if row["*InvoiceNumber"] == first.number]
    assert {row["*InvoiceDate"] for row in rows} == {ISSUE_DAY.strftime("%d/%m/%Y")}
    assert first_rows[0]["*DueDate"] == first.due_date.strftime("%d/%m/%Y")
    assert first_rows[0]["*ContactName"] == "Müller & Söhne GmbH"
    assert first_rows[0]["EmailAddress"] == "ap@mueller.example"
    assert first_rows[0]["POAddressLine1"] == "Hauptstraße 1" and first_rows[0]["POAddressLine2"] == "10115 Berlin"
    # Quantity × unit amount gives each line's taxable amount (the 10 % invoice discount folded in).
    for row, invoice_line in zip(first_rows, first.lines.order_by("sort_order"), strict=True):
        assert (Decimal(row["*Quantity"]) * Decimal(row["*UnitAmount"])).quantize(Decimal("0.01")) == invoice_line.taxable_amount
    assert [row["*TaxType"] for row in first_rows] == ["VAT 19%", "VAT 19%", "VAT 7%", files.XERO_NO_TAX]
    assert [row["*AccountCode"] for row in first_rows] == ["4100", "4000", "200", "200"]
    assert all(row["InventoryItemCode"] == "" for row in rows)  # nothing mapped to a Xero item
    assert all(row["Currency"] == "EUR" for row in rows)
    formula = [row for row in rows if row["*InvoiceNumber"] == second.number][0]["*ContactName"]
    assert formula.startswith("'=")  # never a live formula in a spreadsheet


def test_xero_csv_item_code_only_where_mapped(invoices, catalogue):
    product, _rate_item = catalogue
    RemoteMapping.objects.create(system="xero", local_type="product", local_id=str(product.pk), remote_id="x1",
                                 remote_code="FW-100")
    export = files.xero_csv_file(loaded([invoices[0].pk]), item_codes={("product", product.pk): "FW-100"})
    assert [row["InventoryItemCode"] for row in read_csv(export.content)] == ["", "FW-100", "", ""]


def test_xero_csv_splits_at_500_invoices_and_puts_credit_notes_apart(invoices, monkeypatch):
    monkeypatch.setattr(files, "XERO_MAX_INVOICES", 1)
    first, second, credit = invoices
    export = files.xero_csv_file(loaded([first.pk, second.pk, credit.pk]))
    assert export.content_type == "application/zip"
    with zipfile.ZipFile(io.BytesIO(export.content)) as archive:
        names = archive.namelist()
        assert names == ["xero-invoices-001.csv", "xero-invoices-002.csv", "xero-credit-notes-001.csv"]
        credit_rows = read_csv(archive.read("xero-credit-notes-001.csv"))
    assert credit_rows[0]["*InvoiceNumber"] == credit.number
    assert Decimal(credit_rows[0]["*Quantity"]) > 0 and Decimal(credit_rows[0]["*UnitAmount"]) > 0


def test_plain_csv_line_by_line(invoices):
    first, second, credit = invoices
    rows = read_csv(files.plain_csv_file(loaded([first.pk, credit.pk])).content)
    assert [row["number"] for row in rows] == [first.number] * 4 + [credit.number]
    for row, invoice_line in zip(rows, first.lines.order_by("sort_order"), strict=False):
        assert Decimal(row["taxable_amount"]) == invoice_line.taxable_amount
        assert Decimal(row["line_total"]) == invoice_line.total
    assert sum(Decimal(row["line_total"]) for row in rows[:4]) == first.total
    assert rows[0]["issue_date"] == ISSUE_DAY.isoformat()
    assert Decimal(rows[4]["line_total"]) == credit.total


# --- views ----------------------------------------------------------------------------------


def file_url(fmt: str, ids: str) -> str:
    return reverse("integrations:export_file") + f"?format={fmt}&ids={ids}"


def test_download_one_and_many(invoices, admin_client):
    first, second, credit = invoices
    response = admin_client.get(reverse("integrations:invoice_file", args=[first.pk, "iif"]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{first.number}.iif"'
    assert len(files.parse_iif(response.content)) == 1
    response = admin_client.get(file_url("iif", f"{first.pk},{second.pk},{credit.pk},{first.pk}"))
    assert response.status_code == 200 and len(files.parse_iif(response.content)) == 3
    response = admin_client.get(file_url("xero_csv", f"{first.pk},{second.pk}"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    response = admin_client.get(file_url("csv", f"{first.pk}"))
    assert response.status_code == 200 and len(read_csv(response.content)) == 4
    assert IntegrationLog.objects.filter(operation="file.download").count() == 4


def test_accountant_may_download(invoices, client_for):
    response = client_for("alpha", "accountant").get(file_url("csv", str(invoices[0].pk)))
    assert response.status_code == 200


def test_technician_gets_403(invoices, client_for):
    response = client_for("alpha", "technician").get(file_url("iif", str(invoices[0].pk)))
    assert response.status_code == 403


@pytest.mark.parametrize("query", [
    "?format=iif&ids=abc", "?format=iif&ids=", "?format=iif", "?format=pdf&ids=1", "?ids=1",
    "?format=iif&ids=1;DROP TABLE", "?format=iif&ids=-1", "?format=iif&ids=1,,2x", "?format=iif&ids=٣",
    "?format=iif&ids=99999999999999999999999",
])
def test_bad_input_is_400(invoices, admin_client, query):
    response = admin_client.get(reverse("integrations:export_file") + query)
    assert response.status_code == 400


def test_unknown_format_for_one_invoice_is_400(invoices, admin_client):
    assert admin_client.get(reverse("integrations:invoice_file", args=[invoices[0].pk, "pdf"])).status_code == 400


def test_ids_of_another_msp_are_404(invoices, admin_client, client_for):
    from django_tenants.utils import schema_context

    from invoices.models import Invoice

    with schema_context("beta"):
        beta_ids = set(Invoice.objects.values_list("pk", flat=True))
    alpha_only = [invoice.pk for invoice in invoices if invoice.pk not in beta_ids]
    assert alpha_only
    beta = client_for("beta", "billing_admin")
    assert beta.get(file_url("iif", str(alpha_only[0]))).status_code == 404
    assert beta.get(reverse("integrations:invoice_file", args=[alpha_only[0], "csv"])).status_code == 404
    missing = max(invoice.pk for invoice in invoices) + 1000
    assert admin_client.get(file_url("iif", f"{invoices[0].pk},{missing}")).status_code == 404


def test_drafts_are_refused_with_400(tenant, admin_client):
    invoice = draft(customer(), [line()])
    assert admin_client.get(file_url("iif", str(invoice.pk))).status_code == 400
