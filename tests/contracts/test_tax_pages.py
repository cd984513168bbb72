"""Customer, contract and catalogue pages: tax codes, exemption certificates, reverse charge and
tax categories, with their messages."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from contracts.models import Contract, Customer, Product, TaxCategory, TaxRate, WorkType
from tests.contracts.test_views import contract_post

START = dt.date(2026, 1, 1)


@pytest.fixture
def admin(client_for):
    return client_for("alpha", "billing_admin")


@pytest.fixture
def taxes(tenant):
    for code, percent in (("GST", "5"), ("PST", "7")):
        TaxRate.objects.create(code=code, name=code, percent=Decimal(percent), effective_from=START)
    return TaxCategory.objects.create(code="LABOUR", name="Labour", taxable=False)


def customer_post(**fields) -> dict:
    return {"legal_name": "Maple Logging Ltd", "currency": "CAD", "payment_terms_days": "30", "is_active": "on", **fields}


def test_a_customer_gets_its_tax_codes_and_an_unknown_code_is_named(taxes, admin):
    response = admin.post(reverse("contracts:customer_create"), customer_post(tax_codes="gst, PST, HST"))
    assert response.status_code == 400
    assert "Unknown tax code: HST. Add it under Catalogue → Tax rates first." in response.content.decode()
    assert not Customer.objects.exists()
    response = admin.post(reverse("contracts:customer_create"), customer_post(tax_codes="gst, PST"))
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert customer.tax_codes == "GST, PST"
    assert "GST, PST" in admin.get(reverse("contracts:customer_detail", args=[customer.pk])).content.decode()


def test_reverse_charge_needs_a_vat_number_and_excludes_an_exemption(taxes, admin):
    response = admin.post(reverse("contracts:customer_create"), customer_post(reverse_charge="on", tax_exempt="on"))
    page = response.content.decode()
    assert response.status_code == 400
    assert "Enter the customer&#x27;s VAT number: a reverse-charge invoice must show it." in page
    assert "A customer is either tax-exempt or reverse-charged, not both; untick one." in page
    response = admin.post(reverse("contracts:customer_create"),
                          customer_post(legal_name="Paris Conseil SAS", currency="EUR", reverse_charge="on",
                                        tax_id="FR40303265045"))
    assert response.status_code == 302 and Customer.objects.get().reverse_charge


def test_an_expired_certificate_is_kept_but_the_page_says_taxes_are_charged(taxes, admin):
    response = admin.post(reverse("contracts:customer_create"), customer_post(
        tax_exempt="on", tax_exemption_reason="Resale", tax_exemption_certificate="BC-R-77",
        tax_exemption_expires="2020-12-31"), follow=True)
    page = response.content.decode()
    assert response.status_code == 200
    assert "The exemption certificate expired on 31 Dec 2020: taxes are charged until a later expiry date is entered." in page
    customer = Customer.objects.get()
    assert customer.tax_exemption_certificate == "BC-R-77" and not customer.exemption_in_effect(dt.date(2026, 3, 1))
    admin.post(reverse("contracts:customer_edit", args=[customer.pk]), customer_post(
        tax_exempt="on", tax_exemption_reason="Resale", tax_exemption_certificate="BC-R-78",
        tax_exemption_expires="2099-12-31"))
    customer.refresh_from_db()
    assert customer.exemption_in_effect(dt.date(2026, 3, 1))
    assert "until 31 Dec 2099" in admin.get(reverse("contracts:customer_detail", args=[customer.pk])).content.decode()


def test_a_contract_overrides_the_customers_codes_with_known_codes_only(taxes, admin):
    customer = Customer.objects.create(legal_name="Maple Logging Ltd", currency="CAD", tax_codes="GST, PST")
    contract = Contract.objects.create(customer=customer, name="Hourly", type=Contract.Type.HOURLY, currency="CAD",
                                       start_date=START)
    url = reverse("contracts:edit", args=[contract.pk])
    response = admin.post(url, contract_post(customer, "hourly", tax_codes="GST, QST"))
    assert response.status_code == 400 and "Unknown tax code: QST." in response.content.decode()
    response = admin.post(url, contract_post(customer, "hourly", tax_codes="gst"))
    assert response.status_code == 302
    contract.refresh_from_db()
    assert contract.tax_codes == "GST"


def test_tax_categories_are_catalogue_pages_and_set_on_work_types_and_products(taxes, admin):
    response = admin.post(reverse("contracts:tax_category_create"),
                          {"code": "goods", "name": "Goods", "taxable": "on", "tax_codes": "GST, VAT"})
    assert response.status_code == 400 and "Unknown tax code: VAT." in response.content.decode()
    response = admin.post(reverse("contracts:tax_category_create"),
                          {"code": "goods", "name": "Goods", "taxable": "on", "tax_codes": "gst"})
    assert response.status_code == 302
    goods = TaxCategory.objects.get(code="GOODS")
    assert goods.tax_codes == "GST"
    listing = admin.get(reverse("contracts:tax_category_list")).content.decode()
    assert "Only GST of the customer&#x27;s tax codes" in listing and "Not taxed" in listing

    response = admin.post(reverse("contracts:work_type_create"), {
        "name": "Remote Support", "after_hours_multiplier": "1.5", "billable": "on", "is_active": "on",
        "tax_category": str(taxes.pk)})
    assert response.status_code == 302 and WorkType.objects.get().tax_category == taxes
    response = admin.post(reverse("contracts:product_create"), {
        "sku": "FW-100", "name": "Firewall", "price": "1000", "cost": "700", "currency": "CAD", "taxable": "on",
        "is_active": "on", "tax_category": "999999"})
    assert response.status_code == 400 and not Product.objects.exists()
    response = admin.post(reverse("contracts:product_create"), {
        "sku": "FW-100", "name": "Firewall", "price": "1000", "cost": "700", "currency": "CAD", "taxable": "on",
        "is_active": "on", "tax_category": str(goods.pk)})
    assert response.status_code == 302
    product = Product.objects.get()
    assert product.tax_category == goods
    assert "Goods (GOODS)" in admin.get(reverse("contracts:product_detail", args=[product.pk])).content.decode()


def test_a_device_class_gets_a_tax_category(taxes, admin):
    customer = Customer.objects.create(legal_name="Cascade Inc", currency="CAD")
    contract = Contract.objects.create(customer=customer, name="RMM", type=Contract.Type.REMOTE_MONITORING,
                                       currency="CAD", start_date=START)
    response = admin.post(reverse("contracts:device_class_add", args=[contract.pk]),
                          {"name": "Servers", "unit_price": "45", "tax_category": str(taxes.pk)})
    assert response.status_code == 302
    assert contract.device_classes.get().tax_category == taxes
