"""Retainer consumption counts each retainer over its own billing period, as routing counts its included hours."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from tests.support import body
from tests.tickets.builders import catalogue, contract, customer, eur, technician, ticket
from tickets import services


@pytest.fixture
def retainers(tenant):
    remote, _onsite, _ooh, engineer = catalogue()
    tech = technician(engineer)
    quarterly_customer, anchored_customer = customer("Quarterly Ltd"), customer("Fifteenth GmbH")
    quarterly = contract(quarterly_customer, "retainer", priority=1, name="Quarterly Care", fee=eur("1500"),
                         included_minutes=300, overage_rate=eur("90"), billing_frequency="quarterly",
                         start_date=dt.date(2026, 1, 1))
    anchored = contract(anchored_customer, "retainer", priority=1, name="Mid-month Care", fee=eur("500"),
                        included_minutes=120, overage_rate=eur("90"), billing_frequency="monthly", anchor_day=15,
                        start_date=dt.date(2026, 1, 15))

    def log(cust, day, minutes):
        return services.time_entry_log(ticket=ticket(cust), technician=tech, work_type=remote, date=day, minutes=minutes)

    # Quarter Jan–Mar: 120 min in January, 240 in March: 300 absorbed, 60 over the cap.
    log(quarterly_customer, dt.date(2026, 1, 20), 120)
    log(quarterly_customer, dt.date(2026, 3, 3), 240)
    # Period 15 Feb – 14 Mar: 60 min on 20 Feb, 30 on 10 Mar; 45 on 16 Mar is the next period.
    log(anchored_customer, dt.date(2026, 2, 20), 60)
    log(anchored_customer, dt.date(2026, 3, 10), 30)
    log(anchored_customer, dt.date(2026, 3, 16), 45)
    return quarterly, anchored


def test_each_retainer_is_measured_over_its_own_period(client_for, retainers):
    quarterly, anchored = retainers
    client = client_for("alpha", "accountant")
    url = reverse("reports:blocks") + "?month=2026-03-05"
    rows = {r["contract"].pk: r for r in client.get(url).context["retainers"]}
    assert rows[quarterly.pk]["period"] == (dt.date(2026, 1, 1), dt.date(2026, 3, 31))
    assert (rows[quarterly.pk]["used"], rows[quarterly.pk]["left"], rows[quarterly.pk]["overage"]) == (300, 0, 60)
    assert rows[quarterly.pk]["percent"] == Decimal("100.0")
    assert rows[anchored.pk]["period"] == (dt.date(2026, 2, 15), dt.date(2026, 3, 14))
    assert (rows[anchored.pk]["used"], rows[anchored.pk]["left"], rows[anchored.pk]["overage"]) == (90, 30, 0)
    page = client.get(url).content.decode()
    assert f'<tr class="attention-row" data-contract="{quarterly.pk}">' in page  # overage billed: flagged
    # The CSV says the same, with the period.
    response = client.get(url + "&format=csv")
    by_contract = {r["Contract"]: r for r in csv.DictReader(io.StringIO(body(response).decode())) if r["Kind"] == "Retainer"}
    assert (by_contract["Quarterly Care"]["Period from"], by_contract["Quarterly Care"]["Period to"]) == ("2026-01-01", "2026-03-31")
    assert (by_contract["Quarterly Care"]["Used"], by_contract["Quarterly Care"]["Overage"]) == ("5.00", "1.00")
    assert by_contract["Mid-month Care"]["Used"] == "1.50"
    # A date in the next period of the anchored retainer counts that period alone.
    later = {r["contract"].pk: r for r in client.get(reverse("reports:blocks") + "?month=2026-03-20").context["retainers"]}
    assert later[anchored.pk]["period"] == (dt.date(2026, 3, 15), dt.date(2026, 4, 14)) and later[anchored.pk]["used"] == 45
