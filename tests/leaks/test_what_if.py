"""What-if: last month re-rated as if on another contract, shown before anything changes."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import connection

from contracts.services import contract_create, customer_create, customer_update, rate_line_add
from leaks.whatif import last_month
from msp_billing.accounts.models import User
from msp_billing.tenants.today import tenant_today
from tests.support import email_for
from tests.tickets.builders import catalogue, technician
from tickets.models import TimeAllocation
from tickets.services import ticket_create, time_entry_log


def setup_hourly_and_gold():
    admin = User.objects.get(email=email_for("alpha", "billing_admin"))
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer, email=email_for("alpha", "technician"))
    start, _ = last_month(tenant_today())
    customer = customer_create(legal_name="Hourly Today GmbH", currency="EUR", acting_user=admin)
    hourly = contract_create(customer=customer, name="T&M", type="hourly", start_date=start - dt.timedelta(days=60),
                             acting_user=admin, rounding_increment=1)
    rate_line_add(contract=hourly, rate=Decimal("120"), effective_from=start - dt.timedelta(days=60), acting_user=admin)
    customer_update(customer=customer, data={"default_hourly_contract": hourly}, acting_user=admin)
    template = customer_create(legal_name="Gold Template", currency="EUR", acting_user=admin)
    gold = contract_create(customer=template, name="Managed Gold", type="retainer", start_date=start - dt.timedelta(days=60),
                           acting_user=admin, fee=Decimal("500"), rounding_increment=1)
    ticket = ticket_create(customer=customer, title="Work")
    time_entry_log(ticket=ticket, technician=tech, work_type=remote, date=start + dt.timedelta(days=1), minutes=120)
    return hourly, gold


def test_hourly_customer_on_gold_shows_both_totals_difference_and_effective_rates(tenant, client_for):
    hourly, gold = setup_hourly_and_gold()
    allocations = list(TimeAllocation.objects.values_list("pk", "contract_id", "amount"))
    page = client_for("alpha", "billing_admin").get(f"/leaks/what-if/{hourly.pk}/?alternative={gold.pk}")
    assert page.status_code == 200
    result = page.context["result"]
    assert (result.now.total, result.then.total, result.difference) == (Decimal("240.00"), Decimal("500.00"), Decimal("260.00"))
    assert (result.now.effective_rate, result.then.effective_rate) == (Decimal("120.00"), Decimal("250.00"))
    connection.set_tenant(tenant)
    assert list(TimeAllocation.objects.values_list("pk", "contract_id", "amount")) == allocations  # nothing written


def test_a_tampered_alternative_is_refused_with_a_message(tenant, client_for):
    hourly, gold = setup_hourly_and_gold()
    client = client_for("alpha", "billing_admin")
    for bad in ("x", "999999", str(hourly.pk)):
        response = client.get(f"/leaks/what-if/{hourly.pk}/?alternative={bad}")
        assert response.status_code == 400 and "Pick one of the listed contracts" in response.content.decode()
    assert client.get("/leaks/what-if/999999/").status_code == 404
    assert client_for("beta", "billing_admin").get(f"/leaks/what-if/{hourly.pk}/?alternative={gold.pk}").status_code in (400, 404)
