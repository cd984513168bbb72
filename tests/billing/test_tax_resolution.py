"""Taxes where they belong, end to end: an import file with tax rates, categories and customer
jurisdictions, billed by ``billing_run --json``; the batch preview charges the same tax."""
from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from billing.due import due_summary
from contracts.models import Customer, Product, TaxCategory, WorkType
from invoices import pdf as invoice_pdfs
from invoices import services as invoice_services
from invoices.services import drafts as invoice_drafts
from invoices.services import lines as invoice_lines
from invoices.services import preview as invoice_preview
from invoices.models import Invoice, InvoiceLineTax, InvoiceSettings
from onboarding.importing import ImportRejected, billing_data_import

CUTOFF = dt.date(2026, 3, 31)
TECH = "technician@alpha.example"


def run(*args) -> dict:
    out = io.StringIO()
    call_command("billing_run", "--tenant", "alpha", "--cutoff", CUTOFF.isoformat(), "--json", *args, stdout=out)
    connection.set_schema("alpha")
    return json.loads(out.getvalue())


def preview_tax(currency: str, *, consolidated: bool = False) -> Decimal:
    return due_summary(cutoff=CUTOFF, consolidated=consolidated).details.by_currency[currency]["tax"]


def by_customer(report: dict) -> dict[str, dict]:
    return {invoice["customer"]: invoice for invoice in report["invoices"]}


def lines(invoice: dict) -> list[tuple[str, str, str]]:
    """(what, amount, tax) per line, the time lines named by work type, charges by their description."""
    result = []
    for line in invoice["lines"]:
        what = "labour" if "Support" in line["description"] else line["description"].split(" — ")[0]
        result.append((what, line["amount"], line["tax"]))
    return sorted(result)


def taxes_by_code(customer: str) -> dict[str, Decimal]:
    rows = InvoiceLineTax.objects.filter(line__invoice__customer__legal_name=customer)
    found: dict[str, Decimal] = {}
    for row in rows:
        found[row.code] = found.get(row.code, Decimal(0)) + row.amount
    return found


def customer_with_work(doc: dict, legal_name: str, *, currency: str, minutes: int, rate: str, product: str | None,
                       **terms) -> None:
    """A customer with an Hourly contract at ``rate``, one resolved ticket with ``minutes`` of
    Remote Support and (optionally) one ``product`` charged on it."""
    ref = legal_name.split()[0].lower()
    doc["customers"].append({"legal_name": legal_name, "currency": currency, **terms})
    doc["contracts"].append({"ref": ref, "customer": legal_name, "name": "Hourly T&M", "type": "hourly",
                             "start_date": "2026-01-01", "rounding_increment": 15,
                             "rate_lines": [{"rate": rate, "effective_from": "2026-01-01"}]})
    doc["tickets"].append({"ref": f"T-{ref}", "customer": legal_name, "title": f"Work for {legal_name}",
                           "status": "resolved", "resolved_on": "2026-03-05", "default_contract": ref})
    doc["time_entries"].append({"ticket": f"T-{ref}", "technician": TECH, "work_type": "Remote Support",
                                "date": "2026-03-03", "minutes": minutes})
    if product:
        doc["charges"].append({"ticket": f"T-{ref}", "product": product, "date": "2026-03-03"})


def base_document(*, currency: str, tax_rates: list[dict], products: list[dict], categories: list[dict] = (),
                  default_tax_codes: list[str] = (), labour_category: str | None = None) -> dict:
    work_type = {"name": "Remote Support"}
    if labour_category:
        work_type["tax_category"] = labour_category
    return {
        "format": "msp-billing-import", "version": 1,
        "tax_rates": tax_rates,
        "tax_categories": list(categories),
        "settings": {"default_tax_codes": list(default_tax_codes)},
        "work_types": [work_type],
        "roles": [{"name": "Engineer", "default_rate": "100.00", "cost_rate": "40.00", "currency": currency}],
        "products": products,
        "technicians": [{"email": TECH, "role": "Engineer"}],
        "customers": [], "contracts": [], "tickets": [], "time_entries": [], "charges": [],
    }


# --- (1) a US MSP: labour untaxed, parts taxed at each customer's state rate ----------------------


