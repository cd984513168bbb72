"""What a technician uses on a phone: their open tickets first, the timer, how logged time is rounded."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from msp_billing.accounts.models import User
from tests.support import email_for
from tests.tickets.builders import catalogue, contract, customer, rate_line, technician, ticket
from tickets.models import RunningTimer, TimeEntry


@pytest.fixture
def shop(tenant):
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer)
    cust = customer()
    hourly = contract(cust, "hourly", priority=1, name="Hourly T&M", rounding_increment=15)
    rate_line(hourly, "120")
    return {"tech": tech, "customer": cust, "remote": remote, "hourly": hourly, "ticket": ticket(cust, technician=tech)}


def rows(page: str) -> list[str]:
    return re.findall(r'<a href="/tickets/\d+/">(#\d+ [^<]+)</a>', page)


def test_a_technician_lands_on_their_open_tickets_and_can_see_all(client_for, shop):
    mine = shop["ticket"]
    done = ticket(shop["customer"], technician=shop["tech"], status="resolved")
    someone_elses = ticket(shop["customer"], technician=User.objects.get(email=email_for("alpha", "owner")))
    unassigned = ticket(shop["customer"])
    client = client_for("alpha", "technician")
    page = client.get("/tickets/").content.decode()
    assert rows(page) == [str(mine)]
    assert 'aria-current="page">My open tickets' in page
    everything = client.get("/tickets/", {"scope": "all"}).content.decode()
    assert set(rows(everything)) == {str(t) for t in (mine, done, someone_elses, unassigned)}
    # Billing people land on every ticket; a made-up scope is refused, not ignored.
    assert len(rows(client_for("alpha", "billing_admin").get("/tickets/").content.decode())) == 4
    assert client.get("/tickets/", {"scope": "everything"}).status_code == 400


def test_logged_time_says_how_it_was_rounded(client_for, shop):
    client = client_for("alpha", "technician")
    client.post(f"/tickets/{shop['ticket'].pk}/time/",
                {"work_type": shop["remote"].pk, "duration": "37", "date": "2026-03-03", "after_hours": "auto", "billable": "on"})
    entry = TimeEntry.objects.get()
    # 37 minutes under "15-minute increments, up" bill 45: the figure the invoice line will carry.
    assert entry.billed_minutes_total == 45
    for url in (f"/tickets/{shop['ticket'].pk}/", "/tickets/my-time/", f"/tickets/time/{entry.pk}/"):
        assert "37 min, billed as 0.75 h" in client.get(url).content.decode(), url


def test_the_rarely_needed_fields_are_folded_away_but_still_work(client_for, shop):
    client = client_for("alpha", "technician")
    page = client.get(f"/tickets/{shop['ticket'].pk}/").content.decode()
    folded = page[page.index('<details class="more-options"'):page.index("</details>")]
    for name in ("after_hours", "chosen_contract", "chosen_rate_item"):
        assert f'name="{name}"' in folded
    assert 'name="duration"' not in folded and 'name="work_type"' not in folded
    other = contract(customer("Someone Else"), "hourly", name="Not yours")
    refused = client.post(f"/tickets/{shop['ticket'].pk}/time/", {
        "work_type": shop["remote"].pk, "duration": "30", "date": "2026-03-03", "after_hours": "auto",
        "chosen_contract": other.pk})
    assert refused.status_code == 400
    assert '<details class="more-options" open>' in refused.content.decode()  # the error is not hidden
    client.post(f"/tickets/{shop['ticket'].pk}/time/", {
        "work_type": shop["remote"].pk, "duration": "30", "date": "2026-03-03", "after_hours": "yes",
        "chosen_contract": shop["hourly"].pk})
    entry = TimeEntry.objects.get()
    assert entry.after_hours and entry.chosen_contract == shop["hourly"]


def test_the_timer_is_kept_on_the_server_and_stopping_it_fills_in_the_form(client_for, shop):
    tkt = shop["ticket"]
    client = client_for("alpha", "technician")
    assert client.post(f"/tickets/{tkt.pk}/timer/start/").status_code == 302
    started = RunningTimer.objects.get()
    RunningTimer.objects.filter(pk=started.pk).update(started_at=timezone.now() - dt.timedelta(minutes=42, seconds=20))
    client.post(f"/tickets/{tkt.pk}/timer/start/")  # a second tap (or another device) keeps the first start
    assert RunningTimer.objects.count() == 1
    # Another device of the same person sees it running.
    page = client_for("alpha", "technician").get(f"/tickets/{tkt.pk}/").content.decode()
    assert "Stop timer" in page and 'data-timer-elapsed="254' in page and "js/timer.js" in page
    stop = client.post(f"/tickets/{tkt.pk}/timer/stop/")
    assert stop.status_code == 302 and "timer_minutes=42" in stop["Location"]
    assert not RunningTimer.objects.exists() and not TimeEntry.objects.exists()  # nothing logged yet
    form = client.get(stop["Location"]).content.decode()
    assert re.search(r'name="duration" value="42"', form) and "Timer stopped at 42 min." in form
    assert client.post(f"/tickets/{tkt.pk}/timer/stop/").status_code == 409  # stopped already


def test_a_timer_is_personal_and_refused_on_a_billed_ticket(client_for, shop):
    tkt = shop["ticket"]
    client_for("alpha", "technician").post(f"/tickets/{tkt.pk}/timer/start/")
    owner = client_for("alpha", "owner")
    assert "Start timer" in owner.get(f"/tickets/{tkt.pk}/").content.decode()
    assert owner.post(f"/tickets/{tkt.pk}/timer/stop/").status_code == 409
    assert RunningTimer.objects.count() == 1
    billed = ticket(shop["customer"], billed_at=timezone.now())
    assert client_for("alpha", "technician").post(f"/tickets/{billed.pk}/timer/start/").status_code == 409
    assert client_for("alpha", "accountant").post(f"/tickets/{tkt.pk}/timer/start/").status_code == 403


def test_another_msps_ticket_has_no_timer(client_for, shop):
    client = client_for("beta", "technician")
    assert client.post(f"/tickets/{shop['ticket'].pk}/timer/start/").status_code == 404
    assert client.post(f"/tickets/{shop['ticket'].pk}/timer/stop/").status_code == 404
    with schema_context("beta"):
        assert not RunningTimer.objects.exists()
