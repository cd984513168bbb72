"""Billable minutes apart from the logged span: 45 billable minutes of a 2-hour visit, or 0."""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing import services as billing_services
from contracts.models import BlockLedgerEntry
from msp_billing.accounts.models import User
from tests.tickets.builders import block, catalogue, contract, customer, eur, hourly_default, technician, ticket
from tickets import services
from tickets.models import TimeEntry

DAY = dt.date(2026, 3, 3)  # a Tuesday
CUTOFF = dt.date(2026, 3, 31)


@pytest.fixture
def setup(tenant):
    remote, onsite, _ooh, engineer = catalogue()
    cust = customer("Visit GmbH")
    # Hourly at 100/h with a rounding rule that would turn 45 minutes into 60: 15-minute steps, minimum 60.
    hourly = hourly_default(cust, "100", priority=3, name="Hourly 100", rounding_increment=15, rounding_minimum=60)
    return {"remote": remote, "onsite": onsite, "tech": technician(engineer), "customer": cust, "hourly": hourly,
            "ticket": ticket(cust)}


def visit(hour_from: int, hour_to: int):
    tz = zoneinfo.ZoneInfo("Europe/Berlin")
    return (dt.datetime(2026, 3, 3, hour_from, 0, tzinfo=tz), dt.datetime(2026, 3, 3, hour_to, 0, tzinfo=tz))


def log(setup, **kwargs):
    kwargs.setdefault("work_type", setup["remote"])
    return services.time_entry_log(ticket=kwargs.pop("tkt", setup["ticket"]), technician=setup["tech"], date=DAY, **kwargs)


def allocations(entry):
    return [(a.contract.name, a.bucket, a.minutes, a.billed_minutes, a.amount, a.value) for a in entry.allocations.order_by("id")]


def test_45_billable_minutes_of_a_2_hour_visit_bill_75_on_hourly_100(setup):
    start, end = visit(9, 11)
    entry = log(setup, started_at=start, ended_at=end, billable_minutes=45)
    assert (entry.minutes, entry.billable_minutes) == (120, 45)
    # 45 min × 100/h = 75.00; given as billable, so not rounded up to the 60-minute minimum.
    assert allocations(entry) == [("Hourly 100", "charged", 45, 45, eur("75.00"), None)]
    assert "Billable 45 min of a 2 h visit: billed as given, without rounding." in entry.routing_explanation


def test_without_billable_minutes_the_logged_time_is_rounded_and_said_so(setup):
    entry = log(setup, minutes=50)
    # 50 → 60 (15-minute steps up, minimum 60): 100.00.
    assert allocations(entry) == [("Hourly 100", "charged", 60, 60, eur("100.00"), None)]
    assert "Logged 50 min: the time worked is billed." in entry.routing_explanation
    assert "Rounded 50 → 60 minutes" in entry.routing_explanation


def test_0_billable_minutes_bill_0_and_stay_visible_on_the_invoice(setup, client_for):
    start, end = visit(9, 11)
    free = log(setup, started_at=start, ended_at=end, billable_minutes=0, notes="Warranty visit")
    paid = log(setup, started_at=start, ended_at=end, billable_minutes=45)
    assert allocations(free) == [("Hourly 100", "charged", 0, 0, eur("0.00"), None)]
    services.ticket_set_status(ticket_id=setup["ticket"].pk, status="resolved")
    admin = User.objects.get(email="billing-admin@alpha.example")
    batch = billing_services.batch_run(name="March", cutoff=CUTOFF, selection=billing_services.selection_everything_due(cutoff=CUTOFF),
                                       consolidated=False, acting_user=admin)
    invoice = billing_services.batch_invoices(batch).get()
    amounts = sorted((line.amount for line in invoice.lines.all() if line.time_allocation_id), key=Decimal)
    assert amounts == [Decimal("0.00"), Decimal("75.00")]
    assert invoice.subtotal == Decimal("75.00")
    assert TimeEntry.objects.get(pk=free.pk).billed_at is not None
    assert TimeEntry.objects.get(pk=paid.pk).billed_at is not None
    page = client_for("alpha", "billing_admin").get(reverse("tickets:detail", args=[setup["ticket"].pk])).content.decode()
    assert "120 min (0 min billable)" in page and "120 min (45 min billable)" in page


def test_blocks_deduct_and_retainers_absorb_the_billable_minutes(setup):
    cust = customer("Block AG")
    blocks = contract(cust, "block_hours", priority=1, name="Ten Hours", rounding_increment=30)
    block(blocks, minutes=600)
    start, end = visit(9, 11)
    entry = log(setup, tkt=ticket(cust), started_at=start, ended_at=end, billable_minutes=45)
    assert [(a.bucket, a.minutes) for a in entry.allocations.all()] == [("deducted", 45)]
    assert BlockLedgerEntry.objects.get(block__contract=blocks).minutes == 45

    retained = customer("Retainer AG")
    contract(retained, "retainer", priority=1, name="Capped", fee=eur("500"), included_minutes=60, overage_rate=eur("90"))
    first = log(setup, tkt=ticket(retained), started_at=start, ended_at=end, billable_minutes=45)
    second = log(setup, tkt=ticket(retained), minutes=30)
    assert [(a.bucket, a.minutes) for a in first.allocations.all()] == [("absorbed", 45)]
    # 15 of the 60 included minutes are left: 15 absorbed, 15 overage at 90/h = 22.50.
    assert [(a.bucket, a.minutes, a.amount) for a in second.allocations.order_by("id")] == [
        ("absorbed", 15, None), ("overage", 15, eur("22.50"))]


@pytest.mark.parametrize("billable,message", [
    (121, "cannot be more than the time worked (120 minutes)"),
    (-5, "0 or more"),
])
def test_bad_billable_minutes_are_refused_and_nothing_is_logged(setup, billable, message):
    start, end = visit(9, 11)
    with pytest.raises(ValidationError, match=re.escape(message)):
        log(setup, started_at=start, ended_at=end, billable_minutes=billable)
    assert not TimeEntry.objects.exists()


def test_changing_billable_minutes_reroutes_the_entry(setup):
    entry = log(setup, minutes=120, billable_minutes=45)
    entry = services.time_entry_update(entry_id=entry.pk, billable_minutes=90)
    assert allocations(entry) == [("Hourly 100", "charged", 90, 90, eur("150.00"), None)]
    entry = services.time_entry_update(entry_id=entry.pk, billable_minutes=None)
    assert allocations(entry) == [("Hourly 100", "charged", 120, 120, eur("200.00"), None)]


def test_the_technician_form_takes_billable_time(setup, client_for):
    client = client_for("alpha", "technician")
    url = reverse("tickets:log_time", args=[setup["ticket"].pk])
    form = {"work_type": setup["remote"].pk, "date": "2026-03-03", "started_at": "2026-03-03T09:00",
            "ended_at": "2026-03-03T11:00", "after_hours": "no", "billable": "on"}
    refused = client.post(url, {**form, "billable_time": "2:30"})
    assert refused.status_code == 400
    assert "cannot be more than the time worked" in refused.content.decode()
    assert not TimeEntry.objects.exists()
    assert client.post(url, {**form, "billable_time": "45"}).status_code == 302
    entry = TimeEntry.objects.get()
    assert (entry.minutes, entry.billable_minutes) == (120, 45)
    assert entry.allocations.get().amount == eur("75.00")
