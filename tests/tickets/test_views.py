"""Ticket and time pages as a technician and a billing admin use them."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from tests.tickets.builders import catalogue, contract, customer, eur, exclusion_set, hourly_default, technician, ticket
from tickets.models import Ticket, TimeEntry


@pytest.fixture
def chain(tenant):
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer)
    cust = customer()
    gold = exclusion_set("Gold", onsite, ooh)
    retainer = contract(cust, "retainer", priority=1, exclusion=gold, name="Managed Services", fee=eur("1000"))
    hourly = hourly_default(cust, "120", priority=3, name="Hourly T&M", rounding_increment=15)
    return {"ticket": ticket(cust), "remote": remote, "onsite": onsite, "retainer": retainer, "hourly": hourly, "tech": tech, "customer": cust}


def post_time(client, tkt, **data):
    payload = {"date": "2026-03-03", "after_hours": "auto", "billable": "on", **data}
    return client.post(f"/tickets/{tkt.pk}/time/", payload, follow=True)


def test_technician_logs_time_and_sees_the_contract_but_no_money(client_for, chain):
    client = client_for("alpha", "technician")
    response = post_time(client, chain["ticket"], work_type=chain["onsite"].pk, duration="1:30")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Logged 90 minutes of Onsite Support: Hourly T&amp;M." in page
    assert "Hourly T&amp;M" in page and "€" not in page and "EUR" not in page
    entry = TimeEntry.objects.get()
    detail = client.get(f"/tickets/time/{entry.pk}/").content.decode()
    assert "excluded by set Gold" in detail and "Rate —" not in detail and "€" not in detail


def test_billing_admin_sees_the_amount_and_the_rate_rule(client_for, chain):
    client = client_for("alpha", "technician")
    post_time(client, chain["ticket"], work_type=chain["onsite"].pk, duration="90")
    entry = TimeEntry.objects.get()
    admin = client_for("alpha", "billing_admin")
    detail = admin.get(f"/tickets/time/{entry.pk}/").content.decode()
    assert "€180.00" in detail  # 90 minutes at 120/h
    assert "Rate — Hourly T&amp;M: contract default rate, effective 2026-01-01" in detail


@pytest.mark.parametrize(
    "data,message",
    [
        ({"duration": "soon"}, "is not a duration"),
        ({"duration": ""}, "Enter the time worked, or a start and an end."),
        ({"duration": "25:00"}, "between 1 minute and 24 hours"),
        ({"work_type": "999999"}, "Select a valid choice"),
        ({"date": "2026-02-30"}, "Enter a valid date"),
    ],
)
def test_bad_time_input_is_explained_and_nothing_is_saved(client_for, chain, data, message):
    payload = {"work_type": chain["remote"].pk, "duration": "30", **data}
    response = post_time(client_for("alpha", "technician"), chain["ticket"], **payload)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not TimeEntry.objects.exists()


def test_a_contract_of_another_customer_cannot_be_chosen(client_for, chain):
    other = contract(customer("Someone Else"), "hourly", name="Not yours")
    response = post_time(client_for("alpha", "technician"), chain["ticket"], work_type=chain["remote"].pk, duration="30", chosen_contract=other.pk)
    assert response.status_code == 400
    assert not TimeEntry.objects.exists()


def test_another_msps_ticket_is_not_found(client_for, chain):
    with schema_context("beta"):
        assert not Ticket.objects.filter(pk=chain["ticket"].pk).exists()
    client = client_for("beta", "technician")
    assert client.get(f"/tickets/{chain['ticket'].pk}/").status_code == 404
    assert client.post(f"/tickets/{chain['ticket'].pk}/time/", {"work_type": 1, "duration": "30", "date": "2026-03-03"}).status_code == 404


def test_route_preview_shows_where_the_time_goes_without_saving(client_for, chain):
    client = client_for("alpha", "technician")
    response = client.get(f"/tickets/{chain['ticket'].pk}/time/preview/", {"work_type": chain["remote"].pk, "duration": "45", "date": "2026-03-03", "after_hours": "auto", "billable": "on"})
    assert response.status_code == 200
    assert "Managed Services" in response.content.decode()
    assert not TimeEntry.objects.exists()


def test_a_billed_ticket_refuses_reopening_and_more_time(client_for, chain):
    tkt = chain["ticket"]
    Ticket.objects.filter(pk=tkt.pk).update(billed_at=timezone.now(), status="resolved")
    client = client_for("alpha", "billing_admin")
    reopen = client.post(f"/tickets/{tkt.pk}/status/", {"status": "open"})
    assert reopen.status_code == 409
    assert "cannot be reopened. Open a new ticket for further work." in reopen.content.decode()
    more = post_time(client, tkt, work_type=chain["remote"].pk, duration="30")
    assert more.status_code == 400 and "Open a new ticket" in more.content.decode()
    assert Ticket.objects.get(pk=tkt.pk).status == "resolved"


def test_tickets_list_searches_and_filters(client_for, chain):
    ticket(customer("Other Co"), status="resolved")
    client = client_for("alpha", "technician")
    page = client.get("/tickets/", {"scope": "all", "q": "Printer", "status": "open"}).content.decode()
    assert ">Chain GmbH</td>" in page and ">Other Co</td>" not in page
    assert client.get("/tickets/", {"customer": "999999"}).status_code == 400


def test_technician_creates_a_ticket(client_for, chain):
    client = client_for("alpha", "technician")
    response = client.post("/tickets/new/", {"customer": chain["customer"].pk, "title": "VPN down"})
    assert response.status_code == 302
    assert Ticket.objects.filter(title="VPN down").exists()
    assert client.post("/tickets/new/", {"customer": chain["customer"].pk, "title": ""}).status_code == 400


def test_unrouted_time_is_listed_for_billing(client_for, chain):
    lonely = ticket(customer("Nobody Pays"))
    post_time(client_for("alpha", "technician"), lonely, work_type=chain["remote"].pk, duration="20")
    page = client_for("alpha", "billing_admin").get("/tickets/unrouted/").content.decode()
    assert "Nobody Pays" in page
    assert client_for("alpha", "technician").get("/tickets/unrouted/").status_code == 403


def test_settings_set_a_technicians_role(client_for, chain):
    from contracts.models import Role
    from msp_billing.accounts.models import User
    from tickets.models import TechnicianProfile

    architect = Role.objects.create(name="Architect", default_rate=eur("160"), cost_rate=eur("70"))
    accountant = User.objects.get(email="accountant@alpha.example")
    admin = client_for("alpha", "billing_admin")
    assert admin.get("/tickets/technician-roles/").status_code == 200
    response = admin.post("/tickets/technician-roles/", {"user": accountant.pk, "role": architect.pk})
    assert response.status_code == 302
    assert TechnicianProfile.objects.get(user=accountant).role == architect
    assert admin.post("/tickets/technician-roles/", {"user": accountant.pk, "role": "x"}).status_code == 400
    assert client_for("alpha", "technician").get("/tickets/technician-roles/").status_code == 403


def test_technician_adds_a_part_at_its_catalogue_price_and_never_sees_prices(client_for, chain):
    from contracts.models import Product
    from tickets.models import Charge

    Product.objects.create(sku="SSD-1TB", name="SSD 1 TB", price=eur("89.00"), cost=eur("60.00"))
    tech = client_for("alpha", "technician")
    page = tech.get(f"/tickets/{chain['ticket'].pk}/").content.decode()
    assert "Unit price" not in page and "89" not in page
    product = Product.objects.get()
    response = tech.post(f"/tickets/{chain['ticket'].pk}/charges/", {"product": product.pk, "quantity": "2", "date": "2026-03-03", "unit_price": "0.01"})
    assert response.status_code == 302
    charge = Charge.objects.get()
    assert (charge.unit_price, charge.quantity, charge.contract) == (eur("89.00"), 2, chain["hourly"])
    assert tech.post(f"/tickets/{chain['ticket'].pk}/charges/", {"quantity": "1", "date": "2026-03-03"}).status_code == 400


def test_a_price_in_another_currency_is_refused(client_for, chain):
    from djmoney.money import Money

    from contracts.models import Product

    product = Product.objects.create(sku="UPS", name="UPS", price=Money("120.00", "USD"), cost=Money("80.00", "USD"))
    response = client_for("alpha", "billing_admin").post(f"/tickets/{chain['ticket'].pk}/charges/", {"product": product.pk, "quantity": "1", "date": "2026-03-03"})
    assert response.status_code == 400
    assert "priced in USD; this customer is billed in EUR" in response.content.decode()


def test_dashboard_shows_ready_work_and_what_needs_attention(client_for, chain):
    from tickets import services

    tech = chain["tech"]
    services.time_entry_log(ticket=chain["ticket"], technician=tech, work_type=chain["onsite"], date=dt.date(2026, 3, 3), minutes=90)
    services.ticket_set_status(ticket_id=chain["ticket"].pk, status="resolved")
    lonely = ticket(customer("Nobody Pays"))
    services.time_entry_log(ticket=lonely, technician=tech, work_type=chain["remote"], date=dt.date(2026, 3, 3), minutes=20)
    page = client_for("alpha", "billing_admin").get("/dashboard/").content.decode()
    ready = page.split('data-widget="state-ready"')[1].split("</li>")[0]
    assert "€180.00" in ready  # 90 minutes at 120/h on the Hourly contract, ready to bill
    unrouted = page.split('data-widget="unrouted-time"')[1].split("</li>")[0]
    assert ">1 <" in unrouted.replace("</span>", "<") and "20 min" in unrouted


def test_an_expense_on_the_ticket_page_needs_a_description_and_a_price(client_for, chain):
    from tickets.models import Charge

    client = client_for("alpha", "billing_admin")
    url = f"/tickets/{chain['ticket'].pk}/charges/"
    unpriced = client.post(url, {"product": "", "description": "Parking", "date": "2026-03-03", "quantity": "1"})
    assert unpriced.status_code == 400 and "An expense needs a unit price." in unpriced.content.decode()
    nameless = client.post(url, {"product": "", "description": "", "date": "2026-03-03", "quantity": "1", "unit_price": "5"})
    assert nameless.status_code == 400 and "Describe the expense, or pick a product." in nameless.content.decode()
    assert not Charge.objects.exists()
    logged = client.post(url, {"product": "", "description": "Parking", "date": "2026-03-03", "quantity": "1", "unit_price": "5"})
    assert logged.status_code == 302 and Charge.objects.get().description == "Parking"
