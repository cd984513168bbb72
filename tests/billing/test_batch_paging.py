"""Create New Batch with many contracts: the list in pages, the search, "Select all that
match" — and what the page previews is what Run bills, across every page."""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context
from djmoney.money import Money

from billing import services
from billing.models import BillingBatch
from billing.wizard import PAGE_SIZE
from contracts.models import Contract, Customer
from invoices.models import Invoice
from tests.billing.wizard_pages import PAGE, batch_form, post_form

pytestmark = pytest.mark.django_db
CUTOFF = dt.date(2026, 3, 31)


def retainers(prefix: str, count: int, *, fee: str = "100") -> list[Contract]:
    """``count`` customers, each with a retainer whose March fee is due by the cut-off."""
    customers = Customer.objects.bulk_create([Customer(legal_name=f"{prefix} {i:03d} Ltd", currency="EUR") for i in range(count)])
    return list(Contract.objects.bulk_create([
        Contract(customer=customer, name=f"{prefix} Care {i:03d}", type=Contract.Type.RETAINER, fee=Money(Decimal(fee), "EUR"),
                 currency="EUR", start_date=dt.date(2026, 3, 1), taxable=False)
        for i, customer in enumerate(customers)]))


@pytest.fixture
def wind(tenant):
    """60 Northwind contracts (more than a page) and 5 Southwind ones."""
    return {"north": retainers("Northwind", PAGE_SIZE + 10), "south": retainers("Southwind", 5)}


def rows(html: str) -> list[int]:
    """The contracts listed with a checkbox, in order."""
    return [int(pk) for pk in re.findall(r'name="shown_contract" value="(\d+)"', html)]


def figure(html: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">(?:<strong>)?([^<]*)<', html).group(1)


def billed_contracts(name: str) -> set[int]:
    invoices = services.batch_invoices(BillingBatch.objects.get(name=name))
    return set(invoices.values_list("lines__contract_id", flat=True))


def test_the_list_comes_in_pages_and_any_page_number_gives_a_page(client_for, wind):
    client = client_for("alpha", "billing_admin")
    first = client.get(PAGE, {"cutoff": CUTOFF.isoformat()}).content.decode()
    assert len(rows(first)) == PAGE_SIZE and figure(first, "matching") == "65"
    assert "Page 1 of 2" in first and "Select all 65 that match" in first
    second = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "page": "2"}).content.decode()
    assert len(rows(second)) == 15 and not set(rows(first)) & set(rows(second))
    # Every contract is on exactly one page, in customer order.
    everything = wind["north"] + wind["south"]
    assert rows(first) + rows(second) == [c.pk for c in sorted(everything, key=lambda c: c.customer.legal_name)]
    for bad, expected in (("abc", rows(first)), ("999999", rows(second)), ("-1", rows(second)), ("", rows(first))):
        page = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "page": bad})
        assert page.status_code == 200 and rows(page.content.decode()) == expected, bad


def test_search_finds_contracts_by_customer_or_contract_name(client_for, wind):
    client = client_for("alpha", "billing_admin")
    south = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "q": "southWIND"}).content.decode()
    assert sorted(rows(south)) == sorted(c.pk for c in wind["south"]) and figure(south, "matching") == "5"
    assert '<input type="hidden" name="q" value="southWIND">' in south  # the search travels with the batch form
    one = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "q": "Northwind Care 007"}).content.decode()
    assert rows(one) == [wind["north"][7].pk]
    nothing = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "q": "Eastwind"})
    assert nothing.status_code == 200 and "No active contracts match" in nothing.content.decode()


def test_unticking_on_one_page_holds_on_the_next_and_run_bills_what_the_details_count(client_for, wind):
    client = client_for("alpha", "billing_admin")
    north = wind["north"]
    html = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "q": "Northwind"}).content.decode()
    left_out = rows(html)[0]
    fields = [(k, v) for k, v in batch_form(html) if (k, v) != ("contract", str(left_out))]
    # Next page (htmx swaps the list alone): the untick travels as a hidden field.
    listing = post_form(client, PAGE, [*fields, ("page", "2")], HX_Request="true")
    assert listing.status_code == 200 and listing["HX-Trigger-After-Settle"] == "batch-selection-changed"
    assert f'name="contract_off" value="{left_out}"' in listing.content.decode()
    assert len(rows(listing.content.decode())) == 10
    # Without scripts the same button draws the whole page; its form, sent as it stands, is the choice.
    page2 = post_form(client, PAGE, [*fields, ("page", "2")]).content.decode()
    fields = batch_form(page2) + [("name", "North but one")]
    details = post_form(client, "/billing/batches/preview/", fields).content.decode()
    assert figure(details, "contracts") == "59" and figure(details, "bills") == "59"
    assert figure(details, "total-EUR") == "5,900.00"
    assert post_form(client, PAGE, fields).status_code == 302
    assert billed_contracts("North but one") == {c.pk for c in north} - {left_out}
    assert sum(i.total for i in Invoice.objects.all()) == Decimal("5900.00")


