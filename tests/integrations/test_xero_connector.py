"""The Xero connector: the real xero-python client against the fake Xero on 127.0.0.1.

Every request the connector sends and every answer the fake gives is checked against Xero's
published OpenAPI description (``fake_xero`` fails a test that leaves a problem);
``test_zero_spec_problems_across_the_run`` checks the total at the end of the file.
"""
from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from django.urls import reverse
from django.utils import timezone
from djmoney.money import Money
from xero_python.accounting import models as xm

from contracts.models import Product, RateItem
from integrations import registry, services
from integrations.base import ConnectionLost, LocalItem
from integrations.models import AccountingConnection, ExportRun, IntegrationLog, RemoteMapping
from integrations.xero.client import XeroCredentials, XeroEndpoints, accounting_api, build_api_client
from integrations.xero.connector import XeroConnector
from invoices import services as invoice_services
from invoices.models import Invoice
from tests.fakes import xero as xero_fakes
from tests.fakes.xero import Limits
from tests.integrations.conftest import URLS
from tests.invoices.builders import admin, amount, customer, issued, line, tax

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]

D = Decimal

fake_xero = xero_fakes.fake_xero  # fixture
xero_spec_check = xero_fakes.xero_spec_check  # fixture


def connector_for_fake(fake) -> type[XeroConnector]:
    class FakeXeroConnector(XeroConnector):
        endpoints = XeroEndpoints(api_url=fake.api_url, identity_api_url=fake.url, authorize_url=fake.authorize_url,
                                  token_url=fake.token_url, revoke_url=fake.revoke_url)
        credentials = XeroCredentials(fake.client_id, fake.client_secret)

    return FakeXeroConnector


@pytest.fixture
def xero(fake_xero):
    """The fake Xero, with the ``xero`` system pointed at it for the test."""
    registry.register("xero", connector_for_fake(fake_xero))
    yield fake_xero
    registry.unregister("xero")


@pytest.fixture
def xero_connected(tenant, xero) -> AccountingConnection:
    """Alpha connected to the fake Xero's organisation (tokens as if the admin had consented)."""
    tokens = xero.issue_tokens()
    return services.connection_store(system="xero", acting_user=admin(), tokens={
        **tokens, "refresh_expires_in": 60 * 24 * 3600, "remote_tenant_id": xero.org.tenant_id,
        "remote_name": xero.org.name, "scopes": tokens["scope"]})


def connector(connection=None, **kwargs) -> XeroConnector:
    connection = AccountingConnection.objects.get(pk=connection.pk) if connection else registry.active_connection()
    return registry.connector_for(connection, **kwargs)


def export(ids, *, steps: int = 1) -> ExportRun:
    """Create a run and execute it ``steps`` times in this process (what the Celery task does)."""
    run = services.export_run_create(document_ids=list(ids), acting_user=admin())
    for _ in range(steps):
        services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def vat_invoice(cust=None, *, amount: str = "100", **extra) -> Invoice:
    tax("VAT20", "20") if not _has_tax("VAT20") else None
    return issued(cust, [line("Remote support", "1", amount, taxes=("VAT20",), **extra)])


def _has_tax(code: str) -> bool:
    from contracts.models import TaxRate

    return TaxRate.objects.filter(code=code).exists()


def logs(**filters) -> list[IntegrationLog]:
    return list(IntegrationLog.objects.filter(system="xero", **filters).order_by("id"))


# --- OAuth ------------------------------------------------------------------------------------------


def test_connecting_through_the_pages_stores_encrypted_tokens_and_the_organisation(tenant, xero, admin_client):
    response = admin_client.post(reverse("integrations:connect", args=["xero"]))
    assert response.status_code == 302
    authorize = response["Location"]
    query = parse_qs(urlparse(authorize).query)
    assert authorize.startswith(xero.authorize_url + "?")
    assert query["client_id"] == [xero.client_id] and query["response_type"] == ["code"]
    assert query["scope"] == ["offline_access accounting.transactions accounting.contacts accounting.settings"]
    assert query["redirect_uri"] == ["http://alpha.localhost/integrations/accounting/xero/callback/"]
    granted = requests.get(authorize, allow_redirects=False, timeout=10)
    back = urlparse(granted.headers["Location"])
    response = admin_client.get(back.path + "?" + back.query)
    assert response.status_code == 302 and response["Location"] == reverse("integrations:wizard", args=["welcome"])

    connection = AccountingConnection.objects.get(system="xero")
    assert connection.status == "connected" and connection.remote_tenant_id == xero.org.tenant_id
    assert connection.remote_name == "Alpha Managed IT (Xero)"
    assert connection.refresh_token in xero.refresh_tokens and connection.access_token in xero.access_tokens
    assert connection.refresh_token not in connection.refresh_token_encrypted  # Fernet at rest
    assert connection.access_expires_at > timezone.now() + dt.timedelta(minutes=29)
    assert [(log.operation, log.outcome) for log in logs()] == [("token.exchange", "ok"), ("connections.get", "ok")]


