"""The fake Xero, driven by the real xero-python client: what the connector's tests rely on.

No database: these tests speak to the fake through the SDK (and, for the OAuth pages, plain
HTTP) and check that it answers as Xero documents — and that its answers and the SDK's
requests keep to Xero's published OpenAPI description.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from xero_python.accounting import models as xm
from xero_python.exceptions import AccountingBadRequestException, HTTPStatusException, RateLimitException

from integrations.xero.client import (
    TokenRefreshFailed,
    XeroCredentials,
    XeroEndpoints,
    accounting_api,
    build_api_client,
    identity_api,
)
from tests.fakes.openapi import SpecCheck, spec_operation_ids
from tests.fakes import xero as xero_fakes
from tests.fakes.xero import FakeXero, Limits, running_fake_xero

D = Decimal

fake_xero = xero_fakes.fake_xero  # fixture


class Sdk:
    """xero-python pointed at a fake, holding its token like the connector does."""

    def __init__(self, fake: FakeXero, *, sdk_retries: bool = False) -> None:
        token = fake.issue_tokens()
        self.token = {**token, "scope": token["scope"].split(), "expires_at": time.time() + token["expires_in"]}
        self.saved: list[dict] = []
        self.endpoints = XeroEndpoints(api_url=fake.api_url, identity_api_url=fake.url, authorize_url=fake.authorize_url,
                                       token_url=fake.token_url, revoke_url=fake.revoke_url)
        self.client = build_api_client(credentials=XeroCredentials(fake.client_id, fake.client_secret),
                                       endpoints=self.endpoints, token_getter=lambda: self.token, token_saver=self._save)
        if sdk_retries:  # the SDK as shipped: urllib3's default retries
            self.client.rest_client.pool_manager.connection_pool_kw.pop("retries", None)
            self.client.rest_client.pool_manager.clear()
        self.api = accounting_api(self.client, self.endpoints)
        self.tenant = fake.org.tenant_id

    def _save(self, token: dict) -> None:
        self.token = dict(token)
        self.saved.append(dict(token))

    def contact(self, name: str = "Acme GmbH") -> str:
        answer = self.api.create_contacts(self.tenant, xm.Contacts(contacts=[xm.Contact(name=name)]), summarize_errors=False)
        return answer.contacts[0].contact_id


def invoice(contact_id: str, number: str, *, amount: str = "100", account: str = "200", tax_type: str = "OUTPUT2",
            item_code: str | None = None) -> xm.Invoice:
    line = xm.LineItem(description="Remote support", quantity=D("1"), unit_amount=D(amount), account_code=account,
                       tax_type=tax_type)
    if item_code:
        line.item_code = item_code
    return xm.Invoice(type="ACCREC", contact=xm.Contact(contact_id=contact_id), line_items=[line], invoice_number=number,
                      date=dt.date(2026, 3, 10), due_date=dt.date(2026, 3, 24), status="AUTHORISED",
                      currency_code=xm.CurrencyCode.EUR, line_amount_types=xm.LineAmountTypes.EXCLUSIVE)


# --- the contract ------------------------------------------------------------------------------------


def test_the_spec_check_catches_what_xero_would_refuse_and_tolerates_only_the_sdks_read_only_flags():
    check = SpecCheck()
    headers = {"Authorization": "Bearer t", "xero-tenant-id": "t", "Content-Type": "application/json"}
    sdk_body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": "4b9ef7ea-1a1d-4f4e-9e6e-4c5d7e6f8a01",
                                                            "HasAttachments": False}, "HasAttachments": False,
                              "HasErrors": False, "LineItems": []}]}
    assert check.request(method="PUT", path="/api.xro/2.0/Invoices", query="summarizeErrors=False", headers=headers,
                         body=json.dumps(sdk_body).encode()) == []
    bad = {"Invoices": [{"Type": "SALE", "Total": 10, "HasAttachments": True, "Contact": {"ContactID": "nope"}}]}
    problems = check.request(method="PUT", path="/api.xro/2.0/Invoices", query="summarizeErrors=maybe",
                             headers={"Content-Type": "application/json"}, body=json.dumps(bad).encode())
    text = "\n".join(problems)
    assert "Security" in text  # no bearer token
    assert len(check.problems) == len(problems)
    problems = check.request(method="PUT", path="/api.xro/2.0/Invoices", query="summarizeErrors=maybe", headers=headers,
                             body=json.dumps(bad).encode())
    text = "\n".join(problems)
    assert "summarizeErrors" in text and "'SALE' is not one of" in text and "Total: Tried to write read-only" in text
    assert "'nope' is not a 'uuid'" in text
    assert "HasAttachments" not in text  # a tolerated flag, even set
    answer = check.response(method="GET", path="/api.xro/2.0/Invoices", query="", headers=headers, body=b"", status=200,
                            response_headers={"Content-Type": "application/json"}, data=b'{"Invoices": [{"Status": "SENT"}]}')
    assert answer and "'SENT' is not one of" in answer[0]
    assert spec_operation_ids("PUT", "/api.xro/2.0/Invoices") == "createInvoices"


def test_every_request_and_answer_of_a_session_is_checked(fake_xero):
    sdk = Sdk(fake_xero)
    sdk.api.get_tax_rates(sdk.tenant)
    sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[invoice(sdk.contact(), "INV-1")]), summarize_errors=False)
    assert fake_xero.spec.checked == 6 and fake_xero.spec.problems == []  # 3 requests, 3 answers


# --- OAuth ------------------------------------------------------------------------------------------


def test_oauth_consent_code_token_connections_refresh_and_revoke(fake_xero):
    authorize = (f"{fake_xero.authorize_url}?response_type=code&client_id={fake_xero.client_id}"
                 "&redirect_uri=http://alpha.localhost/cb&scope=offline_access%20accounting.transactions&state=s1")
    answer = requests.get(authorize, allow_redirects=False, timeout=10)
    assert answer.status_code == 302
    callback = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert callback["state"] == ["s1"]
    token = requests.post(fake_xero.token_url, data={"grant_type": "authorization_code", "code": callback["code"][0],
                                                     "redirect_uri": "http://alpha.localhost/cb"},
                          auth=(fake_xero.client_id, fake_xero.client_secret), timeout=10)
    assert token.status_code == 200
    body = token.json()
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer" and "id_token" not in body
    replay = requests.post(fake_xero.token_url, data={"grant_type": "authorization_code", "code": callback["code"][0],
                                                      "redirect_uri": "http://alpha.localhost/cb"},
                           auth=(fake_xero.client_id, fake_xero.client_secret), timeout=10)
    assert replay.status_code == 400 and replay.json() == {"error": "invalid_grant"}  # a code works once

    sdk = Sdk(fake_xero)
    sdk.token.update(access_token=body["access_token"], refresh_token=body["refresh_token"])
    connections = identity_api(sdk.client, sdk.endpoints).get_connections()
    assert [(c.tenant_id, c.tenant_name) for c in connections] == [(fake_xero.org.tenant_id, "Alpha Managed IT (Xero)")]

    first_refresh = sdk.token["refresh_token"]
    sdk.client.refresh_oauth2_token()  # through XeroToken.call_refresh_token_api → the fake's token URL
    assert sdk.saved and sdk.token["refresh_token"] != first_refresh  # rotated, and handed to the saver
    fake_xero.advance(3600)  # past the grace period of the used refresh token
    sdk.token["refresh_token"] = first_refresh
    with pytest.raises(TokenRefreshFailed) as dead:
        sdk.client.refresh_oauth2_token()
    assert (dead.value.status, dead.value.error) == (400, "invalid_grant")

    sdk.token["refresh_token"] = sdk.saved[-1]["refresh_token"]
    sdk.client.refresh_oauth2_token()
    sdk.client.revoke_oauth2_token()
    with pytest.raises(HTTPStatusException) as revoked:
        identity_api(sdk.client, sdk.endpoints).get_connections()
    assert revoked.value.status == 401


def test_an_expired_access_token_answers_401(fake_xero):
    sdk = Sdk(fake_xero)
    fake_xero.expire_access_tokens()  # the client still believes it valid
    with pytest.raises(HTTPStatusException) as expired:
        sdk.api.get_tax_rates(sdk.tenant)
    assert expired.value.status == 401 and b"TokenExpired" in expired.value.body
    sdk.client.refresh_oauth2_token()
    assert len(sdk.api.get_tax_rates(sdk.tenant).tax_rates) >= 5


# --- documents ---------------------------------------------------------------------------------------


def test_summarize_errors_false_answers_each_invoice_and_saves_the_good_ones(fake_xero):
    sdk = Sdk(fake_xero)
    contact = sdk.contact()
    batch = xm.Invoices(invoices=[invoice(contact, "INV-1"), invoice(contact, "INV-1"), invoice(contact, "INV-2", account="999"),
                                  invoice(contact, "INV-3", item_code="NOPE"), invoice(contact, "INV-4", tax_type="INPUT2")])
    answer = sdk.api.create_invoices(sdk.tenant, batch, summarize_errors=False, unitdp=4)
    outcome = [(i.invoice_number, i.status_attribute_string, [e.message for e in i.validation_errors or []])
               for i in answer.invoices]
    assert outcome == [
        ("INV-1", "OK", []),
        ("INV-1", "ERROR", ["Invoice # must be unique."]),
        ("INV-2", "ERROR", ["Account code '999' is not a valid code for this document."]),
        ("INV-3", "ERROR", ["Item code 'NOPE' is not valid."]),
        ("INV-4", "ERROR", ["The TaxType code 'INPUT2' does not exist or cannot be used for this type of transaction."]),
    ]
    assert answer.invoices[0].total == D("120") and answer.invoices[0].date == dt.date(2026, 3, 10)
    assert [i["InvoiceNumber"] for i in fake_xero.invoices()] == ["INV-1"]
    assert "summarizeErrors=False" in fake_xero.calls_to("PUT", "/Invoices")[0].query  # capital F, as the SDK sends it


def test_summarize_errors_true_refuses_the_whole_request_with_400(fake_xero):
    sdk = Sdk(fake_xero)
    contact = sdk.contact()
    with pytest.raises(AccountingBadRequestException) as refused:
        sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[invoice(contact, "A-1"), invoice(contact, "A-2", account="999")]))
    error = refused.value.error_data
    assert error["Type"] == "ValidationException" and error["ErrorNumber"] == 10
    assert refused.value.reason == "Account code '999' is not a valid code for this document."
    assert fake_xero.invoices() == []


def test_a_repeated_idempotency_key_answers_the_first_result(fake_xero):
    sdk = Sdk(fake_xero)
    contact = sdk.contact()
    first = sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[invoice(contact, "INV-9")]), summarize_errors=False,
                                    idempotency_key="inv-alpha-9-v1")
    again = sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[invoice(contact, "INV-9")]), summarize_errors=False,
                                    idempotency_key="inv-alpha-9-v1")
    assert again.invoices[0].invoice_id == first.invoices[0].invoice_id
    assert again.invoices[0].status_attribute_string == "OK"  # not "Invoice # must be unique."
    assert len(fake_xero.invoices()) == 1 and fake_xero.calls_to("PUT", "/Invoices")[1].replayed
    other = sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[invoice(contact, "INV-9")]), summarize_errors=False,
                                    idempotency_key="inv-alpha-9-v2")
    assert other.invoices[0].has_errors  # a new key is a new request


def test_reading_invoices_by_ids_numbers_status_page_and_modification(fake_xero):
    sdk = Sdk(fake_xero)
    contact = sdk.contact()
    created = sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[invoice(contact, f"R-{n}") for n in range(1, 6)]),
                                      summarize_errors=False).invoices
    ids = [i.invoice_id for i in created]
    assert [i.invoice_number for i in sdk.api.get_invoices(sdk.tenant, i_ds=ids[1:3]).invoices] == ["R-2", "R-3"]
    assert [i.invoice_number for i in sdk.api.get_invoices(sdk.tenant, invoice_numbers=["R-5"]).invoices] == ["R-5"]
    page = sdk.api.get_invoices(sdk.tenant, page=2, page_size=2)
    assert [i.invoice_number for i in page.invoices] == ["R-3", "R-4"] and page.pagination.item_count == 5
    assert len(sdk.api.get_invoices(sdk.tenant, statuses=["AUTHORISED"]).invoices) == 5
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    fake_xero.advance(120)
    sdk.api.create_payments(sdk.tenant, xm.Payments(payments=[xm.Payment(invoice=xm.Invoice(invoice_id=ids[0]), account=xm.Account(code="090"),
                                                                         amount=D("120"), date=dt.date(2026, 3, 12))]))
    changed = sdk.api.get_invoices(sdk.tenant, if_modified_since=later)
    assert [(i.invoice_number, i.status, i.amount_due) for i in changed.invoices] == [("R-1", "PAID", D("0"))]
    assert [p.amount for p in sdk.api.get_payments(sdk.tenant, if_modified_since=later).payments] == [D("120")]


def test_credit_notes_are_created_and_allocated_to_an_invoice(fake_xero):
    sdk = Sdk(fake_xero)
    contact = sdk.contact()
    inv = sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[invoice(contact, "C-1")]), summarize_errors=False).invoices[0]
    credit = xm.CreditNote(type="ACCRECCREDIT", contact=xm.Contact(contact_id=contact), credit_note_number="CN-1",
                           date=dt.date(2026, 3, 11), status="AUTHORISED", currency_code=xm.CurrencyCode.EUR,
                           line_items=[xm.LineItem(description="Goodwill", quantity=D("1"), unit_amount=D("50"),
                                                   account_code="200", tax_type="OUTPUT2")])
    note = sdk.api.create_credit_notes(sdk.tenant, xm.CreditNotes(credit_notes=[credit]), summarize_errors=False).credit_notes[0]
    assert note.total == D("60")
    allocation = xm.Allocations(allocations=[xm.Allocation(invoice=xm.Invoice(invoice_id=inv.invoice_id), amount=D("60"),
                                                           date=dt.date(2026, 3, 11))])
    sdk.api.create_credit_note_allocation(sdk.tenant, note.credit_note_id, allocation, summarize_errors=False)
    after = sdk.api.get_invoices(sdk.tenant, i_ds=[inv.invoice_id]).invoices[0]
    assert (after.amount_credited, after.amount_due) == (D("60"), D("60"))


# --- limits and failures -------------------------------------------------------------------------------


def test_429_carries_retry_after_and_the_problem_and_the_sdk_does_not_sleep(fake_xero):
    fake_xero.limits = Limits(per_minute=2)
    sdk = Sdk(fake_xero)
    sdk.api.get_tax_rates(sdk.tenant)
    sdk.api.get_tax_rates(sdk.tenant)
    started = time.monotonic()
    with pytest.raises(RateLimitException) as limited:
        sdk.api.create_invoices(sdk.tenant, xm.Invoices(invoices=[]), summarize_errors=False)  # PUT: urllib3 would retry it
    assert time.monotonic() - started < 1  # answered at once, not after Retry-After
    assert limited.value.headers["X-Rate-Limit-Problem"] == "minute" == limited.value.rate_limit
    assert 55 <= int(limited.value.headers["Retry-After"]) <= 60
    fake_xero.advance(61)
    assert sdk.api.get_tax_rates(sdk.tenant).tax_rates


def test_the_sdk_as_shipped_would_sleep_through_retry_after():
    """Why retries are switched off: with urllib3's defaults a 429 on GET/PUT blocks for Retry-After."""
    with running_fake_xero(limits=Limits(per_minute=1, minute_seconds=1.5)) as fake:
        sdk = Sdk(fake, sdk_retries=True)
        sdk.api.get_tax_rates(sdk.tenant)
        started = time.monotonic()
        sdk.api.get_tax_rates(sdk.tenant)  # 429, slept on, then answered
        assert time.monotonic() - started >= 1
        assert [c.status for c in fake.calls_to("GET", "/TaxRates")] == [200, 429, 200]
        assert fake.spec.problems == []


