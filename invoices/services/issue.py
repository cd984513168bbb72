"""Numbering and issue: gapless numbers per series (and per year when they restart each year), the
next number a series takes, and issuing a draft.
"""
from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from contracts.models import Customer
from invoices.audit import audit_record
from invoices.exchange import invoice_freeze_exchange_rate
from invoices.models import Invoice, InvoiceSettings, NumberSequence
from invoices.services._common import (
    EARLIEST_DATE,
    LATEST_DATE,
    _lock,
    _notify,
    _save_numbered,
    _state,
    _tax_snapshot,
    _user,
)
from invoices.services.lines import _recalculate
from invoices.states import invoice_transition_refusal
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import check_date as _check_date
from msp_billing.validation import whole_number_in


MAX_SEQUENCE_NUMBER = 2_147_483_647  # what the number columns hold
SERIES_NAMES = {NumberSequence.Series.INVOICE: "invoice", NumberSequence.Series.CREDIT_NOTE: "credit note"}


def numbering_year(*, year: int | None = None, config: InvoiceSettings | None = None) -> int:
    """The year a series is counted in: ``year`` (this year when None) when numbers restart each year, else 0."""
    config = config or InvoiceSettings.load()
    if not config.number_yearly_reset:
        return 0
    return tenant_today().year if year is None else year


def next_number_of(*, series: str, year: int | None = None) -> int:
    """The number the next document of ``series`` will take (in ``year`` when numbers restart each year)."""
    year = numbering_year(year=year)
    sequence = NumberSequence.objects.filter(series=series, year=year).first()
    return sequence.next_number if sequence else 1


@transaction.atomic
def invoice_numbering_set_next(*, series: str, next_number: int, acting_user, year: int | None = None) -> NumberSequence:
    """Set the number the next invoice (or credit note) of a series takes — when moving in from another
    system, the number after its last one.

    ``year``: when numbers restart each year, the year whose series is set (None: this year);
    without yearly reset there is one series for all years and ``year`` is not used. Refused
    when ``next_number`` is at or below a number already issued in that series and year, so
    numbers are never given twice and stay gapless from the new number on. Audited as a
    settings change; setting the number it already has changes nothing.
    """
    errors = _Errors()
    if series not in NumberSequence.Series.values:
        errors.add("series", f"Unknown series “{series}”: choose invoice or credit_note.")
    if not whole_number_in(next_number, 1, MAX_SEQUENCE_NUMBER):
        errors.add("next_number", f"Enter a whole number from 1 to {MAX_SEQUENCE_NUMBER}.")
    config = InvoiceSettings.load()
    if year is not None and config.number_yearly_reset and (
            not whole_number_in(year, EARLIEST_DATE.year, LATEST_DATE.year)):
        errors.add("year", f"Enter a year from {EARLIEST_DATE.year} to {LATEST_DATE.year}.")
    errors.raise_if_any()
    year = numbering_year(year=year, config=config)
    # The same lock an issue takes: no document is numbered while the series changes.
    NumberSequence.objects.bulk_create([NumberSequence(series=series, year=year)], ignore_conflicts=True)
    sequence = NumberSequence.objects.select_for_update().get(series=series, year=year)
    name = SERIES_NAMES[series]
    in_year = f" in {year}" if year else ""
    last = (Invoice.objects.filter(kind=series, number_year=year, number_sequence__isnull=False)
            .order_by("-number_sequence").only("number", "number_sequence").first())
    if last is not None and next_number <= last.number_sequence:
        raise ValidationError({"next_number": (
            f"{last.number} was already issued: the next {name} number{in_year} must be above {last.number_sequence} "
            "(numbers are never given twice). Nothing was changed.")})
    if next_number == sequence.next_number:
        return sequence
    before = sequence.next_number
    sequence.next_number = next_number
    sequence.save(update_fields=["next_number"])
    example = format_number(prefix=config.credit_note_prefix if series == NumberSequence.Series.CREDIT_NOTE else config.number_prefix,
                            year=year, number=next_number, padding=config.number_padding)
    audit_record(actor=acting_user, action="invoice_settings_updated", obj=config,
                 before={"series": series, "year": year, "next_number": before},
                 after={"series": series, "year": year, "next_number": next_number},
                 message=f"Next {name} number{in_year} set to {next_number} ({example}).")
    return sequence


