"""The scheduled monthly run: on its day and time, once, however often it is retried."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from billing.models import BillingBatch, BillingSchedule
from billing.schedule import scheduled_run
from invoices.models import Invoice
from tests.billing.test_batches import world  # noqa: F401  (fixture)

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


@pytest.fixture
def schedule(world):  # noqa: F811
    row = BillingSchedule.load()
    row.enabled, row.day_of_month, row.time_of_day = True, 31, dt.time(6, 0)
    row.save()
    return row


def test_nothing_happens_before_the_day_and_time(schedule):
    assert scheduled_run(now=dt.datetime(2026, 3, 28, 5, 59, tzinfo=BERLIN)) is None
    assert not BillingBatch.objects.exists()


def test_the_run_bills_once_however_often_it_is_retried(schedule):
    first = scheduled_run(now=dt.datetime(2026, 3, 28, 6, 0, tzinfo=BERLIN))  # day 31 clamps to 28
    again = scheduled_run(now=dt.datetime(2026, 3, 28, 7, 0, tzinfo=BERLIN))
    assert first is not None and again.pk == first.pk
    assert BillingBatch.objects.count() == 1 and first.origin == "schedule"
    assert first.cutoff == dt.date(2026, 3, 28)
    assert Invoice.objects.filter(status="draft").count() == 3


def test_issue_mode_issues_the_invoices(schedule):
    schedule.mode = BillingSchedule.Mode.ISSUE
    schedule.save()
    batch = scheduled_run(now=dt.datetime(2026, 3, 28, 6, 0, tzinfo=BERLIN))
    assert batch.status == BillingBatch.Status.GENERATED
    assert Invoice.objects.filter(status="issued").count() == 3


def test_a_disabled_schedule_never_runs(schedule):
    schedule.enabled = False
    schedule.save()
    assert scheduled_run(now=dt.datetime(2026, 3, 30, 12, 0, tzinfo=BERLIN)) is None


def test_a_month_end_missed_while_nothing_ran_is_made_next_month(schedule):
    schedule.enabled_at = dt.datetime(2026, 3, 1, tzinfo=BERLIN)
    schedule.save()
    # Beat and the workers were down from 27 March to 2 April: March's moment passed unseen.
    batch = scheduled_run(now=dt.datetime(2026, 4, 2, 9, 0, tzinfo=BERLIN))
    assert batch is not None and batch.run_key == "schedule:2026-03" and batch.cutoff == dt.date(2026, 3, 28)
    assert batch.name == "Scheduled run March 2026"
    assert Invoice.objects.filter(status="draft").count() == 3
    # Made once; April's own run comes on its day.
    assert scheduled_run(now=dt.datetime(2026, 4, 2, 10, 0, tzinfo=BERLIN)) is None
    assert BillingBatch.objects.count() == 1


def test_a_schedule_turned_on_after_last_months_moment_does_not_bill_that_month(schedule):
    schedule.enabled_at = dt.datetime(2026, 3, 29, tzinfo=BERLIN)
    schedule.save()
    assert scheduled_run(now=dt.datetime(2026, 4, 2, 9, 0, tzinfo=BERLIN)) is None
    assert not BillingBatch.objects.exists()


def test_schedule_settings_page(client_for, world):  # noqa: F811
    owner = client_for("alpha", "owner")
    assert owner.get("/billing/schedule/").status_code == 200
    response = owner.post("/billing/schedule/", {"enabled": "on", "day_of_month": "31", "time_of_day": "06:00", "mode": "drafts"})
    assert response.status_code == 400 and "Pick a day from 1 to 28" in response.content.decode()
    assert owner.post("/billing/schedule/", {"enabled": "on", "day_of_month": "5", "time_of_day": "06:30", "mode": "issue"}).status_code == 302
    assert BillingSchedule.load().mode == "issue"
    turned_on = BillingSchedule.load().enabled_at
    assert turned_on is not None  # turning it on is noted; saving it again keeps the moment
    assert owner.post("/billing/schedule/", {"enabled": "on", "day_of_month": "6", "time_of_day": "06:30", "mode": "issue"}).status_code == 302
    assert BillingSchedule.load().enabled_at == turned_on
    assert client_for("alpha", "accountant").get("/billing/schedule/").status_code == 403


def test_issue_mode_emails_each_invoice_once_its_pdf_exists(schedule, mailoutbox, monkeypatch, django_capture_on_commit_callbacks):
    from invoices import tasks
    from invoices.pdf import invoice_pdf_ensure

    queued = []
    monkeypatch.setattr(tasks.invoice_email_when_ready, "delay", lambda invoice_id: queued.append(invoice_id))
    schedule.mode = BillingSchedule.Mode.ISSUE
    schedule.save()
    with django_capture_on_commit_callbacks(execute=True):
        batch = scheduled_run(now=dt.datetime(2026, 3, 28, 6, 0, tzinfo=BERLIN))
    invoices = list(Invoice.objects.filter(status="issued"))
    assert sorted(queued) == sorted(i.pk for i in invoices)
    invoice = invoices[0]
    invoice.customer.billing_email = "accounts@chain.example"
    invoice.customer.save()
    try:
        tasks.invoice_email_when_ready.run(invoice.pk)
    except tasks.PdfNotReady:
        pass
    else:
        raise AssertionError("the e-mail must wait for the PDF")
    invoice_pdf_ensure(invoice_id=invoice.pk)
    assert tasks.invoice_email_when_ready.run(invoice.pk) == "queued"
    assert tasks.invoice_email_when_ready.run(invoice.pk) == "already sent"
    assert batch.status == "generated"
