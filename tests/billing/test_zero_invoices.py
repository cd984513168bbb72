"""Nothing numbered for nothing: a contract whose due total is 0.00 gets no invoice unless the
admin ticks it or the tenant chose "Issue zero invoices"; its covered time waits, unbilled,
for the contract's next invoice with something to charge."""
from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from billing import services
from billing.due import due_summary
from billing.models import BillingBatch, BillingSchedule
from billing.readiness import ready_time_allocations
from billing.reconciliation import reconcile
from billing.schedule import scheduled_run
from billing.wizard import WizardChoice, wizard_summary
from contracts.models import ContractPeriod
from invoices import services as invoice_services
from invoices.models import Invoice, InvoiceSettings
from msp_billing.accounts.models import User
from msp_billing.audit.models import AuditEvent
from tests.billing.wizard_pages import page_and_details
from tests.billing.generated_tenant import CUTOFF, build_generated_tenant
from tests.tickets.builders import block, catalogue, contract, customer, eur, hourly_default, technician, ticket
from tickets import services as ticket_services
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db
MONTH_END = dt.date(2026, 10, 31)


def demo_month_end() -> list[Invoice]:
    """``billing_run`` for October on the demo MSP, then the batch's invoices issued."""
    out = io.StringIO()
    call_command("billing_run", "--tenant", "demo", "--cutoff", MONTH_END.isoformat(), "--json", stdout=out)
    connection.set_schema("demo")
    report = json.loads(out.getvalue())
    batch = BillingBatch.objects.get(pk=report["batch"]["id"])
    services.batch_generate(batch_id=batch.pk, acting_user=None, issue_date=MONTH_END)
    return list(services.batch_invoices(batch))


def zero_contracts(cutoff: dt.date) -> set[int]:
    figures = due_summary(cutoff=cutoff).contracts
    return {pk for pk, due in figures.items() if due.total == 0 and (due.entries or due.periods or due.charges)}


def test_demo_month_end_issues_no_zero_invoice_and_keeps_the_covered_time(db):
    connection.set_schema("demo")
    zero = zero_contracts(MONTH_END)
    assert zero, "the demo's October has contracts with only covered time due"
    waiting = set(ready_time_allocations(cutoff=MONTH_END).filter(contract_id__in=zero).values_list("entry_id", flat=True))
    assert waiting

    invoices = demo_month_end()
    assert len(invoices) >= 20
    assert all(invoice.number and invoice.total != 0 for invoice in invoices)
    assert not {line.contract_id for invoice in invoices for line in invoice.lines.all()} & zero
    # The covered time is not lost: still unbilled, still due on its contract, and in the
    # Timesheet vs batch report as ready, not billed.
    assert not TimeEntry.objects.filter(pk__in=waiting, billed_at__isnull=False).exists()
    assert waiting <= set(ready_time_allocations(cutoff=MONTH_END).values_list("entry_id", flat=True))
    report = reconcile(start=dt.date(2026, 1, 1), end=MONTH_END)
    assert report.minutes_by_reason["ready, not billed"] >= sum(TimeEntry.objects.filter(pk__in=waiting).values_list("minutes", flat=True))


def test_demo_month_end_with_zero_invoices_on_issues_them_numbered(db):
    connection.set_schema("demo")
    invoice_services.invoice_settings_update(data={"issue_zero_invoices": True}, acting_user=None)
    zero = zero_contracts(MONTH_END)
    invoices = demo_month_end()
    zeros = [invoice for invoice in invoices if invoice.total == 0]
    assert len(zeros) == len(zero)
    assert all(invoice.number and invoice.status == Invoice.Status.ISSUED for invoice in zeros)
    assert {line.contract_id for invoice in zeros for line in invoice.lines.all()} == zero
    assert not ready_time_allocations(cutoff=MONTH_END).filter(contract_id__in=zero).exists()


def test_zero_contract_time_goes_on_its_next_invoice_with_a_fee(tenant):
    world = build_generated_tenant(tech_email="technician@alpha.example")
    admin = User.objects.get(email="billing-admin@alpha.example")
    echo = world["zero"]
    # March: Echo's covered 30 minutes are due at 0.00 — not picked, no invoice.
    selection = services.selection_everything_due(cutoff=CUTOFF)
    assert echo.pk not in selection.contract_ids
    march = services.batch_run(name="March", cutoff=CUTOFF, selection=selection, consolidated=False, acting_user=admin)
    services.batch_generate(batch_id=march.pk, acting_user=admin, issue_date=CUTOFF)
    assert all(invoice.total != 0 for invoice in services.batch_invoices(march))
    assert ready_time_allocations(cutoff=CUTOFF).filter(contract=echo).count() == 1
    # April: the fee is due, so the contract is billed — the March time with it, covered at zero.
    april = services.batch_run(name="April", cutoff=dt.date(2026, 4, 30), selection=services.selection_everything_due(cutoff=dt.date(2026, 4, 30)),
                               consolidated=False, acting_user=admin)
    invoice = services.batch_invoices(april).get(customer=echo.customer)
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (Decimal("300.00"), Decimal("57.00"), Decimal("357.00"))
    time_lines = [line for line in invoice.lines.all() if line.time_allocation_id]
    assert len(time_lines) == 1 and time_lines[0].amount == 0 and time_lines[0].time_allocation.billed_minutes == 30
    assert ContractPeriod.objects.get(contract=echo, start=dt.date(2026, 4, 1)).billed_at