def test_a_token_close_to_expiry_is_refreshed_first_and_the_rotated_refresh_token_stored(xero_connected, xero):
    first_refresh = xero_connected.refresh_token
    AccountingConnection.objects.filter(pk=xero_connected.pk).update(access_expires_at=timezone.now() + dt.timedelta(seconds=30))
    rates = connector(xero_connected).fetch_tax_codes()
    assert {rate.code for rate in rates} >= {"OUTPUT2", "NONE", "TAX001"}
    xero_connected.refresh_from_db()
    assert xero_connected.refresh_token != first_refresh and xero_connected.refresh_token in xero.refresh_tokens
    assert xero_connected.access_expires_at > timezone.now() + dt.timedelta(minutes=29)
    assert [(log.operation, log.outcome) for log in logs()] == [("token.refresh", "ok"), ("tax_rate.list", "ok")]
    assert [call.path for call in xero.calls] == ["/identity/connect/token", "/api.xro/2.0/TaxRates"]


def test_a_401_refreshes_once_and_the_call_goes_through(xero_connected, xero):
    xero.expire_access_tokens()  # our stored expiry still says valid
    assert connector(xero_connected).fetch_items() == []
    assert [(log.operation, log.outcome, log.http_status) for log in logs()] == [
        ("item.list", "failed", 401), ("token.refresh", "ok", 200), ("item.list", "ok", 200)]
    xero_connected.refresh_from_db()
    assert xero_connected.access_token in xero.access_tokens and xero_connected.refresh_token in xero.refresh_tokens


def test_a_dead_refresh_token_pauses_exports_and_asks_for_a_reconnect(xero_connected, xero):
    invoice = vat_invoice()
    xero.kill_refresh_tokens()
    xero.expire_access_tokens()
    with pytest.raises(ConnectionLost, match="reconnect Xero"):
        connector(xero_connected).fetch_items()
    run = export([invoice.pk])
    assert run.state == ExportRun.State.PAUSED
    xero_connected.refresh_from_db()
    assert xero_connected.status == AccountingConnection.Status.EXPIRED and xero_connected.needs_reconnect
    failed = logs(operation="token.refresh", outcome="failed")
    assert failed and failed[-1].error_code == "invalid_grant" and failed[-1].http_status == 400


def test_disconnect_revokes_the_tokens_at_xero(xero_connected, xero):
    old_access = xero_connected.access_token
    services.connection_disconnect(connection=xero_connected, acting_user=admin())
    xero_connected.refresh_from_db()
    assert xero_connected.status == AccountingConnection.Status.DISCONNECTED and xero_connected.refresh_token == ""
    assert xero.grants[-1].revoked
    assert requests.get(xero.api_url + "/Items", headers={"Authorization": f"Bearer {old_access}",
                                                          "xero-tenant-id": xero.org.tenant_id}, timeout=10).status_code == 401
    assert [(log.operation, log.outcome) for log in logs()] == [("token.revoke", "ok")]


# --- contacts, items, tax rates -------------------------------------------------------------------


def test_contacts_items_and_tax_rates_are_read_for_the_sync_wizard(xero_connected, xero):
    xero.add_contact("Nick Brown Ltd", EmailAddress="nick@brown.example")
    xero.add_contact("Supplier only", IsSupplier=True, IsCustomer=False)
    xero.add_item("REMOTE", "Remote support", price="95.5", account_code="210", tax_type="OUTPUT2")
    xero_connector = connector(xero_connected)
    customers = xero_connector.fetch_customers()
    assert [(c.name, c.data["email"]) for c in customers] == [("Nick Brown Ltd", "nick@brown.example")]
    items = xero_connector.fetch_items()
    assert [(i.code, i.name, i.price, i.data["account_code"]) for i in items] == [("REMOTE", "Remote support", D("95.5"), "210")]
    rates = {rate.code: rate for rate in xero_connector.fetch_tax_codes()}
    assert rates["OUTPUT2"].percent == D("20") and rates["TAX001"].percent == D("15.4738")  # QST compounds on GST
    assert not rates["INPUT2"].active  # an expense rate cannot go on a sales invoice


