"""The invoice list in bulk mode and a block contract's balance, in Chromium.

Select all on the page, untick one, record a payment on the rest from the list, and see
them paid; then a Block Hours contract's page with its balance. With ``MSP_SCREENSHOTS=1``
the pages are saved to docs/screenshots/ (invoice-list-bulk.png, block-contract.png).

Figures by hand: four invoices of 100.00, 250.00, 80.00 and 40.00 + 19 % VAT = 119.00,
297.50, 95.20 and 47.60. All four ticked, the last unticked: 119.00 + 297.50 + 95.20 = 511.70
is paid. The block: 20 h bought (10 h + 10 h), 13.5 h used (10 h + 3.5 h), 6.5 h left; of the
block still in use 3.5 of 10 h are used: 35 %, below the first alert at 75 %.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from tests.support import BASE_DIR, PASSWORD, committed_msp, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

SCHEMA = f"bulk{secrets.token_hex(3)}"
ADMIN = f"billing-admin@{SCHEMA}.example"
SCREENSHOTS = BASE_DIR / "docs" / "screenshots"


def _world() -> dict:
    from contracts.models import BlockLedgerEntry, Contract, TaxRate
    from invoices import services
    from invoices.models import Invoice
    from msp_billing.accounts.models import User
    from tests.tickets.builders import block, contract, customer

    admin = User.objects.get(email=ADMIN)
    TaxRate.objects.create(code="VAT", name="VAT 19 %", percent=Decimal(19), effective_from=dt.date(2020, 1, 1))
    issued = []
    for name, amount in (("Nordwind Holding AG", "100"), ("Südhafen Logistik GmbH", "250"), ("Ostwerk KG", "80"),
                         ("Westhang Praxis", "40")):
        cust = customer(name)
        draft = services.invoice_create_draft(customer=cust, acting_user=admin, lines=[services.LineInput(
            description="Managed services, March", quantity=Decimal(1), unit_price=Decimal(amount), tax_rate_codes=("VAT",))])
        issued.append(services.invoice_issue(invoice_id=draft.pk, acting_user=admin, issue_date=dt.date(2026, 3, 31)))
    # One went to the accounting system already (what integrations/ records on export).
    Invoice.objects.filter(pk=issued[3].pk).update(exported_to="xero", exported_at=timezone.now())
    gold = contract(issued[0].customer, Contract.Type.BLOCK_HOURS, name="Gold Block", rollover=False,
                    alert_thresholds="75,90,100")
    today = timezone.localdate()
    first = block(gold, minutes=600, on=today - dt.timedelta(days=120), price="950")
    second = block(gold, minutes=600, on=today - dt.timedelta(days=20), expires_on=today + dt.timedelta(days=160),
                   price="950")
    for purchase, minutes in ((first, 600), (second, 210)):
        BlockLedgerEntry.objects.create(block=purchase, entry_date=purchase.purchased_on, minutes=minutes,
                                        source=f"demo:{purchase.pk}")
    return {"invoices": issued, "block": gold}


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with committed_msp(django_db_blocker, name="Bulk Billing IT", subdomain=SCHEMA, admin_email=ADMIN):
        with django_db_blocker.unblock(), schema_context(SCHEMA):
            yield _world()


def _shot(page, name: str, tmp_path: Path, *, full_page: bool = True) -> None:
    target = SCREENSHOTS if os.environ.get("MSP_SCREENSHOTS") == "1" else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / name), full_page=full_page)


def test_select_many_and_pay_them_from_the_list(server, browser, world, django_db_blocker, tmp_path):
    base = f"http://{SCHEMA}.localhost:{server}"
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    sign_in(page, server, ADMIN, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")

    page.goto(base + "/invoices/")
    bar = page.get_by_role("group", name="With the selected invoices")
    record = bar.get_by_role("button", name="Record payment…")
    expect(record).to_be_disabled()  # nothing selected yet
    page.get_by_label("Select all on this page").check()
    expect(bar.locator("[data-bulk-count]")).to_have_text("4 selected")
    last = world["invoices"][3]
    page.get_by_label(f"Select {last.number}").uncheck()
    expect(bar.locator("[data-bulk-count]")).to_have_text("3 selected")
    expect(page.get_by_label("Select all on this page")).not_to_be_checked()
    expect(record).to_be_enabled()
    assert page.locator("tr", has_text=last.number).get_by_text("Xero").is_visible()  # the exported column
    _shot(page, "invoice-list-bulk.png", tmp_path)

    record.click()
    page.get_by_role("heading", name="Record a payment on 3 invoices").wait_for()
    assert "€511.70" in page.locator("tfoot").inner_text()
    page.get_by_label("Reference").fill("Bank statement 14")
    page.get_by_role("button", name="Record 3 payments").click()
    page.get_by_text("3 payments recorded (511.70 EUR); each invoice is paid in full.").wait_for()
    for invoice in world["invoices"][:3]:
        expect(page.locator("tr", has_text=invoice.number).locator(".badge").first).to_have_text("Paid")
    assert "Paid" not in page.locator("tr", has_text=last.number).inner_text()

    with django_db_blocker.unblock(), schema_context(SCHEMA):
        from invoices.models import Payment

        assert sorted(Payment.objects.values_list("amount", "reference")) == [
            (Decimal("95.20"), "Bank statement 14"), (Decimal("119.00"), "Bank statement 14"),
            (Decimal("297.50"), "Bank statement 14")]

    page.goto(f"{base}/contracts/{world['block'].pk}/")
    balance = page.locator("#block-balance")
    text = balance.inner_text()
    for figure in ("Purchased\n20 h", "Used\n13.5 h", "Left\n6.5 h", "Used up", "In use", "35 %", "6.5 h on"):
        assert figure in text, figure
    _shot(page, "block-contract.png", tmp_path, full_page=False)  # the terms and the balance
    page.close()