def test_the_daily_and_concurrent_limits(fake_xero):
    fake_xero.limits = Limits(per_day=3, per_minute=60, concurrent=2)
    sdk = Sdk(fake_xero)
    for _ in range(3):
        sdk.api.get_tax_rates(sdk.tenant)
    with pytest.raises(RateLimitException) as daily:
        sdk.api.get_tax_rates(sdk.tenant)
    assert daily.value.headers["X-Rate-Limit-Problem"] == "day"
    assert 86000 < int(daily.value.headers["Retry-After"]) <= 86400
    fake_xero.advance(86401)
    sdk.client.refresh_oauth2_token()  # a day later the access token has long expired
    answer = sdk.api.get_tax_rates(sdk.tenant)
    assert answer.tax_rates and sdk.client.last_response.getheader("X-DayLimit-Remaining") == "2"

    fake_xero.handler_delay = 0.5
    outcomes: list[str] = []

    def call():
        client = Sdk(fake_xero)
        try:
            client.api.get_organisations(client.tenant)
            outcomes.append("ok")
        except RateLimitException as error:
            outcomes.append(error.headers["X-Rate-Limit-Problem"])

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["concurrent", "ok", "ok"]


def test_500_on_demand_and_then_normal_service(fake_xero):
    sdk = Sdk(fake_xero)
    fake_xero.fail("GET", "/TaxRates", status=500, times=1)
    with pytest.raises(HTTPStatusException) as failed:
        sdk.api.get_tax_rates(sdk.tenant)
    assert failed.value.status == 500
    assert sdk.api.get_tax_rates(sdk.tenant).tax_rates
    assert fake_xero.spec.undescribed == {500: 1}


def test_a_token_without_the_organisation_is_forbidden(fake_xero):
    other = fake_xero.add_organisation("Someone else's books")
    sdk = Sdk(fake_xero)
    with pytest.raises(HTTPStatusException) as forbidden:
        sdk.api.get_tax_rates(other.tenant_id)
    assert forbidden.value.status == 403


def test_plain_http_errors_are_json():
    with running_fake_xero() as fake:
        request = urllib.request.Request(fake.api_url + "/Invoices", headers={"Authorization": "Bearer nope"})
        with pytest.raises(urllib.error.HTTPError) as unauthorized:
            urllib.request.urlopen(request, timeout=10)
        assert unauthorized.value.code == 401
        assert json.loads(unauthorized.value.read())["Title"] == "Unauthorized"