def format_number(*, prefix: str, year: int, number: int, padding: int) -> str:
    """``INV-2026-00042`` (yearly reset), ``INV-00042`` (no reset), ``2026-00042`` (no prefix)."""
    parts = [prefix] if prefix else []
    if year:
        parts.append(str(year))
    parts.append(str(number).zfill(padding))
    return "-".join(parts)


def _take_number(*, series: str, on: dt.date) -> tuple[str, int, int]:
    """The next number of ``series`` for a document dated ``on``: locked until the transaction ends.

    The sequence row is created if missing (``INSERT ... ON CONFLICT DO NOTHING``, so two
    first issues of a year do not collide), then locked with ``SELECT ... FOR UPDATE``:
    concurrent issues queue here one after another, and a rollback gives the number back.
    """
    config = InvoiceSettings.load()
    year = on.year if config.number_yearly_reset else 0
    NumberSequence.objects.bulk_create([NumberSequence(series=series, year=year)], ignore_conflicts=True)
    sequence = NumberSequence.objects.select_for_update().get(series=series, year=year)
    number = sequence.next_number
    sequence.next_number = number + 1
    sequence.save(update_fields=["next_number"])
    prefix = config.credit_note_prefix if series == NumberSequence.Series.CREDIT_NOTE else config.number_prefix
    return format_number(prefix=prefix, year=year, number=number, padding=config.number_padding), year, number


@transaction.atomic
def invoice_issue(*, invoice_id: int, acting_user, issue_date: dt.date | None = None) -> Invoice:
    """Give a draft its number, freeze customer and tax details, set the due date."""
    invoice = _lock(invoice_id)
    if invoice.kind != Invoice.Kind.INVOICE:
        raise ValidationError("A credit note is issued when it is created.")
    refusal = invoice_transition_refusal(invoice, Invoice.Status.ISSUED, by=Invoice.Move.ISSUE)
    if refusal:
        raise ValidationError(refusal)
    errors = _Errors()
    issue_date = tenant_today() if issue_date is None else issue_date
    _check_date(errors, "issue_date", issue_date)
    errors.raise_if_any()
    if not invoice.lines.exists():
        raise ValidationError("Add at least one line before issuing the invoice.")
    before = _state(invoice)
    customer = Customer.objects.get(pk=invoice.customer_id)
    invoice.issue_date = issue_date
    # Frozen on issue: the exemption as it stands on the issue date (an expired certificate
    # no longer exempts), and the reverse charge.
    invoice.customer_tax_exempt = customer.exemption_in_effect(issue_date)
    invoice.customer_reverse_charge = customer.reverse_charge
    _recalculate(invoice, tax_date=issue_date, tax_exempt=customer.untaxed_on(issue_date), frozen=False)
    if invoice.total < 0:
        raise ValidationError("The invoice total is negative; issue a credit note instead.")
    invoice.customer_name = customer.legal_name
    invoice.customer_address = customer.address
    invoice.customer_tax_id = customer.tax_id
    invoice.customer_email = customer.billing_email
    invoice.tax_snapshot = _tax_snapshot(invoice)
    invoice.due_date = issue_date + dt.timedelta(days=invoice.payment_terms_days)
    invoice.status = Invoice.Status.ISSUED
    invoice.issued_at = timezone.now()
    invoice.issued_by = _user(acting_user)
    invoice.pdf_version += 1
    invoice_freeze_exchange_rate(invoice)
    # The number last: the sequence row stays locked for as short a time as possible.
    invoice.number, invoice.number_year, invoice.number_sequence = _take_number(
        series=NumberSequence.Series.INVOICE, on=issue_date)
    _save_numbered(invoice)
    audit_record(actor=acting_user, action="invoice_issued", obj=invoice,
                 before={"status": before["status"], "total": before["total"]},
                 after={"status": invoice.status, "number": invoice.number, "issue_date": invoice.issue_date,
                        "due_date": invoice.due_date, "total": invoice.total, "taxes": invoice.tax_snapshot})
    _notify(invoice.pk, "issued")
    return invoice
