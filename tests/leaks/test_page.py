"""The Leaks page: fixes through the owning services, dismissals with a reason, refusals as 4xx."""
from __future__ import annotations

import re

import pytest
from django.db import connection

from contracts.models import Contract, ContractRateLine, DeviceClass
from leaks.models import LeakDismissal
from leaks.rules import leaks_all
from msp_billing.audit.models import AuditEvent
from tests.leaks.generator import plant
from tickets.models import TimeEntry


@pytest.fixture
def planted(tenant):
    return plant()


def leak_of(kind: str, today):
    return next(leak for leak in leaks_all(today=today) if leak.kind == kind)


def post_for(leak, **extra) -> dict:
    return {"kind": leak.kind, "key": leak.key, "fingerprint": leak.fingerprint, **extra}


def test_the_page_lists_every_leak_with_its_amount_and_the_dashboard_card_totals_them(planted, client_for, tenant):
    leaks = leaks_all(today=planted.today)
    admin = client_for("alpha", "billing_admin")
    page = admin.get("/leaks/").content.decode()
    assert len(re.findall(r'data-leak="', page)) == len(leaks)
    for leak in leaks:
        assert f'data-leak="{leak.kind}|{leak.key}"' in page
    dashboard = admin.get("/dashboard/").content.decode()
    assert 'id="leaks-card"' in dashboard and 'hx-get="/leaks/card/"' in dashboard  # the figures load after the page
    card = admin.get("/leaks/card/", HTTP_HX_REQUEST="true").content.decode()
    assert 'id="leaks-card"' in card and f"in {len(leaks)} leaks" in card


def test_mark_billable_bills_the_time_once_and_the_leak_is_gone(planted, client_for, tenant):
    leak = leak_of("time_not_billable", planted.today)
    response = client_for("alpha", "billing_admin").post("/leaks/fix/", post_for(leak))
    assert response.status_code == 302
    connection.set_tenant(tenant)
    entry = TimeEntry.objects.get(pk=planted.objects["not_billable_entry"].pk)
    assert entry.billable and sum(a.amount.amount for a in entry.allocations.all()) == leak.amount
    assert all(found.kind != "time_not_billable" for found in leaks_all(today=planted.today))
    assert AuditEvent.objects.filter(action="leak_fixed").count() == 1
    again = client_for("alpha", "billing_admin").post("/leaks/fix/", post_for(leak))
    assert again.status_code == 409 and "no longer there" in again.content.decode()


def test_rerate_adds_a_rate_line_at_the_catalogue_rate_from_today(planted, client_for, tenant):
    leak = leak_of("rate_stale", planted.today)
    assert client_for("alpha", "billing_admin").post("/leaks/fix/", post_for(leak)).status_code == 302
    connection.set_tenant(tenant)
    latest = ContractRateLine.objects.filter(contract=planted.objects["stale_contract"]).latest("effective_from")
    assert latest.effective_from == planted.today and str(latest.rate.amount) == "100.0000"
    assert all(found.kind != "rate_stale" for found in leaks_all(today=planted.today))


def test_add_device_line_with_the_price_given(planted, client_for, tenant):
    leak = leak_of("devices_unbilled", planted.today)
    client = client_for("alpha", "billing_admin")
    bad = client.post("/leaks/fix/", post_for(leak, unit_price="ten"))
    assert bad.status_code == 400 and "price per device" in bad.content.decode()
    assert client.post("/leaks/fix/", post_for(leak, unit_price="12.50")).status_code == 302
    connection.set_tenant(tenant)
    added = DeviceClass.objects.get(contract=planted.objects["rmm_contract"], name="Servers")
    assert str(added.unit_price.amount) == "12.5000" and added.counts.get().count == 5


def test_route_to_a_contract_refuses_a_contract_the_entry_cannot_take(planted, client_for, tenant, other_tenant):
    leak = leak_of("time_unrouted", planted.today)
    client = client_for("alpha", "billing_admin")
    other = Contract.objects.exclude(customer=planted.objects["unrouted_entry"].ticket.customer).first()
    for contract in (str(other.pk), "999999", "x", ""):
        response = client.post("/leaks/fix/", post_for(leak, contract=contract))
        assert response.status_code == 400, contract
        assert "Pick one of the customer" in response.content.decode()
    connection.set_tenant(tenant)
    assert TimeEntry.objects.get(pk=planted.objects["unrouted_entry"].pk).is_unrouted


