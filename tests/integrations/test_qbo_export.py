"""Exports to QuickBooks Online: batches, idempotency, created customers and items, credit notes, faults, payments."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from contracts.models import Product, RateItem
from integrations import keys, services
from integrations.base import RateLimited
from integrations.models import ExportRun, IntegrationLog, RemoteMapping
from integrations.quickbooks.connector import QuickBooksConnector
from invoices import services as invoice_services
from invoices.models import Invoice
from tests.integrations.conftest import URLS
from tests.invoices.builders import ISSUE_DAY, admin, customer, d, issued, line, percent, tax

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]


def run_export(ids) -> ExportRun:
    run = services.export_run_create(document_ids=ids, acting_user=admin())
    services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def remote_invoice(qbo, invoice: Invoice) -> dict:
    [found] = [row for row in qbo.records("Invoice") if row["DocNumber"] == invoice.number]
    return found


@pytest.fixture
def catalogue(tenant):
    product = Product.objects.create(sku="FW-100", name="Firewall appliance", price=d("250"), price_currency="EUR",
                                     cost=d("150"), cost_currency="EUR", taxable=True)
    rate_item = RateItem.objects.create(name="Remote Support", rate=d("95"), rate_currency="EUR")
    return product, rate_item


def test_single_invoice_creates_customer_and_items_and_links_back(connected, qbo, catalogue):
    product, rate_item = catalogue
    tax("VAT", "19")
    cust = customer("Link GmbH", billing_email="ap@link.example", tax_exempt=False)
    invoice = issued(cust, [
        line("Remote support", "2.5", "95", taxes=("VAT",), rate_item_id=rate_item.pk),
        line("Firewall", "1", "250", taxes=("VAT",), product_id=product.pk),
        line("Travel", "1", "33.33", taxes=(), taxable=False),
    ], discount=percent("10"))
    run = run_export([invoice.pk])
    assert run.state == "done" and run.done == 1 and run.percent == 100
    invoice.refresh_from_db()
    remote = remote_invoice(qbo, invoice)
    assert invoice.exported_to == "quickbooks" and invoice.remote_id == remote["Id"]
    assert invoice.remote_url == f"{qbo.base_url}/app/invoice?txnId={remote['Id']}"
    assert remote["PrivateNote"] == "MSP Billing " + keys.document_key(invoice.pk)
    assert remote["TxnDate"] == ISSUE_DAY.isoformat() and remote["DueDate"] == invoice.due_date.isoformat()
    # QuickBooks owns taxes: no tax detail sent, TAX / NON per line; amounts net of the invoice discount.
    lines = remote["Line"]
    assert [row["SalesItemLineDetail"]["TaxCodeRef"]["value"] for row in lines] == ["TAX", "TAX", "NON"]
    assert [Decimal(row["Amount"]) for row in lines] == [il.taxable_amount for il in invoice.lines.order_by("sort_order")]
    assert Decimal(str(remote["TotalAmt"])) == invoice.subtotal - invoice.discount_total  # + QuickBooks' own tax (0 here)
    # Customer and items were created and remembered.
    [qbo_customer] = [c for c in qbo.records("Customer") if c["DisplayName"] == "Link GmbH"]
    assert qbo_customer["PrimaryEmailAddr"]["Address"] == "ap@link.example"
    assert RemoteMapping.objects.get(local_type="customer", local_id=str(cust.pk)).remote_id == qbo_customer["Id"]
    items = {i["Name"]: i for i in qbo.records("Item")}
    assert Decimal(str(items["Remote Support"]["UnitPrice"])) == Decimal("95") and items["Remote Support"]["Type"] == "Service"
    assert items["Firewall appliance"]["Type"] == "NonInventory" and items["Firewall appliance"]["Sku"] == "FW-100"
    assert lines[0]["SalesItemLineDetail"]["ItemRef"]["value"] == items["Remote Support"]["Id"]
    assert lines[2]["SalesItemLineDetail"]["ItemRef"]["value"] == items["Services"]["Id"]  # the generic item
    # A second export of the same invoice does nothing.
    again = services.export_run_create(document_ids=[invoice.pk], acting_user=admin())
    assert again.total == 0 and again.state == "done"
    assert qbo.count("Invoice") == 1 and qbo.count("Customer", DisplayName="Link GmbH") == 1


def test_a_set_of_invoices_goes_in_batches_of_30(connected, qbo):
    customers = [customer(f"Batch {n} Ltd") for n in range(3)]
    invoices = [issued(customers[n % 3], [line(f"Work {n}", "1", str(10 + n), taxes=())]) for n in range(65)]
    run = run_export([inv.pk for inv in invoices])
    assert (run.state, run.done, run.failed, run.total) == ("done", 65, 0, 65)
    assert qbo.count("Invoice") == 65
    batch_calls = [call for call in qbo.calls if call[1].endswith("/batch")]
    assert len(batch_calls) == 1 + 3  # customers (one batch), then 30 + 30 + 5 invoices
    assert all(call[2] for call in batch_calls)  # every batch carries a requestid
    assert len(qbo.calls) - qbo.calls_to("openid_configuration") <= 8  # ≈ 0.1 calls per invoice here
    assert Invoice.objects.filter(pk__in=[i.pk for i in invoices], exported_to="quickbooks").count() == 65
    assert IntegrationLog.objects.filter(operation="invoice.export", outcome="ok").count() == 65


def test_a_repeated_requestid_answers_the_first_result(connected, qbo):
    """The fake, driven by the real client: the same requestid twice creates one record."""
    from quickbooks.objects.customer import Customer as QboCustomer

    connector = QuickBooksConnector(connected)
    first = QboCustomer()
    first.DisplayName = "Idem Potent"
    created = first.save(qb=connector._client(), request_id="same-key")
    second = QboCustomer()
    second.DisplayName = "Idem Potent"
    repeated = second.save(qb=connector._client(), request_id="same-key")
    assert repeated.Id == created.Id
    assert qbo.count("Customer", DisplayName="Idem Potent") == 1
    third = QboCustomer()
    third.DisplayName = "Idem Potent"
    from quickbooks.exceptions import QuickbooksException

    with pytest.raises(QuickbooksException) as raised:  # a new key: QuickBooks refuses the duplicate name
        third.save(qb=connector._client(), request_id="other-key")
    assert raised.value.error_code == 6240


def test_a_resent_batch_after_a_crash_creates_nothing_twice(connected, qbo):
    invoices = [issued(customer(f"Crash {n} AG"), [line("x", "1", "5", taxes=())]) for n in range(3)]
    connector = QuickBooksConnector(connected)
    docs = services.selectors_documents([i.pk for i in invoices])
    first = connector.export_documents(docs)  # "the worker dies before saving this"
    again = QuickBooksConnector(connected).export_documents(services.selectors_documents([i.pk for i in invoices]))
    assert [r.remote_id for r in first] == [r.remote_id for r in again]
    assert qbo.count("Invoice") == 3


def test_resumed_run_adopts_documents_already_in_quickbooks(connected, qbo):
    invoices = [issued(customer(f"Resume {n} BV"), [line("x", "1", "5", taxes=())]) for n in range(2)]
    docs = services.selectors_documents([i.pk for i in invoices])
    QuickBooksConnector(connected).export_documents(docs)  # created, not recorded here
    qbo.request_ids.clear()  # even if QuickBooks forgot the requestid
    run = services.export_run_create(document_ids=[i.pk for i in invoices], acting_user=admin())
    ExportRun.objects.filter(pk=run.pk).update(attempts=1, state="running")  # a killed attempt
    services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.state == "done" and run.done == 2
    assert qbo.count("Invoice") == 2


def test_duplicate_name_6240_adopts_the_existing_quickbooks_customer(connected, qbo):
    existing = qbo.add("Customer", {"DisplayName": "Already There Ltd"})
    invoice = issued(customer("Already There Ltd"), [line("x", "1", "5", taxes=())])
    run = run_export([invoice.pk])
    assert run.state == "done"
    assert remote_invoice(qbo, invoice)["CustomerRef"]["value"] == existing["Id"]
    assert qbo.count("Customer", DisplayName="Already There Ltd") == 1
    assert RemoteMapping.objects.get(local_type="customer", remote_id=existing["Id"])


def test_duplicate_document_number_6140_not_ours_is_a_visible_failure(connected, qbo, admin_client):
    cust = customer("Dup Doc GmbH")
    invoice = issued(cust, [line("x", "1", "5", taxes=())])
    other = issued(cust, [line("y", "1", "7", taxes=())])
    remote_customer = qbo.add("Customer", {"DisplayName": "Someone"})
    qbo.add("Invoice", {"DocNumber": invoice.number, "CustomerRef": {"value": remote_customer["Id"]}, "Line": [],
                        "PrivateNote": "typed by hand"})
    run = run_export([invoice.pk, other.pk])
    assert (run.state, run.done, run.failed) == ("done_with_errors", 1, 1)
    log = IntegrationLog.objects.get(invoice=invoice, outcome="failed")
    assert log.error_code == "6140" and "not exported from here" in log.error and log.resolved_at is None
    invoice.refresh_from_db()
    assert not invoice.exported_to
    # Shown on the page and e-mailed to billing admins (owner and billing admin), once a day until resolved.
    page = admin_client.get(reverse("integrations:accounting")).content.decode()
    assert f'data-failure="{log.pk}"' in page and "6140" in page
    assert services.failures_notify() == 1
    sent = mail.outbox[-1]
    assert set(sent.to) == {"owner@alpha.example", "billing-admin@alpha.example"}
    assert invoice.number in sent.body and "/integrations/accounting/" in sent.body
    assert services.failures_notify() == 0  # not again within a day
    IntegrationLog.objects.filter(pk=log.pk).update(notified_at=log.created_at - dt.timedelta(days=2))
    assert services.failures_notify() == 1  # …but the next day, while unresolved
    # Retry from the page after fixing it in QuickBooks (renumbered there): exported, failure resolved.
    for row in qbo.company().entities["Invoice"].values():
        if row["DocNumber"] == invoice.number:
            row["DocNumber"] = "OLD-1"
    response = admin_client.post(reverse("integrations:failure_retry", args=[log.pk]))
    assert response.status_code == 302
    retry_run = ExportRun.objects.latest("id")
    services.export_run_execute(run_id=retry_run.pk)
    log.refresh_from_db()
    invoice.refresh_from_db()
    assert invoice.exported_to == "quickbooks" and log.resolved_at is not None
    assert services.failures_notify() == 0


def test_duplicate_document_number_6140_of_our_own_is_adopted(connected, qbo):
    invoice = issued(customer("Own Doc GmbH"), [line("x", "1", "5", taxes=())])
    QuickBooksConnector(connected).export_documents(services.selectors_documents([invoice.pk]))
    qbo.request_ids.clear()
    run = run_export([invoice.pk])  # not a resumed run: QuickBooks answers 6140, the note says it is ours
    assert run.state == "done" and qbo.count("Invoice") == 1
    assert IntegrationLog.objects.filter(operation="document.batch_create", outcome="ok").exists()


def test_429_waits_for_retry_after_without_sleeping(connected, qbo):
    invoice = issued(customer("Slow Down Ltd"), [line("x", "1", "5", taxes=())])
    QuickBooksConnector(connected)._defaults()
    qbo.inject("batch", 429, {"Fault": {"Error": [{"Message": "ThrottleExceeded", "code": "3001"}], "type": "ThrottleExceeded"}},
               headers={"Retry-After": "17"})
    run = services.export_run_create(document_ids=[invoice.pk], acting_user=admin())
    step = services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert step.retry_after == 17 and run.state == "waiting" and run.next_attempt_at is not None
    assert IntegrationLog.objects.filter(http_status=429, outcome="failed").exists()
    assert services.export_run_execute(run_id=run.pk).state == "done"  # the Celery retry
    assert qbo.count("Invoice") == 1
    assert not IntegrationLog.objects.filter(outcome="failed", resolved_at__isnull=True).exists()


def test_rate_limit_of_the_fake_is_enforced(connected, qbo):
    qbo.per_minute = 3
    connector = QuickBooksConnector(connected)
    for _ in range(3):
        connector.fetch_tax_codes()
    with pytest.raises(RateLimited) as raised:
        connector.fetch_tax_codes()
    assert 1 <= raised.value.retry_after <= 60


def test_500_is_retried_with_backoff_then_succeeds(connected, qbo):
    invoice = issued(customer("Flaky Ltd"), [line("x", "1", "5", taxes=())])
    QuickBooksConnector(connected)._defaults()
    qbo.inject("batch", 500, {"Fault": {"Error": [{"Message": "boom", "code": "10000"}], "type": "SystemFault"}})
    run = services.export_run_create(document_ids=[invoice.pk], acting_user=admin())
    step = services.export_run_execute(run_id=run.pk)
    assert step.state == "waiting" and step.retry_after == 15
    assert services.export_run_execute(run_id=run.pk).state == "done"
    assert qbo.count("Invoice") == 1


def test_401_expired_token_mid_export_refreshes_and_goes_on(connected, qbo):
    invoice = issued(customer("Expired Ltd"), [line("x", "1", "5", taxes=())])
    qbo.expire_access_tokens()
    run = run_export([invoice.pk])
    assert run.state == "done"
    assert IntegrationLog.objects.filter(operation="oauth.refresh", outcome="ok").count() == 1


def test_credit_notes_are_pushed_as_credit_memos_after_their_invoice(connected, qbo):
    invoice = issued(customer("Credit GmbH"), [line("Support", "2", "50", taxes=()), line("Cable", "1", "9.99", taxes=())])
    credit = invoice_services.credit_note_create(invoice_id=invoice.pk, reason="Goodwill", acting_user=admin(),
                                                 issue_date=ISSUE_DAY)
    run = run_export([credit.pk, invoice.pk])
    assert run.document_ids == [invoice.pk, credit.pk]
    [memo] = qbo.records("CreditMemo")
    credit.refresh_from_db()
    assert memo["DocNumber"] == credit.number and credit.remote_id == memo["Id"]
    assert credit.remote_url.endswith(f"/creditmemo?txnId={memo['Id']}")
    assert Decimal(str(memo["TotalAmt"])) == -credit.total > 0
    assert all(Decimal(row["Amount"]) > 0 and Decimal(row["SalesItemLineDetail"]["Qty"]) > 0 for row in memo["Line"])


def test_payments_are_pulled_back_once(connected, qbo):
    invoice = issued(customer("Payer GmbH"), [line("x", "1", "100", taxes=())])
    run_export([invoice.pk])
    invoice.refresh_from_db()
    remote = remote_invoice(qbo, invoice)
    qbo.add("Payment", {"TotalAmt": 40, "TxnDate": "2026-03-15", "PaymentRefNum": "CHK-1",
                        "CustomerRef": remote["CustomerRef"],
                        "Line": [{"Amount": 40, "LinkedTxn": [{"TxnId": remote["Id"], "TxnType": "Invoice"}]}]})
    result = services.payments_pull()
    assert result.recorded == 1
    invoice.refresh_from_db()
    assert invoice.status == "partially_paid" and invoice.amount_paid == Decimal("40.00")
    assert services.payments_pull().recorded == 0  # the same payment again: nothing new
    ExportConnection = type(connected)
    ExportConnection.objects.filter(pk=connected.pk).update(payments_synced_at=None)
    assert services.payments_pull().already_known == 1
    # A credit memo made in QuickBooks only settles the rest.
    memo = qbo.add("CreditMemo", {"DocNumber": "QB-CM-1", "CustomerRef": remote["CustomerRef"], "TotalAmt": 60,
                                  "Line": []})
    qbo.add("Payment", {"TotalAmt": 0, "TxnDate": "2026-03-16", "CustomerRef": remote["CustomerRef"],
                        "Line": [{"Amount": 60, "LinkedTxn": [{"TxnId": remote["Id"], "TxnType": "Invoice"}]},
                                 {"Amount": 60, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]}]})
    assert services.payments_pull().recorded == 1
    invoice.refresh_from_db()
    assert invoice.status == "paid" and invoice.payments.filter(method="accounting_sync").count() == 2


def test_a_payment_larger_than_due_is_a_visible_failure(connected, qbo):
    invoice = issued(customer("Over GmbH"), [line("x", "1", "10", taxes=())])
    run_export([invoice.pk])
    invoice.refresh_from_db()
    remote = remote_invoice(qbo, invoice)
    qbo.add("Payment", {"TotalAmt": 12, "TxnDate": "2026-03-15", "CustomerRef": remote["CustomerRef"],
                        "Line": [{"Amount": 12, "LinkedTxn": [{"TxnId": remote["Id"], "TxnType": "Invoice"}]}]})
    assert services.payments_pull().failed == 1
    assert IntegrationLog.objects.get(operation="payment.record", outcome="failed").invoice_id == invoice.pk


def test_drafts_and_void_invoices_are_not_exported(connected):
    from django.core.exceptions import ValidationError

    from tests.invoices.builders import draft

    with pytest.raises(ValidationError):
        services.export_run_create(document_ids=[draft(customer(), [line()]).pk], acting_user=admin())


def test_nothing_is_exported_without_a_usable_connection(connected):
    from django.core.exceptions import ValidationError

    invoice = issued(customer("No Conn GmbH"), [line("x", "1", "5", taxes=())])
    connected.status = "revoked"
    connected.save()
    with pytest.raises(ValidationError, match="reconnect"):
        services.export_run_create(document_ids=[invoice.pk], acting_user=admin())


def test_120_conflicting_documents_and_names_cost_one_query_per_batch_not_one_per_document(connected, qbo):
    """An export meeting 120 documents QuickBooks already has (6140: 60 of ours, 60 typed there by hand)
    and 30 customer names it already has (6240) asks QuickBooks once per batch, not once per document."""
    customers = [customer(f"Conflict Customer {n:02d} GmbH") for n in range(30)]
    invoices = [issued(customers[n % 30], [line(f"Managed service {n}", "1", str(100 + n), taxes=())]) for n in range(120)]
    ours, by_hand = invoices[::2], invoices[1::2]
    connector = QuickBooksConnector(connected)
    documents = services.selectors_documents([i.pk for i in ours])
    for start in range(0, len(documents), 30):
        connector.export_documents(documents[start:start + 30])  # created there, not recorded here
    created = {row["DocNumber"]: row for row in qbo.records("Invoice")}
    somebody = qbo.add("Customer", {"DisplayName": "Someone Else"})
    for invoice in by_hand:
        qbo.add("Invoice", {"DocNumber": invoice.number, "CustomerRef": {"value": somebody["Id"]}, "Line": [],
                            "PrivateNote": "typed by hand"})
    qbo.request_ids.clear()

    queries_before = qbo.calls_to("/query")
    run = run_export([i.pk for i in invoices])  # not a resumed run: every document answers 6140
    document_queries = qbo.calls_to("/query") - queries_before
    assert (run.state, run.done, run.failed) == ("done_with_errors", 60, 60)
    assert document_queries <= 120 // 30 + 2  # one per batch (and the defaults), not 120
    for invoice in ours:  # adopted: the very documents created before, with their amounts
        invoice.refresh_from_db()
        assert invoice.exported_to == "quickbooks" and invoice.remote_id == created[invoice.number]["Id"]
        assert Decimal(str(created[invoice.number]["TotalAmt"])) == invoice.total
    for invoice in by_hand:
        invoice.refresh_from_db()
        assert not invoice.exported_to
        assert "not exported from here" in IntegrationLog.objects.get(invoice=invoice, outcome="failed").error
    assert qbo.count("Invoice") == 120  # nothing created twice

    # 30 customers whose names QuickBooks already has (6240): linked with one query for the batch.
    for cust in customers:
        RemoteMapping.objects.filter(local_type="customer", local_id=str(cust.pk)).delete()
    remote_ids = {row["DisplayName"]: row["Id"] for row in qbo.records("Customer")}
    queries_before = qbo.calls_to("/query")
    linked = QuickBooksConnector(connected).create_customers(customers)
    assert qbo.calls_to("/query") - queries_before == 1
    assert {pk: record.remote_id for pk, record in linked.items()} == {
        cust.pk: remote_ids[cust.legal_name] for cust in customers}
    assert qbo.count("Customer") == len(remote_ids)


def test_a_line_halfway_between_two_cents_books_to_the_cent_whichever_way_quickbooks_rounds(connected, qbo):
    """0.18 h × 241.25 = 43.425: printed 43.43 (half-up); sent as-is, a half-even system books 43.42 or refuses it."""
    invoice = issued(customer("Half Cent LLC"), [line("Remote support, 11 min", "0.18", "241.25", taxes=(), taxable=False)])
    assert invoice.lines.get().taxable_amount == Decimal("43.43")
    run = run_export([invoice.pk])
    assert run.state == "done" and run.failed == 0
    [sent] = remote_invoice(qbo, invoice)["Line"][:1]
    qty, price = Decimal(str(sent["SalesItemLineDetail"]["Qty"])), Decimal(str(sent["SalesItemLineDetail"]["UnitPrice"]))
    assert Decimal(str(sent["Amount"])) == Decimal("43.43") and qty == Decimal("0.18")
    from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP

    assert {(qty * price).quantize(Decimal("0.01"), rounding) for rounding in (ROUND_HALF_UP, ROUND_HALF_EVEN)} == {Decimal("43.43")}
