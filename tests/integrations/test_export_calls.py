"""How many calls an export costs, and the fakes' rate limits and call counts the export benchmark relies on.

A first export creates the customers (QuickBooks: and items) it needs. Invoices come customer
by customer, as a billing batch makes them, so one chunk meets only a few new customers: the
customers of the run's later documents go in the same requests, filled up to the system's
batch size, instead of a few with every chunk. Xero's tax rates are read once per task run.
"""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import requests

from contracts.models import Product, RateItem
from integrations import registry, services
from integrations.models import ExportRun, IntegrationLog, RemoteMapping
from integrations.xero.client import XeroCredentials, XeroEndpoints
from integrations.xero.connector import XeroConnector
from invoices.models import Invoice
from tests.fakes import xero as xero_fakes
from tests.fakes.quickbooks import FakeQuickBooks
from tests.fakes.xero import Limits
from tests.integrations.conftest import URLS
from tests.invoices.builders import admin, customer, d, issued, line, tax

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]

fake_xero = xero_fakes.fake_xero  # fixture


def run_export(ids, *, steps: int = 1) -> ExportRun:
    run = services.export_run_create(document_ids=list(ids), acting_user=admin())
    for _ in range(steps):
        services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def customer_by_customer(prefix: str, customers: int, per_customer: int, lines=None) -> list[Invoice]:
    """``per_customer`` invoices for each of ``customers`` new customers, one customer after the other."""
    invoices = []
    for number in range(customers):
        buyer = customer(f"{prefix} {number} GmbH")
        invoices += [issued(buyer, lines(number) if lines else [line("Support", "1", "100", taxes=())])
                     for _ in range(per_customer)]
    return invoices


# --- QuickBooks Online ------------------------------------------------------------------------------


def test_quickbooks_first_export_creates_the_runs_customers_in_one_batch_not_one_per_chunk(connected, qbo, monkeypatch):
    monkeypatch.setenv("QBO_BATCH_SIZE", "4")
    invoices = customer_by_customer("Batch Buyer", customers=6, per_customer=2)  # 3 chunks of 4, 2 new customers each
    run = run_export([invoice.pk for invoice in invoices])
    assert (run.state, run.done, run.failed) == ("done", 12, 0)
    # One read of QuickBooks' customers (no twins there), one batch for the 6 customers, 3 for the invoices;
    # the income account and generic item once.
    assert qbo.calls_by_endpoint() == {"batch": 4, "query": 3, "item": 1, "discovery": 1}
    assert [log.request_summary.split(":")[0] for log in
            IntegrationLog.objects.filter(operation="customer.batch_create").order_by("id")] == ["6 customers"]
    assert qbo.count("Customer") == 6
    assert RemoteMapping.objects.filter(system="quickbooks", local_type="customer").count() == 6
    assert Counter(row["DocNumber"] for row in qbo.records("Invoice")) == Counter(inv.number for inv in invoices)


def test_quickbooks_a_later_customer_it_refuses_fails_only_its_own_invoices(connected, qbo, monkeypatch):
    monkeypatch.setenv("QBO_BATCH_SIZE", "2")
    # QuickBooks keeps the name of a customer made inactive there: it refuses it and finds no active one.
    qbo.add("Customer", {"DisplayName": "Inactive There GmbH", "Active": False})
    first, refused, last = customer("First Buyer GmbH"), customer("Inactive There GmbH"), customer("Last Buyer GmbH")
    invoices = [issued(buyer, [line("Support", "1", "10", taxes=())]) for buyer in (first, first, refused, refused, last, last)]
    run = run_export([invoice.pk for invoice in invoices])
    # The first chunk's batch also carried the refused customer (and the last one): only the refused
    # customer's own chunk fails, when it comes; the first and last customers' invoices are exported.
    assert (run.state, run.done, run.failed) == ("done_with_errors", 4, 2)
    exported = set(Invoice.objects.filter(exported_to="quickbooks").values_list("customer_id", flat=True))
    assert exported == {first.pk, last.pk}
    failures = IntegrationLog.objects.filter(operation="invoice.export", outcome="failed", resolved_at__isnull=True)
    assert {log.invoice.customer_id for log in failures} == {refused.pk}
    assert all("vendor or employee" in log.error for log in failures)
    assert IntegrationLog.objects.filter(operation="customer.batch_create").count() == 2  # all three, then the refused one again
    assert qbo.count("Customer") == 3  # first, last and the inactive one: nothing twice


