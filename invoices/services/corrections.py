"""Correcting an issued invoice: voiding it (or a credit note), or crediting all or some of its lines
with a credit note.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from invoices.audit import audit_record
from invoices.calculation import TaxSpec, is_whole_minor_units, line_taxes
from invoices.models import Invoice, InvoiceLine, InvoiceLineTax, NumberSequence
from invoices.services._common import _decimal, _lock, _notify, _save_numbered, _settle_status, _state, _user
from invoices.services.inputs import CreditLineInput
from invoices.services.issue import _take_number
from invoices.services.lines import _sum_totals
from invoices.states import invoice_transition_refusal
from msp_billing.money import round_money, round_unit_price
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import check_date as _check_date
from msp_billing.validation import clean_text as _text
from msp_billing.templatetags.formatting import day as format_day


def void_refusal(invoice: Invoice) -> str | None:
    refusal = invoice_transition_refusal(invoice, Invoice.Status.VOID, by=Invoice.Move.VOID)
    if refusal:
        return refusal
    if invoice.kind == Invoice.Kind.INVOICE:
        if invoice.amount_paid:
            return f"{invoice} has payments; correct it with a credit note instead."
        if invoice.credit_notes.exclude(status=Invoice.Status.VOID).exists():
            return f"{invoice} has credit notes; void them first, or credit the rest."
    return None


@transaction.atomic
def invoice_void(*, invoice_id: int, acting_user, reason: str) -> Invoice:
    """Void an issued invoice without payments, or a credit note. The number stays used."""
    target = Invoice.objects.get(pk=invoice_id)
    credited = None
    if target.kind == Invoice.Kind.CREDIT_NOTE:
        credited = _lock(target.credited_invoice_id)  # always invoice before credit note: no deadlock
    invoice = _lock(invoice_id)
    refusal = void_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    reason = _text(reason)
    if not reason:
        raise ValidationError({"reason": ["Say why it is voided; the reason is kept in the audit trail."]})
    before = {"status": invoice.status}
    invoice.status = Invoice.Status.VOID
    invoice.voided_at = timezone.now()
    invoice.voided_by = _user(acting_user)
    invoice.void_reason = reason
    invoice.pdf_version += 1
    invoice.save(update_fields=["status", "voided_at", "voided_by", "void_reason", "pdf_version", "updated_at"])
    audit_record(actor=acting_user, action="invoice_voided", obj=invoice, before=before,
                 after={"status": invoice.status}, message=reason)
    if credited is not None:
        credited_before = {"amount_credited": credited.amount_credited, "status": credited.status}
        credited.amount_credited += invoice.total  # the credit note's total is negative
        _settle_status(credited, by=Invoice.Move.CREDIT_VOIDED)
        credited.save(update_fields=["amount_credited", "status", "updated_at"])
        audit_record(actor=acting_user, action="credit_note_voided", obj=credited, before=credited_before,
                     after={"amount_credited": credited.amount_credited, "status": credited.status},
                     message=f"{invoice} voided: {reason}")
        _notify(credited.pk, "credited")
    _notify(invoice.pk, "voided")
    return invoice


def credit_note_refusal(invoice: Invoice) -> str | None:
    if invoice.kind != Invoice.Kind.INVOICE:
        return "A credit note cannot itself be credited; void it instead."
    return invoice_transition_refusal(invoice, Invoice.Status.PAID, by=Invoice.Move.CREDIT)


@dataclass
class _Creditable:
    """What is left to credit of one invoice line."""

    line: InvoiceLine
    taxable_amount: Decimal
    taxes: dict[str, Decimal] = field(default_factory=dict)
    touched: bool = False


def creditable_lines(invoice: Invoice) -> list[_Creditable]:
    """Each line of ``invoice`` with what its non-void credit notes have not credited yet."""
    lines = list(invoice.lines.prefetch_related("taxes"))
    credit_lines = InvoiceLine.objects.filter(
        credited_line__invoice=invoice, invoice__kind=Invoice.Kind.CREDIT_NOTE,
    ).exclude(invoice__status=Invoice.Status.VOID).prefetch_related("taxes")
    by_line: dict[int, list[InvoiceLine]] = defaultdict(list)
    for credit in credit_lines:
        by_line[credit.credited_line_id].append(credit)
    result = []
    for line in lines:
        left = _Creditable(line=line, taxable_amount=line.taxable_amount,
                           taxes={tax.code: tax.amount for tax in line.taxes.all()})
        for credit in by_line.get(line.pk, []):
            left.touched = True
            left.taxable_amount += credit.taxable_amount
            for tax in credit.taxes.all():
                left.taxes[tax.code] = left.taxes.get(tax.code, Decimal(0)) + tax.amount
        result.append(left)
    return result


@transaction.atomic
def credit_note_create(
    *,
    invoice_id: int,
    reason: str,
    acting_user,
    lines: Sequence[CreditLineInput] | None = None,
    issue_date: dt.date | None = None,
) -> Invoice:
    """Issue a credit note against an issued invoice: all that is left of it, or ``lines``.

    A line credited in full for the first time is mirrored exactly — every printed figure
    negated, with the invoice's own tax rates — so a full credit note is the invoice to
    the cent with the sign turned. A part of a line is credited as one amount with the
    line's taxes on it; the part that completes a line credits exactly the tax that is
    left, so several partial credits never add up to more (or less) than the invoice.
    """
    invoice = _lock(invoice_id)
    refusal = credit_note_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    errors = _Errors()
    reason = _text(reason)
    if not reason:
        errors.add("reason", "Say why the invoice is credited; it is printed on the credit note.")
    issue_date = tenant_today() if issue_date is None else issue_date
    _check_date(errors, "issue_date", issue_date)
    if not errors and issue_date < invoice.issue_date:
        errors.add("issue_date", f"A credit note cannot be dated before the invoice it credits "
                                 f"({format_day(invoice.issue_date)}).")
    errors.raise_if_any()
    creditable = {item.line.pk: item for item in creditable_lines(invoice)}
    currency = invoice.currency
    zero = round_money(0, currency)

    requested: list[tuple[_Creditable, Decimal | None]] = []
    if lines is None:
        if not any(_left_to_credit(item) for item in creditable.values()):
            raise ValidationError(f"{invoice} is already credited in full.")
        # Untouched lines are all mirrored (zero lines too: a faithful copy); others only if something is left.
        requested = [(item, None) for item in creditable.values() if not item.touched or _left_to_credit(item)]
    else:
        seen: set[int] = set()
        for position, item_input in enumerate(lines, start=1):
            item = creditable.get(item_input.invoice_line_id)
            if item is None or item_input.invoice_line_id in seen:
                errors.add("lines", f"Line {position}: not a line of {invoice}, or named twice.")
                continue
            seen.add(item_input.invoice_line_id)
            amount = None
            if item_input.amount is not None:
                amount = _decimal(errors, "lines", item_input.amount, currency=currency, label=f"Line {position}: amount")
                if amount is None:
                    continue
                if amount <= 0:
                    errors.add("lines", f"Line {position}: enter an amount greater than zero.")
                elif not is_whole_minor_units(amount, currency):
                    errors.add("lines", f"Line {position}: enter the amount in whole {currency} minor units.")
                elif item.line.taxable_amount <= 0:
                    errors.add("lines", f"Line {position}: a line that is not a charge can only be credited in full.")
                elif amount > item.taxable_amount:
                    errors.add("lines", f"Line {position}: at most {item.taxable_amount} {currency} of “{item.line}” "
                                        "is left to credit.")
                if amount == item.taxable_amount:
                    amount = None  # all that is left: closes the line exactly
            if amount is None and not _left_to_credit(item):
                errors.add("lines", f"Line {position}: “{item.line}” is already credited in full.")
            requested.append((item, amount))
        if not requested and not errors:
            errors.add("lines", "Choose at least one line to credit.")
    errors.raise_if_any()

    credit = Invoice(
        customer_id=invoice.customer_id,
        kind=Invoice.Kind.CREDIT_NOTE,
        credited_invoice=invoice,
        status=Invoice.Status.ISSUED,
        currency=currency,
        issue_date=issue_date,
        due_date=issue_date,
        payment_terms_days=0,
        customer_name=invoice.customer_name,
        customer_address=invoice.customer_address,
        customer_tax_id=invoice.customer_tax_id,
        customer_tax_exempt=invoice.customer_tax_exempt,
        customer_reverse_charge=invoice.customer_reverse_charge,
        customer_email=invoice.customer_email,
        tax_snapshot=invoice.tax_snapshot,
        reason=reason,
        footer=invoice.footer,
        created_by=_user(acting_user),
        issued_at=timezone.now(),
        issued_by=_user(acting_user),
        pdf_version=1,
    )
    credit.number, credit.number_year, credit.number_sequence = _take_number(
        series=NumberSequence.Series.CREDIT_NOTE, on=issue_date)
    _save_numbered(credit)
    for order, (item, amount) in enumerate(requested):
        _credit_line(credit, item, amount, order=order, currency=currency)
    _sum_totals(credit)
    credit.save()
    if credit.total > zero:
        raise ValidationError("These lines would make a credit note that charges the customer; credit the "
                              "charged lines too, or edit the invoice.")

    invoice_before = {"amount_credited": invoice.amount_credited, "status": invoice.status}
    invoice.amount_credited -= credit.total
    _settle_status(invoice, by=Invoice.Move.CREDIT)
    invoice.save(update_fields=["amount_credited", "status", "updated_at"])
    audit_record(actor=acting_user, action="credit_note_issued", obj=credit, after=_state(credit), message=reason)
    audit_record(actor=acting_user, action="invoice_credited", obj=invoice, before=invoice_before,
                 after={"amount_credited": invoice.amount_credited, "status": invoice.status,
                        "credit_note": credit.number}, message=reason)
    _notify(credit.pk, "credit_note_issued")
    _notify(invoice.pk, "credited")
    return credit


def _left_to_credit(item: _Creditable) -> bool:
    return bool(item.taxable_amount) or any(item.taxes.values())


def _credit_line(credit: Invoice, item: _Creditable, amount: Decimal | None, *, order: int, currency: str) -> None:
    line = item.line
    zero = round_money(0, currency)
    if amount is None and not item.touched:
        mirrored = InvoiceLine.objects.create(
            invoice=credit, sort_order=order, description=line.description, quantity=-line.quantity,
            unit_price=line.unit_price, fixed_amount=-line.fixed_amount if line.fixed_amount is not None else None,
            gross_amount=-line.gross_amount, discount_kind=line.discount_kind, discount_value=line.discount_value,
            discount_amount=-line.discount_amount, amount=-line.amount,
            invoice_discount_share=-line.invoice_discount_share, invoice_surcharge_share=-line.invoice_surcharge_share,
            taxable_amount=-line.taxable_amount, taxable=line.taxable, tax_codes=line.tax_codes,
            tax_amount=-line.tax_amount, source_kind=InvoiceLine.SourceKind.CREDIT, credited_line=line,
            contract_id=line.contract_id, product_id=line.product_id, rate_item_id=line.rate_item_id,
        )
        InvoiceLineTax.objects.bulk_create([
            InvoiceLineTax(line=mirrored, tax_rate_id=tax.tax_rate_id, code=tax.code, name=tax.name, percent=tax.percent,
                           compound=tax.compound, base=-tax.base, amount=-tax.amount, sort_order=tax.sort_order)
            for tax in line.taxes.all()
        ])
        return
    closing = amount is None
    value = item.taxable_amount if closing else amount
    taxes = list(line.taxes.all())
    if closing:
        tax_rows = [(tax, -item.taxes.get(tax.code, zero)) for tax in taxes]
        bases, charged = {}, zero
        for tax, tax_amount in tax_rows:  # stored simple first, then compound: as the calculation bases them
            bases[tax.code] = -value + (charged if tax.compound else zero)
            charged += tax_amount
    else:
        specs = [TaxSpec(rate_id=t.tax_rate_id, code=t.code, name=t.name, percent=t.percent, compound=t.compound) for t in taxes]
        results = {r.spec.code: r for r in line_taxes(specs=specs, taxable_amount=-value, currency=currency)}
        tax_rows = [(tax, results[tax.code].amount) for tax in taxes]
        bases = {code: result.base for code, result in results.items()}
    tax_amount = sum((amount for _, amount in tax_rows), zero)
    credit_line = InvoiceLine.objects.create(
        invoice=credit, sort_order=order, description=f"{line.description} ({'remainder' if closing else 'part'})",
        quantity=Decimal("-1"), unit_price=round_unit_price(value), fixed_amount=-value, gross_amount=-value,
        amount=-value, taxable_amount=-value, taxable=line.taxable, tax_codes=line.tax_codes, tax_amount=tax_amount,
        source_kind=InvoiceLine.SourceKind.CREDIT, credited_line=line, contract_id=line.contract_id,
        product_id=line.product_id, rate_item_id=line.rate_item_id,
    )
    InvoiceLineTax.objects.bulk_create([
        InvoiceLineTax(line=credit_line, tax_rate_id=tax.tax_rate_id, code=tax.code, name=tax.name, percent=tax.percent,
                       compound=tax.compound, base=bases[tax.code], amount=amount, sort_order=tax.sort_order)
        for tax, amount in tax_rows
    ])
