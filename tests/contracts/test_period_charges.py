"""What each contract type invoices for a period, against amounts worked out by hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from contracts.models import ContractPeriod, DeviceClass, DeviceCount, Milestone, RecurringServiceLine, UsageRecord
from contracts.period_charges import period_lines, period_snapshot_take
from tests.tickets.builders import block, contract, customer, eur

OCT = (dt.date(2026, 10, 1), dt.date(2026, 10, 31))


def period(c, start, end, covered_start=None, covered_end=None):
    return ContractPeriod.objects.create(contract=c, start=start, end=end, covered_start=covered_start or start,
                                         covered_end=covered_end or end, bill_date=start)


def amounts(p):
    return [(line.kind, line.amount) for line in period_lines(period=p)]


@pytest.fixture
def cust(tenant):
    return customer("Periodic Ltd")


def test_retainer_fee_prorated_for_a_partial_first_period(cust):
    c = contract(cust, "retainer", fee=eur("430.00"), start_date=dt.date(2026, 10, 16))
    p = period(c, *OCT, covered_start=dt.date(2026, 10, 16))
    # 430.00 × 16 / 31 = 221.935… → 221.94 (the worked example in docs/design.md).
    assert amounts(p) == [("fee", Decimal("221.94"))]
    assert "16–31 Oct 2026 (16/31 days)" in period_lines(period=p)[0].description


def test_recurring_service_lines_per_licence_prorated_from_their_start(cust):
    c = contract(cust, "retainer", fee=eur("1000.00"), start_date=dt.date(2026, 1, 1))
    RecurringServiceLine.objects.create(contract=c, description="Office 365 licences", quantity=Decimal(12),
                                        unit_price=eur("12.50"), effective_from=dt.date(2026, 10, 11))
    p = period(c, *OCT)
    # Fee 1000.00; licences 12 × 12.50 × 21/31 = 101.612… → 101.61.
    assert amounts(p) == [("fee", Decimal("1000.00")), ("service", Decimal("101.61"))]


def test_remote_monitoring_counts_by_class_with_a_mid_period_change(cust):
    c = contract(cust, "remote_monitoring", start_date=dt.date(2026, 1, 1))
    servers = DeviceClass.objects.create(contract=c, name="Servers", unit_price=eur("30.00"))
    desktops = DeviceClass.objects.create(contract=c, name="Workstations", unit_price=eur("8.00"))
    DeviceCount.objects.create(device_class=servers, effective_date=dt.date(2026, 9, 1), count=4)
    DeviceCount.objects.create(device_class=servers, effective_date=dt.date(2026, 10, 16), count=6)
    DeviceCount.objects.create(device_class=desktops, effective_date=dt.date(2026, 1, 1), count=25)
    p = period(c, *OCT)
    # Servers: 4 × 30 × 15/31 = 58.0645…; 6 × 30 × 16/31 = 92.9032…. Workstations: 25 × 8 = 200.00.
    # Rounded once: 350.9677… → 350.97 (each line alone would make 350.96); the cent goes to
    # the line that lost the most when cut to the cent (0.45 of a cent against 0.32).
    assert amounts(p) == [("devices", Decimal("58.07")), ("devices", Decimal("92.90")), ("devices", Decimal("200.00"))]
    # Frozen: a later correction of the ledger does not change the period.
    period_snapshot_take(period_id=p.pk)
    DeviceCount.objects.create(device_class=desktops, effective_date=dt.date(2026, 10, 1), count=99)
    assert amounts(ContractPeriod.objects.get(pk=p.pk))[-1] == ("devices", Decimal("200.00"))


def test_a_partial_period_over_several_device_classes_is_rounded_once(cust):
    c = contract(cust, "remote_monitoring", start_date=dt.date(2026, 10, 16))
    small = DeviceClass.objects.create(contract=c, name="Laptops", unit_price=eur("43.00"))
    large = DeviceClass.objects.create(contract=c, name="Workstations", unit_price=eur("43.00"))
    DeviceCount.objects.create(device_class=small, effective_date=dt.date(2026, 10, 16), count=3)
    DeviceCount.objects.create(device_class=large, effective_date=dt.date(2026, 10, 16), count=7)
    p = period(c, *OCT, covered_start=dt.date(2026, 10, 16))
    # 10 × 43.00 = 430.00 a month, 16 of 31 days: 221.9354… → 221.94. Each class on its own would
    # give 129 × 16/31 = 66.58 and 301 × 16/31 = 155.35, one cent short.
    assert amounts(p) == [("devices", Decimal("66.58")), ("devices", Decimal("155.36"))]
    assert sum(amount for _, amount in amounts(p)) == Decimal("221.94")


def test_a_retainer_fee_and_its_service_lines_are_rounded_once(cust):
    c = contract(cust, "retainer", fee=eur("400.00"), start_date=dt.date(2026, 10, 16))
    RecurringServiceLine.objects.create(contract=c, description="Backup licences", quantity=Decimal(3),
                                        unit_price=eur("10.00"), effective_from=dt.date(2026, 10, 16))
    p = period(c, *OCT, covered_start=dt.date(2026, 10, 16))
    # 400.00 + 3 × 10.00 = 430.00 a month for 16/31 days = 221.94: fee 206.4516… and licences
    # 15.4838…; rounded apart 206.45 + 15.48 = 221.93, rounded once the licences take the cent.
    assert amounts(p) == [("fee", Decimal("206.45")), ("service", Decimal("15.49"))]


def test_online_backup_bills_peak_usage_over_the_included_quantity(cust):
    c = contract(cust, "online_backup", start_date=dt.date(2026, 1, 1), unit_price=eur("0.1500"),
                 included_quantity=Decimal("100"), usage_unit="GB")
    UsageRecord.objects.create(contract=c, measured_on=dt.date(2026, 10, 5), quantity=Decimal("340.5"))
    UsageRecord.objects.create(contract=c, measured_on=dt.date(2026, 10, 20), quantity=Decimal("412.25"))
    p = period(c, *OCT)
    # (412.25 − 100) × 0.15 = 46.8375 → 46.84.
    assert amounts(p) == [("usage", Decimal("46.84"))]


def test_block_purchases_are_invoiced_in_the_period_they_were_bought(cust):
    c = contract(cust, "block_hours", start_date=dt.date(2026, 1, 1), overage_rate=eur("150"))
    block(c, minutes=600, on=dt.date(2026, 10, 3), price="1150.00")
    block(c, minutes=600, on=dt.date(2026, 11, 3), price="1150.00")
    assert amounts(period(c, *OCT)) == [("block", Decimal("1150.00"))]


def test_project_fee_by_milestones_adds_up_to_the_fee(cust):
    c = contract(cust, "project_one_time_fee", start_date=dt.date(2026, 9, 1), fee=eur("1000.00"), fee_trigger="milestones")
    Milestone.objects.create(contract=c, name="Design", percent=Decimal("33.333"), completed_on=dt.date(2026, 9, 20))
    Milestone.objects.create(contract=c, name="Build", percent=Decimal("33.333"), completed_on=dt.date(2026, 10, 10))
    Milestone.objects.create(contract=c, name="Handover", percent=Decimal("33.334"), completed_on=dt.date(2026, 10, 30))
    sept = amounts(period(c, dt.date(2026, 9, 1), dt.date(2026, 9, 30)))
    october = amounts(period(c, *OCT))
    assert sept == [("milestone", Decimal("333.33"))]
    assert october == [("milestone", Decimal("333.33")), ("milestone", Decimal("333.34"))]
    assert sum(a for _, a in sept + october) == Decimal("1000.00")


def test_project_fee_on_start_and_hourly_contracts_have_no_period_lines(cust):
    project = contract(cust, "project_one_time_fee", start_date=dt.date(2026, 10, 5), fee=eur("2500.00"), fee_trigger="on_start")
    hourly = contract(cust, "hourly", start_date=dt.date(2026, 1, 1), priority=2)
    assert amounts(period(project, *OCT)) == [("project_fee", Decimal("2500.00"))]
    assert amounts(period(hourly, *OCT)) == []


def test_contract_page_lists_its_periods_with_state_and_amount(client_for, cust):
    c = contract(cust, "retainer", fee=eur("430.00"), start_date=dt.date(2026, 10, 16))
    period(c, *OCT, covered_start=dt.date(2026, 10, 16))
    page = client_for("alpha", "accountant").get(f"/contracts/{c.pk}/").content.decode()
    assert "Billing periods" in page and "€221.94" in page
    assert ">Overdue<" in page or ">Due<" in page
