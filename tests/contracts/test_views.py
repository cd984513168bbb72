"""The customer, catalogue and contract pages: list, create, detail, edit, and every refusal."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django_tenants.utils import schema_context
from djmoney.money import Money

from contracts.models import (
    BlockPurchase,
    Contract,
    ContractRateLine,
    Customer,
    DeviceClass,
    DeviceCount,
    ExclusionSet,
    Milestone,
    Product,
    RateItem,
    RecurringServiceLine,
    Role,
    TaxRate,
    UsageRecord,
    WorkType,
)

START = dt.date(2026, 1, 1)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


@pytest.fixture
def admin(client_for):
    return client_for("alpha", "billing_admin")


@pytest.fixture
def data(tenant):
    """A small catalogue and one customer with an Hourly contract, in schema alpha."""
    work_type = WorkType.objects.create(name="Remote Support")
    onsite = WorkType.objects.create(name="Onsite Support")
    role = Role.objects.create(name="Engineer", default_rate=eur("120"), cost_rate=eur("55"))
    rate_item = RateItem.objects.create(name="Network Engineering", rate=eur("140"))
    product = Product.objects.create(sku="M365-BP", name="Microsoft 365 Business Premium", price=eur("22"),
                                     cost=eur("18"))
    tax_rate = TaxRate.objects.create(code="VAT", name="VAT", percent=Decimal("19"), effective_from=START)
    exclusion_set = ExclusionSet.objects.create(name="Gold")
    exclusion_set.work_types.add(onsite)
    customer = Customer.objects.create(legal_name="Acme GmbH", currency="EUR")
    contract = Contract.objects.create(customer=customer, name="Acme hourly", type=Contract.Type.HOURLY,
                                       currency="EUR", start_date=START)
    return {
        "work_type": work_type, "onsite": onsite, "role": role, "rate_item": rate_item, "product": product,
        "tax_rate": tax_rate, "exclusion_set": exclusion_set, "customer": customer, "contract": contract,
    }


def make_contract(customer, type, **extra):
    extra.setdefault("name", f"{type} contract")
    return Contract.objects.create(customer=customer, type=type, currency="EUR", start_date=START, **extra)


def errors_of(response) -> str:
    return response.content.decode()


# --- pages of every kind: one table drives list, create, detail and edit -----------------------

# (list URL name, detail/edit URL prefix, key in `data`, model, valid create POST, field to break, its message)
CATALOGUE = [
    ("customer", "customer", Customer,
     {"legal_name": "Beta Ltd", "currency": "EUR", "payment_terms_days": "14", "is_active": "on"},
     {"legal_name": "acme gmbh"}, "already exists"),
    ("work_type", "work_type", WorkType,
     {"name": "Emergency Callout", "after_hours_multiplier": "2", "billable": "on", "is_active": "on"},
     {"after_hours_multiplier": "0.5"}, "greater than or equal to 1"),
    ("role", "role", Role,
     {"name": "Architect", "default_rate": "180", "cost_rate": "80", "currency": "EUR"},
     {"default_rate": "12.34567"}, "no more than 4 decimal places"),
    ("rate_item", "rate_item", RateItem,
     {"name": "Security Audit", "rate": "160.5", "currency": "EUR"},
     {"name": "network engineering"}, "already exists"),
    ("product", "product", Product,
     {"sku": "FW-100", "name": "Firewall", "price": "499", "cost": "350", "currency": "EUR", "taxable": "on",
      "is_active": "on"},
     {"sku": "m365-bp"}, "already exists"),
    ("exclusion_set", "exclusion_set", ExclusionSet,
     {"name": "Silver"}, {"name": "gold"}, "already exists"),
]


@pytest.mark.parametrize("name,key,model,valid,broken,message", CATALOGUE, ids=[row[0] for row in CATALOGUE])
def test_list_create_detail_and_edit(admin, data, name, key, model, valid, broken, message):
    # list, with search and a page number
    response = admin.get(reverse(f"contracts:{name}_list"), {"q": "zzz-nothing", "page": "2"})
    assert response.status_code == 200
    assert admin.get(reverse(f"contracts:{name}_list"), {"page": "abc"}).status_code == 200

    # create: the form, a refusal that saves nothing, then success
    assert admin.get(reverse(f"contracts:{name}_create")).status_code == 200
    before = model.objects.count()
    response = admin.post(reverse(f"contracts:{name}_create"), {**valid, **broken})
    assert response.status_code == 400
    assert message in errors_of(response)
    assert model.objects.count() == before
    response = admin.post(reverse(f"contracts:{name}_create"), valid)
    assert response.status_code == 302, errors_of(response)
    created = model.objects.order_by("-pk").first()
    assert response["Location"] == reverse(f"contracts:{name}_detail", args=[created.pk])
    assert model.objects.count() == before + 1

    # detail and edit of the existing object
    existing = data[key]
    assert admin.get(reverse(f"contracts:{name}_detail", args=[existing.pk])).status_code == 200
    assert admin.get(reverse(f"contracts:{name}_edit", args=[existing.pk])).status_code == 200
    label_field = next(iter(valid))
    response = admin.post(reverse(f"contracts:{name}_edit", args=[existing.pk]), {**valid, label_field: "Renamed"})
    assert response.status_code == 302, errors_of(response)
    assert getattr(model.objects.get(pk=existing.pk), label_field) == "Renamed"
    # edit refused: the message is shown and nothing changes
    response = admin.post(reverse(f"contracts:{name}_edit", args=[created.pk]), {**valid, label_field: ""})
    assert response.status_code == 400
    assert "required" in errors_of(response)

    # the list finds it by search
    response = admin.get(reverse(f"contracts:{name}_list"), {"q": "Renamed"})
    assert response.status_code == 200
    assert list(response.context["listing"].objects) == [model.objects.get(pk=existing.pk)]


@pytest.mark.parametrize("name", ["customer", "work_type", "role", "rate_item", "product", "exclusion_set",
                                  "tax_rate"])
def test_nonexistent_and_other_tenants_ids_are_404(admin, tenant, name):
    model = {"customer": Customer, "work_type": WorkType, "role": Role, "rate_item": RateItem, "product": Product,
             "exclusion_set": ExclusionSet, "tax_rate": TaxRate}[name]
    with schema_context("beta"):
        # an id that exists only in beta's schema
        pk = 900_000
        if name == "customer":
            Customer.objects.create(pk=pk, legal_name="Beta only", currency="EUR")
        elif name == "tax_rate":
            TaxRate.objects.create(pk=pk, code="B", name="B", percent=Decimal("1"), effective_from=START)
        elif name in ("role", "rate_item", "product"):
            money = {"role": {"default_rate": eur("1"), "cost_rate": eur("1")}, "rate_item": {"rate": eur("1")},
                     "product": {"sku": "B", "price": eur("1"), "cost": eur("1")}}[name]
            model.objects.create(pk=pk, name="Beta only", **money)
        else:
            model.objects.create(pk=pk, name="Beta only")
    second = "new_version" if name == "tax_rate" else "edit"
    for pk in (900_000, 12_345_678, 10**30):
        assert admin.get(reverse(f"contracts:{name}_detail", args=[pk])).status_code == 404
        assert admin.get(reverse(f"contracts:{name}_{second}", args=[pk])).status_code == 404
        assert admin.post(reverse(f"contracts:{name}_{second}", args=[pk]), {"name": "x"}).status_code == 404


def test_catalogue_index_links_every_catalogue_list(admin, data):
    response = admin.get(reverse("contracts:catalogue"))
    assert response.status_code == 200
    for name in ("work_type", "role", "rate_item", "product", "tax_rate", "exclusion_set"):
        assert reverse(f"contracts:{name}_list") in response.content.decode()
    assert reverse("contracts:catalogue") in admin.get(reverse("contracts:list")).content.decode()


# --- lists: search, filters, pagination -----------------------------------------------------


def test_lists_paginate_by_25_and_keep_the_query_string(admin, tenant):
    Customer.objects.bulk_create(Customer(legal_name=f"Paging Client {i:02}", currency="EUR") for i in range(30))
    response = admin.get(reverse("contracts:customer_list"), {"q": "Paging Client", "active": "yes"})
    listing = response.context["listing"]
    assert len(listing.objects) == 25 and listing.page.paginator.count == 30
    assert listing.next_url == "?q=Paging+Client&active=yes&page=2"
    response = admin.get(reverse("contracts:customer_list") + listing.next_url)
    assert [c.legal_name for c in response.context["listing"].objects] == [f"Paging Client {i}" for i in range(25, 30)]
    assert "page=1" in response.context["listing"].previous_url
    # out of range: the last page, not an error
    response = admin.get(reverse("contracts:customer_list"), {"q": "Paging", "page": "99"})
    assert response.status_code == 200 and len(response.context["listing"].objects) == 5


def test_contract_list_filters_by_type_status_and_customer(admin, data):
    other = Customer.objects.create(legal_name="Other AG", currency="EUR")
    retainer = make_contract(other, Contract.Type.RETAINER, fee=eur("430"), name="Gold retainer")
    url = reverse("contracts:list")
    make_contract(other, Contract.Type.HOURLY, name="Other hourly", status="cancelled")
    found = lambda **params: list(admin.get(url, params).context["listing"].objects)  # noqa: E731
    assert found(type="retainer", customer=other.pk) == [retainer]
    assert found(customer=data["customer"].pk) == [data["contract"]]
    assert found(q="gold other") == [retainer]
    assert [c.name for c in found(status="cancelled", customer=other.pk)] == ["Other hourly"]


@pytest.mark.parametrize("params", [{"type": "nonsense"}, {"customer": "999999"}, {"customer": "abc"},
                                    {"customer": "99999999999999999999999"},
                                    {"status": "x" * 500}, {"q": "x" * 500}])
def test_a_bad_filter_is_a_400_with_a_message(admin, data, params):
    response = admin.get(reverse("contracts:list"), params)
    assert response.status_code == 400
    body = errors_of(response)
    assert "Select a valid choice" in body or "at most 100 characters" in body


# --- tax rates: a change is a new version ---------------------------------------------------


def test_tax_rate_pages_and_versions(admin, data):
    tax_rate = data["tax_rate"]
    assert admin.get(reverse("contracts:tax_rate_list"), {"q": "VAT", "compound": "no"}).status_code == 200
    assert admin.get(reverse("contracts:tax_rate_create")).status_code == 200
    response = admin.post(reverse("contracts:tax_rate_create"),
                          {"code": "GST", "name": "GST", "percent": "10", "effective_from": "2026-01-01"})
    assert response.status_code == 302
    response = admin.post(reverse("contracts:tax_rate_create"),
                          {"code": "vat", "name": "VAT", "percent": "10", "effective_from": "2026-01-01"})
    assert response.status_code == 400 and "add a new version" in errors_of(response)

    assert admin.get(reverse("contracts:tax_rate_detail", args=[tax_rate.pk])).status_code == 200
    url = reverse("contracts:tax_rate_new_version", args=[tax_rate.pk])
    assert admin.get(url).context["form"].initial["percent"] == Decimal("19")
    response = admin.post(url, {"name": "VAT", "percent": "21", "effective_from": "2025-06-01"})
    assert response.status_code == 400 and "after the latest one" in errors_of(response)
    response = admin.post(url, {"name": "VAT", "percent": "21", "effective_from": "2027-01-01"})
    assert response.status_code == 302
    tax_rate.refresh_from_db()
    assert tax_rate.percent == Decimal("19")  # the old version is untouched
    assert TaxRate.objects.filter(code="VAT").count() == 2


# --- exclusion sets -------------------------------------------------------------------------


def test_exclusion_set_members_are_picked_and_tampered_ids_refused(admin, data):
    url = reverse("contracts:exclusion_set_edit", args=[data["exclusion_set"].pk])
    response = admin.post(url, {"name": "Gold", "work_types": [data["onsite"].pk, data["work_type"].pk],
                                "roles": [data["role"].pk]})
    assert response.status_code == 302
    assert set(data["exclusion_set"].work_types.all()) == {data["onsite"], data["work_type"]}
    for tampered in (["999999"], ["99999999999999999999999"], ["abc"], ["1.5"]):
        response = admin.post(url, {"name": "Gold", "work_types": tampered})
        assert response.status_code == 400, tampered
        assert "Select a valid choice" in errors_of(response) or "not a valid value" in errors_of(response)
    assert data["exclusion_set"].work_types.count() == 2
    response = admin.get(reverse("contracts:exclusion_set_list"), {"work_type": data["onsite"].pk})
    assert list(response.context["listing"].objects) == [data["exclusion_set"]]


# --- customers ------------------------------------------------------------------------------


def test_customer_with_parent_and_sites(admin, data):
    parent = data["customer"]
    response = admin.post(reverse("contracts:customer_create"),
                          {"legal_name": "Acme Site Munich", "currency": "EUR", "parent": parent.pk,
                           "payment_terms_days": "30", "is_active": "on"})
    assert response.status_code == 302
    site = Customer.objects.get(legal_name="Acme Site Munich")
    assert site.parent == parent
    page = admin.get(reverse("contracts:customer_detail", args=[parent.pk])).content.decode()
    assert "Acme Site Munich" in page and "Acme hourly" in page
    response = admin.post(reverse("contracts:customer_create"),
                          {"legal_name": "Dollar site", "currency": "USD", "parent": parent.pk,
                           "payment_terms_days": "30"})
    assert response.status_code == 400 and "bills in its parent" in errors_of(response)
    # a site cannot be picked as a parent: it is not offered, so the id is refused
    response = admin.post(reverse("contracts:customer_create"),
                          {"legal_name": "Sub-site", "currency": "EUR", "parent": site.pk, "payment_terms_days": "30"})
    assert response.status_code == 400 and "Select a valid choice" in errors_of(response)
    assert admin.get(reverse("contracts:customer_list"), {"parent": parent.pk}).context["listing"].page.paginator.count == 1


def test_customer_edit_sets_the_default_hourly_contract(admin, data):
    customer, hourly = data["customer"], data["contract"]
    form = {"legal_name": "Acme GmbH", "currency": "EUR", "payment_terms_days": "30", "is_active": "on"}
    url = reverse("contracts:customer_edit", args=[customer.pk])
    assert admin.post(url, {**form, "default_hourly_contract": hourly.pk}).status_code == 302
    assert Customer.objects.get(pk=customer.pk).default_hourly_contract == hourly
    other = make_contract(Customer.objects.create(legal_name="Other", currency="EUR"), Contract.Type.HOURLY)
    response = admin.post(url, {**form, "default_hourly_contract": other.pk})
    assert response.status_code == 400
    response = admin.post(url, {**form, "currency": "USD"})
    assert response.status_code == 400 and "cannot change" in errors_of(response)


# --- contracts ------------------------------------------------------------------------------


def contract_post(customer, type, **extra):
    return {
        "customer": customer.pk, "name": f"New {type}", "type": type, "status": "active",
        "start_date": "2026-01-01", "billing_frequency": "monthly", "billing_timing": "advance", "anchor_day": "1",
        "taxable": "on", "priority": "10", "rounding_increment": "15", "rounding_direction": "up",
        "rounding_minimum": "0", "renewal_notice_days": "90", "renewal_term_months": "12",
        "alert_thresholds": "75,90,100", "rollover": "on", "included_quantity": "0", **extra,
    }


TYPE_TERMS = {
    "hourly": {},
    "block_hours": {"overage_rate": "135", "block_hours": "10", "block_price": "1250"},
    "block_money": {"block_amount": "2000", "block_price": "1900"},
    "retainer": {"fee": "430", "included_hours": "10"},
    "remote_monitoring": {},
    "project_hourly": {"budget_hours": "40", "budget_amount": "6000"},
    "project_one_time_fee": {"fee": "5000", "fee_trigger": "milestones"},
    "online_backup": {"unit_price": "0.15", "usage_unit": "GB", "included_quantity": "100"},
}
MISSING = {
    "block_hours": ("overage_rate", "needs an overage rate"),
    "retainer": ("fee", "needs the fee invoiced each period"),
    "project_hourly": ("budget_hours", "needs a budget"),
    "project_one_time_fee": ("fee", "needs the fixed project fee"),
    "online_backup": ("unit_price", "needs a unit price"),
}


@pytest.mark.parametrize("contract_type", list(TYPE_TERMS))
def test_create_a_contract_of_each_type(admin, data, contract_type):
    assert admin.get(reverse("contracts:create"), {"customer": data["customer"].pk}).status_code == 200
    response = admin.post(reverse("contracts:create"),
                          contract_post(data["customer"], contract_type, **TYPE_TERMS[contract_type]))
    assert response.status_code == 302, errors_of(response)
    contract = Contract.objects.get(name=f"New {contract_type}")
    assert response["Location"] == reverse("contracts:detail", args=[contract.pk])
    assert contract.currency == "EUR"
    if contract_type == "retainer":
        assert (contract.fee, contract.included_minutes) == (eur("430"), 600)
    if contract_type == "project_hourly":
        assert (contract.budget_minutes, contract.budget_amount) == (2400, eur("6000"))
    assert admin.get(reverse("contracts:detail", args=[contract.pk])).status_code == 200
    assert admin.get(reverse("contracts:edit", args=[contract.pk])).status_code == 200


@pytest.mark.parametrize("contract_type", list(MISSING))
def test_each_type_refuses_a_contract_without_its_terms(admin, data, contract_type):
    field, message = MISSING[contract_type]
    # without the term (for a project budget: neither hours nor amount)
    terms = {k: v for k, v in TYPE_TERMS[contract_type].items() if k not in (field, "budget_amount")}
    response = admin.post(reverse("contracts:create"), contract_post(data["customer"], contract_type, **terms))
    assert response.status_code == 400
    assert message in errors_of(response)
    assert response.context["form"].errors[field]
    assert not Contract.objects.filter(name=f"New {contract_type}").exists()


@pytest.mark.parametrize("change,field,message", [
    ({"end_date": "2046-01-02"}, "end_date", "at most 20 years"),
    ({"end_date": "2025-12-31"}, "end_date", "before the start"),
    ({"currency": "USD"}, "currency", "customer&#x27;s currency"),
    ({"start_date": "not a date"}, "start_date", "Enter a valid date"),
    ({"start_date": "9999-12-31"}, "start_date", "Enter a date between"),
    ({"included_hours": "0.01"}, "included_hours", "whole minutes"),
    ({"fee": "1e400"}, "fee", "no more than 14 digits"),
    ({"fee": "NaN"}, "fee", "Enter a number"),
    ({"anchor_day": "32"}, "anchor_day", "less than or equal to 31"),
    ({"type": "bogus"}, "type", "Select a valid choice"),
    ({"exclusion_set": "999999"}, "exclusion_set", "Select a valid choice"),
    ({"type": "block_hours", "overage_rate": "135", "block_hours": "10", "block_price": "1250",
      "alert_thresholds": "75,abc"}, "alert_thresholds", "percentages from 1 to 100"),
])
def test_contract_form_refuses_bad_input(admin, data, change, field, message):
    post = contract_post(data["customer"], "retainer", **TYPE_TERMS["retainer"])
    response = admin.post(reverse("contracts:create"), {**post, **change})
    assert response.status_code == 400
    assert response.context["form"].errors[field]
    assert message in errors_of(response)
    assert not Contract.objects.filter(customer=data["customer"], name__startswith="New").exists()


def test_contract_for_another_tenants_customer_is_refused(admin, data):
    with schema_context("beta"):
        beta_customer = Customer.objects.create(pk=900_001, legal_name="Beta only", currency="EUR")
    response = admin.post(reverse("contracts:create"), contract_post(beta_customer, "hourly"))
    assert response.status_code == 400 and "Select a valid choice" in errors_of(response)


def test_contract_form_groups_fields_by_type(admin, data):
    page = admin.get(reverse("contracts:create")).content.decode()
    assert 'data-types="retainer project_one_time_fee"' in page  # the fee
    assert 'data-types="online_backup"' in page
    assert 'id="id_type"' in page


def test_edit_a_contract_keeps_customer_and_currency(admin, data):
    contract = make_contract(data["customer"], Contract.Type.RETAINER, fee=eur("430"), name="Gold")
    url = reverse("contracts:edit", args=[contract.pk])
    form = admin.get(url).context["form"]
    assert "customer" not in form.fields and form.initial["fee"] == Decimal("430.00")
    post = contract_post(data["customer"], "retainer", fee="450", name="Gold", priority="5",
                         exclusion_set=data["exclusion_set"].pk, effective_date="2026-02-01")
    response = admin.post(url, post)
    assert response.status_code == 302, errors_of(response)
    contract.refresh_from_db()
    assert (contract.fee, contract.priority, contract.exclusion_set) == (eur("450"), 5, data["exclusion_set"])
    response = admin.post(url, {**post, "fee": ""})
    assert response.status_code == 400 and "needs the fee" in errors_of(response)
    assert Contract.objects.get(pk=contract.pk).fee == eur("450")


def test_contract_pages_404_for_unknown_and_foreign_ids(admin, data):
    with schema_context("beta"):
        beta_customer = Customer.objects.create(pk=900_002, legal_name="Beta only", currency="EUR")
        make_contract(beta_customer, Contract.Type.HOURLY, pk=900_003)
    for pk in (900_003, 999_999, 10**30):
        assert admin.get(reverse("contracts:detail", args=[pk])).status_code == 404
        assert admin.get(reverse("contracts:edit", args=[pk])).status_code == 404
        assert admin.post(reverse("contracts:rate_line_add", args=[pk]), {}).status_code == 404


# --- contract terms -------------------------------------------------------------------------


def test_rate_lines(admin, data):
    contract = data["contract"]
    url = reverse("contracts:rate_line_add", args=[contract.pk])
    assert admin.get(url).status_code == 200
    post = {"work_type": data["work_type"].pk, "role": data["role"].pk, "rate": "150", "effective_from": "2026-01-01"}
    assert admin.post(url, post).status_code == 302
    response = admin.post(url, post)
    assert response.status_code == 400 and "already has a rate" in errors_of(response)
    response = admin.post(url, {**post, "role": "999999", "effective_from": "2026-02-01"})
    assert response.status_code == 400
    assert ContractRateLine.objects.filter(contract=contract).count() == 1
    assert "150.0000" in admin.get(reverse("contracts:detail", args=[contract.pk])).content.decode()


def test_service_lines_add_and_end(admin, data):
    contract = make_contract(data["customer"], Contract.Type.RETAINER, fee=eur("430"))
    url = reverse("contracts:service_line_add", args=[contract.pk])
    assert admin.get(url).status_code == 200
    response = admin.post(url, {"product": data["product"].pk, "quantity": "25", "effective_from": "2026-01-01"})
    assert response.status_code == 302
    line = RecurringServiceLine.objects.get(contract=contract)
    assert (line.description, line.unit_price) == ("Microsoft 365 Business Premium", eur("22"))
    response = admin.post(url, {"quantity": "0", "effective_from": "2025-01-01"})
    assert response.status_code == 400
    end_url = reverse("contracts:service_line_end", args=[contract.pk, line.pk])
    assert admin.get(end_url).status_code == 200
    assert admin.post(end_url, {"effective_to": "2025-01-01"}).status_code == 400
    assert admin.post(end_url, {"effective_to": "2026-06-30"}).status_code == 302
    assert RecurringServiceLine.objects.get(pk=line.pk).effective_to == dt.date(2026, 6, 30)
    # a line of another contract through this contract's URL: 404
    other = make_contract(data["customer"], Contract.Type.RETAINER, fee=eur("1"), name="Other")
    assert admin.post(reverse("contracts:service_line_end", args=[other.pk, line.pk]),
                      {"effective_to": "2026-06-30"}).status_code == 404


def test_remote_monitoring_device_classes_and_counts(admin, data):
    contract = make_contract(data["customer"], Contract.Type.REMOTE_MONITORING)
    url = reverse("contracts:device_class_add", args=[contract.pk])
    assert admin.get(url).status_code == 200
    assert admin.post(url, {"name": "Servers", "unit_price": "45"}).status_code == 302
    response = admin.post(url, {"name": "servers", "unit_price": "45"})
    assert response.status_code == 400 and "already has a device class" in errors_of(response)
    servers = DeviceClass.objects.get(contract=contract)

    count_url = reverse("contracts:device_count_record", args=[contract.pk])
    assert admin.get(count_url, {"device_class": servers.pk}).status_code == 200
    assert admin.post(count_url, {"device_class": servers.pk, "effective_date": "2026-01-01", "count": "10"}).status_code == 302
    assert admin.post(count_url, {"device_class": servers.pk, "effective_date": "2026-02-15", "count": "12"}).status_code == 302
    assert list(DeviceCount.objects.filter(device_class=servers).values_list("count", flat=True)) == [10, 12]
    response = admin.post(count_url, {"device_class": servers.pk, "effective_date": "2025-12-01", "count": "3"})
    assert response.status_code == 400 and "contract starts on" in errors_of(response)
    response = admin.post(count_url, {"device_class": servers.pk, "effective_date": "2026-03-01", "count": "-1"})
    assert response.status_code == 400
    # a device class of another contract is not offered
    other = make_contract(data["customer"], Contract.Type.REMOTE_MONITORING, name="Other RM")
    foreign = DeviceClass.objects.create(contract=other, name="Workstations", unit_price=eur("10"))
    response = admin.post(count_url, {"device_class": foreign.pk, "effective_date": "2026-03-01", "count": "1"})
    assert response.status_code == 400 and "Select a valid choice" in errors_of(response)
    assert DeviceCount.objects.filter(device_class__contract__in=[contract, other]).count() == 2
    page = admin.get(reverse("contracts:detail", args=[contract.pk])).content.decode()
    assert "Servers" in page and "12 from" in page
    # the page does not apply to other types
    assert admin.get(reverse("contracts:device_class_add", args=[data["contract"].pk])).status_code == 404


def test_online_backup_usage(admin, data):
    contract = make_contract(data["customer"], Contract.Type.ONLINE_BACKUP, unit_price=eur("0.15"), usage_unit="GB")
    url = reverse("contracts:usage_record", args=[contract.pk])
    assert admin.get(url).status_code == 200
    assert admin.post(url, {"measured_on": "2026-01-31", "quantity": "512.250"}).status_code == 302
    assert UsageRecord.objects.get(contract=contract).quantity == Decimal("512.250")
    response = admin.post(url, {"measured_on": "2026-01-31", "quantity": "abc"})
    assert response.status_code == 400 and "Enter a number" in errors_of(response)
    assert admin.get(reverse("contracts:usage_record", args=[data["contract"].pk])).status_code == 404


@pytest.mark.parametrize("contract_type,post,expected", [
    ("block_hours", {"hours": "10", "price": "1200"}, {"minutes": 600}),
    ("block_money", {"amount": "5000", "price": "4500"}, {"amount": eur("5000")}),
])
def test_block_purchases(admin, data, contract_type, post, expected):
    extra = {"overage_rate": eur("150")} if contract_type == "block_hours" else {}
    contract = make_contract(data["customer"], contract_type, **extra)
    url = reverse("contracts:block_purchase_add", args=[contract.pk])
    assert admin.get(url).status_code == 200
    assert admin.post(url, {"purchased_on": "2026-01-01", **post}).status_code == 302
    block = BlockPurchase.objects.get(contract=contract)
    assert all(getattr(block, key) == value for key, value in expected.items())
    response = admin.post(url, {"purchased_on": "2026-01-01", **post, "expires_on": "2025-12-31"})
    assert response.status_code == 400 and "expires after" in errors_of(response)
    response = admin.post(url, {"purchased_on": "2026-01-01", "price": "10"})
    assert response.status_code == 400 and "required" in errors_of(response)
    assert BlockPurchase.objects.filter(contract=contract).count() == 1
    assert admin.get(reverse("contracts:detail", args=[contract.pk])).status_code == 200


def test_project_milestones(admin, data):
    contract = make_contract(data["customer"], Contract.Type.PROJECT_ONE_TIME_FEE, fee=eur("5000"),
                             fee_trigger="milestones", billing_frequency="one_time")
    url = reverse("contracts:milestone_add", args=[contract.pk])
    assert admin.get(url).status_code == 200
    assert admin.post(url, {"name": "Design", "percent": "40", "due_date": "2026-03-01"}).status_code == 302
    response = admin.post(url, {"name": "Build", "percent": "70"})
    assert response.status_code == 400 and "60 % is left" in errors_of(response)
    milestone = Milestone.objects.get(contract=contract)
    complete_url = reverse("contracts:milestone_complete", args=[contract.pk, milestone.pk])
    assert admin.get(complete_url).status_code == 200
    assert admin.post(complete_url, {"completed_on": "2026-01-15"}).status_code == 302
    response = admin.post(complete_url, {"completed_on": "2026-01-16"})
    assert response.status_code == 400 and "was completed" in errors_of(response)
    assert admin.get(reverse("contracts:milestone_complete", args=[contract.pk, 999999])).status_code == 404


# --- who may do what ------------------------------------------------------------------------


def _every_page(data):
    contract, customer = data["contract"], data["customer"]
    pages = [reverse("contracts:list"), reverse("contracts:create"), reverse("contracts:detail", args=[contract.pk]),
             reverse("contracts:edit", args=[contract.pk]), reverse("contracts:rate_line_add", args=[contract.pk]),
             reverse("contracts:customer_list"), reverse("contracts:customer_create"),
             reverse("contracts:customer_detail", args=[customer.pk]),
             reverse("contracts:customer_edit", args=[customer.pk]), reverse("contracts:catalogue"),
             reverse("contracts:tax_rate_new_version", args=[data["tax_rate"].pk])]
    for name in ("work_type", "role", "rate_item", "product", "exclusion_set"):
        pages += [reverse(f"contracts:{name}_list"), reverse(f"contracts:{name}_create"),
                  reverse(f"contracts:{name}_edit", args=[data[name].pk])]
    return pages


def test_technicians_get_403_everywhere(client_for, data):
    technician = client_for("alpha", "technician")
    for url in _every_page(data):
        assert technician.get(url).status_code == 403, url
        assert technician.post(url, {"name": "x"}).status_code == 403, url


def test_accountants_read_but_cannot_change(client_for, data):
    accountant = client_for("alpha", "accountant")
    before = (Customer.objects.count(), WorkType.objects.count())
    for url in _every_page(data):
        response = accountant.get(url)
        assert response.status_code == 200, url
        assert accountant.post(url, {"name": "x", "legal_name": "x"}).status_code == 403, url
    page = accountant.get(reverse("contracts:detail", args=[data["contract"].pk])).content.decode()
    assert reverse("contracts:edit", args=[data["contract"].pk]) not in page
    assert (Customer.objects.count(), WorkType.objects.count()) == before


def test_anonymous_visitors_are_sent_to_sign_in(client_for, data):
    response = client_for("alpha").get(reverse("contracts:detail", args=[data["contract"].pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- in a real browser: the form shows only what matters for the chosen type --------------------


@pytest.fixture(scope="module")
def demo_customer(django_db_setup, django_db_blocker):
    """Committed in the demo MSP (module scope: outside the test's transaction), so the
    gunicorn server sees it; removed afterwards."""
    with django_db_blocker.unblock(), schema_context("demo"):
        customer = Customer.objects.create(legal_name="Browser Form Test Ltd", currency="USD")
    yield customer
    with django_db_blocker.unblock(), schema_context("demo"):
        Contract.objects.filter(customer=customer).delete()
        customer.delete()


@pytest.mark.browser
@pytest.mark.django_db
def test_contract_form_shows_the_terms_of_the_chosen_type(server, browser, demo_customer):
    import re

    from playwright.sync_api import expect

    from tests.support import sign_in

    page = browser.new_page()
    sign_in(page, server, "billing@demo.example")
    page.wait_for_url(f"http://demo.localhost:{server}/dashboard/")
    page.goto(f"http://demo.localhost:{server}/contracts/new/?customer={demo_customer.pk}")
    type_select = page.locator("#id_type")
    assert not page.locator("#id_fee").is_visible()  # no type chosen yet: no type's terms
    type_select.select_option("online_backup")
    assert page.locator("#id_unit_price").is_visible()
    assert not page.locator("#id_fee").is_visible() and not page.locator("#id_priority").is_visible()
    type_select.select_option("block_hours")
    assert page.locator("#id_overage_rate").is_visible() and page.locator("#id_cascade").is_visible()
    assert not page.locator("#id_unit_price").is_visible()

    type_select.select_option("retainer")
    page.locator("#id_name").fill("Browser retainer")
    page.get_by_role("button", name="Create contract").click()
    expect(page.locator(".form-errors")).to_contain_text("needs the fee invoiced each period")
    expect(page.locator("#id_fee")).to_be_visible()  # the chosen type's terms are shown again
    page.locator("#id_fee").fill("430")
    page.get_by_role("button", name="Create contract").click()
    page.wait_for_url(re.compile(r"/contracts/\d+/$"))
    assert page.get_by_role("heading", name="Browser retainer").is_visible()
    assert "$430.00" in page.content()
    page.close()