def test_an_admin_may_tick_a_zero_contract_in_the_wizard(tenant, client_for):
    world = build_generated_tenant(tech_email="technician@alpha.example")
    echo = world["zero"]
    client = client_for("alpha", "billing_admin")
    html, details = page_and_details(client, {"cutoff": CUTOFF.isoformat(), "customer": echo.customer_id})
    assert f'name="contract" value="{echo.pk}" id="contract-{echo.pk}" aria-label="Bill Echo Care">' in html  # not ticked
    assert "0.00 due" in html and 'data-figure="bills">0<' in details
    assert f'<input type="hidden" name="customer" value="{echo.customer_id}">' in html  # the filter stays with the form
    assert "Contracts the filters hide are not in this batch" in html
    summary = wizard_summary(filters={"cutoff": CUTOFF, "customer": echo.customer}, choice=WizardChoice(), consolidated=False)
    response = client.post("/billing/batches/new/", {"cutoff": CUTOFF.isoformat(), "contract": [echo.pk], "name": "Echo at zero",
                                                     "due_token": summary.token, "customer": echo.customer_id})
    assert response.status_code == 302
    invoice = services.batch_invoices(BillingBatch.objects.get(name="Echo at zero")).get()
    assert invoice.total == 0 and len(invoice.lines.all()) == 1


def test_the_setting_is_on_the_invoice_settings_page_and_audited(tenant, client_for):
    client = client_for("alpha", "owner")
    assert "Issue zero invoices" in client.get("/invoices/settings/").content.decode()
    assert InvoiceSettings.load().issue_zero_invoices is False
    admin = User.objects.get(email="owner@alpha.example")
    invoice_services.invoice_settings_update(data={"issue_zero_invoices": True}, acting_user=admin)
    assert InvoiceSettings.load().issue_zero_invoices is True
    event = AuditEvent.objects.filter(action="invoice_settings_updated").latest("pk")
    assert event.before == {"issue_zero_invoices": False} and event.after == {"issue_zero_invoices": True}


@pytest.mark.parametrize("zero_invoices", [False, True])
def test_the_scheduled_run_follows_the_setting(tenant, zero_invoices):
    world = build_generated_tenant(tech_email="technician@alpha.example")
    invoice_services.invoice_settings_update(data={"issue_zero_invoices": zero_invoices}, acting_user=None)
    schedule = BillingSchedule.load()
    schedule.enabled, schedule.day_of_month, schedule.time_of_day, schedule.mode = True, 28, dt.time(6, 0), BillingSchedule.Mode.ISSUE
    schedule.save()
    batch = scheduled_run(now=dt.datetime(2026, 3, 28, 6, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")))
    invoices = list(services.batch_invoices(batch))
    assert all(invoice.number and invoice.status == Invoice.Status.ISSUED for invoice in invoices)
    zeros = [invoice for invoice in invoices if invoice.total == 0]
    if zero_invoices:
        assert len(invoices) == 8 and [invoice.customer for invoice in zeros] == [world["zero"].customer]
        assert not ready_time_allocations(cutoff=CUTOFF).filter(contract=world["zero"]).exists()
    else:
        assert len(invoices) == 7 and zeros == []
        assert ready_time_allocations(cutoff=CUTOFF).filter(contract=world["zero"]).count() == 1


def test_a_zero_block_sharing_an_entry_with_a_charged_contract_is_picked_with_it(tenant):
    """90 minutes on a 60-minute block that passes the rest on: 60 deducted (0.00) and 30 on
    the Hourly contract (60.00). The entry is billed whole, so both contracts are picked, and
    the deducted time goes on the Hourly contract's invoice: no 0.00 invoice."""
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer)
    cust = customer()
    hourly = hourly_default(cust, "120", priority=3, name="Hourly T&M")
    blocks = contract(cust, "block_hours", priority=2, name="Onsite Block", cascade=True, overage_rate=eur("150"))
    block(blocks, minutes=60, on=dt.date(2026, 1, 2), price="100.00")
    # Invoiced when bought, in January's period.
    ContractPeriod.objects.create(contract=blocks, start=dt.date(2026, 1, 1), end=dt.date(2026, 1, 31),
                                  covered_start=dt.date(2026, 1, 1), covered_end=dt.date(2026, 1, 31),
                                  bill_date=dt.date(2026, 1, 1), billed_at=timezone.now())
    tkt = ticket(cust)
    ticket_services.time_entry_log(ticket=tkt, technician=tech, work_type=onsite, date=dt.date(2026, 3, 3), minutes=90)
    ticket_services.ticket_set_status(ticket_id=tkt.pk, status="resolved")
    figures = due_summary(cutoff=CUTOFF).contracts
    assert (figures[blocks.pk].total, figures[hourly.pk].total) == (Decimal("0"), Decimal("60.00"))
    selection = services.selection_everything_due(cutoff=CUTOFF)
    assert selection.contract_ids == {blocks.pk, hourly.pk}
    details = services.batch_details(cutoff=CUTOFF, selection=selection)
    assert (details.bills, details.by_currency["EUR"]["total"]) == (1, Decimal("60.00"))
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=selection, consolidated=False,
                               acting_user=User.objects.get(email="billing-admin@alpha.example"))
    invoice = services.batch_invoices(batch).get()
    assert invoice.total == Decimal("60.00")
    assert sorted((line.contract_id, line.amount, line.time_allocation.billed_minutes) for line in invoice.lines.all()) == sorted(
        [(blocks.pk, Decimal("0.00"), 60), (hourly.pk, Decimal("60.00"), 30)])
