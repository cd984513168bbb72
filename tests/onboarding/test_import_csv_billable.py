"""CSV time import: billable time apart from the time worked."""
from __future__ import annotations

from decimal import Decimal

import pytest

from onboarding.importing_csv import time_csv_import, time_csv_preview
from tests.tickets.builders import catalogue, customer, hourly_default, technician, ticket
from tickets.models import TimeEntry

TECH = "technician@alpha.example"


@pytest.fixture
def setup(tenant):
    _remote, _onsite, _ooh, engineer = catalogue()
    technician(engineer)
    cust = customer()
    hourly = hourly_default(cust, "100", name="Hourly 100", rounding_increment=15, rounding_minimum=60)
    return {"ticket": ticket(cust)}


def test_billable_minutes_and_hours_columns_bill_what_they_say(setup):
    tkt = setup["ticket"].pk
    text = (
        "Date,Customer,Ticket,Technician,Work Type,Hours,Billable Minutes,Billable Hours,Notes\n"
        f"2026-03-03,Chain GmbH,#{tkt},{TECH},Onsite Support,2,45,,Visit\n"
        f"2026-03-04,Chain GmbH,#{tkt},{TECH},Onsite Support,1,0,,Warranty\n"
        f"2026-03-05,Chain GmbH,#{tkt},{TECH},Onsite Support,1,,0.5,Half\n"
        f"2026-03-06,Chain GmbH,#{tkt},{TECH},Onsite Support,0.5,,,Logged\n"
        f"2026-03-07,Chain GmbH,#{tkt},{TECH},Onsite Support,2,150,,Too much\n"
        f"2026-03-08,Chain GmbH,#{tkt},{TECH},Onsite Support,2,45,1,Disagree\n"
    )
    preview = time_csv_preview(text=text)
    assert [(r.row, r.minutes, r.billable_minutes) for r in preview.accepted] == [
        (2, 120, 45), (3, 60, 0), (4, 60, 30), (5, 30, None)]
    assert [str(p) for p in preview.rejected] == [
        "Row 6, Billable Minutes: billable time (150 minutes) is more than the time worked (120 minutes)",
        "Row 7, Billable Minutes: 45 billable minutes does not match 1 billable hours",
    ]
    time_csv_import(text=text, fingerprint=preview.fingerprint)
    amounts = {e.notes: e.allocations.get().amount.amount for e in TimeEntry.objects.all()}
    # 45 min and 30 min at 100/h, billed as given; 0 bills 0.00; 30 logged minutes round up to the 60-minute minimum.
    assert amounts == {"Visit": Decimal("75.00"), "Warranty": Decimal("0.00"), "Half": Decimal("50.00"),
                       "Logged": Decimal("100.00")}


def test_absurd_billable_time_is_a_row_problem(setup):
    tkt = setup["ticket"].pk
    text = (
        "Date,Customer,Ticket,Technician,Work Type,Hours,Billable Minutes,Billable Hours,Notes\n"
        f"2026-03-03,Chain GmbH,#{tkt},{TECH},Onsite Support,2,1e30,,Absurd\n"
        f"2026-03-04,Chain GmbH,#{tkt},{TECH},Onsite Support,2,,-1,Negative\n"
        f"2026-03-05,Chain GmbH,#{tkt},{TECH},Onsite Support,0,0,,Nothing worked\n"
    )
    preview = time_csv_preview(text=text)
    assert not preview.accepted
    assert [str(p) for p in preview.rejected] == [
        "Row 2, Billable Minutes: billable time must be between 0 and 24 hours",
        "Row 3, Billable Hours: billable time must be between 0 and 24 hours",
        "Row 4, Hours: time worked must be between 1 minute and 24 hours",
    ]