def test_creating_customers_is_idempotent_and_an_existing_name_is_that_contact(xero_connected, xero):
    existing = xero.add_contact("Brown, Nick GmbH")
    new, same_name = customer("Acme Cloud GmbH", billing_email="ap@acme.example"), customer("Brown, Nick GmbH")
    created = connector(xero_connected).create_customers([new, same_name])
    assert created[same_name.pk].remote_id == existing["ContactID"]
    contact = xero.org.contacts[created[new.pk].remote_id]
    assert contact["Name"] == "Acme Cloud GmbH" and contact["ContactNumber"] == f"cus-alpha-{new.pk}"
    assert contact["EmailAddress"] == "ap@acme.example" and contact["Addresses"][0]["AddressLine2"] == "10115 Berlin"
    again = connector(xero_connected).create_customers([new, same_name])  # a retry: the same request, the same answer
    assert again[new.pk].remote_id == created[new.pk].remote_id and len(xero.org.contacts) == 2
    puts = xero.calls_to("PUT", "/Contacts")
    assert puts[1].replayed and puts[0].headers["idempotency-key"] == puts[1].headers["idempotency-key"]


def test_creating_items_at_our_price_and_adopting_a_code_xero_has(xero_connected, xero):
    xero.add_item("SSD-1TB", "SSD 1 TB", price="79")
    items = [LocalItem(local_type="product", local_id=3, name="SSD 1 TB", price=D("80.0000"), currency="EUR", sku="ssd-1tb"),
             LocalItem(local_type="rate_item", local_id=4, name="Remote support", price=D("95.5"), currency="EUR",
                       accounting_code="210")]
    created = connector(xero_connected).create_items(items)
    assert created[("product", 3)].code == "SSD-1TB" and created[("product", 3)].price == D("79")  # theirs, matched
    remote = created[("rate_item", 4)]
    assert (remote.code, remote.price, remote.data["account_code"]) == ("REMOTE-SUPPORT", D("95.5"), "210")


# --- invoices ------------------------------------------------------------------------------------


def test_an_export_run_sends_50_invoices_per_request_with_idempotency_keys(xero_connected, xero):
    customers = [customer(f"Batch Kunde {n} GmbH") for n in range(3)]
    invoices = [vat_invoice(customers[n % 3], amount=str(100 + n)) for n in range(60)]
    run = export([inv.pk for inv in invoices])
    assert run.state == ExportRun.State.DONE and run.done == 60

    puts = xero.calls_to("PUT", "/Invoices")
    assert [len(call.body["Invoices"]) for call in puts] == [50, 10]
    assert all(call.query == "summarizeErrors=False&unitdp=4" for call in puts)
    assert len({call.headers["idempotency-key"] for call in puts}) == 2
    assert all(len(call.headers["idempotency-key"]) <= 128 for call in puts)
    # Set-up calls happen once: Xero's contacts read (no twin of ours there), contacts for the three customers,
    # Xero's tax rates (VAT20 → OUTPUT2), the short code.
    assert [c.operation for c in xero.api_calls()] == ["GET /Contacts", "PUT /Contacts", "GET /TaxRates",
                                                       "GET /Organisation", "PUT /Invoices", "PUT /Invoices"]
    assert RemoteMapping.objects.get(system="xero", local_type="tax_rate", local_id="VAT20").remote_code == "OUTPUT2"

    for invoice in invoices:
        invoice.refresh_from_db()
        remote = xero.org.invoices[invoice.remote_id]
        assert invoice.exported_to == "xero"
        assert remote["InvoiceNumber"] == invoice.number and D(str(remote["Total"])) == invoice.total
        assert remote["Contact"]["ContactID"] == RemoteMapping.objects.get(
            system="xero", local_type="customer", local_id=str(invoice.customer_id)).remote_id
    assert invoices[0].remote_url == (f"https://go.xero.com/organisationlogin/default.aspx?shortcode={xero.org.short_code}"
                                      f"&redirecturl=/AccountsReceivable/View.aspx?InvoiceID={invoices[0].remote_id}")
    exported = logs(operation="invoice.export")
    assert len(exported) == 60 and {log.outcome for log in exported} == {"ok"}
    assert exported[0].idempotency_key == f"inv-alpha-{invoices[0].pk}-v1" and exported[0].remote_id == invoices[0].remote_id


