"""Time approval (Approve & Post) switched on and off from Settings: who may, the audit trail, waiting time."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from billing.readiness import ready_time_allocations
from msp_billing.audit.models import AuditEvent
from msp_billing.tenants.models import Msp
from tests.tickets.builders import catalogue, customer, hourly_default, technician, ticket
from tickets import services
from tickets.models import Ticket, TimeEntry

DAY = dt.date(2026, 3, 3)
CUTOFF = dt.date(2026, 3, 31)
URL = "/settings/time-approval/"


@pytest.fixture
def work(tenant):
    remote, _onsite, _ooh, engineer = catalogue()
    tech = technician(engineer)
    cust = customer()
    hourly = hourly_default(cust, "100", name="Hourly 100")
    done, still_open = ticket(cust), ticket(cust)
    log = lambda tkt: services.time_entry_log(ticket=tkt, technician=tech, work_type=remote, date=DAY, minutes=60)
    entries = {"done": log(done), "open": log(still_open)}
    services.ticket_set_status(ticket_id=done.pk, status="resolved")
    return {"done": done, "open": still_open, "entries": entries}


def approval_on() -> bool:
    return Msp.objects.get(schema_name="alpha").time_approval_required


def ready_ids() -> set[int]:
    return set(ready_time_allocations(cutoff=CUTOFF).values_list("entry_id", flat=True))


@pytest.mark.parametrize("role", ["owner", "billing_admin"])
def test_an_admin_switches_approval_on_and_it_is_audited(work, client_for, role):
    client = client_for("alpha", role)
    page = client.get(URL)
    assert page.status_code == 200 and "Time approval is <strong id=\"approval-state\">off</strong>" in page.content.decode()
    response = client.post(URL, {"time_approval_required": "on"})
    assert response.status_code == 302
    assert approval_on() is True
    event = AuditEvent.objects.get(action="time_approval_switched")
    assert event.actor_label == f"{role.replace('_', '-')}@alpha.example"
    assert (event.before, event.after) == ({"time_approval_required": False}, {"time_approval_required": True})
    assert event.at is not None
    page = client.get(URL).content.decode()
    assert f"{role.replace('_', '-')}@alpha.example · Time approval switched on" in page
    assert "Time approval is <strong>on</strong>" in client.get("/settings/").content.decode()


def test_switching_on_makes_time_on_open_tickets_wait_and_keeps_done_time_ready(work, client_for):
    entries = work["entries"]
    assert ready_ids() == {entries["done"].pk}
    client_for("alpha", "billing_admin").post(URL, {"time_approval_required": "on"})
    assert TimeEntry.objects.get(pk=entries["open"].pk).approval == "pending"
    assert TimeEntry.objects.get(pk=entries["done"].pk).approval == "approved"
    assert ready_ids() == {entries["done"].pk}  # open work is not billed without approval
    services.ticket_set_status(ticket_id=work["open"].pk, status="resolved")
    assert ready_ids() == {entries["done"].pk}  # now it waits for an admin's approval
    assert "1 unbilled time entries on open tickets now wait" in AuditEvent.objects.get(action="time_approval_switched").message


def test_switching_off_makes_waiting_time_ready_once_its_ticket_is_done(work, client_for):
    client = client_for("alpha", "billing_admin")
    client.post(URL, {"time_approval_required": "on"})
    services.ticket_set_status(ticket_id=work["open"].pk, status="in_progress")
    waiting_done = services.time_entry_log(ticket=Ticket.objects.get(pk=work["open"].pk),
                                           technician=work["entries"]["open"].technician,
                                           work_type=work["entries"]["open"].work_type, date=DAY, minutes=30)
    assert waiting_done.approval == "pending"
    assert client.post(URL, {}).status_code == 302  # unticked: off
    assert approval_on() is False
    # Waiting entries keep their state but are ready by the ticket again: the open ticket's wait for it to be done.
    assert ready_ids() == {work["entries"]["done"].pk}
    services.ticket_set_status(ticket_id=work["open"].pk, status="closed")
    assert ready_ids() == {work["entries"]["done"].pk, work["entries"]["open"].pk, waiting_done.pk}
    assert AuditEvent.objects.filter(action="time_approval_switched").count() == 2


@pytest.mark.parametrize("role", ["technician", "accountant"])
def test_technicians_and_accountants_get_403_and_nothing_changes(work, client_for, role):
    client = client_for("alpha", role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"time_approval_required": "on"}).status_code == 403
    assert approval_on() is False
    assert not AuditEvent.objects.filter(action="time_approval_switched").exists()


def test_saving_the_same_state_records_nothing(work, client_for):
    assert client_for("alpha", "billing_admin").post(URL, {}).status_code == 302
    assert not AuditEvent.objects.filter(action="time_approval_switched").exists()


def test_a_value_that_is_not_on_or_off_is_refused(work):
    from tests.invoices.builders import admin

    with pytest.raises(ValidationError, match="on or off"):
        services.time_approval_switch(required="yes", acting_user=admin())
    assert approval_on() is False
