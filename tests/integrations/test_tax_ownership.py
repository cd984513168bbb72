"""While QuickBooks Online is connected it calculates taxes: every tax field here is greyed out, and a tampered
POST changes nothing. Disconnected, the fields are editable again. The core never imports integrations/."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.urls import reverse

from contracts.models import Contract, Customer, TaxRate
from integrations import services
from invoices.models import Invoice, InvoiceSettings
from msp_billing.tax_owner import tax_owner
from tests.integrations.conftest import URLS
from tests.invoices.builders import admin, customer, draft, line, tax
from tests.invoices.test_views import edit_post, existing_rows

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]
NOTE = "QuickBooks Online calculates taxes while it is connected"
START = dt.date(2026, 1, 1)


def tag(html: str, name: str) -> str:
    """The opening tag of the form control named ``name`` (input or select)."""
    found = re.search(rf'<(?:input|select)\b[^>]*\bname="{re.escape(name)}"[^>]*>', html)
    assert found, f"no control named {name!r}"
    return found.group(0)


def disabled(html: str, name: str) -> bool:
    return re.search(r"\sdisabled\b", tag(html, name)) is not None


def disconnect() -> None:
    from integrations.models import AccountingConnection

    services.connection_disconnect(connection=AccountingConnection.objects.get(system="quickbooks"), acting_user=admin())


@pytest.fixture
def world(tenant):
    vat = tax("VAT", "19")
    tax("RED", "7")
    acme = customer("Tax Acme GmbH", tax_exempt=False)
    contract = Contract.objects.create(customer=acme, name="Acme hourly", type=Contract.Type.HOURLY, currency="EUR",
                                       start_date=START, taxable=True)
    invoice = draft(acme, [line("Remote support", "2", "95", taxes=("VAT",)), line("Travel", "1", "30", taxes=())])
    return {"vat": vat, "customer": acme, "contract": contract, "invoice": invoice}


def test_the_core_never_imports_integrations():
    root = Path(__file__).resolve().parents[2]
    offenders = [str(path.relative_to(root)) for app in ("contracts", "invoices") for path in (root / app).rglob("*.py")
                 if re.search(r"^\s*(from|import)\s+integrations\b", path.read_text(), re.MULTILINE)]
    assert offenders == []


def test_nobody_owns_taxes_without_a_connection(world):
    assert tax_owner() == ""


def test_customer_tax_exemption_is_locked_while_connected(world, connected, admin_client):
    assert tax_owner() == "QuickBooks Online"
    edit = reverse("contracts:customer_edit", args=[world["customer"].pk])
    page = admin_client.get(edit).content.decode()
    assert disabled(page, "tax_exempt") and NOTE in page
    assert not disabled(page, "legal_name")
    # A tampered POST: the exemption is ignored, the rest of the form is saved.
    response = admin_client.post(edit, {"legal_name": "Tax Acme GmbH", "currency": "EUR", "payment_terms_days": "21",
                                        "is_active": "on", "tax_exempt": "on"})
    assert response.status_code == 302
    acme = Customer.objects.get(pk=world["customer"].pk)
    assert (acme.tax_exempt, acme.payment_terms_days) == (False, 21)
    # A new customer cannot be created exempt either.
    create = reverse("contracts:customer_create")
    assert disabled(admin_client.get(create).content.decode(), "tax_exempt")
    response = admin_client.post(create, {"legal_name": "Exempt Try Ltd", "currency": "EUR", "payment_terms_days": "14",
                                          "is_active": "on", "tax_exempt": "on"})
    assert response.status_code == 302
    assert Customer.objects.get(legal_name="Exempt Try Ltd").tax_exempt is False


def test_contract_taxable_flag_is_locked_while_connected(world, connected, admin_client):
    from tests.contracts.test_views import contract_post

    edit = reverse("contracts:edit", args=[world["contract"].pk])
    page = admin_client.get(edit).content.decode()
    assert disabled(page, "taxable") and NOTE in page and not disabled(page, "name")
    post = contract_post(world["customer"], "hourly", name="Acme hourly renamed")
    del post["taxable"]  # a browser that ignores `disabled`, or a hand-made POST, unticks it
    response = admin_client.post(edit, post)
    assert response.status_code == 302
    contract = Contract.objects.get(pk=world["contract"].pk)
    assert (contract.name, contract.taxable) == ("Acme hourly renamed", True)


def test_tax_rate_pages_are_locked_and_refuse_a_save(world, connected, admin_client):
    create = reverse("contracts:tax_rate_create")
    page = admin_client.get(create).content.decode()
    assert all(disabled(page, name) for name in ("code", "name", "percent", "compound", "effective_from"))
    assert NOTE in page and ">Create tax rate<" not in page  # no save button
    response = admin_client.post(create, {"code": "NEW", "name": "New tax", "percent": "5",
                                          "effective_from": "2026-02-01"})
    assert response.status_code == 400 and NOTE in response.content.decode()
    assert "This field is required" not in response.content.decode()  # one clear message, no field noise
    assert not TaxRate.objects.filter(code="NEW").exists()
    version = reverse("contracts:tax_rate_new_version", args=[world["vat"].pk])
    assert disabled(admin_client.get(version).content.decode(), "percent")
    response = admin_client.post(version, {"name": "VAT", "percent": "21", "effective_from": "2026-07-01"})
    assert response.status_code == 400 and "cannot be changed here" in response.content.decode()
    assert list(TaxRate.objects.filter(code="VAT").values_list("percent", flat=True)) == [Decimal("19.0000")]


def test_invoice_line_taxes_are_locked_while_connected(world, connected, admin_client):
    invoice = world["invoice"]
    edit = reverse("invoices:edit", args=[invoice.pk])
    page = admin_client.get(edit).content.decode()
    assert disabled(page, "lines-0-tax_codes") and disabled(page, "lines-1-tax_codes") and NOTE in page
    assert not disabled(page, "lines-0-quantity")
    rows = existing_rows(invoice)
    rows[0]["tax_codes"], rows[1]["tax_codes"] = ["RED"], ["VAT"]  # tampered: swap the taxes
    rows[0]["quantity"] = "3"
    response = admin_client.post(edit, edit_post(invoice, rows))
    assert response.status_code == 302, response.content.decode()[:2000]
    lines = list(Invoice.objects.get(pk=invoice.pk).lines.order_by("sort_order"))
    assert [(l.quantity, list(l.tax_codes)) for l in lines] == [(Decimal(3), ["VAT"]), (Decimal(1), [])]


def test_default_taxes_in_invoice_settings_are_locked_while_connected(world, connected, client_for):
    owner = client_for("alpha", "owner")
    InvoiceSettings.objects.filter(pk=InvoiceSettings.load().pk).update(default_tax_codes="VAT")
    page = owner.get(reverse("invoices:settings")).content.decode()
    assert disabled(page, "default_tax_codes") and NOTE in page
    response = owner.post(reverse("invoices:settings"), {
        "number_prefix": "INV", "number_padding": "5", "credit_note_prefix": "CN", "default_discount_percent": "0",
        "default_surcharge_percent": "0", "default_payment_terms_days": "30", "default_tax_codes": ["RED"]})
    assert response.status_code == 302
    assert InvoiceSettings.load().default_tax_codes == "VAT"


def test_everything_is_editable_again_after_disconnecting(world, connected, admin_client):
    disconnect()
    assert tax_owner() == ""
    pages = {
        reverse("contracts:customer_edit", args=[world["customer"].pk]): ["tax_exempt"],
        reverse("contracts:edit", args=[world["contract"].pk]): ["taxable"],
        reverse("contracts:tax_rate_create"): ["code", "percent"],
        reverse("invoices:edit", args=[world["invoice"].pk]): ["lines-0-tax_codes"],
    }
    for url, names in pages.items():
        page = admin_client.get(url).content.decode()
        assert NOTE not in page
        assert not any(disabled(page, name) for name in names), url
    response = admin_client.post(reverse("contracts:customer_edit", args=[world["customer"].pk]), {
        "legal_name": "Tax Acme GmbH", "currency": "EUR", "payment_terms_days": "14", "is_active": "on",
        "tax_exempt": "on"})
    assert response.status_code == 302 and Customer.objects.get(pk=world["customer"].pk).tax_exempt is True
    response = admin_client.post(reverse("contracts:tax_rate_create"), {"code": "NEW", "name": "New tax", "percent": "5",
                                                                        "effective_from": "2026-02-01"})
    assert response.status_code == 302 and TaxRate.objects.filter(code="NEW").exists()
    rows = existing_rows(world["invoice"])
    rows[1]["tax_codes"] = ["RED"]
    assert admin_client.post(reverse("invoices:edit", args=[world["invoice"].pk]),
                             edit_post(world["invoice"], rows)).status_code == 302
    assert list(world["invoice"].lines.order_by("sort_order")[1].tax_codes) == ["RED"]


def test_an_expired_connection_does_not_own_taxes(world, connected, admin_client):
    connected.status = "expired"
    connected.save()
    page = admin_client.get(reverse("contracts:customer_edit", args=[world["customer"].pk])).content.decode()
    assert not disabled(page, "tax_exempt")


def test_a_system_that_does_not_compute_taxes_locks_nothing(world, admin_client):
    from integrations.services import connection_store

    connection_store(system="xero", acting_user=admin(), tokens={"access_token": "a", "refresh_token": "r",
                                                                 "remote_tenant_id": "t", "remote_name": "Xero Org"})
    assert tax_owner() == ""
    page = admin_client.get(reverse("contracts:customer_edit", args=[world["customer"].pk])).content.decode()
    assert not disabled(page, "tax_exempt")


def test_jurisdiction_exemption_reverse_charge_and_categories_are_locked_while_connected(world, connected, admin_client):
    from contracts.models import TaxCategory, WorkType

    labour = TaxCategory.objects.create(code="LABOUR", name="Labour", taxable=False)
    remote = WorkType.objects.create(name="Remote Support")
    edit = reverse("contracts:customer_edit", args=[world["customer"].pk])
    page = admin_client.get(edit).content.decode()
    for name in ("tax_codes", "tax_exemption_reason", "tax_exemption_certificate", "tax_exemption_expires",
                 "reverse_charge"):
        assert disabled(page, name), name
    response = admin_client.post(edit, {"legal_name": "Tax Acme GmbH", "currency": "EUR", "payment_terms_days": "30",
                                        "is_active": "on", "tax_codes": "RED", "reverse_charge": "on",
                                        "tax_id": "FR40303265045"})
    assert response.status_code == 302
    acme = Customer.objects.get(pk=world["customer"].pk)
    assert (acme.tax_codes, acme.reverse_charge, acme.tax_id) == ("", False, "FR40303265045")
    assert disabled(admin_client.get(reverse("contracts:edit", args=[world["contract"].pk])).content.decode(), "tax_codes")
    work_type_edit = reverse("contracts:work_type_edit", args=[remote.pk])
    assert disabled(admin_client.get(work_type_edit).content.decode(), "tax_category")
    admin_client.post(work_type_edit, {"name": "Remote Support", "after_hours_multiplier": "1.5", "billable": "on",
                                       "is_active": "on", "tax_category": str(labour.pk)})
    assert WorkType.objects.get(pk=remote.pk).tax_category is None
    response = admin_client.post(reverse("contracts:tax_category_create"), {"code": "PARTS", "name": "Parts"})
    assert response.status_code == 400 and "Tax categories cannot be changed here" in response.content.decode()
    assert not TaxCategory.objects.filter(code="PARTS").exists()
