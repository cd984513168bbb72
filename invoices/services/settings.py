"""The invoice settings: numbering format, default discount, surcharge, payment terms and tax codes,
and the printed texts.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction

from contracts.models import TaxRate
from invoices.audit import audit_record
from invoices.models import InvoiceSettings
from invoices.services._common import QUANTITY_PLACES, _changed, _codes, _decimal
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import whole_number_in


SETTINGS_FIELDS = (
    "number_prefix", "number_padding", "number_yearly_reset", "credit_note_prefix", "default_discount_percent",
    "default_surcharge_percent", "default_payment_terms_days", "default_tax_codes", "terms", "payment_instructions",
    "footer", "issue_zero_invoices",
)


@transaction.atomic
def invoice_settings_update(*, data: Mapping[str, Any], acting_user) -> InvoiceSettings:
    """Change numbering, defaults and texts. Numbers already issued never change."""
    unknown = set(data) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(sorted(unknown))}")
    InvoiceSettings.load()
    row = InvoiceSettings.objects.select_for_update().get(pk=InvoiceSettings.SINGLETON_ID)
    before = {name: getattr(row, name) for name in SETTINGS_FIELDS}
    errors = _Errors()
    for name in ("number_prefix", "credit_note_prefix"):
        if name in data:
            value = (data[name] or "").strip()
            if value and not all(ch.isalnum() or ch in "-_/." for ch in value):
                errors.add(name, "Use letters, digits and - _ / . only.")
            setattr(row, name, value)
    if row.number_prefix.upper() == row.credit_note_prefix.upper():
        errors.add("credit_note_prefix", "Credit notes need a prefix of their own, so their numbers never "
                                         "look like invoice numbers.")
    for name, low, high, what in (("number_padding", 1, 10, "digits"), ("default_payment_terms_days", 0, 365, "days")):
        if name in data and not whole_number_in(data[name], low, high):
            errors.add(name, f"Enter a number of {what} from {low} to {high}.")
        elif name in data:
            setattr(row, name, data[name])
    if "number_yearly_reset" in data:
        row.number_yearly_reset = bool(data["number_yearly_reset"])
    if "issue_zero_invoices" in data:
        row.issue_zero_invoices = bool(data["issue_zero_invoices"])
    for name in ("default_discount_percent", "default_surcharge_percent"):
        if name in data:
            value = _decimal(errors, name, data[name], minimum=Decimal(0))
            if value is not None and value > 100:
                errors.add(name, "Enter a percentage from 0 to 100.")
            elif value is not None and value != value.quantize(QUANTITY_PLACES):
                errors.add(name, "Enter at most 4 decimal places.")
            elif value is not None:
                setattr(row, name, value)
    if "default_tax_codes" in data:
        codes = _codes(str(data["default_tax_codes"] or "").split(","))
        known = set(TaxRate.objects.filter(code__in=codes).values_list("code", flat=True))
        missing = [code for code in codes if code not in known]
        if missing:
            errors.add("default_tax_codes", f"Unknown tax code: {', '.join(missing)}. Add it under Catalogue → Tax rates.")
        row.default_tax_codes = ", ".join(codes)
    for name in ("terms", "payment_instructions", "footer"):
        if name in data:
            setattr(row, name, (data[name] or "").strip())
    errors.raise_if_any()
    row.save()
    after = {name: getattr(row, name) for name in SETTINGS_FIELDS}
    audit_record(actor=acting_user, action="invoice_settings_updated", obj=row,
                 before=_changed(before, after, side=0), after=_changed(before, after, side=1))
    return row