def test_route_time_to_a_contract_the_customer_has(planted, client_for, tenant):
    from contracts.services import contract_create

    customer = planted.objects["unrouted_entry"].ticket.customer
    hourly = contract_create(customer=customer, name="Onsite T&M", type="hourly", start_date=planted.today.replace(day=1)
                             if planted.objects["unrouted_entry"].date >= planted.today.replace(day=1) else planted.objects["unrouted_entry"].date,
                             acting_user=planted.admin, priority=50, exclusion_set=None)
    # A new contract re-routes unbilled time: the entry is taken and the leak is gone without a click.
    assert all(found.key != f"entry:{planted.objects['unrouted_entry'].pk}" for found in leaks_all(today=planted.today))
    assert TimeEntry.objects.get(pk=planted.objects["unrouted_entry"].pk).allocations.get().contract == hourly


def test_a_stale_or_tampered_fix_changes_nothing(planted, client_for, tenant):
    leak = leak_of("rate_stale", planted.today)
    client = client_for("alpha", "billing_admin")
    stale = client.post("/leaks/fix/", post_for(leak, fingerprint="0" * 16))
    assert stale.status_code == 409 and "changed since the page was loaded" in stale.content.decode()
    unknown = client.post("/leaks/fix/", {"kind": "rate_stale", "key": "rate:999999", "fingerprint": "x"})
    assert unknown.status_code == 409
    no_fix = leak_of("part_below_cost", planted.today)
    refused = client.post("/leaks/fix/", post_for(no_fix))
    assert refused.status_code == 400 and "no one-click fix" in refused.content.decode()
    connection.set_tenant(tenant)
    assert ContractRateLine.objects.filter(contract=planted.objects["stale_contract"]).count() == 1


def test_a_dismissal_needs_a_reason_is_audited_and_lapses_when_the_data_changes(planted, client_for, tenant):
    leak = leak_of("block_overage_unbilled", planted.today)
    client = client_for("alpha", "billing_admin")
    refused = client.post("/leaks/dismiss/", post_for(leak, reason="  "))
    assert refused.status_code == 400 and "Say why" in refused.content.decode()
    assert client.post("/leaks/dismiss/", post_for(leak, reason="Agreed with the customer")).status_code == 302
    page = client.get("/leaks/").content.decode()
    assert f'data-leak="{leak.kind}|{leak.key}"' not in page
    connection.set_tenant(tenant)
    assert LeakDismissal.objects.get().reason == "Agreed with the customer"
    assert AuditEvent.objects.get(action="leak_dismissed").after["reason"] == "Agreed with the customer"
    # More overage on the same block: the data changed, the leak is back with the new amount.
    from tickets.services import ticket_create, ticket_set_status, time_entry_log

    customer = planted.objects["block_contract"].customer
    ticket = ticket_create(customer=customer, title="More work")
    entry = planted.objects["not_billable_entry"]
    time_entry_log(ticket=ticket, technician=entry.technician, work_type=entry.work_type, date=leak_date(planted), minutes=60)
    ticket_set_status(ticket_id=ticket.pk, status="resolved")
    back = next(found for found in leaks_all(today=planted.today) if found.key == leak.key)
    assert back.amount > leak.amount
    assert f'data-leak="{leak.kind}|{leak.key}"' in client.get("/leaks/").content.decode()


def leak_date(planted):
    import datetime as dt

    return planted.today - dt.timedelta(days=45)


def test_accountant_reads_the_leaks_without_fix_or_dismiss(planted, client_for):
    page = client_for("alpha", "accountant").get("/leaks/").content.decode()
    assert "data-leak=" in page and "/leaks/fix/" not in page and "/leaks/dismiss/" not in page
    assert client_for("alpha", "technician").get("/leaks/").status_code == 403


def test_another_msp_sees_none_of_these_leaks_and_cannot_act_on_them(planted, client_for, tenant):
    leak = leak_of("rate_stale", planted.today)
    beta = client_for("beta", "billing_admin")
    assert "data-leak=" not in beta.get("/leaks/").content.decode()
    assert beta.post("/leaks/fix/", post_for(leak)).status_code == 409
    connection.set_tenant(tenant)
    assert ContractRateLine.objects.filter(contract=planted.objects["stale_contract"]).count() == 1
