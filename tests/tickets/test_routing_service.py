"""Routing and rating on PostgreSQL, against amounts computed by hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from contracts.hooks import notify_routing_changed
from contracts.models import BlockLedgerEntry
from tests.tickets.builders import block, catalogue, contract, customer, eur, exclusion_set, hourly_default, rate_line, technician, ticket
from tickets import services
from tickets.models import TimeAllocation

DAY = dt.date(2026, 3, 3)  # a Tuesday


@pytest.fixture
def setup(tenant):
    remote, onsite, ooh, engineer = catalogue()
    return {"remote": remote, "onsite": onsite, "ooh": ooh, "engineer": engineer, "tech": technician(engineer)}


def log(setup, tkt, work_type, minutes, **kwargs):
    return services.time_entry_log(ticket=tkt, technician=setup["tech"], work_type=setup[work_type], date=kwargs.pop("date", DAY), minutes=minutes, **kwargs)


def allocations(entry):
    return [(a.contract.name if a.contract else None, a.bucket, a.billed_minutes, a.amount, a.value) for a in entry.allocations.order_by("id")]


@pytest.fixture
def chain(setup):
    """Retainer (excludes Onsite, Out-of-Hours) → Block Hours (excludes Out-of-Hours) → Hourly."""
    cust = customer()
    gold = exclusion_set("Gold", setup["onsite"], setup["ooh"])
    silver = exclusion_set("Silver", setup["ooh"])
    retainer = contract(cust, "retainer", priority=1, exclusion=gold, name="Managed Services", fee=eur("1000"))
    blocks = contract(cust, "block_hours", priority=2, exclusion=silver, name="Onsite Block", overage_rate=eur("150"))
    block(blocks, minutes=600)
    hourly = hourly_default(cust, "120", priority=3, name="Hourly T&M", rounding_increment=15)
    return {"customer": cust, "retainer": retainer, "block": blocks, "hourly": hourly, "ticket": ticket(cust)}


def test_the_technician_only_picks_the_work_type(setup, chain):
    remote = log(setup, chain["ticket"], "remote", 45)
    onsite = log(setup, chain["ticket"], "onsite", 60)
    ooh = log(setup, chain["ticket"], "ooh", 30)
    assert allocations(remote) == [("Managed Services", "absorbed", 45, None, eur("75.00"))]
    assert allocations(onsite) == [("Onsite Block", "deducted", 60, None, eur("100.00"))]
    # Out-of-hours: 120/h × 1.5 = 180/h, 30 minutes = 90.00, charged on the Hourly contract.
    assert allocations(ooh) == [("Hourly T&M", "charged", 30, eur("90.00"), None)]
    assert ooh.after_hours is True
    assert "Managed Services (Retainer, priority 1): work type Out-of-Hours Support excluded by set Gold" in ooh.routing_explanation
    assert "Onsite Block (Block Hours, priority 2): work type Out-of-Hours Support excluded by set Silver" in ooh.routing_explanation
    assert "× 1.5 after-hours multiplier" in ooh.routing_explanation
    assert BlockLedgerEntry.objects.get().minutes == 60


def test_a_used_up_block_bills_the_excess_as_overage_on_the_block(setup, chain):
    log(setup, chain["ticket"], "onsite", 570)
    entry = log(setup, chain["ticket"], "onsite", 90)
    # 30 minutes left in the block, 60 minutes overage at 150/h = 150.00.
    assert allocations(entry) == [
        ("Onsite Block", "deducted", 30, None, eur("50.00")),
        ("Onsite Block", "overage", 60, eur("150.00"), None),
    ]


def test_with_cascade_the_excess_passes_to_the_next_contract(setup, chain):
    chain["block"].cascade = True
    chain["block"].save()
    log(setup, chain["ticket"], "onsite", 570)
    entry = log(setup, chain["ticket"], "onsite", 90)
    # 30 deducted; 60 cascade to Hourly at 120/h = 120.00 (already a multiple of 15).
    assert allocations(entry) == [
        ("Onsite Block", "deducted", 30, None, eur("50.00")),
        ("Hourly T&M", "charged", 60, eur("120.00"), None),
    ]


def test_rounding_bills_the_increment_and_keeps_the_raw_time(setup, chain):
    entry = log(setup, chain["ticket"], "remote", 7, chosen_contract=chain["hourly"])
    assert entry.minutes == 7
    # Hourly rounds up to 15 minutes: 15 min × 120/h = 30.00, Tuesday daytime (no multiplier).
    assert allocations(entry) == [("Hourly T&M", "charged", 15, eur("30.00"), None)]
    assert "Rounded 7 → 15 minutes (15-minute increments, up)" in entry.routing_explanation
    assert "chosen on the entry" in entry.routing_explanation


def test_retainer_included_hours_cap_then_overage(setup):
    cust = customer("Capped Ltd")
    retainer = contract(cust, "retainer", priority=1, name="Capped Retainer", fee=eur("500"), included_minutes=60, overage_rate=eur("90"))
    tkt = ticket(cust)
    first = log(setup, tkt, "remote", 40)
    second = log(setup, tkt, "remote", 50)
    assert allocations(first) == [("Capped Retainer", "absorbed", 40, None, eur("66.67"))]
    # 20 minutes left of the cap; 30 minutes overage at 90/h = 45.00.
    assert allocations(second) == [
        ("Capped Retainer", "absorbed", 20, None, eur("33.33")),
        ("Capped Retainer", "overage", 30, eur("45.00"), None),
    ]
    assert retainer.pk


def test_block_money_is_valued_at_rates_and_deducted(setup):
    cust = customer("Prepaid AG")
    money = contract(cust, "block_money", priority=1, name="Prepaid 500")
    rate_line(money, "120")
    block(money, amount="500.00")
    entry = log(setup, ticket(cust), "remote", 60)
    assert allocations(entry) == [("Prepaid 500", "deducted", 60, None, eur("120.00"))]
    assert BlockLedgerEntry.objects.get().amount == Decimal("120.00")


def test_a_site_without_contracts_bills_to_its_parent(setup, chain):
    site = customer("Chain GmbH — Berlin", parent=chain["customer"])
    entry = log(setup, ticket(site), "ooh", 60)
    assert allocations(entry) == [("Hourly T&M", "charged", 60, eur("180.00"), None)]
    assert "parent customer" in entry.routing_explanation


def test_no_contract_at_all_leaves_the_entry_unrouted_and_visible(setup):
    entry = log(setup, ticket(customer("Orphan Inc")), "remote", 30)
    assert entry.is_unrouted
    assert allocations(entry) == [(None, "unrouted", 30, None, None)]
    assert "unrouted: no contract and no Hourly fallback" in entry.routing_explanation


def test_a_contract_change_reroutes_only_unbilled_entries_from_its_date(setup, chain):
    early = log(setup, chain["ticket"], "onsite", 60, date=dt.date(2026, 2, 10))
    late = log(setup, chain["ticket"], "onsite", 60, date=dt.date(2026, 3, 10))
    billed = log(setup, chain["ticket"], "onsite", 60, date=dt.date(2026, 3, 11))
    type(billed).objects.filter(pk=billed.pk).update(billed_at=timezone.now())
    # The Gold set stops excluding Onsite from 1 March: onsite work is now absorbed.
    gold = chain["retainer"].exclusion_set
    gold.work_types.remove(setup["onsite"])
    notify_routing_changed(contract_ids=[chain["retainer"].pk], effective_date=dt.date(2026, 3, 1))
    assert allocations(type(early).objects.get(pk=early.pk))[0][:2] == ("Onsite Block", "deducted")
    assert allocations(type(late).objects.get(pk=late.pk))[0][:2] == ("Managed Services", "absorbed")
    assert allocations(type(billed).objects.get(pk=billed.pk))[0][:2] == ("Onsite Block", "deducted")


def test_effective_dated_rates_and_recalculate_unbilled(setup, chain):
    before = log(setup, chain["ticket"], "ooh", 60, date=dt.date(2026, 3, 2))
    after = log(setup, chain["ticket"], "ooh", 60, date=dt.date(2026, 4, 2))
    rate_line(chain["hourly"], "140", effective_from=dt.date(2026, 4, 1))
    assert services.unbilled_recalculate(contract=chain["hourly"]) == 2
    assert TimeAllocation.objects.get(entry=before).amount == eur("180.00")  # 120 × 1.5
    assert TimeAllocation.objects.get(entry=after).amount == eur("210.00")  # 140 × 1.5


def test_technician_needs_a_role_in_their_profile(setup, chain):
    from django.core.exceptions import ValidationError

    from msp_billing.accounts.models import User

    other = User.objects.get(email="owner@alpha.example")
    with pytest.raises(ValidationError, match="no role in their profile"):
        services.time_entry_log(ticket=chain["ticket"], technician=other, work_type=setup["remote"], date=DAY, minutes=10)


@pytest.mark.parametrize("minutes", [0, -5, 24 * 60 + 1])
def test_impossible_durations_are_refused(setup, chain, minutes):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="between 1 minute and 24 hours"):
        log(setup, chain["ticket"], "remote", minutes)


def test_business_hours_decide_after_hours(setup, chain):
    tz = timezone.get_current_timezone()
    saturday = log(setup, chain["ticket"], "remote", 30, date=dt.date(2026, 3, 7))
    evening = log(setup, chain["ticket"], "remote", 30, started_at=dt.datetime(2026, 3, 3, 20, 0, tzinfo=tz), ended_at=dt.datetime(2026, 3, 3, 20, 30, tzinfo=tz))
    morning = log(setup, chain["ticket"], "remote", 30, started_at=dt.datetime(2026, 3, 3, 9, 0, tzinfo=tz), ended_at=dt.datetime(2026, 3, 3, 9, 30, tzinfo=tz))
    assert (saturday.after_hours, evening.after_hours, morning.after_hours) == (True, True, False)


# --- locking ------------------------------------------------------------------------------------


def _bill(entry):
    now = timezone.now()
    type(entry.ticket).objects.filter(pk=entry.ticket_id).update(billed_at=now)
    type(entry).objects.filter(pk=entry.pk).update(billed_at=now)


def test_billed_items_refuse_every_change_with_a_clear_message(setup, chain):
    entry = log(setup, chain["ticket"], "remote", 30)
    _bill(entry)
    for attempt in (
        lambda: services.time_entry_update(entry_id=entry.pk, minutes=45),
        lambda: services.time_entry_delete(entry_id=entry.pk),
        lambda: log(setup, chain["ticket"], "remote", 15),
        lambda: services.ticket_set_status(ticket_id=chain["ticket"].pk, status="open"),
        lambda: services.ticket_update(ticket_id=chain["ticket"].pk, title="Renamed"),
        lambda: services.ticket_merge(source_id=chain["ticket"].pk, target_id=ticket(chain["customer"]).pk),
        lambda: services.charge_add(ticket=chain["ticket"], description="Cable", date=DAY, quantity=Decimal(1), unit_price=eur("5")),
    ):
        with pytest.raises(services.LockedError, match="Open a new ticket"):
            attempt()
    # Closing a billed ticket is fine.
    assert services.ticket_set_status(ticket_id=chain["ticket"].pk, status="closed").status == "closed"


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE tickets_timeentry SET minutes = 999 WHERE id = %s",
        "DELETE FROM tickets_timeentry WHERE id = %s",
        "UPDATE tickets_ticket SET status = 'resolved' WHERE id = (SELECT ticket_id FROM tickets_timeentry WHERE id = %s)",
        "DELETE FROM tickets_timeallocation WHERE entry_id = %s",
        "INSERT INTO tickets_timeentry (ticket_id, technician_id, role_id, work_type_id, date, minutes, notes, billable, after_hours, approval, is_unrouted, routing_explanation, created_at) "
        "SELECT ticket_id, technician_id, role_id, work_type_id, date, 5, '', true, false, 'approved', false, '', now() FROM tickets_timeentry WHERE id = %s",
    ],
)
def test_the_database_itself_refuses_changes_to_billed_items(setup, chain, sql):
    entry = log(setup, chain["ticket"], "remote", 30)
    _bill(entry)
    with pytest.raises(IntegrityError, match="locked"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.pk])


def test_releasing_a_billed_item_is_allowed(setup, chain):
    entry = log(setup, chain["ticket"], "remote", 30)
    _bill(entry)
    type(entry).objects.filter(pk=entry.pk).update(billed_at=None)
    type(entry.ticket).objects.filter(pk=entry.ticket_id).update(billed_at=None)
    updated = services.time_entry_update(entry_id=entry.pk, minutes=45)
    assert allocations(updated) == [("Managed Services", "absorbed", 45, None, eur("75.00"))]


def test_parts_on_a_ticket_bill_to_its_contract_or_the_hourly_fallback(setup, chain):
    cable = services.charge_add(ticket=chain["ticket"], description="Cat6 cable", date=DAY, quantity=Decimal(3), unit_price=eur("4.50"))
    assert cable.contract == chain["hourly"]
    project = contract(chain["customer"], "project_hourly", priority=5, name="Office move")
    moving = ticket(chain["customer"], default_contract=project)
    switch = services.charge_add(ticket=moving, description="Switch", date=DAY, quantity=Decimal(1), unit_price=eur("120"))
    assert switch.contract == project
    stray = services.charge_add(ticket=ticket(customer("Nobody Pays")), description="Toner", date=DAY, quantity=Decimal(1), unit_price=eur("60"))
    assert stray.contract is None  # listed as unrouted, not dropped


# --- a customer's parent or default Hourly contract changes ------------------------------


@pytest.fixture
def admin(tenant):
    from msp_billing.accounts.models import User

    return User.objects.get(email="billing-admin@alpha.example")


def hourly_at(cust, name, rate):
    hourly = contract(cust, "hourly", name=name)
    rate_line(hourly, rate)
    return hourly


def current(entry):
    return allocations(type(entry).objects.get(pk=entry.pk))


def test_a_new_default_hourly_contract_on_the_parent_routes_its_sites_unbilled_time(setup, admin):
    from contracts.services import customer_update

    parent = customer("Chain GmbH")
    site = customer("Chain GmbH — Berlin", parent=parent)
    entry = log(setup, ticket(site), "remote", 60)  # dated 3 March, long before today
    assert current(entry) == [(None, "unrouted", 60, None, None)]
    fallback = hourly_at(parent, "Hourly T&M", "150")
    customer_update(customer=parent, data={"default_hourly_contract": fallback}, acting_user=admin)
    # The site has no contract of its own: its time falls to the parent's fallback, 60 min × 150/h.
    assert current(entry) == [("Hourly T&M", "charged", 60, eur("150.00"), None)]


def test_a_site_moved_to_another_parent_is_rerouted_at_the_new_parents_rate(setup, admin):
    from contracts.services import customer_update

    old, new = customer("Old Holding"), customer("New Holding")
    for owner, rate in ((old, "120"), (new, "150")):
        owner.default_hourly_contract = hourly_at(owner, f"Hourly {owner.legal_name}", rate)
        owner.save()
    site = customer("Shop Hamburg", parent=old)
    entry = log(setup, ticket(site), "remote", 90)
    billed = log(setup, ticket(site), "remote", 30)
    type(billed).objects.filter(pk=billed.pk).update(billed_at=timezone.now())
    assert current(entry) == [("Hourly Old Holding", "charged", 90, eur("180.00"), None)]  # 1.5 h × 120
    customer_update(customer=site, data={"parent": new}, acting_user=admin)
    assert current(entry) == [("Hourly New Holding", "charged", 90, eur("225.00"), None)]  # 1.5 h × 150
    assert current(billed) == [("Hourly Old Holding", "charged", 30, eur("60.00"), None)]  # billed: unchanged


def test_a_site_leaving_its_parent_no_longer_bills_to_the_parents_contract(setup, admin):
    from contracts.services import customer_update

    parent = customer("Chain GmbH")
    parent.default_hourly_contract = hourly_at(parent, "Hourly T&M", "120")
    parent.save()
    site = customer("Chain GmbH — Berlin", parent=parent)
    today = dt.date.today()
    weekday = today - dt.timedelta(days=max(0, today.weekday() - 4))  # a business day: no after-hours rate
    entry = log(setup, ticket(site), "remote", 60, date=weekday)
    assert current(entry) == [("Hourly T&M", "charged", 60, eur("120.00"), None)]
    # The site is no longer among the parent's sites once saved, and has no contract of its
    # own: it must still be re-routed, and is unrouted now.
    customer_update(customer=site, data={"parent": None}, acting_user=admin)
    assert current(entry) == [(None, "unrouted", 60, None, None)]
    assert type(entry).objects.get(pk=entry.pk).is_unrouted


def test_routing_many_entries_at_once_rates_each_as_routing_it_alone_and_resolves_rates_per_group(setup, chain,
                                                                                                    monkeypatch):
    """A rate change mid-month, after-hours work, a block running out and a retainer: routing the
    month in one pass bills every entry exactly as routing it alone does, while rates are
    resolved once per (contract, work type, role, after hours, stretch between rate changes)."""
    from tickets import routing
    from tickets.models import TimeEntry

    rate_line(chain["hourly"], "135", effective_from=DAY + dt.timedelta(days=10))  # a new rate from the 13th
    kinds = ("remote", "onsite", "ooh")
    entries = [log(setup, chain["ticket"], kinds[n % 3], 20 + 7 * n, date=DAY + dt.timedelta(days=n // 3),
                   after_hours=n % 5 == 0) for n in range(60)]  # logged in date order, as one pass routes them
    alone = {e.pk: allocations(e) for e in entries}  # as logged: one entry routed at a time
    assert any(rows[0][0] == "Onsite Block" and rows[-1][1] == "overage" for rows in alone.values())  # the block ran out
    hourly_days = {e.date for e in entries if alone[e.pk][0][0] == "Hourly T&M"}
    assert min(hourly_days) < DAY + dt.timedelta(days=10) <= max(hourly_days)  # billed at both rates

    resolved = []
    real = routing.resolve_rate
    monkeypatch.setattr(routing, "resolve_rate", lambda **kwargs: resolved.append(kwargs) or real(**kwargs))
    TimeAllocation.objects.all().delete()
    BlockLedgerEntry.objects.all().delete()
    with transaction.atomic():
        assert services.entries_route(TimeEntry.objects.select_related(*routing.ENTRY_RELATED)) == 60
    for entry in entries:
        assert allocations(entry) == alone[entry.pk], entry.pk  # the same contracts, minutes and money
    groups = {(kwargs["work_type"].id, kwargs["after_hours"]) for kwargs in resolved}
    assert len(resolved) <= 3 * len(groups) < 60  # per group and stretch of dates, not per entry
