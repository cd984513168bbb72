"""Foreign-currency documents to QuickBooks Online, through the real python-quickbooks against the fake.

Alpha bills in EUR; its QuickBooks company has multicurrency on with EUR as home currency.
A USD invoice goes out with CurrencyRef USD, without an exchange rate of our own (QuickBooks
takes its rate for the invoice's date), to a QuickBooks customer in USD. A QuickBooks
customer's currency cannot change, so a customer matched to one in another currency is a
clear, open failure — never a document booked in the wrong currency.
"""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.base import Ref
from quickbooks.objects.customer import Customer as QboCustomer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice as QboInvoice

from integrations import services, wizard
from integrations.models import ExportRun, IntegrationLog, RemoteMapping
from integrations.quickbooks.connector import CURRENCY_MISMATCH, QuickBooksConnector
from invoices import services as invoice_services
from invoices.models import Invoice
from tests.integrations.conftest import URLS
from tests.invoices.builders import ISSUE_DAY, admin, customer, issued, line

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]
USD_RATE = Decimal("0.9150")  # EUR per USD on the invoice date, as QuickBooks has it


@pytest.fixture
def multicurrency(connected, qbo):
    return qbo.enable_multicurrency(home="EUR", rates={"USD": USD_RATE})


def run_export(ids) -> ExportRun:
    run = services.export_run_create(document_ids=ids, acting_user=admin())
    services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def remote(qbo, entity: str, number: str) -> dict:
    [found] = [row for row in qbo.records(entity) if row.get("DocNumber") == number]
    return found


def sent_bodies(qbo) -> int:
    """Batch requests that carried documents (the fake counts calls by path)."""
    return sum(1 for _, path, request_id in qbo.calls if path.endswith("/batch") and request_id.startswith("b"))


def usd_customer(name: str = "Yankee Trading Inc", **extra):
    return customer(name, currency="USD", address="1 Main St\nBoston", tax_id="", **extra)


def test_a_usd_invoice_goes_out_in_usd_to_a_usd_customer(multicurrency, qbo):
    yankee = usd_customer()
    invoice = issued(yankee, [line("Consulting", "2", "150", taxes=())])
    home = issued(customer("Heimat GmbH"), [line("Support", "1", "80", taxes=())])
    assert invoice.currency == "USD" and home.currency == "EUR"
    run = run_export([invoice.pk, home.pk])
    assert (run.state, run.done, run.failed) == ("done", 2, 0)

    [qbo_yankee] = [row for row in qbo.records("Customer") if row["DisplayName"] == "Yankee Trading Inc"]
    assert qbo_yankee["CurrencyRef"]["value"] == "USD"  # created as a USD customer
    usd = remote(qbo, "Invoice", invoice.number)
    assert usd["CurrencyRef"]["value"] == "USD" and usd["CustomerRef"]["value"] == qbo_yankee["Id"]
    # Not booked at par: QuickBooks' own rate for the invoice date applies.
    assert Decimal(str(usd["ExchangeRate"])) == USD_RATE
    assert Decimal(str(usd["TotalAmt"])) == Decimal(300) and Decimal(str(usd["HomeTotalAmt"])) == Decimal("274.50")
    eur = remote(qbo, "Invoice", home.number)
    assert eur["CurrencyRef"]["value"] == "EUR" and Decimal(str(eur["ExchangeRate"])) == 1
    mapping = RemoteMapping.objects.get(local_type="customer", local_id=str(yankee.pk))
    assert mapping.extra == {"currency": "USD"}


def test_a_usd_credit_note_goes_out_as_a_usd_credit_memo(multicurrency, qbo):
    invoice = issued(usd_customer("Credit Yankee LLC"), [line("Licence", "1", "99", taxes=())])
    credit = invoice_services.credit_note_create(invoice_id=invoice.pk, reason="Returned", acting_user=admin(),
                                                 issue_date=ISSUE_DAY)
    assert run_export([invoice.pk, credit.pk]).state == "done"
    memo = remote(qbo, "CreditMemo", credit.number)
    assert memo["CurrencyRef"]["value"] == "USD" and Decimal(str(memo["ExchangeRate"])) == USD_RATE


