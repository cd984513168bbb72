"""Invoice services on PostgreSQL, against amounts computed by hand."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from djmoney.money import Money

from invoices import hooks, services
from invoices.audit import audit_events_for, audit_record, jsonable
from invoices.models import AuditEvent, Invoice, InvoiceLine, InvoiceLineTax, InvoiceSettings, NumberSequence, Payment
from tests.invoices.builders import ISSUE_DAY, admin, amount, customer, d, draft, issued, line, percent, tax

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alpha(tenant):
    return tenant


def pay(invoice, value: str, *, on: dt.date = ISSUE_DAY, **extra) -> Payment:
    return services.payment_record(invoice_id=invoice.pk, amount=Decimal(value), date=on, acting_user=admin(), **extra)


def reload(invoice: Invoice) -> Invoice:
    return Invoice.objects.get(pk=invoice.pk)


def messages_of(error: pytest.ExceptionInfo) -> str:
    return " ".join(error.value.messages)


# --- numbering -----------------------------------------------------------------------------


def test_issue_numbers_follow_the_settings_format():
    first = issued()
    second = issued(customer("Second AG"))
    assert (first.number, second.number) == ("INV-2026-00001", "INV-2026-00002")
    assert (first.number_year, first.number_sequence) == (2026, 1)
    assert first.status == Invoice.Status.ISSUED
    assert first.due_date == ISSUE_DAY + dt.timedelta(days=14)  # the customer's payment terms


def test_padding_prefix_and_no_yearly_reset():
    services.invoice_settings_update(data={"number_prefix": "R", "number_padding": 3, "number_yearly_reset": False},
                                     acting_user=admin())
    assert issued(on=dt.date(2026, 12, 31)).number == "R-001"
    assert issued(customer("Next"), on=dt.date(2027, 1, 1)).number == "R-002"  # no reset: one running series


def test_numbers_restart_each_year_with_the_year_in_them():
    cust = customer()
    assert issued(cust, on=dt.date(2026, 12, 31)).number == "INV-2026-00001"
    assert issued(cust, on=dt.date(2027, 1, 1)).number == "INV-2027-00001"
    assert issued(cust, on=dt.date(2026, 6, 1)).number == "INV-2026-00002"  # a late 2026 invoice continues 2026


def test_credit_notes_have_their_own_series():
    invoice = issued()
    credit = services.credit_note_create(invoice_id=invoice.pk, reason="Wrong customer", acting_user=admin(),
                                         issue_date=ISSUE_DAY)
    assert credit.number == "CN-2026-00001"
    assert issued(customer("Other")).number == "INV-2026-00002"
    assert NumberSequence.objects.get(series="credit_note", year=2026).next_number == 2


def test_a_rolled_back_issue_gives_its_number_back():
    first, second = draft(), draft(customer("Second"))
    with pytest.raises(RuntimeError), transaction.atomic():
        services.invoice_issue(invoice_id=first.pk, acting_user=admin(), issue_date=ISSUE_DAY)
        raise RuntimeError("the request failed after issuing")
    assert reload(first).number is None and reload(first).status == Invoice.Status.DRAFT
    assert services.invoice_issue(invoice_id=second.pk, acting_user=admin(), issue_date=ISSUE_DAY).number == "INV-2026-00001"


def test_a_failed_issue_takes_no_number():
    empty = draft(lines=[])
    with pytest.raises(ValidationError, match="at least one line"):
        services.invoice_issue(invoice_id=empty.pk, acting_user=admin(), issue_date=ISSUE_DAY)
    assert issued().number == "INV-2026-00001"


def test_issuing_twice_is_refused():
    invoice = issued()
    with pytest.raises(ValidationError, match="already issued"):
        services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=ISSUE_DAY)
    assert reload(invoice).number == "INV-2026-00001"


def test_settings_refuse_a_credit_note_prefix_equal_to_the_invoice_prefix():
    with pytest.raises(ValidationError) as error:
        services.invoice_settings_update(data={"credit_note_prefix": "inv"}, acting_user=admin())
    assert "credit_note_prefix" in error.value.message_dict
    assert InvoiceSettings.load().credit_note_prefix == "CN"


def test_format_number():
    assert services.format_number(prefix="INV", year=2026, number=42, padding=5) == "INV-2026-00042"
    assert services.format_number(prefix="", year=0, number=7, padding=4) == "0007"
    assert services.format_number(prefix="INV", year=0, number=123456, padding=3) == "INV-123456"


# --- taxes ---------------------------------------------------------------------------------


def test_tax_is_computed_and_rounded_per_line():
    tax("VAT", "19")
    invoice = issued(lines=[line("Support", "3", "33.3333", taxes=("VAT",)), line("Parts", "0.5", "45.55", taxes=("VAT",))])
    lines = list(invoice.lines.order_by("sort_order"))
    # 3 × 33.3333 = 99.9999 → 100.00, VAT 19.00; 0.5 × 45.55 = 22.775 → 22.78, VAT 4.3282 → 4.33
    assert [(l.amount, l.tax_amount) for l in lines] == [(d("100.00"), d("19.00")), (d("22.78"), d("4.33"))]
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (d("122.78"), d("23.33"), d("146.11"))


def test_several_taxes_and_a_compound_tax():
    tax("GST", "5")
    tax("QST", "9.975", compound=True)
    tax("LEVY", "2")
    invoice = issued(lines=[line("Project", "1", "200", taxes=("QST", "GST")), line("Licence", "1", "50", taxes=("GST", "LEVY"))])
    first, second = invoice.lines.order_by("sort_order")
    # Simple taxes first; QST on 200.00 + GST 10.00 = 210.00 → 20.9475 → 20.95
    assert [(t.code, t.base, t.amount, t.compound) for t in first.taxes.all()] == [
        ("GST", d("200.00"), d("10.00"), False), ("QST", d("210.00"), d("20.95"), True)]
    assert [(t.code, t.amount) for t in second.taxes.all()] == [("GST", d("2.50")), ("LEVY", d("1.00"))]
    assert invoice.tax_total == d("34.45")
    assert invoice.total == d("284.45")


def test_a_tax_exempt_customer_pays_no_tax_and_untaxable_lines_carry_none():
    tax("VAT", "19")
    exempt = issued(customer("Charity e.V.", tax_exempt=True), lines=[line(taxes=("VAT",))])
    assert (exempt.tax_total, exempt.total, exempt.customer_tax_exempt) == (d("0.00"), d("100.00"), True)
    assert not InvoiceLineTax.objects.filter(line__invoice=exempt).exists()
    mixed = issued(lines=[line(taxes=("VAT",)), line("Pass-through", taxes=("VAT",), taxable=False)])
    assert [l.tax_amount for l in mixed.lines.order_by("sort_order")] == [d("19.00"), d("0.00")]


def test_default_tax_codes_apply_to_taxable_lines_that_name_none():
    tax("VAT", "19")
    services.invoice_settings_update(data={"default_tax_codes": "vat"}, acting_user=admin())
    invoice = issued(lines=[line(taxes=None), line("Not taxable", taxes=None, taxable=False), line("No tax", taxes=())])
    assert [l.tax_codes for l in invoice.lines.order_by("sort_order")] == [["VAT"], [], []]
    assert invoice.tax_total == d("19.00")


def test_the_tax_version_in_effect_on_the_issue_date_is_used_and_frozen():
    tax("VAT", "16", effective_from=dt.date(2020, 7, 1))
    tax("VAT", "19", effective_from=dt.date(2021, 1, 1))
    invoice = draft(lines=[line(taxes=("VAT",))])
    before = services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=dt.date(2020, 12, 31))
    assert before.tax_total == d("16.00")
    assert before.tax_snapshot["VAT"]["percent"] == "16.0000"
    # A new rate version never changes an issued invoice — not even when it is edited later.
    tax("VAT", "21", effective_from=dt.date(2020, 9, 1))
    edited = services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(),
                                   lines=[line("Changed", "2", "100", taxes=("VAT",))])
    assert (edited.subtotal, edited.tax_total) == (d("200.00"), d("32.00"))


def test_an_unknown_or_future_tax_code_is_refused_with_a_message():
    tax("VAT", "19", effective_from=dt.date(2030, 1, 1))
    with pytest.raises(ValidationError, match="no tax with the code NOPE"):
        draft(lines=[line(taxes=("NOPE",))])
    invoice = draft(lines=[line(taxes=())])
    with pytest.raises(ValidationError, match="not in effect yet"):
        services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), lines=[line(taxes=("VAT",))])


# --- discounts and surcharges --------------------------------------------------------------


def test_line_discounts_percent_and_amount():
    invoice = draft(lines=[line("A", "3", "19.99", discount=percent("10")), line("B", "1", "100", discount=amount("5"))])
    first, second = invoice.lines.order_by("sort_order")
    # 59.97 less 10 % (5.997 → 6.00) = 53.97
    assert (first.gross_amount, first.discount_amount, first.amount) == (d("59.97"), d("6.00"), d("53.97"))
    assert (second.gross_amount, second.discount_amount, second.amount) == (d("100.00"), d("5.00"), d("95.00"))
    assert invoice.subtotal == d("148.97")


def test_invoice_discount_and_surcharge_are_spread_over_the_lines_before_tax():
    tax("VAT", "19")
    invoice = draft(lines=[line("A", "1", "100", taxes=("VAT",)), line("B", "1", "50", taxes=("VAT",))],
                    discount=percent("10"), surcharge=percent("2"))
    first, second = invoice.lines.order_by("sort_order")
    assert (invoice.discount_total, invoice.surcharge_total) == (d("15.00"), d("2.70"))
    assert (first.invoice_discount_share, second.invoice_discount_share) == (d("10.00"), d("5.00"))
    assert (first.invoice_surcharge_share, second.invoice_surcharge_share) == (d("1.80"), d("0.90"))
    # 91.80 × 19 % = 17.442 → 17.44; 45.90 × 19 % = 8.721 → 8.72
    assert (first.tax_amount, second.tax_amount) == (d("17.44"), d("8.72"))
    assert invoice.total == d("150.00") - d("15.00") + d("2.70") + d("26.16") == d("163.86")


def test_an_amount_discount_splits_with_largest_remainder():
    invoice = draft(lines=[line("A", "1", "10"), line("B", "1", "10"), line("C", "1", "10")], discount=amount("10"))
    shares = [l.invoice_discount_share for l in invoice.lines.order_by("sort_order")]
    assert shares == [d("3.34"), d("3.33"), d("3.33")] and sum(shares) == invoice.discount_total == d("10.00")


def test_default_discount_and_surcharge_come_from_the_settings():
    services.invoice_settings_update(data={"default_discount_percent": Decimal("5"), "default_surcharge_percent": Decimal("1")},
                                     acting_user=admin())
    invoice = draft(lines=[line("A", "1", "200")])
    assert (invoice.discount_kind, invoice.discount_total, invoice.surcharge_total) == ("percent", d("10.00"), d("1.90"))
    plain = draft(customer("Plain"), lines=[line("A", "1", "200")], discount=services.Adjustment(), surcharge=services.Adjustment())
    assert plain.total == d("200.00")


def test_discounts_larger_than_what_they_discount_are_refused():
    with pytest.raises(ValidationError, match="larger than the line amount"):
        draft(lines=[line("A", "1", "10", discount=amount("11"))])
    with pytest.raises(ValidationError, match="larger than the invoice's subtotal"):
        draft(lines=[line("A", "1", "10")], discount=amount("10.01"))
    with pytest.raises(ValidationError, match="from 0 to 100"):
        draft(lines=[line("A", "1", "10")], discount=percent("101"))
    with pytest.raises(ValidationError, match="minor units"):
        draft(lines=[line("A", "1", "10")], discount=amount("1.001"))


def test_bad_line_input_is_refused_with_the_line_named():
    with pytest.raises(ValidationError) as error:
        draft(lines=[line("ok"), line("", "1", "10"), line("Too precise", "1.00001", "10")])
    text = messages_of(error)
    assert "Line 2: enter a description." in text
    assert "Line 3: enter the quantity with at most 4 decimal places." in text
    with pytest.raises(ValidationError, match="time allocation 999999 does not exist"):
        draft(lines=[line(time_allocation_id=999999, source_kind="time")])
    with pytest.raises(ValidationError, match="enter the amount in EUR"):
        draft(lines=[services.LineInput(description="USD", unit_price=Money("5", "USD"))])
    with pytest.raises(TypeError):
        draft(lines=[{"description": "a dict"}])
    with pytest.raises(ValidationError, match="too large"):
        draft(lines=[line("Huge", "999999999", "999999999")])


def test_a_source_amount_stands_for_quantity_times_price():
    # 430.00 for 16 of October's 31 days = 221.94 (docs/design.md): the period code computed it.
    invoice = draft(lines=[line("Retainer fee, 16/31 days", "1", "430", amount=d("221.94"), source_kind="period")])
    (only,) = invoice.lines.all()
    assert (only.fixed_amount, only.amount, invoice.total) == (d("221.94"), d("221.94"), d("221.94"))
    # Time: 7 minutes is a quantity of 0.116666… hours; shown to 4 places, billed as rated.
    timed = draft(lines=[services.LineInput(description="7 min", quantity=Decimal(7) / Decimal(60), unit_price=d("120"),
                                            amount=d("14.00"))])
    (time_line,) = timed.lines.all()
    assert (time_line.quantity, time_line.amount) == (d("0.1167"), d("14.00"))


def test_a_currency_other_than_the_customers_is_refused():
    with pytest.raises(ValidationError, match="billed in EUR, not USD"):
        services.invoice_create_draft(customer=customer(), currency="USD", lines=[], acting_user=admin())
    with pytest.raises(ValidationError, match="more than two decimal places"):
        services.invoice_create_draft(customer=customer("Bahrain WLL", currency="BHD"), lines=[], acting_user=admin())


# --- statuses and payments -----------------------------------------------------------------


def test_partial_payments_then_paid():
    invoice = issued(lines=[line("A", "1", "100")])
    pay(invoice, "30")
    assert reload(invoice).status == Invoice.Status.PARTIALLY_PAID
    assert reload(invoice).amount_due == d("70.00")
    pay(invoice, "70", method=Payment.Method.CARD, reference="card 4242")
    invoice = reload(invoice)
    assert (invoice.status, invoice.amount_paid, invoice.amount_due) == (Invoice.Status.PAID, d("100.00"), d("0.00"))
    assert list(invoice.payments.values_list("amount", flat=True)) == [d("30.00"), d("70.00")]


def test_an_overpayment_is_refused_with_a_clear_message():
    invoice = issued(lines=[line("A", "1", "100")])
    pay(invoice, "60")
    with pytest.raises(ValidationError) as error:
        pay(invoice, "40.01")
    assert error.value.message_dict["amount"] == [
        "40.01 EUR is more than the 40.00 EUR still due on Invoice INV-2026-00001; record at most that "
        "(overpayments are not recorded)."]
    assert reload(invoice).amount_paid == d("60.00")


def test_payments_are_refused_on_drafts_void_paid_invoices_and_with_bad_input():
    with pytest.raises(ValidationError, match="Issue the invoice"):
        pay(draft(), "10")
    invoice = issued(lines=[line("A", "1", "100")])
    for value, message in (("0", "greater than zero"), ("-5", "greater than zero"), ("1.234", "minor units")):
        with pytest.raises(ValidationError, match=message):
            pay(invoice, value)
    with pytest.raises(ValidationError, match="future"):
        pay(invoice, "10", on=timezone.localdate() + dt.timedelta(days=5))
    with pytest.raises(ValidationError, match="how it was paid"):
        pay(invoice, "10", method="bitcoin")
    pay(invoice, "100")
    with pytest.raises(ValidationError, match="nothing left to pay"):
        pay(invoice, "1")
    other = issued(customer("Voided"))
    services.invoice_void(invoice_id=other.pk, acting_user=admin(), reason="Sent twice")
    with pytest.raises(ValidationError, match="void"):
        pay(other, "1")


def test_a_synced_payment_is_recorded_once():
    invoice = issued(lines=[line("A", "1", "100")])
    first = pay(invoice, "40", remote_id="xero-pay-1", method=Payment.Method.ACCOUNTING_SYNC)
    again = pay(invoice, "40", remote_id="xero-pay-1", method=Payment.Method.ACCOUNTING_SYNC)
    assert first.pk == again.pk and reload(invoice).amount_paid == d("40.00")


def test_void_rules():
    with pytest.raises(ValidationError, match="deleted, not voided"):
        services.invoice_void(invoice_id=draft().pk, acting_user=admin(), reason="x")
    paid = issued(customer("Paid"))
    pay(paid, "10")
    with pytest.raises(ValidationError, match="has payments"):
        services.invoice_void(invoice_id=paid.pk, acting_user=admin(), reason="x")
    invoice = issued()
    with pytest.raises(ValidationError, match="Say why"):
        services.invoice_void(invoice_id=invoice.pk, acting_user=admin(), reason="  ")
    voided = services.invoice_void(invoice_id=invoice.pk, acting_user=admin(), reason="Duplicate")
    assert (voided.status, voided.number, voided.void_reason, voided.pdf_version) == ("void", invoice.number, "Duplicate", 2)
    with pytest.raises(ValidationError, match="already void"):
        services.invoice_void(invoice_id=invoice.pk, acting_user=admin(), reason="again")


# --- editing -------------------------------------------------------------------------------


def test_a_draft_is_edited_freely_and_keeps_the_source_links_of_kept_lines():
    invoice = draft(lines=[line("Keep me", "1", "100", contract_id=None, source_kind="charge", detail={"rows": ["a"]}),
                           line("Drop me", "1", "5")])
    keep, drop = invoice.lines.order_by("sort_order")
    edited = services.invoice_edit(
        invoice_id=invoice.pk, acting_user=admin(), notes="Thanks!",
        lines=[services.LineInput(line_id=keep.pk, description="Kept, renamed", quantity=d("2"), unit_price=d("100")),
               line("New line", "1", "1")],
    )
    lines = list(edited.lines.order_by("sort_order"))
    assert [(l.description, l.amount) for l in lines] == [("Kept, renamed", d("200.00")), ("New line", d("1.00"))]
    assert lines[0].pk == keep.pk and lines[0].source_kind == "charge" and lines[0].detail == {"rows": ["a"]}
    assert not InvoiceLine.objects.filter(pk=drop.pk).exists()
    assert (edited.notes, edited.total) == ("Thanks!", d("201.00"))


def test_an_issued_invoice_is_edited_with_audit_and_a_new_pdf_version():
    invoice = issued(lines=[line("A", "1", "100")])
    assert invoice.pdf_version == 1
    (only,) = invoice.lines.all()
    edited = services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), discount=amount("10"),
                                   lines=[services.LineInput(line_id=only.pk, description="A", quantity=d("1"), unit_price=d("120"))])
    assert (edited.number, edited.total, edited.pdf_version) == ("INV-2026-00001", d("110.00"), 2)
    event = AuditEvent.objects.filter(action="invoice_edited", object_id=str(invoice.pk)).get()
    assert event.before["total"] == "100.00" and event.after["total"] == "110.00"
    assert event.before["discount"] == "" and event.after["discount"] == "amount:10.0000"
    assert event.actor_label == "billing-admin@alpha.example"
    # Nothing changed: no event, no new PDF.
    services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), notes="")
    assert reload(invoice).pdf_version == 2


def test_the_due_date_of_an_issued_invoice_can_move_but_not_before_its_issue_date():
    invoice = issued()
    moved = services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), due_date=dt.date(2026, 5, 1))
    assert moved.due_date == dt.date(2026, 5, 1)
    with pytest.raises(ValidationError, match="before the issue date"):
        services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), due_date=dt.date(2026, 1, 1))


@pytest.mark.parametrize("state", ["partially_paid", "paid", "exported", "void", "credited"])
def test_paid_exported_void_or_credited_invoices_are_not_edited(state):
    invoice = issued(lines=[line("A", "1", "100")])
    if state == "partially_paid":
        pay(invoice, "1")
    elif state == "paid":
        pay(invoice, "100")
    elif state == "exported":
        Invoice.objects.filter(pk=invoice.pk).update(exported_to="xero", exported_at=timezone.now(), remote_id="x-1")
    elif state == "void":
        services.invoice_void(invoice_id=invoice.pk, acting_user=admin(), reason="x")
    else:
        services.credit_note_create(invoice_id=invoice.pk, reason="Goodwill", acting_user=admin(),
                                    lines=[services.CreditLineInput(invoice.lines.get().pk, d("5"))], issue_date=ISSUE_DAY)
    with pytest.raises(ValidationError):
        services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), notes="sneaky")
    assert reload(invoice).notes == "" and services.edit_refusal(reload(invoice))


def test_a_line_of_another_invoice_cannot_be_smuggled_into_an_edit():
    other = draft(customer("Other"))
    invoice = draft()
    foreign = other.lines.get()
    with pytest.raises(ValidationError, match="not on this invoice"):
        services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(),
                              lines=[services.LineInput(line_id=foreign.pk, description="x", quantity=d("1"), unit_price=d("1"))])
    assert other.lines.get().description == "Remote support"


def test_an_edit_cannot_make_an_issued_invoice_negative():
    invoice = issued()
    with pytest.raises(ValidationError, match="negative"):
        services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), lines=[line("Refund", "-1", "50")])
    with pytest.raises(ValidationError, match="at least one line"):
        services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), lines=[])
    assert reload(invoice).lines.count() == 1


# --- credit notes --------------------------------------------------------------------------


def _rich_invoice():
    tax("GST", "5")
    tax("QST", "9.975", compound=True)
    return issued(lines=[
        line("Support", "3.5", "87.3333", taxes=("GST", "QST"), discount=percent("7.5")),
        line("Licence", "11", "3.1415", taxes=("GST",)),
        line("Untaxed", "1", "19.99", taxable=False),
        line("Adjustment", "-1", "4.99", taxes=("GST",)),
    ], discount=percent("3.3333"), surcharge=amount("2.22"))


FIGURES = ("quantity", "gross_amount", "discount_amount", "amount", "invoice_discount_share", "invoice_surcharge_share",
           "taxable_amount", "tax_amount")


def test_stored_totals_are_the_sums_of_the_stored_lines():
    invoice = _rich_invoice()
    lines = list(invoice.lines.prefetch_related("taxes"))
    assert invoice.subtotal == sum(l.amount for l in lines)
    assert invoice.discount_total == sum(l.invoice_discount_share for l in lines)
    assert invoice.surcharge_total == sum(l.invoice_surcharge_share for l in lines)
    assert invoice.tax_total == sum(l.tax_amount for l in lines) == sum(t.amount for l in lines for t in l.taxes.all())
    assert invoice.total == sum(l.taxable_amount + l.tax_amount for l in lines)


def test_a_full_credit_note_mirrors_the_invoice_to_the_cent():
    invoice = _rich_invoice()
    credit = services.credit_note_create(invoice_id=invoice.pk, reason="Cancelled order", acting_user=admin(),
                                         issue_date=ISSUE_DAY)
    assert credit.kind == "credit_note" and credit.credited_invoice_id == invoice.pk and credit.status == "issued"
    for field in ("subtotal", "discount_total", "surcharge_total", "tax_total", "total"):
        assert getattr(credit, field) == -getattr(invoice, field), field
    pairs = list(zip(invoice.lines.order_by("sort_order"), credit.lines.order_by("sort_order")))
    assert len(pairs) == 4
    for original, mirrored in pairs:
        assert mirrored.credited_line_id == original.pk
        for field in FIGURES:
            assert getattr(mirrored, field) == -getattr(original, field), field
        assert [(t.code, t.tax_rate_id, -t.amount, -t.base) for t in mirrored.taxes.all()] == \
               [(t.code, t.tax_rate_id, t.amount, t.base) for t in original.taxes.all()]
    invoice = reload(invoice)
    assert (invoice.amount_credited, invoice.amount_due, invoice.status) == (invoice.total, d("0.00"), "paid")
    with pytest.raises(ValidationError, match="already credited in full"):
        services.credit_note_create(invoice_id=invoice.pk, reason="again", acting_user=admin(), issue_date=ISSUE_DAY)


def test_partial_credits_never_add_up_to_more_than_the_invoice():
    tax("VAT", "19")
    invoice = issued(lines=[line("Support", "1", "100", taxes=("VAT",))])
    only = invoice.lines.get()
    credits = [services.credit_note_create(invoice_id=invoice.pk, reason=f"part {i}", acting_user=admin(),
                                           lines=[services.CreditLineInput(only.pk, d("33.33"))], issue_date=ISSUE_DAY)
               for i in range(3)]
    # 33.33 × 19 % = 6.3327 → 6.33 each
    assert [c.total for c in credits] == [d("-39.66")] * 3
    with pytest.raises(ValidationError, match="at most 0.01 EUR"):
        services.credit_note_create(invoice_id=invoice.pk, reason="too much", acting_user=admin(),
                                    lines=[services.CreditLineInput(only.pk, d("0.02"))], issue_date=ISSUE_DAY)
    rest = services.credit_note_create(invoice_id=invoice.pk, reason="the rest", acting_user=admin(), issue_date=ISSUE_DAY)
    # What is left closes exactly: 0.01 and the tax not yet credited (19.00 − 3 × 6.33 = 0.01)
    assert (rest.subtotal, rest.tax_total) == (d("-0.01"), d("-0.01"))
    assert sum(c.total for c in [*credits, rest]) == -invoice.total
    assert reload(invoice).amount_due == d("0.00")


def test_credit_note_rules_and_void_of_a_credit_note():
    with pytest.raises(ValidationError, match="A draft is edited or deleted"):
        services.credit_note_create(invoice_id=draft().pk, reason="x", acting_user=admin())
    invoice = issued(lines=[line("A", "1", "100")])
    pay(invoice, "100")
    with pytest.raises(ValidationError, match="Say why"):
        services.credit_note_create(invoice_id=invoice.pk, reason="", acting_user=admin())
    with pytest.raises(ValidationError, match="before the invoice it credits"):
        services.credit_note_create(invoice_id=invoice.pk, reason="early", acting_user=admin(),
                                    issue_date=ISSUE_DAY - dt.timedelta(days=1))
    credit = services.credit_note_create(invoice_id=invoice.pk, reason="Refund agreed", acting_user=admin(),
                                         lines=[services.CreditLineInput(invoice.lines.get().pk, d("20"))], issue_date=ISSUE_DAY)
    assert reload(invoice).amount_due == d("-20.00")  # paid in full, then credited: the MSP owes a refund
    with pytest.raises(ValidationError, match="cannot itself be credited"):
        services.credit_note_create(invoice_id=credit.pk, reason="x", acting_user=admin())
    with pytest.raises(ValidationError, match="has payments"):
        services.invoice_void(invoice_id=invoice.pk, acting_user=admin(), reason="x")
    services.invoice_void(invoice_id=credit.pk, acting_user=admin(), reason="Refund withdrawn")
    invoice = reload(invoice)
    assert (invoice.amount_credited, invoice.amount_due, invoice.status) == (d("0.00"), d("0.00"), "paid")


# --- drafts, audit, hooks ------------------------------------------------------------------


def test_deleting_a_draft_returns_its_sources():
    from tests.tickets.builders import catalogue, contract, ticket
    from tickets.models import Charge

    cust = customer()
    catalogue()
    hourly = contract(cust, "hourly", name="Hourly")
    charge = Charge.objects.create(ticket=ticket(cust), description="Cable", date=ISSUE_DAY, unit_price=Money("5", "EUR"))
    invoice = draft(cust, [line("Cable", "1", "5", charge_id=charge.pk, contract_id=hourly.pk, source_kind="charge"), line()])
    released = services.invoice_delete_draft(invoice_id=invoice.pk, acting_user=admin())
    assert released == services.ReleasedSources(charge_ids=(charge.pk,))
    assert not Invoice.objects.filter(pk=invoice.pk).exists()
    assert AuditEvent.objects.filter(action="invoice_draft_deleted", object_id=str(invoice.pk)).exists()
    with pytest.raises(ValidationError, match="not a draft"):
        services.invoice_delete_draft(invoice_id=issued(cust).pk, acting_user=admin())


def test_every_action_writes_an_audit_event_in_its_transaction():
    invoice = draft(lines=[line("A", "1", "100")])
    services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), notes="n")
    services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=ISSUE_DAY)
    pay(invoice, "10")
    credit = services.credit_note_create(invoice_id=invoice.pk, reason="r", acting_user=admin(),
                                         lines=[services.CreditLineInput(invoice.lines.get().pk, d("5"))], issue_date=ISSUE_DAY)
    services.invoice_void(invoice_id=credit.pk, acting_user=admin(), reason="undo")
    actions = list(audit_events_for(invoice).order_by("id").values_list("action", flat=True))
    assert actions == ["invoice_created", "invoice_edited", "invoice_issued", "payment_recorded", "invoice_credited",
                       "credit_note_voided"]
    assert list(audit_events_for(credit).order_by("id").values_list("action", flat=True)) == ["credit_note_issued", "invoice_voided"]
    issued_event = audit_events_for(invoice).get(action="invoice_issued")
    assert issued_event.before == {"status": "draft", "total": "100.00"}
    assert issued_event.after["number"] == "INV-2026-00001" and issued_event.actor.email == "billing-admin@alpha.example"
    # A refused action leaves no trace.
    count = AuditEvent.objects.count()
    with pytest.raises(ValidationError):
        pay(invoice, "1000")
    assert AuditEvent.objects.count() == count


def test_audit_record_keeps_any_value_as_json():
    cust = customer()
    event = audit_record(actor=None, action="customer_checked", obj=cust,
                         before={"fee": Money("1.50", "EUR"), "day": dt.date(2026, 1, 2), "rate": d("0.1000")},
                         after={"customer": cust, "codes": ("A", "B")}, message="scheduled")
    event.refresh_from_db()
    assert event.actor_label == "system" and event.object_type == "contracts.customer"
    assert event.before == {"fee": "1.50 EUR", "day": "2026-01-02", "rate": "0.1000"}
    assert event.after == {"customer": cust.pk, "codes": ["A", "B"]}
    assert jsonable({1: {d("1")}}) == {"1": ["1"]}


def test_listeners_hear_about_changes_only_after_commit(django_capture_on_commit_callbacks):
    heard = []

    def listener(*, invoice_id, action):
        heard.append((invoice_id, action))

    def broken(**kwargs):
        raise RuntimeError("a broken listener must not stop the others")

    hooks.register_invoice_listener(broken)
    hooks.register_invoice_listener(listener)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            invoice = draft()
        assert heard == [] and len(callbacks) == 1  # nothing before commit
        with django_capture_on_commit_callbacks(execute=True):
            services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=ISSUE_DAY)
        with django_capture_on_commit_callbacks(execute=True):
            with pytest.raises(ValidationError):
                services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=ISSUE_DAY)
        assert heard == [(invoice.pk, "issued")]
    finally:
        hooks.unregister_invoice_listener(listener)
        hooks.unregister_invoice_listener(broken)


def test_recalculate_picks_up_a_new_tax_version_on_a_draft_only():
    tax("VAT", "19")
    invoice = draft(lines=[line(taxes=("VAT",))])
    tax("VAT", "20", effective_from=dt.date(2021, 1, 1))
    assert services.invoice_recalculate(invoice_id=invoice.pk, acting_user=admin()).tax_total == d("20.00")
    services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=ISSUE_DAY)
    with pytest.raises(ValidationError, match="Only a draft"):
        services.invoice_recalculate(invoice_id=invoice.pk, acting_user=admin())
