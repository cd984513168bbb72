"""Our documents ↔ xero-python models: pure rules, no database, no server.

Each payload built here is also serialised the way the SDK sends it and checked against
Xero's published OpenAPI description, so a mapping can never produce a body Xero's
contract rejects.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from xero_python.accounting import models as xm
from xero_python.api_client.serializer import serialize

from integrations.base import LocalItem, RemoteRecord
from integrations.xero import mapping
from integrations.xero.mapping import ExportContext, MappingError
from tests.fakes.openapi import SpecCheck

D = Decimal
CONTACT = "4b9ef7ea-1a1d-4f4e-9e6e-4c5d7e6f8a01"
CTX = ExportContext(contact_ids={7: CONTACT}, item_codes={("product", 3): "SSD-1TB"},
                    tax_types={"VAT20": "OUTPUT2", "GST+QST": "TAX001"}, account_codes={"4000": "210"},
                    contract_names={11: "Managed Services Gold"})


class _Taxes(list):
    def all(self):
        return self


def tax(code: str, percent: str, compound: bool = False):
    return SimpleNamespace(code=code, percent=D(percent), compound=compound)


def line(description="Remote support", quantity="1", unit_price="100", taxable_amount=None, tax_amount="0",
         taxes=(), product=None, rate_item=None, contract_id=None, gross_amount=None):
    quantity, unit_price = D(quantity), D(unit_price)
    amount = D(taxable_amount) if taxable_amount is not None else (quantity * unit_price).quantize(D("0.01"))
    return SimpleNamespace(
        description=description, quantity=quantity, unit_price=unit_price, taxable_amount=amount, tax_amount=D(tax_amount),
        gross_amount=D(gross_amount) if gross_amount is not None else amount,
        taxes=_Taxes(taxes), tax_codes=[t.code for t in taxes], product=product, rate_item=rate_item,
        product_id=getattr(product, "pk", None), rate_item_id=getattr(rate_item, "pk", None), contract_id=contract_id,
    )


def invoice(lines_total="100", **extra):
    values = dict(pk=1, number="INV-2026-00042", issue_date=dt.date(2026, 3, 10), due_date=dt.date(2026, 3, 24),
                  currency="EUR", customer_id=7, customer_name="Acme GmbH", total=D(lines_total), credited_invoice=None)
    values.update(extra)
    return SimpleNamespace(**values)


def wire(model) -> dict:
    return json.loads(json.dumps(serialize(model)))


def spec_problems(method: str, path: str, body) -> list[str]:
    headers = {"Authorization": "Bearer t", "xero-tenant-id": "t", "Content-Type": "application/json"}
    return SpecCheck().request(method=method, path=f"/api.xro/2.0{path}", query="summarizeErrors=False&unitdp=4",
                               headers=headers, body=json.dumps(serialize(body)).encode())


def test_an_invoice_goes_out_authorised_with_our_number_dates_currency_and_exact_lines():
    lines = [
        line("Remote support 1.5 h", "1.5", "90", tax_amount="27.00", taxes=[tax("VAT20", "20")], contract_id=11),
        line("SSD 1 TB", "2", "80", tax_amount="32.00", taxes=[tax("VAT20", "20")],
             product=SimpleNamespace(pk=3, accounting_code="4000")),
    ]
    payload = mapping.invoice_to_xero(invoice(), lines, CTX)
    body = wire(xm.Invoices(invoices=[payload]))["Invoices"][0]
    assert body["Type"] == "ACCREC" and body["Status"] == "AUTHORISED"
    assert body["InvoiceNumber"] == "INV-2026-00042"
    assert body["Contact"]["ContactID"] == CONTACT
    assert body["Date"] == "/Date(1773100800000)/" and body["DueDate"] == "/Date(1774310400000)/"  # as the SDK writes dates
    assert body["CurrencyCode"] == "EUR" and body["LineAmountTypes"] == "Exclusive"
    assert body["Reference"] == "Managed Services Gold"
    first, second = body["LineItems"]
    assert (first["Quantity"], first["UnitAmount"], first["LineAmount"], first["TaxAmount"]) == (1.5, 90.0, 135.0, 27.0)
    assert first["AccountCode"] == "200" and first["TaxType"] == "OUTPUT2" and "ItemCode" not in first
    assert second["ItemCode"] == "SSD-1TB"  # the organisation has this item
    assert second["AccountCode"] == "210"  # the product's code, through the account mapping
    assert spec_problems("PUT", "/Invoices", xm.Invoices(invoices=[payload])) == []


def test_an_item_code_is_sent_only_where_the_organisation_has_that_item():
    unmapped = line(product=SimpleNamespace(pk=99, accounting_code=""))
    rate_item = line(rate_item=SimpleNamespace(pk=5, accounting_code="260"))
    item = mapping.line_to_line_item(unmapped, ctx=CTX, currency="EUR")
    assert item.item_code is None and item.account_code == "200"
    assert mapping.line_to_line_item(rate_item, ctx=CTX, currency="EUR").account_code == "260"
    with_item = ExportContext(**{**CTX.__dict__, "item_codes": {("rate_item", 5): "REMOTE"}})
    assert mapping.line_to_line_item(rate_item, ctx=with_item, currency="EUR").item_code == "REMOTE"


@pytest.mark.parametrize(("quantity", "price", "gross", "amount", "expected"), [
    ("3", "33.3333", "100.00", "100.00", ("3", "33.3333", None)),  # as printed: 99.9999 rounds to 100.00
    ("10", "100", "1000.00", "950.00", ("10", "100", "50.00")),  # a discount (or its share): DiscountAmount
    ("0.1167", "125", "14.58", "14.58", ("0.1167", "124.9357", None)),  # 7 minutes at 125/h: 0.1167 × 125 = 14.59
    ("1", "430", "221.94", "221.94", ("1", "221.94", None)),  # a prorated fee (16 of 31 days)
    ("1000", "0.01", "10.01", "10.01", ("1", "10.01", None)),  # no 4-place price gives it: 1 × gross
    ("10", "100", "1000.00", "1010.00", ("10", "101", None)),  # a surcharge share: no negative discounts
    ("-1", "50", "-50.00", "-50.00", ("-1", "50", None)),  # an adjustment line
])
def test_line_figures_always_give_the_printed_amount(quantity, price, gross, amount, expected):
    q, u, discount = mapping.line_figures(quantity=D(quantity), unit_price=D(price), gross=D(gross), amount=D(amount),
                                          currency="EUR")
    assert (q, u, discount) == (D(expected[0]), D(expected[1]), D(expected[2]) if expected[2] else None)
    assert (q * u).quantize(D("0.01"), rounding="ROUND_HALF_UP") - (discount or 0) == D(amount)


def test_tax_types_come_from_the_mapping_and_a_line_without_tax_gets_the_no_tax_type():
    taxed = line(tax_amount="20.00", taxes=[tax("VAT20", "20")])
    combined = line(tax_amount="15.50", taxes=[tax("GST", "5"), tax("QST", "9.975", compound=True)])
    untaxed = line()
    assert mapping.line_to_line_item(taxed, ctx=CTX, currency="EUR").tax_type == "OUTPUT2"
    assert mapping.line_to_line_item(combined, ctx=CTX, currency="EUR").tax_type == "TAX001"
    assert mapping.line_to_line_item(untaxed, ctx=CTX, currency="EUR").tax_type == "NONE"
    exempt_org = ExportContext(**{**CTX.__dict__, "no_tax_type": "EXEMPTOUTPUT"})
    assert mapping.line_to_line_item(untaxed, ctx=exempt_org, currency="EUR").tax_type == "EXEMPTOUTPUT"
    with pytest.raises(MappingError, match="VAT7 has no Xero tax rate") as refused:
        mapping.line_to_line_item(line(tax_amount="7.00", taxes=[tax("VAT7", "7")]), ctx=CTX, currency="EUR")
    assert refused.value.code == "tax_unmapped"


def test_a_credit_note_goes_out_with_positive_figures_and_names_the_invoice():
    credited = SimpleNamespace(number="INV-2026-00042")
    lines = [line("Remote support", "-1.5", "90", taxable_amount="-135.00", tax_amount="-27.00", taxes=[tax("VAT20", "20")])]
    credit = invoice(number="CN-2026-00001", credited_invoice=credited, due_date=None, total=D("-162.00"))
    payload = mapping.credit_note_to_xero(credit, lines, CTX)
    body = wire(xm.CreditNotes(credit_notes=[payload]))["CreditNotes"][0]
    assert body["Type"] == "ACCRECCREDIT" and body["CreditNoteNumber"] == "CN-2026-00001"
    assert body["Reference"] == "Credit for INV-2026-00042"
    only = body["LineItems"][0]
    assert (only["Quantity"], only["UnitAmount"], only["LineAmount"], only["TaxAmount"]) == (1.5, 90.0, 135.0, 27.0)
    assert spec_problems("PUT", "/CreditNotes", xm.CreditNotes(credit_notes=[payload])) == []
    allocation = mapping.allocation_for(credit, invoice_remote_id=CONTACT, amount=D("162.00"))
    assert wire(allocation)["Allocations"][0]["Amount"] == 162.0


def test_documents_that_cannot_go_out_are_refused_before_any_call():
    with pytest.raises(MappingError, match="Only issued"):
        mapping.invoice_to_xero(invoice(number=None), [line()], CTX)
    with pytest.raises(MappingError, match="no Xero contact"):
        mapping.invoice_to_xero(invoice(customer_id=8), [line()], CTX)
    with pytest.raises(MappingError, match="currency"):
        mapping.invoice_to_xero(invoice(currency="XXY"), [line()], CTX)


def test_a_customer_becomes_a_contact_with_our_key_address_and_currency():
    customer = SimpleNamespace(pk=7, legal_name="  Müller & Söhne GmbH ", billing_email="billing@mueller.example",
                               tax_id="DE123456789", currency="EUR",
                               address="Hauptstraße 1\n\n10115 Berlin\nGermany\nc/o Finance\nFloor 3")
    contact = mapping.customer_to_contact(customer, contact_number="cus-alpha-7")
    body = wire(xm.Contacts(contacts=[contact]))["Contacts"][0]
    assert body["Name"] == "Müller & Söhne GmbH" and body["ContactNumber"] == "cus-alpha-7"
    assert body["EmailAddress"] == "billing@mueller.example" and body["TaxNumber"] == "DE123456789"
    assert body["DefaultCurrency"] == "EUR"
    assert body["Addresses"] == [{"AddressType": "POBOX", "AddressLine1": "Hauptstraße 1", "AddressLine2": "10115 Berlin",
                                  "AddressLine3": "Germany", "AddressLine4": "c/o Finance, Floor 3"}]
    assert spec_problems("PUT", "/Contacts", xm.Contacts(contacts=[contact])) == []
    record = mapping.contact_to_record(xm.Contact(contact_id=CONTACT, name="Acme", contact_number="cus-alpha-7",
                                                  contact_status="ACTIVE"))
    assert (record.remote_id, record.name, record.code, record.active) == (CONTACT, "Acme", "cus-alpha-7", True)


def test_items_get_a_code_within_xeros_30_characters_and_our_price():
    product = LocalItem(local_type="product", local_id=3, name="SSD 1 TB", price=D("80.0000"), currency="EUR", sku="ssd-1tb")
    service = LocalItem(local_type="rate_item", local_id=12, name="Out-of-hours emergency support, weekends", price=D("180"),
                        currency="EUR")
    assert mapping.item_code_for(product) == "SSD-1TB"
    code = mapping.item_code_for(service)
    assert len(code) <= 30 and code.endswith("-12") and code.startswith("OUT-OF-HOURS")
    item = mapping.local_item_to_item(service, code=code, account_code="200")
    body = wire(xm.Items(items=[item]))["Items"][0]
    assert body["SalesDetails"] == {"UnitPrice": 180.0, "AccountCode": "200"} and len(body["Name"]) <= 50
    assert body["IsSold"] is True
    assert spec_problems("PUT", "/Items", xm.Items(items=[item])) == []


def test_tax_rates_are_suggested_only_on_an_exact_unambiguous_match():
    def rate(code, *components, active=True):
        percent = sum(D(p) for p, _ in components)
        return RemoteRecord(remote_id=code, name=code, code=code, percent=percent, active=active,
                            data={"components": [{"rate": p, "compound": c} for p, c in components]})

    remote = [rate("OUTPUT2", ("20", False)), rate("RROUTPUT", ("5", False)), rate("OUTPUT5", ("5", False)),
              rate("TAX001", ("5", False), ("9.975", True)), rate("OLD19", ("19", False), active=False),
              rate("NONE", ("0", False))]
    local = [mapping.LocalTax("VAT20", ((D("20.0000"), False),)), mapping.LocalTax("GST+QST", ((D("5"), False), (D("9.975"), True))),
             mapping.LocalTax("GST5", ((D("5"), False),)), mapping.LocalTax("VAT19", ((D("19"), False),))]
    assert mapping.suggest_tax_types(local, remote) == {"VAT20": "OUTPUT2", "GST+QST": "TAX001"}  # 5 %: two candidates
    record = mapping.tax_rate_to_record(xm.TaxRate(name="GST + QST", tax_type="TAX001", status="ACTIVE", effective_rate=D("14.975"),
                                                   can_apply_to_revenue=True,
                                                   tax_components=[xm.TaxComponent(name="GST", rate=D("5"), is_compound=False)]))
    assert (record.code, record.percent, record.active) == ("TAX001", D("14.975"), True)


def test_payments_and_credits_applied_in_xero_come_back_as_remote_payments():
    payment = xm.Payment(payment_id="p-1", invoice=xm.Invoice(invoice_id="i-1"), amount=D("62.00"), date=dt.date(2026, 3, 12),
                         reference="bank", status="AUTHORISED")
    remote = mapping.payment_to_remote(payment)
    assert (remote.remote_id, remote.invoice_remote_id, remote.amount, remote.date) == ("p-1", "i-1", D("62.00"), dt.date(2026, 3, 12))
    assert mapping.payment_to_remote(xm.Payment(payment_id="p-2", invoice=xm.Invoice(invoice_id="i-1"), amount=D("1"),
                                                date=dt.date(2026, 3, 12), status="DELETED")) is None
    allocation = xm.Allocation(allocation_id="a-1", invoice=xm.Invoice(invoice_id="i-1"), amount=D("10"),
                               date=dt.date(2026, 3, 13), is_deleted=False)
    credit = mapping.allocation_to_remote(allocation, credit_note_number="CN-0001")
    assert (credit.remote_id, credit.amount, credit.reference) == ("allocation:a-1", D("10"), "Xero credit note CN-0001")
