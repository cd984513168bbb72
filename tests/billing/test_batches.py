"""Billing batches on PostgreSQL: plan, run, release, generate — against amounts worked out by hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing import services
from billing.models import BatchItem, BillingBatch
from contracts.models import ContractPeriod
from invoices import services as invoice_services
from invoices.models import Invoice, InvoiceLine, InvoiceSettings
from msp_billing.accounts.models import User
from tests.invoices.builders import vat_by_default
from tests.tickets.builders import block, catalogue, contract, customer, eur, exclusion_set, hourly_default, rate_line, technician, ticket
from tickets import services as ticket_services
from tickets.models import Ticket, TimeEntry

CUTOFF = dt.date(2026, 3, 31)
DAY = dt.date(2026, 3, 3)


@pytest.fixture
def world(tenant):
    return build_world(admin_email="billing-admin@alpha.example", tech_email="technician@alpha.example")


def build_world(*, admin_email: str, tech_email: str) -> dict:
    """A customer with a retainer, a block and an Hourly fallback, due items and one open ticket."""
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer, email=tech_email)
    vat_by_default()
    cust = customer()
    gold = exclusion_set("Gold", onsite, ooh)
    retainer = contract(cust, "retainer", priority=1, exclusion=gold, name="Managed Services", fee=eur("1000.00"),
                        start_date=dt.date(2026, 3, 1), billing_frequency="monthly", billing_timing="advance")
    silver = exclusion_set("Silver", ooh)
    blocks = contract(cust, "block_hours", priority=2, exclusion=silver, name="Onsite Block", overage_rate=eur("150"), taxable=False)
    block(blocks, minutes=60, on=dt.date(2026, 3, 2), price="110.00")
    hourly = hourly_default(cust, "120", priority=3, name="Hourly T&M", rounding_increment=15)
    march = ContractPeriod.objects.create(contract=retainer, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31),
                                          covered_start=dt.date(2026, 3, 1), covered_end=dt.date(2026, 3, 31), bill_date=dt.date(2026, 3, 1))
    blocks_march = ContractPeriod.objects.create(contract=blocks, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31),
                                                 covered_start=dt.date(2026, 3, 1), covered_end=dt.date(2026, 3, 31), bill_date=dt.date(2026, 3, 1))
    tkt = ticket(cust)
    log = lambda wt, minutes: ticket_services.time_entry_log(ticket=tkt, technician=tech, work_type=wt, date=DAY, minutes=minutes)  # noqa: E731
    entries = {"remote": log(remote, 45), "onsite": log(onsite, 90), "ooh": log(ooh, 30)}
    ticket_services.ticket_set_status(ticket_id=tkt.pk, status="resolved")
    open_ticket = ticket(cust)
    ticket_services.time_entry_log(ticket=open_ticket, technician=tech, work_type=ooh, date=DAY, minutes=60)
    admin = User.objects.get(email=admin_email)
    return {"customer": cust, "retainer": retainer, "blocks": blocks, "hourly": hourly, "march": march, "blocks_march": blocks_march,
            "ticket": tkt, "open_ticket": open_ticket, "entries": entries, "admin": admin}


def everything(cutoff=CUTOFF):
    return services.selection_everything_due(cutoff=cutoff)


def due(cutoff=CUTOFF) -> dict[str, set[int]]:
    """Ids of what is ready to bill by ``cutoff``, per kind."""
    from billing.readiness import ready_charges, ready_periods, ready_time_allocations

    return {"periods": set(ready_periods(cutoff=cutoff).values_list("pk", flat=True)),
            "entries": set(ready_time_allocations(cutoff=cutoff).values_list("entry_id", flat=True)),
            "charges": set(ready_charges(cutoff=cutoff).values_list("pk", flat=True))}


def test_everything_due_is_preselected_and_open_tickets_wait(world):
    selection = everything()
    assert selection.contract_ids == {world["retainer"].pk, world["blocks"].pk, world["hourly"].pk}
    assert not (selection.excluded_period_ids or selection.excluded_entry_ids or selection.excluded_charge_ids)
    # The Hourly contract (from 1 Jan, no period stored) gets its periods before they are read:
    # January to March, with no fee on them.
    hourly = set(ContractPeriod.objects.filter(contract=world["hourly"], bill_date__lte=CUTOFF).values_list("pk", flat=True))
    assert len(hourly) == 3
    assert due()["periods"] == {world["march"].pk, world["blocks_march"].pk} | hourly
    assert due()["entries"] == {e.pk for e in world["entries"].values()}


def test_run_creates_one_draft_per_contract_with_hand_computed_totals(world):
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    invoices = {inv.lines.first().contract.name: inv for inv in services.batch_invoices(batch)}
    assert set(invoices) == {"Managed Services", "Onsite Block", "Hourly T&M"}
    # Retainer: fee 1000.00 + absorbed remote time at zero; VAT 19 % → 1190.00.
    assert (invoices["Managed Services"].subtotal, invoices["Managed Services"].tax_total, invoices["Managed Services"].total) == (
        Decimal("1000.00"), Decimal("190.00"), Decimal("1190.00"))
    # Block (not taxable): block 110.00 bought in March; 60 of the 90 onsite minutes deducted, 30 overage at 150/h = 75.00.
    assert invoices["Onsite Block"].total == Decimal("185.00")
    # Out-of-hours 30 minutes at 120 × 1.5 = 90.00 + 19 % = 107.10.
    assert invoices["Hourly T&M"].total == Decimal("107.10")
    for invoice in invoices.values():
        assert invoice.status == Invoice.Status.DRAFT
        assert invoice.total == sum(line.amount + line.tax_amount for line in invoice.lines.all())


def test_run_bills_items_once_and_locks_their_tickets(world):
    services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    assert Ticket.objects.get(pk=world["ticket"].pk).is_locked
    assert not Ticket.objects.get(pk=world["open_ticket"].pk).is_locked
    assert all(e.billed_at for e in TimeEntry.objects.filter(ticket=world["ticket"]))
    assert ContractPeriod.objects.get(pk=world["march"].pk).billed_at
    again = services.Selection(contract_ids=frozenset({world["retainer"].pk}))
    with pytest.raises(ValidationError, match="Nothing was billed: select at least one contract with items due"):
        services.batch_run(name="Again", cutoff=CUTOFF, selection=again, consolidated=False, acting_user=world["admin"])


def test_waiving_one_period_leaves_it_for_the_next_batch_as_overdue(world):
    full = everything()
    waived = services.Selection(full.contract_ids, excluded_period_ids=frozenset({world["march"].pk}))
    batch = services.batch_run(name="Goodwill", cutoff=CUTOFF, selection=waived, consolidated=False, acting_user=world["admin"])
    assert not BatchItem.objects.filter(batch=batch, period=world["march"]).exists()
    assert BatchItem.objects.filter(batch=batch, period=world["blocks_march"]).exists()
    assert world["march"].pk in due(cutoff=dt.date(2026, 4, 30))["periods"]


def test_consolidated_makes_one_invoice_per_customer(world):
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=True, acting_user=world["admin"])
    invoices = list(services.batch_invoices(batch))
    assert len(invoices) == 1
    assert invoices[0].total == Decimal("1190.00") + Decimal("185.00") + Decimal("107.10")


def test_deleting_an_invoice_releases_its_items(world):
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    hourly_invoice = next(i for i in services.batch_invoices(batch) if i.lines.first().contract_id == world["hourly"].pk)
    services.batch_invoice_delete(batch_id=batch.pk, invoice_id=hourly_invoice.pk, acting_user=world["admin"])
    assert not Invoice.objects.filter(pk=hourly_invoice.pk).exists()
    ooh = TimeEntry.objects.get(pk=world["entries"]["ooh"].pk)
    assert ooh.billed_at is None
    # The ticket stays locked: other items of it are still billed in the batch.
    assert Ticket.objects.get(pk=world["ticket"].pk).is_locked
    assert ooh.pk in due()["entries"]


def test_deleting_an_invoice_with_several_items_releases_them_all(world):
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=True, acting_user=world["admin"])
    invoice = services.batch_invoices(batch).get()
    assert BatchItem.objects.filter(invoice=invoice).count() > 1
    assert invoice.lines.filter(time_allocation__isnull=False).count() > 1
    services.batch_invoice_delete(batch_id=batch.pk, invoice_id=invoice.pk, acting_user=world["admin"])
    assert not BatchItem.objects.exists() and not InvoiceLine.objects.exists()
    assert not Ticket.objects.get(pk=world["ticket"].pk).is_locked
    assert due()["periods"] - set(world["hourly"].periods.values_list("pk", flat=True)) == {
        world["march"].pk, world["blocks_march"].pk}


def test_deleting_the_batch_releases_everything_and_unlocks_tickets(world):
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    services.batch_generate(batch_id=batch.pk, acting_user=world["admin"], issue_date=dt.date(2026, 4, 1))
    numbers = sorted(i.number for i in services.batch_invoices(batch))
    assert len(numbers) == 3 and all(numbers)
    services.batch_delete(batch_id=batch.pk, acting_user=world["admin"])
    assert not BillingBatch.objects.exists() and not BatchItem.objects.exists()
    assert not Ticket.objects.get(pk=world["ticket"].pk).is_locked
    # Issued invoices keep their numbers (no gaps) and are voided.
    assert sorted(Invoice.objects.filter(status="void").values_list("number", flat=True)) == numbers
    assert due()["entries"] == {e.pk for e in world["entries"].values()}
    # The void invoices keep their time lines, marked released; the time bills again.
    void_time = InvoiceLine.objects.filter(invoice__status="void", time_allocation__isnull=False)
    assert void_time.exists() and not void_time.filter(source_released_at__isnull=True).exists()
    again = services.batch_run(name="March again", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    rebilled = InvoiceLine.objects.filter(invoice__batch_link__batch=again, time_allocation__isnull=False)
    assert set(rebilled.values_list("time_allocation_id", flat=True)) == set(void_time.values_list("time_allocation_id", flat=True))


def test_time_already_billed_cannot_go_on_another_invoice(world):
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    line = InvoiceLine.objects.filter(invoice__batch_link__batch=batch, time_allocation__isnull=False).first()
    copy = invoice_services.LineInput(description="Same time again", quantity=Decimal(1), unit_price=Decimal(10),
                                      time_allocation_id=line.time_allocation_id)
    with pytest.raises(ValidationError, match="that time is already billed on another invoice"):
        invoice_services.invoice_create_draft(customer=line.invoice.customer, lines=[copy], acting_user=world["admin"])
    # The database refuses a second line billing it too, whatever path writes it.
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(invoice=line.invoice, description="Raw copy", time_allocation_id=line.time_allocation_id,
                                   source_kind=InvoiceLine.SourceKind.TIME)


def test_a_paid_invoice_blocks_deleting_its_batch(world):
    from invoices.services import payment_record

    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    services.batch_generate(batch_id=batch.pk, acting_user=world["admin"], issue_date=dt.date(2026, 4, 1))
    invoice = services.batch_invoices(batch).first()
    payment_record(invoice_id=invoice.pk, amount=Decimal("10.00"), date=dt.date(2026, 4, 2), method="bank_transfer", acting_user=world["admin"])
    with pytest.raises(ValidationError, match="paid or exported"):
        services.batch_delete(batch_id=batch.pk, acting_user=world["admin"])
    assert BillingBatch.objects.filter(pk=batch.pk).exists()


def test_tampered_or_foreign_ids_bill_nothing(world):
    full = everything()
    tampered = services.Selection(full.contract_ids | {999999})
    with pytest.raises(ValidationError, match="Nothing was billed: 1 contract"):
        services.batch_run(name="Tampered", cutoff=CUTOFF, selection=tampered, consolidated=False, acting_user=world["admin"])
    # Leaving out an item that is not due (an open ticket's time, an unknown id) changes nothing.
    open_entry = TimeEntry.objects.get(ticket=world["open_ticket"])
    odd = services.Selection(full.contract_ids, excluded_entry_ids=frozenset({open_entry.pk, 999999}))
    assert not BillingBatch.objects.exists()
    assert not TimeEntry.objects.filter(billed_at__isnull=False).exists()
    services.batch_run(name="Odd", cutoff=CUTOFF, selection=odd, consolidated=False, acting_user=world["admin"])
    assert set(TimeEntry.objects.filter(billed_at__isnull=False).values_list("pk", flat=True)) == {e.pk for e in world["entries"].values()}


def test_a_stale_page_bills_nothing(world):
    from billing.due import due_summary

    token = due_summary(cutoff=CUTOFF).token
    assert due_summary(cutoff=CUTOFF).token == token  # nothing changed: same fingerprint
    looked = services.Selection(everything().contract_ids, due_token=token)
    # New billable time arrives after the admin looked at the page.
    Ticket.objects.filter(pk=world["open_ticket"].pk).update(status=Ticket.Status.RESOLVED)
    with pytest.raises(ValidationError, match="what is due changed since this page was loaded"):
        services.batch_run(name="Stale", cutoff=CUTOFF, selection=looked, consolidated=False, acting_user=world["admin"])
    assert not BillingBatch.objects.exists() and not TimeEntry.objects.filter(billed_at__isnull=False).exists()
    fresh = services.Selection(everything().contract_ids, due_token=due_summary(cutoff=CUTOFF).token)
    services.batch_run(name="Fresh", cutoff=CUTOFF, selection=fresh, consolidated=False, acting_user=world["admin"])
    assert TimeEntry.objects.get(ticket=world["open_ticket"]).billed_at is not None


def test_batch_details_match_the_invoices_the_run_creates(world):
    # Only the retainer picked, its period left out: its absorbed time still makes a bill on the ticket.
    retainer_only = services.Selection(frozenset({world["retainer"].pk}), excluded_period_ids=frozenset({world["march"].pk}))
    partial = services.batch_details(cutoff=CUTOFF, selection=retainer_only)
    assert partial.tickets == 1 and partial.by_currency["EUR"]["total"] == Decimal("0.00")
    hourly_entries = frozenset(e.pk for e in TimeEntry.objects.filter(allocations__contract=world["hourly"]))
    nothing = services.Selection(frozenset({world["hourly"].pk}), excluded_entry_ids=hourly_entries)
    assert services.batch_details(cutoff=CUTOFF, selection=nothing).tickets == 0
    details = services.batch_details(cutoff=CUTOFF, selection=everything())
    assert services.batch_details(cutoff=CUTOFF, selection=None) == details
    consolidated = services.batch_details(cutoff=CUTOFF, selection=everything(), consolidated=True)
    assert consolidated.bills == 1 and consolidated.by_currency == details.by_currency
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    invoices = list(services.batch_invoices(batch))
    assert details.bills == len(invoices) == 3
    assert details.by_currency["EUR"]["total"] == sum(i.total for i in invoices)
    assert details.by_currency["EUR"]["tax"] == sum(i.tax_total for i in invoices)
    assert details.tickets == 1 and details.hours == Decimal("2.75")


def test_with_a_default_discount_the_details_still_match_the_invoices(world):
    """An invoice-level discount is shared over every line, so the preview and the run
    calculate line by line; both must still agree to the cent."""
    settings = InvoiceSettings.load()
    settings.default_discount_percent = Decimal("3.5")
    settings.save()
    details = services.batch_details(cutoff=CUTOFF, selection=everything())
    batch = services.batch_run(name="Discounted", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    invoices = list(services.batch_invoices(batch))
    assert all(invoice.discount_total > 0 for invoice in invoices if invoice.subtotal > 0)
    assert details.by_currency["EUR"]["total"] == sum(i.total for i in invoices)
    assert details.by_currency["EUR"]["tax"] == sum(i.tax_total for i in invoices)
    for invoice in invoices:
        lines = list(invoice.lines.all())
        assert invoice.total == sum(line.taxable_amount + line.tax_amount for line in lines)


def test_a_line_billing_time_cannot_be_dropped_from_a_batch_draft(world):
    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    invoice = next(i for i in services.batch_invoices(batch) if i.lines.filter(time_allocation__isnull=False).exists())
    lines = list(invoice.lines.order_by("sort_order", "id"))
    kept = [invoice_services.LineInput(description=l.description, quantity=l.quantity, unit_price=l.unit_price,
                                       taxable=l.taxable, line_id=l.pk) for l in lines if l.time_allocation_id is None]
    with pytest.raises(ValidationError, match="cannot be removed: delete the invoice from its billing batch"):
        invoice_services.invoice_edit(invoice_id=invoice.pk, acting_user=world["admin"], lines=kept)
    assert invoice.lines.count() == len(lines)


def test_a_partial_period_over_two_device_classes_bills_the_fee_rounded_once(world):
    from contracts.models import DeviceClass, DeviceCount

    cust = customer("Monitored Ltd")
    monitoring = contract(cust, "remote_monitoring", name="Monitoring", start_date=dt.date(2026, 3, 16),
                          billing_frequency="monthly", billing_timing="advance")
    for name, count in (("Laptops", 3), ("Workstations", 7)):
        device_class = DeviceClass.objects.create(contract=monitoring, name=name, unit_price=eur("43.00"))
        DeviceCount.objects.create(device_class=device_class, effective_date=dt.date(2026, 3, 16), count=count)
    ContractPeriod.objects.create(contract=monitoring, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31),
                                  covered_start=dt.date(2026, 3, 16), covered_end=dt.date(2026, 3, 31), bill_date=dt.date(2026, 3, 16))
    selection = services.Selection(frozenset({monitoring.pk}))
    details = services.batch_details(cutoff=CUTOFF, selection=selection)
    batch = services.batch_run(name="Monitoring", cutoff=CUTOFF, selection=selection, consolidated=False, acting_user=world["admin"])
    invoice = services.batch_invoices(batch).get()
    lines = list(invoice.lines.order_by("sort_order", "id"))
    # 10 devices × 43.00 = 430.00 a month, 16 of March's 31 days: 221.9354… → 221.94, split
    # 129.00 × 16/31 = 66.5806… → 66.58 and 301.00 × 16/31 = 155.3548… → 155.36 (the cent the
    # classes rounded apart would lose). VAT 19 % per line: 12.65 + 29.52 = 42.17.
    assert [(line.description.split(",")[0], line.amount) for line in lines] == [
        ("Laptops: 3 devices", Decimal("66.58")), ("Workstations: 7 devices", Decimal("155.36"))]
    assert "16–31 Mar 2026 (16/31 days)" in lines[0].description
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (Decimal("221.94"), Decimal("42.17"), Decimal("264.11"))
    assert details.by_currency["EUR"]["total"] == Decimal("264.11")


def test_time_released_by_a_deleted_batch_is_rerouted_and_billed_again_at_the_new_rate(world):
    from invoices.pdf import invoice_html
    from tickets.models import TimeAllocation

    batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    services.batch_generate(batch_id=batch.pk, acting_user=world["admin"], issue_date=dt.date(2026, 4, 1))
    ooh = world["entries"]["ooh"]
    old_line = InvoiceLine.objects.get(time_allocation__entry=ooh)
    # Out-of-hours 30 minutes at 120 × 1.5 = 180/h: 90.00.
    assert old_line.amount == Decimal("90.00")
    void_invoice = old_line.invoice
    services.batch_delete(batch_id=batch.pk, acting_user=world["admin"])
    # The rate changes from 1 March and the unbilled time is recalculated: the released entry's
    # allocation is still printed on the void invoice, yet the entry is re-routed.
    rate_line(world["hourly"], "140", effective_from=dt.date(2026, 3, 1))
    ticket_services.unbilled_recalculate(contract=world["hourly"])
    allocation = TimeAllocation.objects.get(entry=ooh)
    assert allocation.pk != old_line.time_allocation_id
    assert allocation.amount.amount == Decimal("105.00")  # 140 × 1.5 = 210/h, half an hour
    old_allocation = TimeAllocation.with_superseded.get(pk=old_line.time_allocation_id)
    assert old_allocation.superseded_at is not None and old_allocation.amount.amount == Decimal("90.00")

    again = services.batch_run(name="March again", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=world["admin"])
    new_line = InvoiceLine.objects.get(invoice__batch_link__batch=again, time_allocation__entry=ooh)
    assert (new_line.time_allocation_id, new_line.amount) == (allocation.pk, Decimal("105.00"))
    assert new_line.invoice.total == Decimal("124.95")  # 105.00 + 19 % VAT 19.95
    # The void invoice is as it was issued: the old line, its allocation and ticket, 90.00 + 17.10.
    void_invoice.refresh_from_db()
    old_line.refresh_from_db()
    assert void_invoice.status == Invoice.Status.VOID and void_invoice.total == Decimal("107.10")
    assert old_line.amount == Decimal("90.00") and old_line.source_released_at is not None
    html = invoice_html(void_invoice)
    assert "90.00" in html and f"#{world['ticket'].pk}" in html
    # Billed once: the entry has one line that still bills it, the new one.
    assert list(InvoiceLine.objects.filter(time_allocation__entry=ooh, source_released_at__isnull=True)) == [new_line]
    assert TimeEntry.objects.get(pk=ooh.pk).billed_at is not None
    # An entry kept by a void invoice is not deleted (it would take the invoice's line with it).
    services.batch_delete(batch_id=again.pk, acting_user=world["admin"])
    with pytest.raises(ValidationError, match="printed on a void invoice"):
        ticket_services.time_entry_delete(entry_id=ooh.pk)


def test_a_partial_retainer_period_bills_its_fee_and_service_lines_rounded_once(world):
    from contracts.models import RecurringServiceLine

    cust = customer("Retained Ltd")
    retainer = contract(cust, "retainer", name="Care Plan", fee=eur("400.00"), start_date=dt.date(2026, 3, 16),
                        billing_frequency="monthly", billing_timing="advance")
    RecurringServiceLine.objects.create(contract=retainer, description="Backup licences", quantity=Decimal(3),
                                        unit_price=eur("10.00"), effective_from=dt.date(2026, 3, 16))
    ContractPeriod.objects.create(contract=retainer, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31),
                                  covered_start=dt.date(2026, 3, 16), covered_end=dt.date(2026, 3, 31), bill_date=dt.date(2026, 3, 16))
    selection = services.Selection(frozenset({retainer.pk}))
    batch = services.batch_run(name="Care", cutoff=CUTOFF, selection=selection, consolidated=False, acting_user=world["admin"])
    invoice = services.batch_invoices(batch).get()
    # 400.00 + 3 × 10.00 = 430.00 a month for 16/31 days = 221.94: fee 206.4516… → 206.45,
    # licences 15.4838… → 15.49 (apart they would make 206.45 + 15.48 = 221.93).
    # VAT 19 % per line: 39.23 + 2.94 = 42.17.
    assert [line.amount for line in invoice.lines.order_by("sort_order", "id")] == [Decimal("206.45"), Decimal("15.49")]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (Decimal("221.94"), Decimal("42.17"), Decimal("264.11"))


def test_a_period_with_nothing_to_invoice_makes_no_invoice_of_its_own(tenant):
    from billing.due import due_summary

    admin = User.objects.get(email="billing-admin@alpha.example")
    quiet = contract(customer(), "hourly", name="Quiet Hourly")
    # Its periods are stored before the run reads what is due, but they invoice nothing and
    # it has no time: the page shows nothing due on it and the run creates no empty invoice.
    assert quiet.pk not in due_summary(cutoff=CUTOFF).contracts
    assert ContractPeriod.objects.filter(contract=quiet, bill_date__lte=CUTOFF).count() == 3
    with pytest.raises(ValidationError, match="select at least one contract with items due"):
        services.batch_run(name="Quiet", cutoff=CUTOFF, selection=everything(), consolidated=False, acting_user=admin)
    assert not Invoice.objects.exists()


@pytest.mark.parametrize("locale, written", [("en_US", "Mar 3, 2026"), ("de_DE", "03.03.2026"), ("fr_FR", "3 mars 2026")])
def test_a_time_lines_date_is_written_in_the_msps_locale(world, locale, written):
    """The set-based run writes each time line's date as the pages and PDFs write dates."""
    from msp_billing.locales import use_locale
    from msp_billing.templatetags.formatting import day

    with use_locale(locale):
        batch = services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False,
                                   acting_user=world["admin"])
        time_lines = InvoiceLine.objects.filter(invoice__in=services.batch_invoices(batch)).exclude(time_allocation=None)
        assert time_lines.exists() and day(DAY) == written
        assert all(f", {written}, " in line.description for line in time_lines)  # the time was logged on DAY