def test_quickbooks_items_of_later_invoices_are_created_with_the_first(connected, qbo, monkeypatch):
    monkeypatch.setenv("QBO_BATCH_SIZE", "2")
    rate_item = RateItem.objects.create(name="Remote Support", rate=d("95"), rate_currency="EUR")
    product = Product.objects.create(sku="SSD-1", name="SSD 1 TB", price=d("89"), price_currency="EUR",
                                     cost=d("60"), cost_currency="EUR")
    buyer = customer("Item Buyer GmbH")
    invoices = [issued(buyer, [line("Remote support", "1", "95", taxes=(), rate_item_id=rate_item.pk)]) for _ in range(2)]
    invoices += [issued(buyer, [line("SSD", "1", "89", taxes=(), product_id=product.pk)]) for _ in range(2)]
    run = run_export([invoice.pk for invoice in invoices])
    assert (run.state, run.done) == ("done", 4)
    [items_batch] = IntegrationLog.objects.filter(operation="item.batch_create")
    assert items_batch.request_summary.startswith("2 items")
    assert {row["Name"] for row in qbo.records("Item")} >= {"Remote Support", "SSD 1 TB"}
    last = next(row for row in qbo.records("Invoice") if row["DocNumber"] == invoices[-1].number)
    product_id = RemoteMapping.objects.get(system="quickbooks", local_type="product").remote_id
    assert last["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"] == product_id


