"""Editing a draft, or an issued invoice that is neither exported, paid nor credited.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction

from invoices.audit import audit_record
from invoices.calculation import Adjustment
from invoices.models import Invoice, InvoiceSettings
from invoices.services._common import _changed, _lock, _notify, _set_adjustments, _state, _tax_snapshot
from invoices.services.inputs import LineInput
from invoices.services.lines import _recalculate, _replace_lines
from invoices.states import invoice_is_final
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import check_date as _check_date
from msp_billing.validation import clean_text as _text
from msp_billing.validation import whole_number_in
from msp_billing.templatetags.formatting import day as format_day


def edit_refusal(invoice: Invoice) -> str | None:
    """Why ``invoice`` cannot be edited now, or None when it can."""
    if invoice.kind != Invoice.Kind.INVOICE:
        return "A credit note cannot be edited; void it and create another."
    if invoice.status == Invoice.Status.DRAFT:
        return None
    if invoice_is_final(invoice):
        return "A void invoice cannot be edited."
    if invoice.is_exported:
        return (f"{invoice} was exported to {invoice.exported_to or 'the accounting system'}; "
                "correct it with a credit note or void it.")
    if invoice.amount_credited or invoice.credit_notes.exclude(status=Invoice.Status.VOID).exists():
        return f"{invoice} has a credit note; correct it with another credit note."
    if invoice.status != Invoice.Status.ISSUED or invoice.amount_paid:
        return f"{invoice} has payments; correct it with a credit note."
    return None


@transaction.atomic
def invoice_edit(
    *,
    invoice_id: int,
    acting_user,
    lines: Sequence[LineInput] | None = None,
    discount: Adjustment | None = None,
    surcharge: Adjustment | None = None,
    notes: str | None = None,
    terms: str | None = None,
    payment_instructions: str | None = None,
    payment_terms_days: int | None = None,
    due_date: dt.date | None = None,
) -> Invoice:
    """Change a draft, or an issued invoice that is neither exported nor paid (audited).

    Arguments left as None stay as they are. ``lines`` replaces every line: a
    ``LineInput`` with ``line_id`` keeps that line's source links; lines not named are
    removed. An issued invoice keeps its number and the tax rates it was issued with (a
    tax code it did not have yet is taken as in effect on its issue date); its PDF
    version goes up so the printed copy is rendered again.
    """
    invoice = _lock(invoice_id)
    refusal = edit_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    before = _state(invoice)
    errors = _Errors()
    _set_adjustments(errors, invoice,
                     discount=discount if discount is not None else Adjustment(invoice.discount_kind, invoice.discount_value),
                     surcharge=surcharge if surcharge is not None else Adjustment(invoice.surcharge_kind, invoice.surcharge_value))
    for name, value in (("notes", notes), ("terms", terms), ("payment_instructions", payment_instructions)):
        if value is not None:
            setattr(invoice, name, _text(value))
    if payment_terms_days is not None:
        if not whole_number_in(payment_terms_days, 0, 365):
            errors.add("payment_terms_days", "Enter payment terms from 0 to 365 days.")
        else:
            invoice.payment_terms_days = payment_terms_days
            if invoice.issue_date and due_date is None and invoice.status != Invoice.Status.DRAFT:
                invoice.due_date = invoice.issue_date + dt.timedelta(days=payment_terms_days)
    if due_date is not None:
        if invoice.status == Invoice.Status.DRAFT:
            errors.add("due_date", "A draft's due date is set when it is issued, from its payment terms.")
        else:
            _check_date(errors, "due_date", due_date)
            if not errors and due_date < invoice.issue_date:
                errors.add("due_date", f"The due date cannot be before the issue date ({format_day(invoice.issue_date)}).")
            elif not errors:
                invoice.due_date = due_date
    errors.raise_if_any()
    if lines is not None:
        _replace_lines(invoice, lines, config=InvoiceSettings.load())
    _recalculate(invoice)
    if invoice.status != Invoice.Status.DRAFT:
        if not invoice.lines.exists():
            raise ValidationError("An issued invoice keeps at least one line; void it instead.")
        if invoice.total < 0:
            raise ValidationError("The invoice total would be negative; issue a credit note instead.")
        invoice.tax_snapshot = _tax_snapshot(invoice)
    after = _state(invoice)
    if before == after:
        return invoice
    invoice.pdf_version += 1
    invoice.save(update_fields=["pdf_version", "tax_snapshot", "updated_at"])
    audit_record(actor=acting_user, action="invoice_edited", obj=invoice,
                 before=_changed(before, after, side=0), after=_changed(before, after, side=1))
    _notify(invoice.pk, "edited")
    return invoice
