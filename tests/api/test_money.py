"""Money through the API: payments through invoices.services (and its refusals), the batch
preview and run (the run bills what the preview showed; a changed selection is refused)."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client

from billing.models import BillingBatch
from contracts.models import Role
from invoices.models import Invoice, Payment
from tests.api.builders import auth, token, world
from tests.invoices import builders as ib
from tests.tickets.builders import technician
from tickets import services as ticket_services
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db


def post(path: str, data: dict, secret: str, **headers):
    extra = auth(secret, **headers)
    return Client(HTTP_HOST="alpha.localhost").post(path, json.dumps(data), content_type="application/json", **extra)


def test_a_payment_is_recorded_by_the_invoice_services_and_more_than_is_due_is_refused(tenant):
    invoice = ib.issued(lines=[ib.line(unit_price="100")])
    secret = token("alpha", "billing_admin")
    too_much = post(f"/api/v1/invoices/{invoice.pk}/payments", {"amount": "100.01", "date": "2026-03-11"}, secret)
    assert too_much.status_code == 422 and "more than" in too_much.json()["errors"]["amount"][0]
    paid = post(f"/api/v1/invoices/{invoice.pk}/payments", {"amount": "40.00", "date": "2026-03-11", "reference": "TX-1"},
                secret, **{"Idempotency-Key": "pay-1"})
    assert paid.status_code == 201, paid.content
    again = post(f"/api/v1/invoices/{invoice.pk}/payments", {"amount": "40.00", "date": "2026-03-11", "reference": "TX-1"},
                 secret, **{"Idempotency-Key": "pay-1"})
    assert again.json() == paid.json()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PARTIALLY_PAID and invoice.amount_paid == ib.d("40.00")
    assert Payment.objects.filter(invoice=invoice).count() == 1
    read = Client(HTTP_HOST="alpha.localhost").get(f"/api/v1/invoices/{invoice.pk}", **auth(secret)).json()
    assert read["amount_due"] == "60.00" and read["number"] == invoice.number
    assert post(f"/api/v1/invoices/{invoice.pk}/payments", {"amount": "1", "date": "2026-03-11"},
                token("alpha", "accountant")).status_code == 403


def test_the_batch_run_bills_what_the_preview_showed_and_refuses_a_stale_preview(tenant):
    w = world()
    tech = technician(Role.objects.get(name="Engineer"), email="technician@alpha.example")
    ticket_services.time_entry_log(ticket=w["ticket"], technician=tech, work_type=w["work_type"], date=dt.date(2026, 1, 5),
                                   minutes=60, after_hours=False)
    ticket_services.ticket_set_status(ticket_id=w["ticket"].pk, status="resolved")
    secret = token("alpha", "billing_admin")
    selection = {"cutoff": "2026-01-31", "contracts": [w["hourly"].pk]}
    preview = post("/api/v1/batches/preview", selection, secret)
    assert preview.status_code == 200, preview.content
    figures = preview.json()
    assert figures["bills"] == 1 and figures["by_currency"]["EUR"]
    # more time arrives after the preview: the run with the old token bills nothing
    ticket_services.ticket_set_status(ticket_id=w["ticket"].pk, status="open")
    ticket_services.time_entry_log(ticket=w["ticket"], technician=tech, work_type=w["work_type"], date=dt.date(2026, 1, 6),
                                   minutes=30, after_hours=False)
    ticket_services.ticket_set_status(ticket_id=w["ticket"].pk, status="resolved")
    stale = post("/api/v1/batches/run", {**selection, "name": "January", "due_token": figures["due_token"]}, secret)
    assert stale.status_code == 422 and "changed since" in stale.json()["detail"]
    assert not BillingBatch.objects.exists()
    fresh = post("/api/v1/batches/preview", selection, secret).json()
    run = post("/api/v1/batches/run", {**selection, "name": "January", "due_token": fresh["due_token"]}, secret)
    assert run.status_code == 201, run.content
    batch = BillingBatch.objects.get(pk=run.json()["id"])
    invoice = Invoice.objects.get(batch_link__batch=batch)
    assert TimeEntry.objects.filter(billed_at__isnull=False).count() == 2
    assert invoice.total == ib.d(fresh["by_currency"]["EUR"]["total"]) == ib.d("150.00")  # 1.5 h at 100 EUR, no tax
