"""Draft lines resolve their taxes from what is sold and who buys it (invoice services)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from djmoney.money import Money

from contracts.models import Contract, Product, TaxCategory
from invoices.models import InvoiceSettings
from tests.invoices.builders import customer, draft, issued, line, tax

START = dt.date(2026, 1, 1)


def test_a_draft_takes_the_products_category_the_contract_override_and_the_customers_codes(tenant):
    tax("GST", "5")
    tax("PST", "7")
    tax("QST", "9.975", compound=True)
    tax("VAT19", "19")
    settings = InvoiceSettings.load()
    settings.default_tax_codes = "VAT19"
    settings.save()
    gst_only = TaxCategory.objects.create(code="GOODS-GST", name="GST-only goods", tax_codes="GST")
    labour = TaxCategory.objects.create(code="LABOUR", name="Labour", taxable=False)
    books = Product.objects.create(sku="BOOK", name="Manual", price=Money(100, "CAD"), cost=Money(60, "CAD"),
                                   tax_category=gst_only)
    maple = customer("Maple Logging Ltd", currency="CAD", tax_codes="GST, PST")
    quebec = Contract.objects.create(customer=maple, name="Montréal office", type=Contract.Type.HOURLY, currency="CAD",
                                     start_date=START, tax_codes="GST, QST")
    invoice = draft(maple, [
        line("Firewall", "1", "1000", taxes=None),                          # the customer's GST + PST
        line("Manual", "2", "50", taxes=None, product_id=books.pk),         # GST only: 5 % of 100.00
        line("Setup", "1", "200", taxes=None, tax_category_id=labour.pk),    # not taxed
        line("Montréal visit", "1", "1000", taxes=None, contract_id=quebec.pk),  # GST + QST compound
    ])
    rows = {l.description: (l.tax_amount, list(l.tax_codes), l.taxable) for l in invoice.lines.all()}
    assert rows == {
        "Firewall": (Decimal("120.00"), ["GST", "PST"], True),
        "Manual": (Decimal("5.00"), ["GST"], True),
        "Setup": (Decimal("0.00"), [], False),
        "Montréal visit": (Decimal("154.74"), ["GST", "QST"], True),
    }
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (Decimal("2300.00"), Decimal("279.74"), Decimal("2579.74"))
    # A customer without codes of their own falls back to the tenant default.
    assert draft(customer("Berlin GmbH"), [line("Support", "1", "100", taxes=None)]).tax_total == Decimal("19.00")


def test_a_reverse_charge_customer_is_charged_no_tax_and_it_is_frozen_on_issue(tenant):
    tax("VAT19", "19")
    paris = customer("Paris Conseil SAS", tax_id="FR40303265045", reverse_charge=True)
    invoice = issued(paris, [line("Support", "2", "100", taxes=("VAT19",))])
    assert (invoice.tax_total, invoice.total, invoice.customer_reverse_charge) == (Decimal("0.00"), Decimal("200.00"), True)
    assert invoice.reverse_charge_note.startswith("Reverse charge: VAT to be accounted for by the recipient")
    paris.reverse_charge = False
    paris.save()
    invoice.refresh_from_db()
    assert invoice.customer_reverse_charge and invoice.reverse_charge_note
