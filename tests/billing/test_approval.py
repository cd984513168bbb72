"""Approve & Post, for an MSP that turned on time approval: waiting time is not billed until
an admin approves it, as it is or with posted hours, rate or contract; the batch bills the
posted values and the entry keeps what was logged."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from billing import services as billing_services
from billing.due import due_summary
from billing.readiness import ready_time_allocations
from invoices.models import InvoiceLine
from msp_billing.accounts.models import User
from msp_billing.audit.selectors import audit_events_for
from tests.tickets.builders import (
    catalogue,
    contract,
    customer,
    exclusion_set,
    rate_line,
    technician,
    ticket,
)
from tickets import services as ticket_services
from tickets.models import TimeEntry
from tickets.services import entry_fingerprint

DAY = dt.date(2026, 3, 3)
CUTOFF = dt.date(2026, 3, 31)
ADMIN = "billing-admin@alpha.example"


@pytest.fixture
def world(tenant):
    """Alpha with approval on: a customer billed hourly at 120 (a second Hourly contract at 150),
    one resolved ticket with 90 minutes of remote work and one with 30, both waiting."""
    tenant.time_approval_required = True
    tenant.save(update_fields=["time_approval_required"])  # rolled back with the test
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer)
    cust = customer()
    hourly = contract(cust, "hourly", priority=1, name="Hourly T&M", rounding_increment=15)
    rate_line(hourly, "120")
    # Routing passes over it (it excludes every work type); an admin may still post time to it.
    special = contract(cust, "hourly", priority=2, name="Special projects", rounding_increment=15,
                       exclusion=exclusion_set("Projects only", remote, onsite, ooh))
    rate_line(special, "150")
    cust.default_hourly_contract = hourly
    cust.save()
    other_customer = customer("Elsewhere Ltd")
    elsewhere = contract(other_customer, "hourly", name="Elsewhere hourly")
    first, second = ticket(cust), ticket(cust)
    entry = ticket_services.time_entry_log(ticket=first, technician=tech, work_type=remote, date=DAY, minutes=90)
    small = ticket_services.time_entry_log(ticket=second, technician=tech, work_type=remote, date=DAY, minutes=30)
    open_ticket = ticket(cust)
    waiting_on_open = ticket_services.time_entry_log(ticket=open_ticket, technician=tech, work_type=remote, date=DAY, minutes=60)
    for done in (first, second):
        ticket_services.ticket_set_status(ticket_id=done.pk, status="resolved")
    return {"hourly": hourly, "special": special, "elsewhere": elsewhere, "entry": entry, "small": small,
            "waiting_on_open": waiting_on_open, "admin": User.objects.get(email=ADMIN), "remote": remote}


def due_entry_ids() -> set[int]:
    return set(ready_time_allocations(cutoff=CUTOFF).values_list("entry_id", flat=True))


def fresh(entry: TimeEntry) -> TimeEntry:
    return TimeEntry.objects.get(pk=entry.pk)


def post_url(entry: TimeEntry) -> str:
    return reverse("billing:approval_entry", args=[entry.pk])


def test_waiting_time_is_not_due_until_approved_and_the_invoice_bills_the_posted_rate(client_for, world):
    entry, hourly = world["entry"], world["hourly"]
    assert entry.approval == TimeEntry.Approval.PENDING
    assert due_entry_ids() == set()
    assert hourly.pk not in due_summary(cutoff=CUTOFF).contracts  # the wizard shows nothing due on it

    admin = client_for("alpha", "billing_admin")
    listing = admin.get(reverse("billing:approval")).content.decode()
    assert f'name="entry" value="{entry.pk}"' in listing and "Hourly T&amp;M" in listing
    assert ">1.50<" in listing and ">€120.00<" in listing and "€180.00" in listing
    assert f'name="entry" value="{world["waiting_on_open"].pk}"' not in listing  # its ticket is still open

    page = admin.get(post_url(entry))
    assert page.status_code == 200 and page.context["form"].initial["rate"] == Decimal("120.0000")
    response = admin.post(post_url(entry), {"hours": "1.50", "rate": "95", "contract": "", "seen": entry_fingerprint(entry)})
    assert response.status_code == 302, response.content.decode()

    entry = fresh(entry)
    assert entry.approval == TimeEntry.Approval.APPROVED and entry.approved_by.email == ADMIN
    assert entry.minutes == 90 and entry.posted_minutes is None  # 1.5 h is what it bills already
    assert entry.posted_rate.amount == Decimal("95.0000")
    assert entry.routed_before_approval[0]["rate"] == "120.0000" and entry.routed_before_approval[0]["amount"] == "180.00"
    assert due_entry_ids() == {entry.pk}
    assert due_summary(cutoff=CUTOFF).contracts[hourly.pk].total == Decimal("142.50")

    batch = billing_services.batch_run(name="March", cutoff=CUTOFF, selection=billing_services.selection_everything_due(cutoff=CUTOFF),
                                       consolidated=False, acting_user=world["admin"])
    line = InvoiceLine.objects.get(invoice__in=billing_services.batch_invoices(batch), source_kind=InvoiceLine.SourceKind.TIME)
    assert (line.quantity, line.unit_price, line.amount) == (Decimal("1.5000"), Decimal("95.0000"), Decimal("142.50"))

    entry_page = admin.get(reverse("tickets:time_entry", args=[entry.pk])).content.decode()
    assert '<td class="logged-rate">€120.00</td>' in entry_page and '<td class="posted-rate">€95.00</td>' in entry_page
    assert '<td class="logged-amount">€180.00</td>' in entry_page and "142.50" in entry_page
    assert "Approved</span> by " + ADMIN in entry_page

    event = audit_events_for(entry).get(action="time_entry_approved")
    assert event.actor.email == ADMIN
    assert (event.before["rate"], event.after["rate"]) == ("120.0000", "95.0000")
    assert (event.before["amount"], event.after["amount"]) == ("180.00 EUR", "142.50 EUR")
    assert event.before["approval"] == "pending" and event.after["approval"] == "approved"


def test_posting_other_hours_and_contract_reroutes_and_rerates(client_for, world):
    entry, special = world["entry"], world["special"]
    admin = client_for("alpha", "billing_admin")
    response = admin.post(post_url(entry), {"hours": "2", "rate": "", "contract": special.pk, "seen": entry_fingerprint(entry)})
    assert response.status_code == 302, response.content.decode()
    entry = fresh(entry)
    assert (entry.minutes, entry.posted_minutes, entry.posted_contract, entry.posted_rate) == (90, 120, special, None)
    (allocation,) = entry.allocations.all()
    assert (allocation.contract, allocation.billed_minutes, allocation.amount.amount) == (special, 120, Decimal("300.00"))
    assert "posted on approval" in entry.routing_explanation and "logged 90" in entry.routing_explanation
    assert [a["contract"] for a in entry.routed_before_approval] == ["Hourly T&M"]
    page = admin.get(reverse("tickets:time_entry", args=[entry.pk])).content.decode()
    assert '<td class="logged-contract">Hourly T&amp;M</td>' in page and '<td class="posted-contract">Special projects</td>' in page
    assert '<td class="logged-time">90 min (billed 90 min)</td>' in page and '<td class="posted-time">120 min</td>' in page


def test_approving_selected_entries_as_they_are(client_for, world):
    entry, small = world["entry"], world["small"]
    admin = client_for("alpha", "billing_admin")
    data = {"entry": [entry.pk, small.pk], f"seen_{entry.pk}": entry_fingerprint(entry), f"seen_{small.pk}": entry_fingerprint(small)}
    response = admin.post(reverse("billing:approval"), data)
    assert response.status_code == 302
    assert "2 time entries approved" in admin.get(response["Location"]).content.decode()
    assert due_entry_ids() == {entry.pk, small.pk}
    entry = fresh(entry)
    assert entry.posted_minutes is entry.posted_rate is entry.posted_contract is None
    assert [a.amount.amount for a in entry.allocations.all()] == [Decimal("180.00")]  # billed as routed
    assert audit_events_for(entry).filter(action="time_entry_approved").count() == 1
    # A second press of the same button (a stale page) approves nothing more.
    again = admin.post(reverse("billing:approval"), data)
    assert again.status_code == 409 and "already approved" in again.content.decode()
    assert audit_events_for(entry).filter(action="time_entry_approved").count() == 1


def test_accountants_read_technicians_are_kept_out(client_for, world):
    entry = world["entry"]
    accountant = client_for("alpha", "accountant")
    page = accountant.get(reverse("billing:approval")).content.decode()
    assert "Hourly T&amp;M" in page and 'name="entry"' not in page and "Approve selected" not in page
    assert "Approve &amp; Post</button>" not in accountant.get(post_url(entry)).content.decode()
    data = {"entry": [entry.pk], f"seen_{entry.pk}": entry_fingerprint(entry)}
    assert accountant.post(reverse("billing:approval"), data).status_code == 403
    assert accountant.post(post_url(entry), {"hours": "1", "seen": entry_fingerprint(entry)}).status_code == 403
    technician = client_for("alpha", "technician")
    assert technician.get(reverse("billing:approval")).status_code == 403
    assert technician.get(post_url(entry)).status_code == 403
    assert fresh(entry).approval == TimeEntry.Approval.PENDING
    home = client_for("alpha", "billing_admin").get(reverse("billing:home")).content.decode()
    assert f'href="{reverse("billing:approval")}"' in home


@pytest.mark.parametrize("change,status,message", [
    ({"hours": "-1"}, 400, "greater than 0"),
    ({"hours": "0"}, 400, "greater than 0"),
    ({"hours": "25"}, 400, "at most 24"),
    ({"hours": "abc"}, 400, "Enter a number"),
    ({"rate": "-5"}, 400, "cannot be negative"),
    ({"rate": "1.23456"}, 400, "decimal places"),
    ({"contract": "999999"}, 400, "Select a valid choice"),  # no such contract here (another MSP's id)
    ({"seen": "0123456789abcdef"}, 409, "changed since the page was loaded"),
    ({"seen": ""}, 400, "required"),
])
def test_bad_input_changes_nothing(client_for, world, change, status, message):
    entry = world["entry"]
    before = list(entry.allocations.values_list("pk", "contract_id", "amount"))
    data = {"hours": "1.5", "rate": "", "contract": "", "seen": entry_fingerprint(entry), **change}
    response = client_for("alpha", "billing_admin").post(post_url(entry), data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert fresh(entry).approval == TimeEntry.Approval.PENDING and fresh(entry).posted_rate is None
    assert list(entry.allocations.values_list("pk", "contract_id", "amount")) == before
    assert not audit_events_for(entry).exists()


def test_a_contract_the_customer_does_not_have_is_refused_with_a_reason(client_for, world):
    entry = world["entry"]
    data = {"hours": "1.5", "contract": world["elsewhere"].pk, "seen": entry_fingerprint(entry)}
    response = client_for("alpha", "billing_admin").post(post_url(entry), data)
    assert response.status_code == 400 and "“Elsewhere hourly” cannot take this time" in response.content.decode()
    assert fresh(entry).approval == TimeEntry.Approval.PENDING


def test_stale_tampered_unknown_and_billed_entries_are_refused(client_for, world):
    entry, small = world["entry"], world["small"]
    admin = client_for("alpha", "billing_admin")
    seen = entry_fingerprint(entry)
    # The technician changes the entry after the admin loaded the page.
    ticket_services.time_entry_update(entry_id=entry.pk, minutes=60)
    response = admin.post(reverse("billing:approval"), {"entry": [entry.pk, small.pk], f"seen_{entry.pk}": seen,
                                                        f"seen_{small.pk}": entry_fingerprint(small)})
    assert response.status_code == 409 and "changed since the page was loaded" in response.content.decode()
    assert fresh(small).approval == TimeEntry.Approval.PENDING  # all or nothing
    # Tampered or unknown ids.
    assert admin.post(reverse("billing:approval"), {"entry": ["1; DROP"]}).status_code == 400
    assert admin.post(reverse("billing:approval"), {"entry": [small.pk], f"seen_{small.pk}": "x"}).status_code == 400
    unknown = admin.post(reverse("billing:approval"), {"entry": [999_999], "seen_999999": "0123456789abcdef"})
    assert unknown.status_code == 400 and "do not exist" in unknown.content.decode()
    assert admin.get(post_url(TimeEntry(pk=999_999))).status_code == 404
    assert admin.post(reverse("billing:approval"), {}).status_code == 400
    # Approved and billed: a later post is refused and the billed entry is untouched.
    small = fresh(small)
    ticket_services.time_entries_approve(seen={small.pk: entry_fingerprint(small)}, acting_user=world["admin"])
    billing_services.batch_run(name="March", cutoff=CUTOFF, selection=billing_services.selection_everything_due(cutoff=CUTOFF),
                               consolidated=False, acting_user=world["admin"])
    small = fresh(small)
    assert small.billed_at is not None
    response = admin.post(post_url(small), {"hours": "3", "seen": entry_fingerprint(small)})
    assert response.status_code == 409 and "billed and is locked" in response.content.decode()
    assert fresh(small).posted_minutes is None
    # Another MSP's admin does not find this entry at all (ids are per MSP).
    assert client_for("beta", "billing_admin").post(post_url(small), {"hours": "1", "seen": entry_fingerprint(small)}).status_code == 404


def test_changing_approved_time_sends_it_back_for_approval(world):
    entry = world["entry"]
    entry = ticket_services.time_entry_approve(entry_id=entry.pk, seen=entry_fingerprint(entry), acting_user=world["admin"],
                                               rate=Decimal(99))
    assert entry.pk in due_entry_ids()
    ticket_services.time_entry_update(entry_id=entry.pk, minutes=45)
    entry = fresh(entry)
    assert entry.approval == TimeEntry.Approval.PENDING and entry.posted_rate is None and entry.approved_at is None
    assert entry.pk not in due_entry_ids()
    assert [a.rate.amount for a in entry.allocations.all()] == [Decimal("120.0000")]


def test_with_approval_off_the_page_says_so(client_for, tenant, world):
    tenant.time_approval_required = False
    tenant.save(update_fields=["time_approval_required"])
    page = client_for("alpha", "billing_admin").get(reverse("billing:approval")).content.decode()
    assert "Time approval is off" in page