def test_lines_carry_account_codes_items_only_where_xero_has_them_and_our_exact_taxes(xero_connected, xero):
    tax("GST", "5")
    tax("QST", "9.975", compound=True)
    ssd = Product.objects.create(sku="SSD-1TB", name="SSD 1 TB", price=Money("80", "EUR"), cost=Money("50", "EUR"),
                                 accounting_code="210")
    remote_work = RateItem.objects.create(name="Remote support", rate=Money("90", "EUR"), accounting_code="260")
    xero.add_item("SSD-1TB", "SSD 1 TB")
    services.mapping_set(system="xero", local_type="product", local_id=ssd.pk, remote_id="x", remote_code="SSD-1TB")
    invoice = issued(customer(), [
        line("SSD 1 TB", "2", "80", taxes=("GST", "QST"), product_id=ssd.pk),
        line("Remote support", "1.5", "90", taxes=("GST", "QST"), rate_item_id=remote_work.pk),
        line("Travel", "1", "25.50", taxes=()),
    ], discount=amount("10"))
    run = export([invoice.pk])
    assert run.state == ExportRun.State.DONE
    invoice.refresh_from_db()
    remote = xero.org.invoices[invoice.remote_id]
    ssd_line, work_line, travel_line = remote["LineItems"]
    assert (ssd_line["ItemCode"], ssd_line["AccountCode"], ssd_line["TaxType"]) == ("SSD-1TB", "210", "TAX001")
    assert "ItemCode" not in work_line and work_line["AccountCode"] == "260"  # no such item in Xero: account code only
    assert (travel_line["AccountCode"], travel_line["TaxType"], travel_line["TaxAmount"]) == ("200", "NONE", 0.0)
    assert ssd_line["DiscountAmount"] > 0  # its share of the invoice discount
    assert (D(str(remote["SubTotal"])), D(str(remote["TotalTax"])), D(str(remote["Total"]))) == (
        invoice.subtotal - invoice.discount_total + invoice.surcharge_total, invoice.tax_total, invoice.total)


def test_validation_errors_fail_only_their_invoice_and_are_logged(xero_connected, xero):
    bad_code = Product.objects.create(sku="X1", name="Thing", price=Money("10", "EUR"), cost=Money("5", "EUR"),
                                      accounting_code="999")
    good, bad, also_good = vat_invoice(), issued(customer(), [line("Thing", "1", "10", product_id=bad_code.pk)]), vat_invoice()
    run = export([good.pk, bad.pk, also_good.pk])
    assert run.state == ExportRun.State.DONE_WITH_ERRORS and (run.done, run.failed) == (2, 1)
    bad.refresh_from_db()
    assert not bad.exported_to
    failure = logs(operation="invoice.export", outcome="failed")[0]
    assert failure.invoice_id == bad.pk and failure.is_open_failure
    assert failure.error == "Account code '999' is not a valid code for this document." and failure.error_code == "validation"
    assert len(xero.calls_to("PUT", "/Invoices")) == 1  # one request, three answers


def test_an_unmapped_tax_fails_its_invoice_before_any_request(xero_connected, xero):
    tax("VAT7", "7")  # Xero has no 7 % rate
    invoice = issued(customer(), [line("Book", "1", "10", taxes=("VAT7",))])
    run = export([invoice.pk])
    assert run.state == ExportRun.State.DONE_WITH_ERRORS
    assert "VAT7 has no Xero tax rate" in logs(operation="invoice.export")[0].error
    assert xero.calls_to("PUT", "/Invoices") == []


