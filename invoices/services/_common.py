"""What the invoice services share: the limits of the amount columns, the input checks, the row lock,
the audit state of an invoice and the on-commit notice to ``invoices.hooks`` listeners.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from djmoney.settings import CURRENCY_CHOICES

from contracts.models import Customer
from invoices import hooks
from invoices.calculation import NO_ADJUSTMENT, PERCENT, Adjustment
from invoices.models import AdjustmentKind, Invoice, InvoiceLine, InvoiceLineTax
from invoices.states import invoice_transition_refusal, moves_from
from msp_billing.money import minor_unit_exponent
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import clean_decimal


CURRENCY_CODES = frozenset(code for code, _ in CURRENCY_CHOICES)
MAX_AMOUNT = Decimal("999999999999")  # 12 integer digits: what the amount columns hold
MAX_DESCRIPTION = 2000
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)
QUANTITY_PLACES = Decimal("0.0001")


def _lock(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice_id)


def _tax_snapshot(invoice: Invoice) -> dict[str, dict[str, Any]]:
    snapshot: dict[str, dict[str, Any]] = {}
    for tax in InvoiceLineTax.objects.filter(line__invoice=invoice).order_by("id"):
        snapshot.setdefault(tax.code, {"id": tax.tax_rate_id, "name": tax.name, "percent": str(tax.percent),
                                       "compound": tax.compound})
    # Codes on lines that charge no tax right now (an exempt customer) are frozen too.
    for existing_code, row in (invoice.tax_snapshot or {}).items():
        snapshot.setdefault(existing_code, row)
    return snapshot


def _settle_status(invoice: Invoice, *, by: str) -> None:
    """Issued → partially paid → paid, from what payments and credit notes have settled
    (``by``: the move that changed them; the invoice row is locked)."""
    if invoice.kind != Invoice.Kind.INVOICE or by not in moves_from(invoice.status):
        return
    settled = invoice.amount_paid + invoice.amount_credited
    if settled > 0 and invoice.total - settled <= 0:
        to = Invoice.Status.PAID
    elif settled > 0:
        to = Invoice.Status.PARTIALLY_PAID
    else:
        to = Invoice.Status.ISSUED
    if to != invoice.status:
        refusal = invoice_transition_refusal(invoice, to, by=by)
        if refusal:
            raise ValidationError(refusal)
        invoice.status = to


def _save_numbered(invoice: Invoice) -> None:
    try:
        with transaction.atomic():
            invoice.save()
    except IntegrityError as error:
        raise ValidationError(
            f"The number {invoice.number} is already used (the numbering settings were changed back to an earlier "
            "format); change the prefix in the invoice settings."
        ) from error


def _set_adjustments(errors: _Errors, invoice: Invoice, *, discount: Adjustment, surcharge: Adjustment) -> None:
    for name, adjustment in (("discount", discount), ("surcharge", surcharge)):
        if not isinstance(adjustment, Adjustment) or adjustment.kind not in AdjustmentKind.values:
            errors.add(f"{name}_kind", f"Choose a percent or an amount {name}.")
            continue
        value = _decimal(errors, f"{name}_value", adjustment.value, currency=invoice.currency)
        if value is None:
            continue
        if value != value.quantize(QUANTITY_PLACES):
            errors.add(f"{name}_value", "Enter at most 4 decimal places.")
            continue
        if adjustment.kind == PERCENT and value > 100:
            errors.add(f"{name}_value", f"Enter a {name} from 0 to 100 %.")
            continue
        kind = adjustment.kind if value else NO_ADJUSTMENT
        setattr(invoice, f"{name}_kind", kind)
        setattr(invoice, f"{name}_value", value.quantize(QUANTITY_PLACES) if kind else Decimal("0.0000"))


def _check_currency(errors: _Errors, customer: Customer, currency: str | None) -> str:
    code = (currency or customer.currency or "").strip().upper()
    if code not in CURRENCY_CODES:
        errors.add("currency", "Choose a valid ISO 4217 currency code, such as EUR or USD.")
    elif code != customer.currency.upper():
        errors.add("currency", f"{customer} is billed in {customer.currency}, not {code}.")
    elif minor_unit_exponent(code) > 2:
        errors.add("currency", f"{code} has more than two decimal places in its minor unit; invoices in it are not "
                               "supported yet.")
    return code


def _decimal(errors: _Errors, field: str, value: Any, **options) -> Decimal | None:
    """Amounts here may come as text and are bounded by what the amount columns hold."""
    return clean_decimal(errors, field, value, accept_text=True, maximum=MAX_AMOUNT, **options)


def _codes(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        code = str(value).strip().upper()
        if code and code not in seen:
            seen.append(code)
    return seen


def _user(acting_user):
    return acting_user if getattr(acting_user, "pk", None) is not None else None


def _notify(invoice_id: int, action: str) -> None:
    transaction.on_commit(lambda: hooks.invoice_changed(invoice_id, action=action))


def _state(invoice: Invoice, *, lines: list[InvoiceLine] | None = None, taxes: list[InvoiceLineTax] | None = None) -> dict[str, Any]:
    """What the audit trail keeps of an invoice: header figures and printed lines (read from
    the database, or ``lines`` and their ``taxes`` as just computed)."""
    if lines is None:
        rows = [(line, list(line.taxes.all())) for line in invoice.lines.prefetch_related("taxes").order_by("sort_order", "id")]
    else:
        by_line: dict[int, list[InvoiceLineTax]] = defaultdict(list)
        for tax in taxes or ():
            by_line[id(tax.line)].append(tax)
        rows = [(line, by_line[id(line)]) for line in lines]
    lines = []
    for line, line_taxes_ in rows:
        lines.append({
            "id": line.pk, "description": line.description, "quantity": str(line.quantity),
            "unit_price": str(line.unit_price), "discount": f"{line.discount_kind}:{line.discount_value}" if line.discount_kind else "",
            "amount": str(line.amount), "taxable": line.taxable,
            "taxes": {tax.code: str(tax.amount) for tax in line_taxes_},
            "source": line.source_kind,
        })
    return {
        "status": invoice.status,
        "number": invoice.number,
        "currency": invoice.currency,
        "discount": f"{invoice.discount_kind}:{invoice.discount_value}" if invoice.discount_kind else "",
        "surcharge": f"{invoice.surcharge_kind}:{invoice.surcharge_value}" if invoice.surcharge_kind else "",
        "subtotal": str(invoice.subtotal),
        "discount_total": str(invoice.discount_total),
        "surcharge_total": str(invoice.surcharge_total),
        "tax_total": str(invoice.tax_total),
        "total": str(invoice.total),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "payment_terms_days": invoice.payment_terms_days,
        "notes": invoice.notes,
        "terms": invoice.terms,
        "payment_instructions": invoice.payment_instructions,
        "lines": lines,
    }


def _changed(before: Mapping[str, Any], after: Mapping[str, Any], *, side: int) -> dict[str, Any]:
    """Only the keys that differ, from ``before`` (side 0) or ``after`` (side 1)."""
    source = before if side == 0 else after
    return {key: source.get(key) for key in set(before) | set(after) if before.get(key) != after.get(key)}