def us_document() -> dict:
    doc = base_document(
        currency="USD",
        tax_rates=[{"code": "TX", "name": "Texas sales tax", "percent": "6.25", "effective_from": "2026-01-01"},
                   {"code": "WA", "name": "Washington sales tax", "percent": "6.5", "effective_from": "2026-01-01"}],
        categories=[{"code": "LABOUR", "name": "Labour", "taxable": False},
                    {"code": "PARTS", "name": "Parts"}],
        products=[{"sku": "SSD-1TB", "name": "SSD 1 TB", "price": "200.00", "cost": "120.00", "currency": "USD",
                   "tax_category": "PARTS"}],
        labour_category="LABOUR",
    )
    for name, codes, extra in (
        ("Lone Star LLC", ["TX"], {}),
        ("Cascade Inc", ["WA"], {}),
        ("Austin School District", ["TX"], {"tax_exempt": True, "tax_exemption_reason": "Public school",
                                             "tax_exemption_certificate": "TX-EX-1001",
                                             "tax_exemption_expires": "2027-06-30"}),
        ("Dallas Charity Inc", ["TX"], {"tax_exempt": True, "tax_exemption_reason": "Non-profit",
                                         "tax_exemption_certificate": "TX-EX-0042",
                                         "tax_exemption_expires": "2025-12-31"}),
    ):
        customer_with_work(doc, name, currency="USD", minutes=180, rate="120.00", product="SSD-1TB",
                           tax_codes=codes, **extra)
    return doc


@pytest.fixture
def as_of_march(monkeypatch):
    """Today is 31 Mar 2026 for drafts and the preview (the certificates' expiry is measured against it)."""
    for module in (invoice_drafts, invoice_lines, invoice_preview):
        monkeypatch.setattr(module, "tenant_today", lambda: CUTOFF)


def test_labour_is_not_taxed_and_parts_are_taxed_at_each_customers_state_rate(tenant, as_of_march):
    billing_data_import(document=us_document())
    assert WorkType.objects.get(name="Remote Support").tax_category.code == "LABOUR"
    assert Product.objects.get(sku="SSD-1TB").tax_category.code == "PARTS"
    # Preview first: 200.00 × 6.25 % = 12.50 (Lone Star), × 6.5 % = 13.00 (Cascade), the expired
    # certificate's 12.50 (Dallas), and nothing for the school: 38.00.
    assert preview_tax("USD") == Decimal("38.00")

    report = by_customer(run())
    # 3 h × 120.00 = 360.00 of labour, untaxed; the part 200.00.
    assert lines(report["Lone Star LLC"]) == [("SSD 1 TB", "200.00", "12.50"), ("labour", "360.00", "0.00")]
    assert report["Lone Star LLC"]["total"] == "572.50"
    assert lines(report["Cascade Inc"]) == [("SSD 1 TB", "200.00", "13.00"), ("labour", "360.00", "0.00")]
    assert report["Cascade Inc"]["total"] == "573.00"
    # A valid certificate exempts everything; one that expired on 31 Dec 2025 exempts nothing.
    assert report["Austin School District"]["tax"] == "0.00" and report["Austin School District"]["total"] == "560.00"
    assert report["Dallas Charity Inc"]["tax"] == "12.50" and report["Dallas Charity Inc"]["total"] == "572.50"
    assert taxes_by_code("Lone Star LLC") == {"TX": Decimal("12.50")}
    assert taxes_by_code("Cascade Inc") == {"WA": Decimal("13.00")}
    # The preview charged what the run charged, line for line.
    assert sum(Decimal(invoice["tax"]) for invoice in report.values()) == Decimal("38.00")


def test_an_exemption_is_judged_on_the_issue_date_and_frozen_with_the_invoice(tenant, as_of_march):
    billing_data_import(document=us_document())
    run()
    school = Invoice.objects.get(customer__legal_name="Austin School District")
    assert school.tax_total == Decimal("0.00") and school.customer_tax_exempt
    # Issued after the certificate expired: the part is taxed at the Texas rate after all.
    issued = invoice_services.invoice_issue(invoice_id=school.pk, acting_user=None, issue_date=dt.date(2027, 7, 1))
    assert (issued.customer_tax_exempt, issued.tax_total, issued.total) == (False, Decimal("12.50"), Decimal("572.50"))
    # Frozen: renewing the certificate later does not change the issued invoice.
    Customer.objects.filter(pk=school.customer_id).update(tax_exemption_expires=dt.date(2030, 1, 1))
    issued.refresh_from_db()
    assert issued.tax_total == Decimal("12.50")


def test_a_contract_override_replaces_the_customers_codes(tenant, as_of_march):
    doc = us_document()
    doc["customers"] = doc["customers"][:1]
    doc["contracts"] = doc["contracts"][:1]
    doc["tickets"] = doc["tickets"][:1]
    doc["time_entries"] = doc["time_entries"][:1]
    doc["charges"] = doc["charges"][:1]
    doc["contracts"][0]["tax_codes"] = ["WA"]  # work done for the customer's Washington branch
    billing_data_import(document=doc)
    invoice = by_customer(run())["Lone Star LLC"]
    assert lines(invoice) == [("SSD 1 TB", "200.00", "13.00"), ("labour", "360.00", "0.00")]