def test_the_quickbooks_fake_counts_every_call_and_limits_requests_at_once(qbo):
    company = qbo.company()
    token = qbo.issue_tokens(company.realm)["access_token"]
    url = f"{qbo.api_url}/company/{company.realm}/companyinfo/{company.realm}"
    qbo.concurrent, qbo.latency = 2, 0.5
    start = threading.Barrier(4)
    answers: list[requests.Response] = []

    def call():
        start.wait()
        answers.append(requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [200, 200, 429, 429]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert all(answer.headers["Retry-After"] == "1" and answer.json()["Fault"]["type"] == "ThrottleExceeded"
               for answer in refused)
    assert qbo.throttled() == 2 and qbo.retry_afters == [1.0, 1.0]
    assert qbo.calls_by_endpoint() == {"companyinfo": 4}
    assert qbo.calls_by_endpoint(status=429) == {"companyinfo": 2}


def test_the_quickbooks_fake_batch_limit_over_a_shortened_window(qbo):
    fake = FakeQuickBooks.with_real_limits(window=1.5)
    assert fake.rate_limits() == {"all": (500, 1.5), "batch": (40, 1.5)} and fake.concurrent == 10
    company = qbo.company()
    token = qbo.issue_tokens(company.realm)["access_token"]
    qbo.batch_per_minute, qbo.window = 2, 1.5

    def batch() -> requests.Response:
        return requests.post(f"{qbo.api_url}/company/{company.realm}/batch", json={"BatchItemRequest": []},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)

    assert [batch().status_code, batch().status_code] == [200, 200]
    refused = batch()
    assert refused.status_code == 429 and refused.headers["Retry-After"] in ("1", "2")
    assert qbo.api_calls(bucket="batch") == 3 and qbo.api_calls(bucket="batch", accepted_only=True) == 2
    time.sleep(1.6)  # the window has passed
    assert batch().status_code == 200


# --- Xero ---------------------------------------------------------------------------------------------


@pytest.fixture
def xero(fake_xero):
    """The fake Xero, with the ``xero`` system pointed at it and chunks of 4 documents."""

    class SmallChunks(XeroConnector):
        endpoints = XeroEndpoints(api_url=fake_xero.api_url, identity_api_url=fake_xero.url,
                                  authorize_url=fake_xero.authorize_url, token_url=fake_xero.token_url,
                                  revoke_url=fake_xero.revoke_url)
        credentials = XeroCredentials(fake_xero.client_id, fake_xero.client_secret)
        export_batch_size = 4

    registry.register("xero", SmallChunks)
    tokens = fake_xero.issue_tokens()
    services.connection_store(system="xero", acting_user=admin(), tokens={
        **tokens, "refresh_expires_in": 60 * 24 * 3600, "remote_tenant_id": fake_xero.org.tenant_id,
        "remote_name": fake_xero.org.name, "scopes": tokens["scope"]})
    yield fake_xero
    registry.unregister("xero")


def test_xero_first_export_creates_the_runs_contacts_in_one_request_and_reads_tax_rates_once(tenant, xero):
    tax("XV20", "20")
    tax("XV5", "5")
    # Chunks of 4 over 3 invoices per customer: every chunk meets a new customer. The last customer is
    # charged 5 % (chunk 3): a tax nobody mapped yet, matched from the rates read for chunk 1.
    invoices = customer_by_customer("Xero Buyer", customers=4, per_customer=3,
                                    lines=lambda n: [line("Support", "1", "100", taxes=("XV5",) if n == 3 else ("XV20",))])
    run = run_export([invoice.pk for invoice in invoices])
    assert (run.state, run.done, run.failed) == ("done", 12, 0)
    assert xero.calls_by_endpoint() == {"GET /Contacts": 1, "PUT /Contacts": 1, "GET /TaxRates": 1,
                                        "GET /Organisation": 1, "PUT /Invoices": 3}
    assert len(xero.org.contacts) == 4
    assert {m.local_id: m.remote_code for m in RemoteMapping.objects.filter(system="xero", local_type="tax_rate")} == {
        "XV20": "OUTPUT2", "XV5": "RROUTPUT"}
    remote = {row["InvoiceNumber"]: row["Total"] for row in xero.invoices()}
    assert remote == {invoice.number: invoice.total for invoice in invoices}


def test_xero_mapped_export_is_one_request_per_chunk(tenant, xero):
    tax("XV20", "20")
    first = customer_by_customer("Steady Buyer", customers=2, per_customer=2,
                                 lines=lambda n: [line("Support", "1", "100", taxes=("XV20",))])
    run_export([invoice.pk for invoice in first])
    xero.clear_counts()
    second = [issued(invoice.customer, [line("Support", "1", "50", taxes=("XV20",))]) for invoice in first * 2]
    run = run_export([invoice.pk for invoice in second])
    assert (run.state, run.done) == ("done", 8)
    assert xero.calls_by_endpoint() == {"PUT /Invoices": 2} and xero.accounting_calls() == 2 and xero.throttled() == 0


def test_the_xero_fake_scales_the_day_with_the_minute_and_counts_429s(fake_xero):
    limits = Limits.scaled(6)
    assert (limits.per_minute, limits.minute_seconds, limits.per_day, limits.day_seconds) == (60, 6, 5000, 8640)
    assert limits.allowed() == {"minute": (60, 6), "day": (5000, 8640)}
    fake_xero.limits = Limits(per_minute=60, per_day=2, day_seconds=30)
    token = fake_xero.issue_tokens()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": fake_xero.org.tenant_id, "Accept": "application/json"}
    answers = [requests.get(f"{fake_xero.api_url}/Organisation", headers=headers, timeout=10) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].headers["X-Rate-Limit-Problem"] == "day" and 1 <= int(answers[2].headers["Retry-After"]) <= 30
    assert fake_xero.throttled() == 1 and fake_xero.accounting_calls(accepted_only=True) == 2
    assert fake_xero.calls_by_endpoint(status=429) == {"GET /Organisation": 1}
    fake_xero.advance(31)  # the (shortened) day has passed
    assert requests.get(f"{fake_xero.api_url}/Organisation", headers=headers, timeout=10).status_code == 200