def test_select_all_that_match_bills_every_matching_contract_and_nothing_else(client_for, wind):
    client = client_for("alpha", "billing_admin")
    html = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "q": "Northwind"}).content.decode()
    fields = [(k, v) for k, v in batch_form(html) if k != "contract"]  # every row of the first page unticked
    unticked = post_form(client, PAGE, [*fields, ("page", "2")]).content.decode()
    assert set(map(int, re.findall(r'name="contract_off" value="(\d+)"', unticked))) == set(rows(html))
    everything = post_form(client, PAGE, [*batch_form(unticked), ("select", "all")]).content.decode()
    assert "contract_off" not in everything and 'name="scope" value="all"' in everything
    assert len(rows(everything)) == PAGE_SIZE  # back on the first page, every row ticked
    fields = batch_form(everything) + [("name", "All of North")]
    details = post_form(client, "/billing/batches/preview/", fields).content.decode()
    assert figure(details, "contracts") == "60" and figure(details, "total-EUR") == "6,000.00"
    assert post_form(client, PAGE, fields).status_code == 302
    assert billed_contracts("All of North") == {c.pk for c in wind["north"]}  # no Southwind contract
    # "Select none" then Run: nothing is billed.
    none = post_form(client, PAGE, [*batch_form(everything), ("select", "none")]).content.decode()
    refused = post_form(client, PAGE, batch_form(none) + [("name", "Nothing")])
    assert refused.status_code == 400 and not BillingBatch.objects.filter(name="Nothing").exists()


def test_the_page_reads_the_same_number_of_queries_for_ten_or_seventy_contracts(client_for, tenant):
    client = client_for("alpha", "billing_admin")

    def queries() -> tuple[int, int]:
        client.get(PAGE, {"cutoff": CUTOFF.isoformat()})  # stores the periods missing by the cut-off
        with CaptureQueriesContext(connection) as page:
            html = client.get(PAGE, {"cutoff": CUTOFF.isoformat()}).content.decode()
        with CaptureQueriesContext(connection) as turned:
            post_form(client, PAGE, [*batch_form(html), ("page", "2")], HX_Request="true")
        return len(page.captured_queries), len(turned.captured_queries)

    retainers("Small", 10)
    small = queries()
    retainers("Large", PAGE_SIZE + 10)
    assert queries() == small


def test_tampered_foreign_or_outdated_choices_bill_nothing(client_for, wind):
    client = client_for("alpha", "billing_admin")
    html = client.get(PAGE, {"cutoff": CUTOFF.isoformat(), "q": "Northwind"}).content.decode()
    fields = batch_form(html) + [("name", "Tampered")]
    with schema_context("beta"):  # an id that is another MSP's contract and none of this one's
        theirs = Contract.objects.create(pk=max(c.pk for c in wind["north"] + wind["south"]) + 1000, type="hourly",
                                         customer=Customer.objects.create(legal_name="Beta customer", currency="EUR"),
                                         name="Theirs", currency="EUR", start_date=dt.date(2026, 1, 1))
    connection.set_schema_to_public()
    for extra in ([("contract", "1; DROP")], [("contract_off", "x")], [("scope", "some")], [("match_token", "<script>")],
                  [("contract", str(theirs.pk))], [("contract_on", str(theirs.pk))],
                  [("contract", str(wind["south"][0].pk))]):  # a contract the search hides
        for path in (PAGE, "/billing/batches/preview/"):
            answer = post_form(client, path, [*fields, *extra])
            assert answer.status_code == 400, (extra, path)
    assert "cannot be read" in post_form(client, PAGE, [*fields, ("contract_off", "x")]).content.decode()
    assert "does not list" in post_form(client, PAGE, [*fields, ("contract", str(theirs.pk))]).content.decode()
    # A contract renamed out of the search since the page was drawn: the choice would mean something else.
    Customer.objects.filter(pk=wind["north"][3].customer_id).update(legal_name="Renamed Ltd")
    Contract.objects.filter(pk=wind["north"][3].pk).update(name="Renamed")
    stale = post_form(client, PAGE, fields)
    assert stale.status_code == 409 and "the contracts that match changed" in stale.content.decode()
    assert post_form(client, "/billing/batches/preview/", fields).status_code == 409
    assert not BillingBatch.objects.exists() and not Invoice.objects.exists()


def test_the_form_submitted_as_it_stands_bills_everything_due_on_every_page(client_for, wind):
    client = client_for("alpha", "billing_admin")
    html = client.get(PAGE, {"cutoff": CUTOFF.isoformat()}).content.decode()
    due = services.selection_everything_due(cutoff=CUTOFF).contract_ids
    assert len(rows(html)) < len(due) == 65  # more is due than the page lists
    assert post_form(client, PAGE, batch_form(html) + [("name", "As it stands")]).status_code == 302
    assert billed_contracts("As it stands") == due