def test_a_retry_after_the_admin_fixed_the_cause_sends_again(xero_connected, xero):
    product = Product.objects.create(sku="X2", name="Thing", price=Money("10", "EUR"), cost=Money("5", "EUR"),
                                     accounting_code="999")
    invoice = issued(customer(), [line("Thing", "1", "10", product_id=product.pk)])
    export([invoice.pk])
    failure = logs(operation="invoice.export", outcome="failed")[0]
    Product.objects.filter(pk=product.pk).update(accounting_code="260")
    retry = services.failure_retry(log_id=failure.pk, acting_user=admin())  # the page's Retry button
    services.export_run_execute(run_id=retry.pk)
    invoice.refresh_from_db()
    assert invoice.exported_to == "xero" and xero.org.invoices[invoice.remote_id]["LineItems"][0]["AccountCode"] == "260"
    failure.refresh_from_db()
    assert failure.resolved_at is not None
    keys = [call.headers["idempotency-key"] for call in xero.calls_to("PUT", "/Invoices")]
    assert len(set(keys)) == 2  # the payload changed, so did the key: Xero did not replay the refusal


# --- idempotency --------------------------------------------------------------------------------


def test_re_running_an_export_never_creates_a_second_remote_invoice(xero_connected, xero):
    invoices = [vat_invoice() for _ in range(3)]
    first = export([inv.pk for inv in invoices])
    assert first.state == ExportRun.State.DONE
    # The worker died after Xero created them but before we saved the results:
    Invoice.objects.filter(pk__in=[inv.pk for inv in invoices]).update(exported_to="", remote_id="", exported_at=None)
    second = export([inv.pk for inv in invoices])
    assert second.state == ExportRun.State.DONE and len(xero.invoices()) == 3
    original, again = xero.calls_to("PUT", "/Invoices")
    assert again.replayed and again.headers["idempotency-key"] == original.headers["idempotency-key"]
    # A resend whose payload changed meanwhile (a contract renamed...) gets a new key; the numbers say it is there.
    Invoice.objects.filter(pk__in=[inv.pk for inv in invoices]).update(exported_to="", remote_id="", exported_at=None)
    AccountingConnection.objects.filter(pk=xero_connected.pk).update(options={"sales_account_code": "210"})
    third = export([inv.pk for inv in invoices])
    assert third.state == ExportRun.State.DONE and len(xero.invoices()) == 3
    assert xero.calls_to("GET", "/Invoices")[0].query.startswith("InvoiceNumbers=")
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.remote_id == xero.invoices(number=invoice.number)[0]["InvoiceID"]


def test_a_number_xero_has_for_another_contact_is_a_failure_not_an_adoption(xero_connected, xero):
    invoice = vat_invoice()
    other = xero.add_contact("Somebody Else")
    XeroUser(xero).invoice(other["ContactID"], invoice.number)  # typed into Xero by hand
    run = export([invoice.pk])
    assert run.state == ExportRun.State.DONE_WITH_ERRORS
    failure = logs(operation="invoice.export", outcome="failed")[0]
    assert failure.error_code == "duplicate_number" and invoice.number in failure.error


# --- credit notes and payments -------------------------------------------------------------------


def test_a_credit_note_is_pushed_and_applied_to_its_invoice(xero_connected, xero):
    invoice = vat_invoice(amount="200")
    export([invoice.pk])
    credit = invoice_services.credit_note_create(invoice_id=invoice.pk, reason="Goodwill", acting_user=admin())
    run = export([credit.pk])
    assert run.state == ExportRun.State.DONE
    credit.refresh_from_db()
    invoice.refresh_from_db()
    note = xero.org.credit_notes[credit.remote_id]
    assert note["CreditNoteNumber"] == credit.number and D(str(note["Total"])) == -credit.total == D("240.00")
    assert note["Reference"] == f"Credit for {invoice.number}" and note["LineItems"][0]["LineAmount"] == 200.0
    remote_invoice = xero.org.invoices[invoice.remote_id]
    assert (remote_invoice["AmountCredited"], remote_invoice["AmountDue"], remote_invoice["Status"]) == (D("240.00"), D("0"), "PAID")
    assert "ViewCreditNote.aspx?creditNoteID=" in credit.remote_url


