"""Contract periods generated ahead, their bill dates and states; the daily task in a real worker."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from djmoney.money import Money

from contracts.models import Contract, ContractPeriod, Customer, Notification
from contracts.periods import (
    contract_periods_generate,
    contracts_missing_periods,
    periods_generate_all,
    periods_generate_through,
)
from msp_billing.tenants.today import tenant_today
from contracts.selectors_periods import contract_periods_due, period_states
from msp_billing.tasks import TenantContextMissing

D = dt.date


def make_contract(name: str = "Managed services", **fields) -> Contract:
    customer, _ = Customer.objects.get_or_create(legal_name=fields.pop("customer_name", "Periods GmbH"), defaults={"currency": "EUR"})
    values = dict(
        customer=customer,
        name=name,
        type=Contract.Type.RETAINER,
        currency="EUR",
        start_date=D(2026, 1, 1),
        billing_frequency=Contract.Frequency.MONTHLY,
        billing_timing=Contract.Timing.ADVANCE,
        anchor_day=1,
        fee=Money(Decimal("430.00"), "EUR"),
    )
    values.update(fields)
    return Contract.objects.create(**values)


def rows(contract: Contract) -> list[tuple]:
    """(start, end, covered_start, covered_end, bill_date) of every stored period, in order."""
    return list(
        ContractPeriod.objects.filter(contract=contract)
        .order_by("start")
        .values_list("start", "end", "covered_start", "covered_end", "bill_date")
    )


# --- generation --------------------------------------------------------------------------


def test_monthly_in_advance_partial_first_and_last_period(tenant):
    contract = make_contract(start_date=D(2026, 10, 16), end_date=D(2027, 1, 15))
    created = contract_periods_generate(contract=contract, today=D(2026, 10, 1))
    assert [p.start for p in created] == [D(2026, 10, 1), D(2026, 11, 1), D(2026, 12, 1), D(2027, 1, 1)]
    assert rows(contract) == [
        # the first period is billed on the contract's first day, not before it exists
        (D(2026, 10, 1), D(2026, 10, 31), D(2026, 10, 16), D(2026, 10, 31), D(2026, 10, 16)),
        (D(2026, 11, 1), D(2026, 11, 30), D(2026, 11, 1), D(2026, 11, 30), D(2026, 11, 1)),
        (D(2026, 12, 1), D(2026, 12, 31), D(2026, 12, 1), D(2026, 12, 31), D(2026, 12, 1)),
        (D(2027, 1, 1), D(2027, 1, 31), D(2027, 1, 1), D(2027, 1, 15), D(2027, 1, 1)),
    ]


def test_monthly_in_arrears_is_billed_on_the_last_covered_day(tenant):
    contract = make_contract(start_date=D(2026, 10, 16), end_date=D(2027, 1, 15), billing_timing=Contract.Timing.ARREARS)
    contract_periods_generate(contract=contract, today=D(2026, 10, 1))
    assert [bill_date for *_, bill_date in rows(contract)] == [D(2026, 10, 31), D(2026, 11, 30), D(2026, 12, 31), D(2027, 1, 15)]


def test_quarterly_periods_in_advance_and_in_arrears(tenant):
    advance = make_contract("Quarterly advance", billing_frequency=Contract.Frequency.QUARTERLY, end_date=D(2026, 12, 31))
    arrears = make_contract(
        "Quarterly arrears", billing_frequency=Contract.Frequency.QUARTERLY, end_date=D(2026, 12, 31),
        billing_timing=Contract.Timing.ARREARS,
    )
    for contract in (advance, arrears):
        contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    assert [(start, end) for start, end, *_ in rows(advance)] == [
        (D(2026, 1, 1), D(2026, 3, 31)),
        (D(2026, 4, 1), D(2026, 6, 30)),
        (D(2026, 7, 1), D(2026, 9, 30)),
        (D(2026, 10, 1), D(2026, 12, 31)),
    ]
    assert [r[4] for r in rows(advance)] == [D(2026, 1, 1), D(2026, 4, 1), D(2026, 7, 1), D(2026, 10, 1)]
    assert [r[4] for r in rows(arrears)] == [D(2026, 3, 31), D(2026, 6, 30), D(2026, 9, 30), D(2026, 12, 31)]


def test_yearly_open_ended_contract_gets_the_periods_starting_within_the_horizon(tenant):
    contract = make_contract(
        billing_frequency=Contract.Frequency.YEARLY, start_date=D(2026, 3, 15), anchor_day=15,
        billing_timing=Contract.Timing.ARREARS,
    )
    # horizon: 15 Mar 2026 + 400 days = 19 Apr 2027, so the 2027 period (starting 15 Mar 2027) is in
    contract_periods_generate(contract=contract, today=D(2026, 3, 15))
    assert rows(contract) == [
        (D(2026, 3, 15), D(2027, 3, 14), D(2026, 3, 15), D(2027, 3, 14), D(2027, 3, 14)),
        (D(2027, 3, 15), D(2028, 3, 14), D(2027, 3, 15), D(2028, 3, 14), D(2028, 3, 14)),
    ]
    # a shorter horizon does not reach the second period
    other = make_contract("Short horizon", billing_frequency=Contract.Frequency.YEARLY, start_date=D(2026, 3, 15), anchor_day=15)
    contract_periods_generate(contract=other, today=D(2026, 3, 15), horizon_days=364)
    assert [r[0] for r in rows(other)] == [D(2026, 3, 15)]


def test_one_time_contract_has_one_period(tenant):
    advance = make_contract(
        "Server migration", type=Contract.Type.PROJECT_ONE_TIME_FEE, billing_frequency=Contract.Frequency.ONE_TIME,
        start_date=D(2026, 5, 4), end_date=D(2026, 8, 31), anchor_day=17,
    )
    arrears = make_contract(
        "Office move", type=Contract.Type.PROJECT_ONE_TIME_FEE, billing_frequency=Contract.Frequency.ONE_TIME,
        start_date=D(2026, 5, 4), end_date=D(2026, 8, 31), billing_timing=Contract.Timing.ARREARS,
    )
    for contract in (advance, arrears):
        contract_periods_generate(contract=contract, today=D(2026, 5, 1))
    assert rows(advance) == [(D(2026, 5, 4), D(2026, 8, 31), D(2026, 5, 4), D(2026, 8, 31), D(2026, 5, 4))]
    assert rows(arrears) == [(D(2026, 5, 4), D(2026, 8, 31), D(2026, 5, 4), D(2026, 8, 31), D(2026, 8, 31))]


def test_one_time_contract_without_end_date(tenant):
    on_start = make_contract("Fee on start", billing_frequency=Contract.Frequency.ONE_TIME, start_date=D(2026, 5, 4))
    on_completion = make_contract(
        "Fee on completion", billing_frequency=Contract.Frequency.ONE_TIME, start_date=D(2026, 5, 4),
        billing_timing=Contract.Timing.ARREARS,
    )
    for contract in (on_start, on_completion):
        contract_periods_generate(contract=contract, today=D(2026, 5, 4))
    assert rows(on_start) == [(D(2026, 5, 4), D(2026, 5, 4), D(2026, 5, 4), D(2026, 5, 4), D(2026, 5, 4))]
    assert rows(on_completion) == []  # billed in arrears: waits for the completion (end) date
    on_completion.end_date = D(2026, 9, 30)
    on_completion.save()
    contract_periods_generate(contract=on_completion, today=D(2026, 9, 30))
    assert rows(on_completion) == [(D(2026, 5, 4), D(2026, 9, 30), D(2026, 5, 4), D(2026, 9, 30), D(2026, 9, 30))]


def test_anchor_day_31_clamps_to_short_months_without_drifting(tenant):
    contract = make_contract(start_date=D(2026, 1, 31), end_date=D(2026, 6, 29), anchor_day=31)
    contract_periods_generate(contract=contract, today=D(2026, 1, 31))
    assert [(start, end) for start, end, *_ in rows(contract)] == [
        (D(2026, 1, 31), D(2026, 2, 27)),
        (D(2026, 2, 28), D(2026, 3, 30)),
        (D(2026, 3, 31), D(2026, 4, 29)),
        (D(2026, 4, 30), D(2026, 5, 30)),
        (D(2026, 5, 31), D(2026, 6, 29)),
    ]
    assert [r[4] for r in rows(contract)] == [D(2026, 1, 31), D(2026, 2, 28), D(2026, 3, 31), D(2026, 4, 30), D(2026, 5, 31)]


def test_generating_twice_creates_nothing_the_second_time(tenant):
    contract = make_contract(start_date=D(2026, 1, 1), end_date=D(2026, 12, 31))
    first = contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    before = list(ContractPeriod.objects.filter(contract=contract).order_by("start").values())
    second = contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    assert len(first) == 12 and second == []
    assert list(ContractPeriod.objects.filter(contract=contract).order_by("start").values()) == before
    # the next day's run adds nothing either (the contract ends within the horizon)
    assert contract_periods_generate(contract=contract, today=D(2026, 1, 2)) == []
    assert ContractPeriod.objects.filter(contract=contract).count() == 12


def test_a_contract_ending_20_years_out_only_gets_periods_up_to_the_horizon(tenant):
    contract = make_contract(start_date=D(2026, 1, 1), end_date=D(2045, 12, 31))
    contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    # 1 Jan 2026 + 400 days = 5 Feb 2027: January 2026 to February 2027
    stored = rows(contract)
    assert len(stored) == 14
    assert stored[-1] == (D(2027, 2, 1), D(2027, 2, 28), D(2027, 2, 1), D(2027, 2, 28), D(2027, 2, 1))
    # a month later, one more
    assert [p.start for p in contract_periods_generate(contract=contract, today=D(2026, 2, 1))] == [D(2027, 3, 1)]
    # near the end, the rest up to the end date and nothing beyond it
    contract_periods_generate(contract=contract, today=D(2045, 6, 1))
    stored = rows(contract)
    assert len(stored) == 20 * 12
    assert stored[-1] == (D(2045, 12, 1), D(2045, 12, 31), D(2045, 12, 1), D(2045, 12, 31), D(2045, 12, 1))


def test_unbilled_periods_follow_a_moved_end_date_but_billed_ones_never_change(tenant):
    contract = make_contract(start_date=D(2026, 1, 1), end_date=D(2026, 3, 15), billing_timing=Contract.Timing.ARREARS)
    contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    assert rows(contract)[-1] == (D(2026, 3, 1), D(2026, 3, 31), D(2026, 3, 1), D(2026, 3, 15), D(2026, 3, 15))
    ContractPeriod.objects.filter(contract=contract, start=D(2026, 1, 1)).update(billed_at=timezone.now())

    contract.end_date = D(2026, 4, 30)
    contract.save()
    created = contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    assert [p.start for p in created] == [D(2026, 4, 1)]
    assert rows(contract)[2:] == [
        (D(2026, 3, 1), D(2026, 3, 31), D(2026, 3, 1), D(2026, 3, 31), D(2026, 3, 31)),
        (D(2026, 4, 1), D(2026, 4, 30), D(2026, 4, 1), D(2026, 4, 30), D(2026, 4, 30)),
    ]

    contract.end_date = D(2026, 1, 20)  # shortened: later unbilled periods go, the billed one stays
    contract.save()
    contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    assert rows(contract) == [(D(2026, 1, 1), D(2026, 1, 31), D(2026, 1, 1), D(2026, 1, 31), D(2026, 1, 31))]


def test_draft_and_cancelled_contracts_get_no_periods(tenant):
    draft = make_contract("Draft", status=Contract.Status.DRAFT)
    cancelled = make_contract("Cancelled", status=Contract.Status.CANCELLED)
    assert contract_periods_generate(contract=draft, today=D(2026, 1, 1)) == []
    assert periods_generate_all(today=D(2026, 1, 1)) == []
    assert not ContractPeriod.objects.filter(contract__in=[draft, cancelled]).exists()


def test_generate_all_covers_every_contract_of_the_msp(tenant):
    a = make_contract("A", end_date=D(2026, 3, 31))
    b = make_contract("B", billing_frequency=Contract.Frequency.QUARTERLY, end_date=D(2026, 12, 31), customer_name="Other Ltd")
    created = periods_generate_all(today=D(2026, 1, 1))
    assert sorted((p.contract_id, p.start) for p in created) == sorted(
        [(a.pk, D(2026, m, 1)) for m in (1, 2, 3)] + [(b.pk, D(2026, m, 1)) for m in (1, 4, 7, 10)]
    )
    assert periods_generate_all(today=D(2026, 1, 1)) == []


# --- states ------------------------------------------------------------------------------


def test_states_open_due_overdue_billed(tenant):
    contract = make_contract(start_date=D(2026, 1, 1), end_date=D(2026, 6, 30))
    contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    ContractPeriod.objects.filter(contract=contract, start=D(2026, 1, 1)).update(billed_at=timezone.now())

    states = {p.start.month: p.state for p in period_states(contract=contract, cutoff=D(2026, 3, 10))}
    assert states == {1: "billed", 2: "overdue", 3: "due", 4: "open", 5: "open", 6: "open"}
    # the bill date itself is on or before the cut-off: due
    states = {p.start.month: p.state for p in period_states(contract=contract, cutoff=D(2026, 4, 1))}
    assert states == {1: "billed", 2: "overdue", 3: "overdue", 4: "due", 5: "open", 6: "open"}
    # the day before a bill date, the period is still open
    states = {p.start.month: p.state for p in period_states(contract=contract, cutoff=D(2026, 1, 31))}
    assert states == {1: "billed", 2: "open", 3: "open", 4: "open", 5: "open", 6: "open"}


def test_in_arrears_a_period_is_open_until_its_end(tenant):
    contract = make_contract(start_date=D(2026, 1, 1), end_date=D(2026, 3, 31), billing_timing=Contract.Timing.ARREARS)
    contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    states = [p.state for p in period_states(contract=contract, cutoff=D(2026, 2, 27))]
    assert states == ["due", "open", "open"]
    states = [p.state for p in period_states(contract=contract, cutoff=D(2026, 2, 28))]
    assert states == ["overdue", "due", "open"]


def test_contract_periods_due_lists_due_and_overdue_per_contract(tenant):
    monthly = make_contract("Monthly", start_date=D(2026, 1, 1), end_date=D(2026, 12, 31))
    quarterly = make_contract(
        "Quarterly", billing_frequency=Contract.Frequency.QUARTERLY, start_date=D(2026, 1, 1), end_date=D(2026, 12, 31),
        customer_name="Another Customer",
    )
    periods_generate_all(today=D(2026, 1, 1))
    ContractPeriod.objects.filter(contract=monthly, start=D(2026, 1, 1)).update(billed_at=timezone.now())

    due = list(contract_periods_due(cutoff=D(2026, 4, 15)))
    assert [(p.contract_id, p.start, p.state) for p in due] == [
        (quarterly.pk, D(2026, 1, 1), "overdue"),  # "Another Customer" sorts first
        (quarterly.pk, D(2026, 4, 1), "due"),
        (monthly.pk, D(2026, 2, 1), "overdue"),
        (monthly.pk, D(2026, 3, 1), "overdue"),
        (monthly.pk, D(2026, 4, 1), "due"),
    ]
    assert due[0].contract.customer.legal_name == "Another Customer"  # loaded with the period


def test_billing_the_due_period_never_makes_an_earlier_one_due(tenant):
    contract = make_contract(start_date=D(2026, 9, 1), end_date=D(2026, 12, 31))
    contract_periods_generate(contract=contract, today=D(2026, 9, 1))
    ContractPeriod.objects.filter(contract=contract, start__in=[D(2026, 9, 1), D(2026, 11, 1)]).update(billed_at=timezone.now())
    # cut-off 30 Nov: November is the period due (and billed); October, left out, is overdue
    states = {p.start.month: p.state for p in period_states(contract=contract, cutoff=D(2026, 11, 30))}
    assert states == {9: "billed", 10: "overdue", 11: "billed", 12: "open"}
    assert [(p.start, p.state) for p in contract_periods_due(cutoff=D(2026, 11, 30)).filter(contract=contract)] == [
        (D(2026, 10, 1), "overdue")]


# --- periods stored before money is read -------------------------------------------------


def test_periods_generate_through_fills_only_contracts_that_do_not_reach_the_cutoff(tenant):
    fresh = make_contract("Fresh", start_date=D(2026, 3, 1))
    ready = make_contract("Ready", start_date=D(2026, 3, 1), customer_name="Ready Customer")
    contract_periods_generate(contract=ready, today=D(2026, 3, 1))
    ready_rows = rows(ready)
    assert [c.pk for c in contracts_missing_periods(cutoff=D(2026, 3, 31))] == [fresh.pk]

    created = periods_generate_through(cutoff=D(2026, 3, 31), today=D(2026, 3, 1))
    assert created == len(rows(fresh)) == 14  # March 2026 up to the horizon (5 Apr 2027)
    assert rows(ready) == ready_rows  # untouched
    assert not contracts_missing_periods(cutoff=D(2026, 3, 31)).exists()
    assert periods_generate_through(cutoff=D(2026, 3, 31), today=D(2026, 3, 1)) == 0


def test_a_cutoff_beyond_the_horizon_gets_its_periods(tenant):
    contract = make_contract(start_date=D(2026, 1, 1))
    contract_periods_generate(contract=contract, today=D(2026, 1, 1))
    assert rows(contract)[-1][0] == D(2027, 2, 1)  # the horizon: 1 Jan 2026 + 400 days
    cutoff = D(2028, 6, 30)
    assert [c.pk for c in contracts_missing_periods(cutoff=cutoff)] == [contract.pk]
    periods_generate_through(cutoff=cutoff, today=D(2026, 1, 1))
    assert rows(contract)[-1][0] == D(2028, 6, 1)
    due = [p for p in period_states(contract=contract, cutoff=cutoff) if p.state == "due"]
    assert [p.start for p in due] == [D(2028, 6, 1)]


def test_contracts_that_have_all_their_periods_are_not_checked_again(tenant):
    ended = make_contract("Ended", start_date=D(2026, 1, 1), end_date=D(2026, 2, 15), status=Contract.Status.ENDED)
    on_start = make_contract("One-time", type=Contract.Type.PROJECT_ONE_TIME_FEE, billing_frequency=Contract.Frequency.ONE_TIME,
                             start_date=D(2026, 1, 5), customer_name="One-time Customer")
    waiting = make_contract("On completion", type=Contract.Type.PROJECT_ONE_TIME_FEE, billing_frequency=Contract.Frequency.ONE_TIME,
                            billing_timing=Contract.Timing.ARREARS, start_date=D(2026, 1, 5), customer_name="One-time Customer")
    make_contract("Draft", status=Contract.Status.DRAFT, customer_name="Draft Customer")
    make_contract("Later", start_date=D(2027, 1, 1), customer_name="Later Customer")
    assert {c.name for c in contracts_missing_periods(cutoff=D(2026, 12, 31))} == {"Ended", "One-time"}
    periods_generate_through(cutoff=D(2026, 12, 31), today=D(2026, 12, 31))
    assert [r[0] for r in rows(ended)] == [D(2026, 1, 1), D(2026, 2, 1)]
    assert [r[0] for r in rows(on_start)] == [D(2026, 1, 5)] and rows(waiting) == []
    assert not contracts_missing_periods(cutoff=D(2026, 12, 31)).exists()


def test_creating_activating_and_extending_a_contract_stores_its_periods(tenant):
    from contracts.services import contract_create, contract_update
    from msp_billing.accounts.models import User

    admin = User.objects.get(email="billing-admin@alpha.example")
    customer = Customer.objects.create(legal_name="Service GmbH", currency="EUR")
    today = tenant_today()
    start = today.replace(day=1)
    active = contract_create(customer=customer, name="Active", type=Contract.Type.RETAINER, start_date=start,
                             fee=Decimal("100.00"), acting_user=admin)
    assert ContractPeriod.objects.filter(contract=active, start=start, bill_date=start).exists()
    draft = contract_create(customer=customer, name="Draft", type=Contract.Type.RETAINER, start_date=start,
                            fee=Decimal("100.00"), status=Contract.Status.DRAFT, end_date=start + dt.timedelta(days=40),
                            acting_user=admin)
    assert not draft.periods.exists()
    contract_update(contract=draft, data={"status": Contract.Status.ACTIVE}, acting_user=admin)
    assert [p.start for p in draft.periods.order_by("start")][:1] == [start]
    before = draft.periods.count()
    contract_update(contract=draft, data={"end_date": start + dt.timedelta(days=100)}, acting_user=admin)
    assert draft.periods.count() > before


# --- the MSP's local date ----------------------------------------------------------------


def test_today_is_the_msps_local_date(tenant, monkeypatch):
    assert tenant.timezone == "Europe/Berlin"
    late_evening_utc = dt.datetime(2026, 3, 31, 22, 30, tzinfo=dt.timezone.utc)  # 00:30 on 1 April in Berlin
    monkeypatch.setattr(timezone, "now", lambda: late_evening_utc)
    assert tenant_today() == D(2026, 4, 1)


def test_today_refuses_the_public_schema(db):
    connection.set_schema_to_public()
    with pytest.raises(TenantContextMissing):
        tenant_today()


# --- the daily task in a real Celery worker ----------------------------------------------


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    from msp_billing.celery import app
    from tests.support import celery_command, process_env, running

    mail_dir = tmp_path_factory.mktemp("mail")
    log = tmp_path_factory.mktemp("logs") / "periods-worker.log"
    with django_db_blocker.unblock():
        env = process_env(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mail_dir))

    def ready() -> bool:
        return bool(app.control.inspect(timeout=0.5).ping())

    command = celery_command(
        "worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"
    )
    with running(command, env=env, ready=ready, timeout=90, log=log):
        yield mail_dir


@pytest.fixture(scope="module")
def committed_contract(django_db_setup, django_db_blocker):
    """A contract committed in alpha (the worker only sees committed rows), removed afterwards.

    Module-scoped, so it is committed before the test's own transaction (``db``) opens;
    only the last test of this module asks for it, so no other test sees it.
    It ends today, Berlin time, and renews for a month, so one run both renews it and
    generates the periods of the renewed term.
    """
    with django_db_blocker.unblock(), schema_context("alpha"):
        today = timezone.now().astimezone(zoneinfo.ZoneInfo("Europe/Berlin")).date()
        high_water = (
            ContractPeriod.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
            Notification.objects.order_by("-pk").values_list("pk", flat=True).first() or 0,
        )
        customer = Customer.objects.create(legal_name="Worker Test Customer GmbH", currency="EUR")
        contract = Contract.objects.create(
            customer=customer, name="Worker retainer", type=Contract.Type.RETAINER, currency="EUR",
            start_date=today.replace(day=1), end_date=today, fee=Money(Decimal("100.00"), "EUR"),
            auto_renew=True, renewal_term_months=1, renewal_notice_days=10,
        )
    try:
        yield contract, today
    finally:
        with django_db_blocker.unblock(), schema_context("alpha"):
            # everything the run created in alpha, then the contract itself
            ContractPeriod.objects.filter(pk__gt=high_water[0]).delete()
            Notification.objects.filter(pk__gt=high_water[1]).delete()
            contract.delete()
            customer.delete()


@pytest.mark.worker
def test_contract_periods_daily_runs_in_a_worker_for_the_msp_that_queued_it(worker, committed_contract, db):
    from contracts.periods import term_end
    from contracts.tasks import contract_periods_daily

    contract, today = committed_contract
    with schema_context("alpha"):
        result = contract_periods_daily.delay()
    outcome = result.get(timeout=60)
    assert outcome["today"] == today.isoformat()
    assert outcome["contracts_renewed"] >= 1

    new_end = term_end(start=today + dt.timedelta(days=1), months=1)
    with schema_context("alpha"):
        contract.refresh_from_db()
        assert contract.end_date == new_end
        starts = list(ContractPeriod.objects.filter(contract=contract).order_by("start").values_list("start", flat=True))
        assert starts == [today.replace(day=1), new_end.replace(day=1)]
        assert Notification.objects.filter(contract=contract, kind=Notification.Kind.RENEWED).count() == 1
    mail = "\n".join(path.read_text() for path in sorted(worker.iterdir()))
    assert "Worker Test Customer GmbH — Worker retainer reached its end date" in mail
    assert "To: billing-admin@alpha.example, owner@alpha.example" in mail


def test_a_new_billing_cycle_replaces_unbilled_periods_and_is_refused_once_one_is_billed(tenant):
    from django.core.exceptions import ValidationError

    from contracts.services import contract_create, contract_update
    from msp_billing.accounts.models import User

    admin = User.objects.get(email="billing-admin@alpha.example")
    customer = Customer.objects.create(legal_name="Cycle GmbH", currency="EUR")
    contract = contract_create(customer=customer, name="Managed", type=Contract.Type.RETAINER, start_date=D(2026, 1, 1),
                               end_date=D(2026, 6, 30), fee=Decimal("310.00"), acting_user=admin)
    assert [r[0] for r in rows(contract)] == [D(2026, m, 1) for m in range(1, 7)]
    # Nothing billed yet: the anchor day moves and the periods follow, none left on the old grid.
    contract_update(contract=contract, data={"anchor_day": 15}, acting_user=admin)
    periods = rows(contract)
    assert [start for start, *_ in periods] == [D(2025, 12, 15)] + [D(2026, m, 15) for m in range(1, 7)]
    assert periods[0][2:] == (D(2026, 1, 1), D(2026, 1, 14), D(2026, 1, 1))  # covers 1–14 Jan, billed on 1 Jan
    assert periods[-1][2:] == (D(2026, 6, 15), D(2026, 6, 30), D(2026, 6, 15))
    # Once a period is billed the cycle stays as it was billed.
    ContractPeriod.objects.filter(contract=contract, start=D(2025, 12, 15)).update(billed_at=timezone.now())
    with pytest.raises(ValidationError) as refused:
        contract_update(contract=contract, data={"billing_frequency": Contract.Frequency.QUARTERLY}, acting_user=admin)
    assert "billed periods, so its billing frequency cannot change" in str(refused.value.message_dict["billing_frequency"])
    assert len(rows(contract)) == 7
