"""Customers, catalogue and contracts through their services: what is saved and what is refused."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from djmoney.money import Money

from contracts import hooks, services
from contracts.models import (
    BlockPurchase,
    Contract,
    ContractRateLine,
    Customer,
    DeviceCount,
    ExclusionSet,
    TaxRate,
    UsageRecord,
)

START = dt.date(2026, 1, 1)


@pytest.fixture
def admin(tenant):
    from msp_billing.accounts.models import User

    return User.objects.get(email="billing-admin@alpha.example")


@pytest.fixture
def routing_calls():
    """Every notify_routing_changed call, as (contract_ids, effective_date)."""
    calls = []

    def listener(*, contract_ids, effective_date, customer_ids):
        calls.append((list(contract_ids), effective_date))

    hooks.register_routing_listener(listener)
    yield calls
    hooks.unregister_routing_listener(listener)


def make_customer(admin, name="Acme GmbH", **extra):
    return services.customer_create(legal_name=name, currency=extra.pop("currency", "EUR"), acting_user=admin, **extra)


def make_contract(admin, customer, type=Contract.Type.HOURLY, **terms):
    terms.setdefault("name", f"{type} contract")
    terms.setdefault("start_date", START)
    defaults = {
        Contract.Type.RETAINER: {"fee": Decimal("430.00")},
        Contract.Type.BLOCK_HOURS: {"overage_rate": Decimal("120")},
        Contract.Type.ONLINE_BACKUP: {"unit_price": Decimal("0.1500"), "usage_unit": "GB"},
        Contract.Type.PROJECT_HOURLY: {"budget_minutes": 40 * 60},
        Contract.Type.PROJECT_ONE_TIME_FEE: {"fee": Decimal("5000"), "fee_trigger": Contract.FeeTrigger.MILESTONES},
    }.get(type, {})
    return services.contract_create(customer=customer, type=type, acting_user=admin, **{**defaults, **terms})


def messages_of(error: ValidationError) -> dict[str, str]:
    return {field: " ".join(messages) for field, messages in error.message_dict.items()}


# --- hooks --------------------------------------------------------------------------------


def test_listeners_are_registered_once_and_called_with_sorted_unique_ids(monkeypatch):
    monkeypatch.setattr(hooks, "_listeners", [])  # without the tickets app's listener: no database here
    calls = []

    def listener(*, contract_ids, effective_date, customer_ids):
        calls.append((contract_ids, effective_date, customer_ids))

    hooks.register_routing_listener(listener)
    hooks.register_routing_listener(listener)
    try:
        hooks.notify_routing_changed(contract_ids=[3, 1, 3], effective_date=START)
        hooks.notify_routing_changed(contract_ids=[], effective_date=START)
        # A customer without contracts (a site whose parent changed) is named directly.
        hooks.notify_routing_changed(contract_ids=[], customer_ids=[7, 5, 7], effective_date=None)
    finally:
        hooks.unregister_routing_listener(listener)
    assert calls == [([1, 3], START, []), ([], None, [5, 7])]


# --- customers ----------------------------------------------------------------------------


def test_customer_create_saves_trimmed_values(admin):
    customer = make_customer(admin, "  Acme GmbH ", billing_email="AP@Acme.example", payment_terms_days=14)
    customer.refresh_from_db()
    assert (customer.legal_name, customer.billing_email, customer.payment_terms_days) == ("Acme GmbH", "ap@acme.example", 14)


def test_legal_names_are_unique_ignoring_case(admin):
    make_customer(admin, "Acme GmbH")
    with pytest.raises(ValidationError) as error:
        make_customer(admin, "ACME gmbh")
    assert "already exists" in messages_of(error.value)["legal_name"]
    assert Customer.objects.filter(legal_name__iexact="acme gmbh").count() == 1


@pytest.mark.parametrize("bad,field", [
    ({"currency": "XXQ"}, "currency"),
    ({"billing_email": "not-an-email"}, "billing_email"),
    ({"payment_terms_days": 999}, "payment_terms_days"),
    ({"legal_name": "   "}, "legal_name"),
])
def test_customer_create_refuses_bad_input_per_field(admin, bad, field):
    data = {"legal_name": "Acme GmbH", "currency": "EUR", **bad}
    with pytest.raises(ValidationError) as error:
        services.customer_create(**data, acting_user=admin)
    assert field in error.value.message_dict
    assert not Customer.objects.filter(legal_name__in=["Acme GmbH", ""]).exists()


def test_sites_bill_in_their_parents_currency_and_have_no_sites_of_their_own(admin):
    parent = make_customer(admin, "Parent Ltd")
    site = make_customer(admin, "Site A", parent=parent)
    assert site.parent == parent
    with pytest.raises(ValidationError) as error:
        make_customer(admin, "Dollar site", currency="USD", parent=parent)
    assert "currency" in messages_of(error.value)["parent"]
    with pytest.raises(ValidationError) as error:
        make_customer(admin, "Site of a site", parent=site)
    assert "itself a site" in messages_of(error.value)["parent"]
    with pytest.raises(ValidationError) as error:
        services.customer_update(customer=parent, data={"parent": parent}, acting_user=admin)
    assert "own parent" in messages_of(error.value)["parent"]


def test_customer_currency_cannot_change_once_it_has_contracts(admin):
    customer = make_customer(admin)
    make_contract(admin, customer)
    with pytest.raises(ValidationError) as error:
        services.customer_update(customer=customer, data={"currency": "USD"}, acting_user=admin)
    assert "cannot change" in messages_of(error.value)["currency"]


def test_default_hourly_contract_must_be_the_customers_own_hourly(admin, routing_calls):
    customer = make_customer(admin)
    other = make_customer(admin, "Other AG")
    retainer = make_contract(admin, customer, Contract.Type.RETAINER)
    foreign_hourly = make_contract(admin, other)
    for contract in (retainer, foreign_hourly):
        with pytest.raises(ValidationError) as error:
            services.customer_update(customer=customer, data={"default_hourly_contract": contract}, acting_user=admin)
        assert "default_hourly_contract" in error.value.message_dict
    hourly = make_contract(admin, customer)
    routing_calls.clear()
    services.customer_update(customer=customer, data={"default_hourly_contract": hourly}, acting_user=admin)
    assert Customer.objects.get(pk=customer.pk).default_hourly_contract == hourly
    assert routing_calls and hourly.pk in routing_calls[0][0]


# --- catalogue ----------------------------------------------------------------------------


def test_catalogue_items_store_money_in_their_currency(admin):
    role = services.role_create(name="Engineer", default_rate=Decimal("150.1234"), cost_rate=Decimal("60"),
                                currency="EUR", acting_user=admin)
    role.refresh_from_db()
    assert role.default_rate == Money(Decimal("150.1234"), "EUR")
    product = services.product_create(sku="M365-BP", name="Microsoft 365 Business Premium", price=Decimal("22"),
                                      cost=Decimal("18.5"), currency="EUR", acting_user=admin)
    updated = services.product_update(product=product, data={"price": Decimal("23.5")}, acting_user=admin)
    assert updated.price == Money(Decimal("23.5"), "EUR") and updated.cost == Money(Decimal("18.5"), "EUR")


def test_catalogue_refuses_duplicates_and_bad_numbers(admin):
    services.work_type_create(name="Remote Support", acting_user=admin)
    with pytest.raises(ValidationError) as error:
        services.work_type_create(name="remote support", acting_user=admin)
    assert "already exists" in messages_of(error.value)["name"]
    with pytest.raises(ValidationError) as error:
        services.work_type_create(name="Onsite", after_hours_multiplier=Decimal("0.5"), acting_user=admin)
    assert "after_hours_multiplier" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        services.rate_item_create(name="Consulting", rate=Decimal("-1"), currency="EUR", acting_user=admin)
    assert "rate" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        services.role_create(name="Tier 1", default_rate=Decimal("1.12345"), cost_rate=Decimal("1"), currency="EUR",
                             acting_user=admin)
    assert "default_rate" in error.value.message_dict


# --- tax rates ----------------------------------------------------------------------------


def test_a_tax_change_is_a_new_version_and_never_rewrites_the_old(admin):
    first = services.tax_rate_create(code="vat", name="VAT", percent=Decimal("19"), effective_from=START,
                                     acting_user=admin)
    assert first.code == "VAT"
    second = services.tax_rate_new_version(tax_rate=first, name="VAT", percent=Decimal("21"),
                                           effective_from=dt.date(2027, 1, 1), acting_user=admin)
    first.refresh_from_db()
    assert (first.percent, first.effective_from) == (Decimal("19"), START)
    assert second.pk != first.pk and second.percent == Decimal("21")
    for day in (dt.date(2027, 1, 1), dt.date(2026, 6, 1)):
        with pytest.raises(ValidationError) as error:
            services.tax_rate_new_version(tax_rate=first, name="VAT", percent=Decimal("22"), effective_from=day,
                                          acting_user=admin)
        assert "after the latest" in messages_of(error.value)["effective_from"]
    assert TaxRate.objects.filter(code="VAT").count() == 2


def test_tax_codes_are_unique_and_percent_is_bounded(admin):
    services.tax_rate_create(code="VAT", name="VAT", percent=Decimal("20"), effective_from=START, acting_user=admin)
    with pytest.raises(ValidationError) as error:
        services.tax_rate_create(code="vat", name="VAT", percent=Decimal("20"), effective_from=START, acting_user=admin)
    assert "new version" in messages_of(error.value)["code"]
    with pytest.raises(ValidationError) as error:
        services.tax_rate_create(code="GST", name="GST", percent=Decimal("120"), effective_from=START, acting_user=admin)
    assert "percent" in error.value.message_dict


# --- exclusion sets -----------------------------------------------------------------------


def test_changing_an_exclusion_sets_members_reroutes_every_contract_using_it(admin, routing_calls):
    onsite = services.work_type_create(name="Onsite Support", acting_user=admin)
    after_hours = services.work_type_create(name="Out-of-Hours Support", acting_user=admin)
    gold = services.exclusion_set_create(name="Gold", work_types=[onsite], acting_user=admin)
    customer = make_customer(admin)
    retainer = make_contract(admin, customer, Contract.Type.RETAINER, exclusion_set=gold)
    block = make_contract(admin, customer, Contract.Type.BLOCK_HOURS, exclusion_set=gold)
    routing_calls.clear()

    services.exclusion_set_update(exclusion_set=gold, data={"name": "Gold tier"}, acting_user=admin)
    assert routing_calls == []  # a new name routes nothing differently
    services.exclusion_set_update(exclusion_set=gold, data={"work_types": [onsite, after_hours]}, acting_user=admin)
    assert routing_calls == [(sorted([retainer.pk, block.pk]), services.tenant_today())]
    assert set(ExclusionSet.objects.get(pk=gold.pk).work_types.all()) == {onsite, after_hours}


# --- contracts ----------------------------------------------------------------------------


@pytest.mark.parametrize("contract_type", Contract.Type.values)
def test_every_type_can_be_created_with_its_own_terms(admin, contract_type, routing_calls):
    customer = make_customer(admin)
    contract = make_contract(admin, customer, contract_type)
    contract.refresh_from_db()
    assert contract.type == contract_type and contract.currency == "EUR"
    assert routing_calls == [([contract.pk], START)]


@pytest.mark.parametrize("contract_type,missing,message", [
    (Contract.Type.RETAINER, {"fee": None}, ("fee", "needs the fee")),
    (Contract.Type.BLOCK_HOURS, {"overage_rate": None}, ("overage_rate", "overage rate")),
    (Contract.Type.ONLINE_BACKUP, {"unit_price": None}, ("unit_price", "unit price")),
    (Contract.Type.ONLINE_BACKUP, {"usage_unit": ""}, ("usage_unit", "GB or seats")),
    (Contract.Type.PROJECT_HOURLY, {"budget_minutes": None}, ("budget_minutes", "budget")),
    (Contract.Type.PROJECT_ONE_TIME_FEE, {"fee": None}, ("fee", "fixed project fee")),
    (Contract.Type.PROJECT_ONE_TIME_FEE, {"fee_trigger": ""}, ("fee_trigger", "on start")),
    (Contract.Type.RETAINER, {"billing_frequency": Contract.Frequency.ONE_TIME}, ("billing_frequency", "every period")),
])
def test_each_type_needs_its_own_terms(admin, contract_type, missing, message):
    customer = make_customer(admin)
    with pytest.raises(ValidationError) as error:
        make_contract(admin, customer, contract_type, **missing)
    field, text = message
    assert text in messages_of(error.value)[field]
    assert not Contract.objects.filter(customer=customer).exists()


@pytest.mark.parametrize("end,message", [
    (dt.date(2025, 12, 31), "before the start"),
    (dt.date(2046, 1, 2), "at most 20 years"),
])
def test_contract_dates(admin, end, message):
    customer = make_customer(admin)
    with pytest.raises(ValidationError) as error:
        make_contract(admin, customer, end_date=end)
    assert message in messages_of(error.value)["end_date"]
    assert make_contract(admin, customer, end_date=dt.date(2046, 1, 1)).end_date == dt.date(2046, 1, 1)


def test_a_contract_bills_in_its_customers_currency(admin):
    customer = make_customer(admin)
    with pytest.raises(ValidationError) as error:
        make_contract(admin, customer, currency="USD")
    assert "EUR" in messages_of(error.value)["currency"]
    assert make_contract(admin, customer, currency="EUR").currency == "EUR"


def test_terms_of_other_types_are_not_kept(admin):
    customer = make_customer(admin)
    contract = make_contract(admin, customer, Contract.Type.HOURLY, fee=Decimal("999"), usage_unit="GB",
                             unit_price=Decimal("1"))
    contract.refresh_from_db()
    assert (contract.fee, contract.unit_price, contract.usage_unit) == (None, None, "")
    one_time = make_contract(admin, customer, Contract.Type.PROJECT_ONE_TIME_FEE, fee_trigger="on_start")
    assert one_time.billing_frequency == Contract.Frequency.ONE_TIME


def test_routing_relevant_changes_notify_from_the_right_date(admin, routing_calls):
    customer = make_customer(admin)
    contract = make_contract(admin, customer, end_date=dt.date(2026, 12, 31))
    routing_calls.clear()

    services.contract_update(contract=contract, data={"name": "Renamed"}, acting_user=admin)
    assert routing_calls == []
    services.contract_update(contract=contract, data={"priority": 5}, effective_date=dt.date(2026, 3, 1),
                             acting_user=admin)
    assert routing_calls[-1] == ([contract.pk], dt.date(2026, 3, 1))
    services.contract_update(contract=contract, data={"start_date": dt.date(2025, 11, 1)}, acting_user=admin)
    assert routing_calls[-1] == ([contract.pk], dt.date(2025, 11, 1))
    services.contract_update(contract=contract, data={"end_date": dt.date(2026, 6, 30)}, acting_user=admin)
    assert routing_calls[-1] == ([contract.pk], dt.date(2026, 7, 1))
    services.contract_update(contract=contract, data={"status": Contract.Status.CANCELLED}, acting_user=admin)
    assert routing_calls[-1] == ([contract.pk], services.tenant_today())
    assert Contract.objects.get(pk=contract.pk).name == "Renamed"


def test_a_contract_with_blocks_cannot_change_type(admin):
    customer = make_customer(admin)
    contract = make_contract(admin, customer, Contract.Type.BLOCK_HOURS)
    services.block_purchase_add(contract=contract, purchased_on=START, minutes=600, price=Decimal("1000"),
                                acting_user=admin)
    with pytest.raises(ValidationError) as error:
        services.contract_update(contract=contract, data={"type": Contract.Type.HOURLY}, acting_user=admin)
    assert "block purchases" in messages_of(error.value)["type"]
    assert Contract.objects.get(pk=contract.pk).type == Contract.Type.BLOCK_HOURS


# --- contract terms -----------------------------------------------------------------------


def test_rate_lines_are_effective_dated_and_unique_per_day(admin):
    customer = make_customer(admin)
    contract = make_contract(admin, customer)
    role = services.role_create(name="Engineer", default_rate=Decimal("100"), cost_rate=Decimal("40"),
                                currency="EUR", acting_user=admin)
    services.rate_line_add(contract=contract, role=role, rate=Decimal("120"), effective_from=START, acting_user=admin)
    services.rate_line_add(contract=contract, role=role, rate=Decimal("130"), effective_from=dt.date(2026, 7, 1),
                           acting_user=admin)
    with pytest.raises(ValidationError) as error:
        services.rate_line_add(contract=contract, role=role, rate=Decimal("140"), effective_from=START,
                               acting_user=admin)
    assert "already has a rate" in messages_of(error.value)["effective_from"]
    with pytest.raises(ValidationError) as error:
        services.rate_line_add(contract=contract, rate=Money(Decimal("1"), "USD"), effective_from=START,
                               acting_user=admin)
    assert "EUR" in messages_of(error.value)["rate"]
    assert ContractRateLine.objects.filter(contract=contract).count() == 2


def test_service_lines_take_the_catalogue_price_and_can_end(admin):
    customer = make_customer(admin)
    contract = make_contract(admin, customer, Contract.Type.RETAINER)
    product = services.product_create(sku="M365", name="Office 365", price=Decimal("12.5"), cost=Decimal("10"),
                                      currency="EUR", acting_user=admin)
    line = services.service_line_add(contract=contract, product=product, quantity=Decimal("25"),
                                     effective_from=START, acting_user=admin)
    assert (line.description, line.unit_price) == ("Office 365", Money(Decimal("12.5"), "EUR"))
    with pytest.raises(ValidationError) as error:
        services.service_line_end(service_line=line, effective_to=dt.date(2025, 12, 1), acting_user=admin)
    assert "effective_to" in error.value.message_dict
    ended = services.service_line_end(service_line=line, effective_to=dt.date(2026, 3, 31), acting_user=admin)
    assert ended.effective_to == dt.date(2026, 3, 31)


def test_a_new_device_count_is_a_new_ledger_row(admin):
    customer = make_customer(admin)
    contract = make_contract(admin, customer, Contract.Type.REMOTE_MONITORING, end_date=dt.date(2026, 12, 31))
    servers = services.device_class_add(contract=contract, name="Servers", unit_price=Decimal("45"), acting_user=admin)
    services.device_count_record(device_class=servers, effective_date=START, count=10, acting_user=admin)
    services.device_count_record(device_class=servers, effective_date=dt.date(2026, 2, 15), count=12, acting_user=admin)
    assert list(DeviceCount.objects.filter(device_class=servers).values_list("count", flat=True)) == [10, 12]
    with pytest.raises(ValidationError) as error:
        services.device_count_record(device_class=servers, effective_date=dt.date(2027, 1, 1), count=1,
                                     acting_user=admin)
    assert "ends on" in messages_of(error.value)["effective_date"]
    with pytest.raises(ValidationError) as error:
        services.device_class_add(contract=contract, name="servers", unit_price=Decimal("1"), acting_user=admin)
    assert "already has" in messages_of(error.value)["name"]
    hourly = make_contract(admin, customer)
    with pytest.raises(ValidationError, match="Remote Monitoring"):
        services.device_class_add(contract=hourly, name="Servers", unit_price=Decimal("45"), acting_user=admin)


def test_usage_is_recorded_for_online_backup_only_and_never_in_the_future(admin):
    customer = make_customer(admin)
    backup = make_contract(admin, customer, Contract.Type.ONLINE_BACKUP)
    services.usage_record(contract=backup, measured_on=START, quantity=Decimal("512.5"), acting_user=admin)
    assert UsageRecord.objects.get(contract=backup).quantity == Decimal("512.5")
    with pytest.raises(ValidationError) as error:
        services.usage_record(contract=backup, measured_on=services.tenant_today() + dt.timedelta(days=1),
                              quantity=Decimal("1"), acting_user=admin)
    assert "future" in messages_of(error.value)["measured_on"]
    with pytest.raises(ValidationError, match="Online Backup"):
        services.usage_record(contract=make_contract(admin, customer), measured_on=START, quantity=Decimal("1"),
                              acting_user=admin)


def test_block_purchases_per_kind_with_default_expiry(admin):
    customer = make_customer(admin)
    hours = make_contract(admin, customer, Contract.Type.BLOCK_HOURS, block_expiry_months=12)
    block = services.block_purchase_add(contract=hours, purchased_on=dt.date(2026, 1, 31), minutes=20 * 60,
                                        price=Decimal("2000"), acting_user=admin)
    assert (block.minutes, block.expires_on, block.price) == (1200, dt.date(2027, 1, 31), Money(Decimal("2000"), "EUR"))
    with pytest.raises(ValidationError) as error:
        services.block_purchase_add(contract=hours, purchased_on=START, amount=Decimal("100"), price=Decimal("1"),
                                    acting_user=admin)
    assert {"amount", "minutes"} <= set(error.value.message_dict)

    money = make_contract(admin, customer, Contract.Type.BLOCK_MONEY)
    block = services.block_purchase_add(contract=money, purchased_on=START, amount=Decimal("5000"),
                                        price=Decimal("4500"), acting_user=admin)
    assert block.amount == Money(Decimal("5000"), "EUR") and block.expires_on is None
    with pytest.raises(ValidationError) as error:
        services.block_purchase_add(contract=money, purchased_on=START, amount=Decimal("10"), price=Decimal("10"),
                                    expires_on=START, acting_user=admin)
    assert "expires_on" in error.value.message_dict
    assert BlockPurchase.objects.filter(contract__customer=customer).count() == 2


def test_milestones_share_at_most_the_whole_fee(admin):
    customer = make_customer(admin)
    project = make_contract(admin, customer, Contract.Type.PROJECT_ONE_TIME_FEE)
    services.milestone_add(contract=project, name="Design", percent=Decimal("40"), acting_user=admin)
    first = services.milestone_add(contract=project, name="Build", percent=Decimal("60"), acting_user=admin)
    with pytest.raises(ValidationError) as error:
        services.milestone_add(contract=project, name="Extra", percent=Decimal("1"), acting_user=admin)
    assert "at most 0 %" in messages_of(error.value)["percent"]
    done = services.milestone_complete(milestone=first, completed_on=START, acting_user=admin)
    assert done.completed_on == START
    with pytest.raises(ValidationError, match="was completed"):
        services.milestone_complete(milestone=first, completed_on=START, acting_user=admin)
    on_start = make_contract(admin, customer, Contract.Type.PROJECT_ONE_TIME_FEE, name="Fixed", fee_trigger="on_start")
    with pytest.raises(ValidationError, match="not billed by milestones"):
        services.milestone_add(contract=on_start, name="Design", percent=Decimal("10"), acting_user=admin)