def test_a_customer_matched_to_a_quickbooks_customer_in_another_currency_is_a_clear_failure(multicurrency, qbo):
    yankee = usd_customer()
    in_euros = qbo.add("Customer", {"DisplayName": "Yankee Trading (EUR)"})  # home currency, made in QuickBooks
    services.mapping_set(system="quickbooks", local_type="customer", local_id=yankee.pk, remote_id=in_euros["Id"],
                         remote_name=in_euros["DisplayName"])  # matched before its currency was known
    invoice = issued(yankee, [line("Consulting", "1", "100", taxes=())])
    run = run_export([invoice.pk])

    assert (run.state, run.done, run.failed) == ("done_with_errors", 0, 1)
    assert qbo.count("Invoice") == 0 and sent_bodies(qbo) == 0  # nothing sent, nothing booked
    log = IntegrationLog.objects.get(invoice=invoice, outcome="failed")
    assert log.error_code == CURRENCY_MISMATCH and log.resolved_at is None
    assert "in USD" in log.error and "is in EUR" in log.error and "cannot be changed" in log.error
    assert "Yankee Trading (EUR)" in log.error
    # The customer's currency was read once from QuickBooks and remembered.
    assert RemoteMapping.objects.get(local_type="customer", local_id=str(yankee.pk)).extra == {"currency": "EUR"}
    invoice.refresh_from_db()
    assert not invoice.exported_to

    # The admin matches a USD customer instead and retries: exported, the failure resolved.
    in_dollars = qbo.add("Customer", {"DisplayName": "Yankee Trading (USD)", "CurrencyRef": {"value": "USD"}})
    services.mapping_set(system="quickbooks", local_type="customer", local_id=yankee.pk, remote_id=in_dollars["Id"],
                         remote_name=in_dollars["DisplayName"], extra={"currency": "USD"})
    retry = services.failure_retry(log_id=log.pk, acting_user=admin())
    services.export_run_execute(run_id=retry.pk)
    log.refresh_from_db()
    invoice.refresh_from_db()
    assert invoice.exported_to == "quickbooks" and log.resolved_at is not None
    assert remote(qbo, "Invoice", invoice.number)["CustomerRef"]["value"] == in_dollars["Id"]


def test_an_existing_quickbooks_customer_of_the_same_name_in_another_currency_is_not_used(multicurrency, qbo):
    qbo.add("Customer", {"DisplayName": "Same Name Corp"})  # EUR customer in QuickBooks
    invoice = issued(usd_customer("Same Name Corp"), [line("x", "1", "10", taxes=())])
    run = run_export([invoice.pk])  # creating it answers 6240; the existing one is adopted, then refused
    assert run.failed == 1 and qbo.count("Invoice") == 0
    assert IntegrationLog.objects.get(invoice=invoice, outcome="failed").error_code == CURRENCY_MISMATCH


def test_a_home_currency_invoice_to_a_foreign_quickbooks_customer_is_refused_too(multicurrency, qbo):
    heimat = customer("Heimat Mismatch GmbH")
    in_dollars = qbo.add("Customer", {"DisplayName": "Heimat (USD)", "CurrencyRef": {"value": "USD"}})
    services.mapping_set(system="quickbooks", local_type="customer", local_id=heimat.pk, remote_id=in_dollars["Id"],
                         remote_name="Heimat (USD)", extra={"currency": "USD"})
    invoice = issued(heimat, [line("x", "1", "10", taxes=())])
    assert run_export([invoice.pk]).failed == 1 and qbo.count("Invoice") == 0
    assert "is in EUR, but the QuickBooks customer “Heimat (USD)”" in \
        IntegrationLog.objects.get(invoice=invoice, outcome="failed").error


def test_quickbooks_itself_refuses_a_mismatch_we_did_not_know_of(multicurrency, qbo):
    """Stale knowledge (someone merged customers in QuickBooks): QuickBooks' own refusal is the failure."""
    yankee = usd_customer()
    in_euros = qbo.add("Customer", {"DisplayName": "Merged In QuickBooks"})
    services.mapping_set(system="quickbooks", local_type="customer", local_id=yankee.pk, remote_id=in_euros["Id"],
                         remote_name="Merged In QuickBooks", extra={"currency": "USD"})
    invoice = issued(yankee, [line("x", "1", "10", taxes=())])
    run = run_export([invoice.pk])
    assert run.failed == 1 and qbo.count("Invoice") == 0 and sent_bodies(qbo) == 1
    log = IntegrationLog.objects.get(invoice=invoice, outcome="failed")
    assert log.error_code == "6000" and "customer's currency" in log.error


