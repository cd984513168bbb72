"""Payments: recording a (partial) payment by hand or from the accounting system, once.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from djmoney.money import Money

from invoices.audit import audit_record
from invoices.calculation import is_whole_minor_units
from invoices.models import Invoice, Payment
from invoices.services._common import _decimal, _lock, _notify, _settle_status, _user
from invoices.states import invoice_transition_refusal
from msp_billing.money import round_money
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import check_date as _check_date
from msp_billing.validation import clean_text as _text


def payment_refusal(invoice: Invoice) -> str | None:
    if invoice.kind != Invoice.Kind.INVOICE:
        return "Payments are recorded on invoices, not on credit notes."
    refusal = invoice_transition_refusal(invoice, Invoice.Status.PAID, by=Invoice.Move.PAY)
    if refusal:
        return refusal
    if invoice.amount_due <= 0:
        return f"{invoice} has nothing left to pay."
    return None


@transaction.atomic
def payment_record(
    *,
    invoice_id: int,
    amount: Decimal | Money,
    date: dt.date,
    method: str = Payment.Method.BANK_TRANSFER,
    reference: str = "",
    acting_user,
    remote_id: str = "",
) -> Payment:
    """Record a (partial) payment; more than is still due is refused.

    With ``remote_id`` (a payment synced from the accounting system) a second call for the
    same remote payment returns the first one instead of recording it twice.
    """
    invoice = _lock(invoice_id)
    remote_id = _text(remote_id)
    if remote_id:
        existing = invoice.payments.filter(remote_id=remote_id).first()
        if existing is not None:
            return existing
    refusal = payment_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    errors = _Errors()
    value = _decimal(errors, "amount", amount, currency=invoice.currency, minimum=None)
    if value is not None:
        if value <= 0:
            errors.add("amount", "Enter an amount greater than zero.")
        elif not is_whole_minor_units(value, invoice.currency):
            errors.add("amount", f"Enter the amount in whole {invoice.currency} minor units (such as cents).")
        elif value > invoice.amount_due:
            errors.add("amount", f"{value} {invoice.currency} is more than the {invoice.amount_due} {invoice.currency} "
                                 f"still due on {invoice}; record at most that (overpayments are not recorded).")
    _check_date(errors, "date", date)
    if not errors and date > tenant_today():
        errors.add("date", "A payment cannot be dated in the future.")
    if method not in Payment.Method.values:
        errors.add("method", "Choose how it was paid.")
    errors.raise_if_any()
    value = round_money(value, invoice.currency)  # already whole minor units: only the exponent changes
    payment = Payment.objects.create(invoice=invoice, date=date, amount=value, method=method,
                                     reference=_text(reference)[:200], remote_id=remote_id, recorded_by=_user(acting_user))
    before = {"amount_paid": invoice.amount_paid, "status": invoice.status}
    invoice.amount_paid += value
    _settle_status(invoice, by=Invoice.Move.PAY)
    invoice.save(update_fields=["amount_paid", "status", "updated_at"])
    audit_record(actor=acting_user, action="payment_recorded", obj=invoice, before=before,
                 after={"amount_paid": invoice.amount_paid, "status": invoice.status, "payment": payment.pk,
                        "amount": value, "date": date, "method": method, "reference": payment.reference})
    _notify(invoice.pk, "paid")
    return payment