def test_an_invoice_and_its_credit_note_in_one_chunk_and_a_credit_beyond_what_is_owed(xero_connected, xero):
    invoice = vat_invoice(amount="100")  # 120.00
    credit = invoice_services.credit_note_create(invoice_id=invoice.pk, reason="Wrong rate", acting_user=admin())
    run = export([invoice.pk, credit.pk])  # one chunk: the invoice goes first, then the credit note is applied to it
    assert run.state == ExportRun.State.DONE
    invoice.refresh_from_db()
    assert xero.org.invoices[invoice.remote_id]["AmountDue"] == D("0")
    assert [c.operation for c in xero.api_calls()][-3:] == ["PUT /Invoices", "PUT /CreditNotes", "PUT /CreditNotes/{id}/Allocations".replace(
        "{id}", xero.org.invoices[invoice.remote_id]["CreditNotes"][0]["CreditNoteID"])]

    paid = vat_invoice(amount="50")  # 60.00, paid in full here, then credited: we owe a refund
    invoice_services.payment_record(invoice_id=paid.pk, amount=D("60.00"), date=dt.date(2026, 3, 11), acting_user=admin())
    export([paid.pk])
    refund = invoice_services.credit_note_create(invoice_id=paid.pk, reason="Cancelled", acting_user=admin())
    assert export([refund.pk]).state == ExportRun.State.DONE
    refund.refresh_from_db()
    assert xero.org.credit_notes[refund.remote_id]["RemainingCredit"] == D("60.00")  # unallocated, as owed here
    assert not logs(operation="credit_note.allocate", outcome="failed")


def test_payments_made_in_xero_come_back_once(xero_connected, xero):
    invoice = vat_invoice(amount="100")  # 120.00
    other = vat_invoice(amount="50")
    export([invoice.pk, other.pk])
    invoice.refresh_from_db()
    other.refresh_from_db()
    user = XeroUser(xero)
    user.pay(invoice.remote_id, "20.00", dt.date(2026, 3, 12))
    user.pay(invoice.remote_id, "100.00", dt.date(2026, 3, 13))
    user.credit(other.remote_id, xero.org.invoices[other.remote_id]["Contact"]["ContactID"], "30.00")
    pulled = services.payments_pull()
    assert (pulled.recorded, pulled.already_known) == (3, 0)
    invoice.refresh_from_db()
    other.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID and invoice.amount_paid == D("120.00")
    assert [(p.amount, p.date, p.method) for p in invoice.payments.order_by("date")] == [
        (D("20.00"), dt.date(2026, 3, 12), "accounting_sync"), (D("100.00"), dt.date(2026, 3, 13), "accounting_sync")]
    assert other.status == Invoice.Status.PARTIALLY_PAID and other.amount_paid == D("30.00")
    assert other.payments.get().reference.startswith("Xero credit note")
    AccountingConnection.objects.filter(pk=xero_connected.pk).update(payments_synced_at=None)  # a full pull again
    again = services.payments_pull()
    assert (again.recorded, again.already_known) == (0, 3)


class XeroUser:
    """Someone working in the Xero organisation (through the SDK, so the fake checks it too)."""

    def __init__(self, fake) -> None:
        token = fake.issue_tokens()
        self.token = {**token, "scope": token["scope"].split(), "expires_at": time.time() + token["expires_in"]}
        endpoints = connector_for_fake(fake).endpoints
        client = build_api_client(credentials=XeroCredentials(fake.client_id, fake.client_secret), endpoints=endpoints,
                                  token_getter=lambda: self.token, token_saver=self.token.update)
        self.api, self.tenant = accounting_api(client, endpoints), fake.org.tenant_id

    def pay(self, invoice_id: str, amount: str, day: dt.date) -> None:
        payment = xm.Payment(invoice=xm.Invoice(invoice_id=invoice_id), account=xm.Account(code="090"), amount=D(amount),
                             date=day, reference="Bank transfer")
        self.api.create_payments(self.tenant, xm.Payments(payments=[payment]))

    def credit(self, invoice_id: str, contact_id: str, amount: str) -> None:
        """A credit note raised in Xero (not by us) and applied there to one of our invoices."""
        note = xm.CreditNote(type="ACCRECCREDIT", contact=xm.Contact(contact_id=contact_id), date=dt.date(2026, 3, 14),
                             status="AUTHORISED", line_items=[xm.LineItem(description="Discount agreed by phone",
                                                                          quantity=D("1"), unit_amount=D(amount),
                                                                          account_code="200", tax_type="NONE")])
        created = self.api.create_credit_notes(self.tenant, xm.CreditNotes(credit_notes=[note])).credit_notes[0]
        allocation = xm.Allocation(invoice=xm.Invoice(invoice_id=invoice_id), amount=D(amount), date=dt.date(2026, 3, 14))
        self.api.create_credit_note_allocation(self.tenant, created.credit_note_id, xm.Allocations(allocations=[allocation]))

    def invoice(self, contact_id: str, number: str) -> None:
        invoice = xm.Invoice(type="ACCREC", contact=xm.Contact(contact_id=contact_id), invoice_number=number,
                             date=dt.date(2026, 3, 1), due_date=dt.date(2026, 3, 31), status="AUTHORISED",
                             line_items=[xm.LineItem(description="Typed in by hand", quantity=D("1"), unit_amount=D("1"),
                                                     account_code="200", tax_type="NONE")])
        self.api.create_invoices(self.tenant, xm.Invoices(invoices=[invoice]))