def test_a_site_on_its_parents_consolidated_invoice_keeps_its_own_state_rate(tenant, as_of_march):
    doc = us_document()
    for section in ("customers", "contracts", "tickets", "time_entries", "charges"):
        doc[section] = doc[section][:2]
    doc["customers"][1]["parent"] = "Lone Star LLC"  # Cascade Inc (WA) is a site of Lone Star LLC (TX)
    billing_data_import(document=doc)
    # Parts: 12.50 (TX) + 13.00 (WA) whether billed apart or on one invoice.
    assert preview_tax("USD", consolidated=True) == Decimal("25.50")
    report = run("--consolidate")
    assert len(report["invoices"]) == 1
    invoice = report["invoices"][0]
    assert sorted(line["tax"] for line in invoice["lines"]) == ["0.00", "0.00", "12.50", "13.00"]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("1120.00", "25.50", "1145.50")
    assert taxes_by_code("Lone Star LLC") == {"TX": Decimal("12.50"), "WA": Decimal("13.00")}


# --- (2) Canada: GST + PST side by side, and QST compound on the amount plus GST ----------------


def canada_document() -> dict:
    doc = base_document(
        currency="CAD",
        tax_rates=[{"code": "GST", "name": "GST", "percent": "5", "effective_from": "2026-01-01"},
                   {"code": "PST", "name": "PST", "percent": "7", "effective_from": "2026-01-01"},
                   {"code": "QST", "name": "QST", "percent": "9.975", "compound": True, "effective_from": "2026-01-01"}],
        products=[{"sku": "FW-100", "name": "Firewall appliance", "price": "1000.00", "cost": "700.00", "currency": "CAD"}],
        categories=[{"code": "LABOUR", "name": "Labour", "taxable": False}],
        labour_category="LABOUR",
    )
    customer_with_work(doc, "Maple Logging Ltd", currency="CAD", minutes=60, rate="100.00", product="FW-100",
                       tax_codes=["GST", "PST"])
    customer_with_work(doc, "Québec Imprimerie Inc", currency="CAD", minutes=60, rate="100.00", product="FW-100",
                       tax_codes=["GST", "QST"])
    return doc


def test_canadian_gst_and_pst_are_side_by_side_and_qst_compounds_on_gst(tenant, as_of_march):
    billing_data_import(document=canada_document())
    # 1,000.00: BC 50.00 + 70.00 = 120.00; Québec GST 50.00 + QST 9.975 % of 1,050.00 = 104.7375 → 104.74.
    assert preview_tax("CAD") == Decimal("274.74")
    report = by_customer(run())
    assert lines(report["Maple Logging Ltd"]) == [("Firewall appliance", "1000.00", "120.00"), ("labour", "100.00", "0.00")]
    assert taxes_by_code("Maple Logging Ltd") == {"GST": Decimal("50.00"), "PST": Decimal("70.00")}
    assert report["Maple Logging Ltd"]["total"] == "1220.00"
    assert lines(report["Québec Imprimerie Inc"]) == [("Firewall appliance", "1000.00", "154.74"), ("labour", "100.00", "0.00")]
    assert taxes_by_code("Québec Imprimerie Inc") == {"GST": Decimal("50.00"), "QST": Decimal("104.74")}
    qst = InvoiceLineTax.objects.get(line__invoice__customer__legal_name="Québec Imprimerie Inc", code="QST")
    assert (qst.compound, qst.base) == (True, Decimal("1050.00"))
    assert report["Québec Imprimerie Inc"]["total"] == "1254.74"


# --- (3) EU: reverse charge for a business customer in another member state ----------------------


def eu_document() -> dict:
    doc = base_document(
        currency="EUR",
        tax_rates=[{"code": "VAT19", "name": "USt", "percent": "19", "effective_from": "2026-01-01"}],
        products=[], default_tax_codes=["VAT19"],
    )
    customer_with_work(doc, "Berliner Druck GmbH", currency="EUR", minutes=120, rate="100.00", product=None)
    customer_with_work(doc, "Paris Conseil SAS", currency="EUR", minutes=120, rate="100.00", product=None,
                       reverse_charge=True, tax_id="FR40303265045")
    return doc