def test_without_multicurrency_quickbooks_refuses_a_foreign_invoice(connected, qbo):
    qbo.company().home_currency = "EUR"  # multicurrency off, as in a new company
    invoice = issued(usd_customer("No Multi Inc"), [line("x", "1", "10", taxes=())])
    run = run_export([invoice.pk])  # the USD customer cannot even be created there
    assert (run.state, run.failed) == ("done_with_errors", 1) and qbo.count("Invoice") == 0
    failure = IntegrationLog.objects.get(invoice=invoice, outcome="failed", resolved_at__isnull=True)
    assert "Multicurrency is not turned on" in failure.error and "No Multi Inc" in failure.error


def test_the_fake_holds_quickbooks_currency_rules_for_the_real_client(multicurrency, qbo):
    qb = QuickBooksConnector(multicurrency_connection())._client()
    gbp = QboCustomer()
    gbp.DisplayName = "Pound Ltd"
    gbp.CurrencyRef = ref("GBP")
    gbp = gbp.save(qb=qb)
    assert gbp.CurrencyRef.value == "GBP"
    # A customer's currency cannot change.
    gbp.CurrencyRef = ref("EUR")
    with pytest.raises(QuickbooksException) as raised:
        gbp.save(qb=qb)
    assert raised.value.error_code == 6000 and "cannot be changed" in raised.value.detail
    # A document must be in its customer's currency.
    item = qbo.add("Item", {"Name": "Consulting", "Type": "Service", "IncomeAccountRef": {"value": "2"}})
    invoice = QboInvoice()
    invoice.CustomerRef = ref(gbp.Id)
    invoice.CurrencyRef = ref("USD")
    detail = SalesItemLineDetail()
    detail.ItemRef, detail.Qty, detail.UnitPrice = ref(item["Id"]), 1, 10
    detail.TaxCodeRef = ref("NON")
    sales_line = SalesItemLine()
    sales_line.Amount, sales_line.SalesItemLineDetail = 10, detail
    invoice.Line.append(sales_line)
    with pytest.raises(QuickbooksException) as raised:
        invoice.save(qb=qb)
    assert raised.value.error_code == 6000 and "customer's currency" in raised.value.detail
    invoice.CurrencyRef = ref("GBP")
    invoice.ExchangeRate = None
    saved = invoice.save(qb=qb)
    assert saved.CurrencyRef.value == "GBP"


def test_the_wizard_refuses_to_match_a_customer_to_one_in_another_currency(multicurrency, qbo, admin_client):
    yankee = usd_customer()
    in_euros = qbo.add("Customer", {"DisplayName": "Yankee Trading Inc.", "CurrencyRef": {"value": "EUR"}})
    in_dollars = qbo.add("Customer", {"DisplayName": "Yankee Trading USD", "CurrencyRef": {"value": "USD"}})
    connection = multicurrency_connection()
    remote = wizard.wizard_fetch(connection=connection)
    key = f"customer:{yankee.pk}"
    with pytest.raises(ValidationError, match="cannot be changed"):
        wizard.wizard_complete(connection=connection, remote=remote, item_choices={}, imports=[], acting_user=admin(),
                               customer_choices={key: in_euros["Id"]})
    assert not RemoteMapping.objects.exists()
    wizard.wizard_complete(connection=connection, remote=remote, item_choices={}, imports=[], acting_user=admin(),
                           customer_choices={key: in_dollars["Id"]})
    mapping = RemoteMapping.objects.get(local_type="customer", local_id=str(yankee.pk))
    assert (mapping.remote_id, mapping.extra) == (in_dollars["Id"], {"currency": "USD"})
    page = admin_client.get(reverse("integrations:accounting")).content.decode()
    assert re.search(rf'data-mapping="customer:{yankee.pk}"><th scope="row">Yankee Trading Inc</th>'
                     r"<td>Yankee Trading USD · USD</td>", page)
    # …and the export goes straight through: the currency is known, no customer is read again.
    invoice = issued(yankee, [line("x", "1", "10", taxes=())])
    assert run_export([invoice.pk]).state == "done"
    assert remote_currency(qbo, invoice) == "USD"
    assert not IntegrationLog.objects.filter(operation="customer.query", request_summary__contains="WHERE Id IN").exists()


def remote_currency(qbo, invoice: Invoice) -> str:
    return remote(qbo, "Invoice", invoice.number)["CurrencyRef"]["value"]


def multicurrency_connection():
    from integrations.models import AccountingConnection

    return AccountingConnection.objects.get(system="quickbooks")


def ref(value: str) -> Ref:
    reference = Ref()
    reference.value = value
    return reference