# --- limits and failures ---------------------------------------------------------------------------


def test_429_puts_the_run_in_waiting_with_xeros_retry_after_and_it_resumes(xero_connected, xero):
    invoices = [vat_invoice() for _ in range(3)]
    xero.limits = Limits(per_minute=3)
    run = services.export_run_create(document_ids=[inv.pk for inv in invoices], acting_user=admin())
    step = services.export_run_execute(run_id=run.pk)  # contacts, tax rates, organisation: the 4th call is refused
    run.refresh_from_db()
    assert run.state == ExportRun.State.WAITING and 55 <= step.retry_after <= 60
    assert run.next_attempt_at > timezone.now() + dt.timedelta(seconds=50)
    limited = logs(http_status=429)[0]
    assert limited.error_code == "rate_limit_minute" and "retry after" in limited.error
    xero.advance(step.retry_after)
    step = services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert step.retry_after is None and run.state == ExportRun.State.DONE and len(xero.invoices()) == 3
    limited.refresh_from_db()
    assert limited.resolved_at is not None  # a hiccup the finished run got past


def test_a_set_that_would_exceed_the_daily_limit_is_paused_and_resumed_not_failed(xero_connected, xero):
    class SmallBatches(connector_for_fake(xero)):
        export_batch_size = 2

    registry.register("xero", SmallBatches)
    buyer = customer()
    invoices = [vat_invoice(buyer) for _ in range(6)]
    xero.limits = Limits(per_day=6)  # 4 set-up calls and 2 of the 3 batches today
    run = services.export_run_create(document_ids=[inv.pk for inv in invoices], acting_user=admin())
    step = services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == ExportRun.State.WAITING and run.failed == 0 and run.done == 4
    assert step.retry_after > 20 * 3600  # until calls leave Xero's rolling day
    assert logs(http_status=429)[0].error_code == "rate_limit_day"
    xero.advance(step.retry_after)  # Celery comes back with that countdown
    step = services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == ExportRun.State.DONE and run.done == 6 and len(xero.invoices()) == 6


def test_a_500_is_logged_retried_and_after_five_failures_left_for_the_page(xero_connected, xero):
    invoice = vat_invoice()
    xero.fail("PUT", "/Invoices", status=500, times=1)
    run = services.export_run_create(document_ids=[invoice.pk], acting_user=admin())
    step = services.export_run_execute(run_id=run.pk)
    assert step.retry_after == 15  # backoff, then the same request again
    failed_call = logs(operation="invoices.put", outcome="failed")[0]
    assert failed_call.http_status == 500 and "An error occurred in Xero" in failed_call.error
    services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == ExportRun.State.DONE and len(xero.invoices()) == 1

    stubborn = vat_invoice()
    xero.fail("PUT", "/Invoices", status=500, times=5)
    run = services.export_run_create(document_ids=[stubborn.pk], acting_user=admin())
    for _ in range(5):
        services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == ExportRun.State.DONE_WITH_ERRORS
    failure = IntegrationLog.objects.get(invoice=stubborn, outcome="failed", operation="invoice.export")
    assert failure.is_open_failure and failure.http_status == 500
    retry = services.failure_retry(log_id=failure.pk, acting_user=admin())  # Retry on the accounting page
    services.export_run_execute(run_id=retry.pk)
    stubborn.refresh_from_db()
    assert stubborn.exported_to == "xero" and len(xero.invoices()) == 2


def test_zero_spec_problems_across_the_run(xero_spec_check):
    """Every fake Xero of the run so far: not one request or answer outside Xero's published contract."""
    if not xero_spec_check.checked:
        pytest.skip("no fake Xero ran before this test")
    assert xero_spec_check.problems == [], "\n".join(xero_spec_check.problems)
    assert xero_spec_check.checked > 100