def test_a_reverse_charge_customer_pays_no_vat_and_the_invoice_carries_the_legal_note(tenant, as_of_march, client_for):
    billing_data_import(document=eu_document())
    assert InvoiceSettings.load().default_tax_codes == "VAT19"
    # 2 h × 100.00 = 200.00: 38.00 VAT for Berlin (the tenant default), none for Paris.
    assert preview_tax("EUR") == Decimal("38.00")
    report = by_customer(run())
    assert report["Berliner Druck GmbH"]["tax"] == "38.00" and report["Berliner Druck GmbH"]["total"] == "238.00"
    assert report["Paris Conseil SAS"]["tax"] == "0.00" and report["Paris Conseil SAS"]["total"] == "200.00"

    invoice = Invoice.objects.get(customer__legal_name="Paris Conseil SAS")
    issued = invoice_services.invoice_issue(invoice_id=invoice.pk, acting_user=None, issue_date=CUTOFF)
    assert issued.customer_reverse_charge and issued.customer_tax_id == "FR40303265045" and issued.tax_total == 0
    note = "Reverse charge: VAT to be accounted for by the recipient, Art. 196 Council Directive 2006/112/EC."
    assert note in invoice_pdfs.invoice_html(issued)
    page = client_for("alpha", "billing_admin").get(reverse("invoices:detail", args=[issued.pk])).content.decode()
    assert note in page and "FR40303265045" in page
    # The German customer's invoice carries no such note.
    berlin = Invoice.objects.get(customer__legal_name="Berliner Druck GmbH")
    assert note not in invoice_pdfs.invoice_html(berlin)


# --- bad values in the file ---------------------------------------------------------------------


def test_unknown_codes_and_categories_are_reported_per_record_and_nothing_is_imported(tenant):
    doc = us_document()
    doc["customers"][0]["tax_codes"] = ["TX", "NY"]
    doc["contracts"][2]["tax_codes"] = ["ZZ"]
    doc["products"][0]["tax_category"] = "GOODS"
    doc["tax_categories"].append({"code": "FOOD", "name": "Food", "tax_codes": ["XX"]})
    doc["settings"]["default_tax_codes"] = ["NOPE"]
    doc["customers"][1]["reverse_charge"] = True  # without a VAT number
    with pytest.raises(ImportRejected) as caught:
        billing_data_import(document=doc)
    problems = [str(problem) for problem in caught.value.problems]
    for expected in (
        "$.tax_categories[2].tax_codes: Unknown tax code: XX. Add it under Catalogue → Tax rates first.",
        "$.settings.default_tax_codes: Unknown tax code: NOPE. Add it under Catalogue → Tax rates.",
        '$.products[0].tax_category: unknown tax category "GOODS"',
        "$.customers[0].tax_codes: Unknown tax code: NY. Add it under Catalogue → Tax rates first.",
        "$.customers[1].tax_id: Enter the customer's VAT number: a reverse-charge invoice must show it.",
        "$.contracts[2].tax_codes: Unknown tax code: ZZ. Add it under Catalogue → Tax rates first.",
    ):
        assert expected in problems, (expected, problems)
    assert not TaxCategory.objects.exists() and not Customer.objects.exists()


def test_remote_monitoring_device_classes_carry_their_own_tax_category(tenant, as_of_march):
    doc = us_document()
    for section in ("customers", "contracts", "tickets", "time_entries", "charges"):
        doc[section] = []
    doc["tax_categories"].append({"code": "MONITORING", "name": "Monitoring services", "taxable": False})
    doc["customers"].append({"legal_name": "Cascade Inc", "currency": "USD", "tax_codes": ["WA"]})
    doc["contracts"].append({
        "ref": "rmm", "customer": "Cascade Inc", "name": "RMM", "type": "remote_monitoring", "start_date": "2026-01-01",
        "billed_through": "2026-02-28",
        "device_classes": [
            {"name": "Servers", "unit_price": "45.00", "tax_category": "MONITORING",
             "counts": [{"effective_date": "2026-01-01", "count": 2}]},
            {"name": "Firewalls", "unit_price": "30.00", "counts": [{"effective_date": "2026-01-01", "count": 1}]},
        ]})
    billing_data_import(document=doc)
    # March: servers 2 × 45.00 = 90.00 untaxed; firewalls 30.00 × 6.5 % = 1.95.
    assert preview_tax("USD") == Decimal("1.95")
    invoice = by_customer(run())["Cascade Inc"]
    assert sorted((line["description"].split(":")[0], line["amount"], line["tax"]) for line in invoice["lines"]) == [
        ("Firewalls", "30.00", "1.95"), ("Servers", "90.00", "0.00")]
    assert invoice["total"] == "121.95"
