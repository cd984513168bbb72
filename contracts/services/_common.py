"""What the contract services share: the limits and terms every contract has, and the helpers for
checking input, saving and recording the audit trail."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model
from djmoney.money import Money
from djmoney.settings import CURRENCY_CHOICES

from contracts.models import Contract, TaxRate
from contracts.rules.taxes import parse_codes
from msp_billing.audit.services import audit_record, changed_only
from msp_billing.validation import (
    Errors,
)

CURRENCY_CODES = frozenset(code for code, _ in CURRENCY_CHOICES)
MAX_CONTRACT_YEARS = 20
MAX_PAYMENT_TERMS_DAYS = 365
MAX_AFTER_HOURS_MULTIPLIER = Decimal("10")
USAGE_UNITS = ("GB", "seats")
DEFAULT_ALERT_THRESHOLDS = "75,90,100"

# Terms every contract has; the rest depends on its type.
CONTRACT_COMMON_FIELDS = (
    "name", "status", "start_date", "end_date", "billing_frequency", "billing_timing", "anchor_day", "taxable",
    "tax_codes", "exclusion_set", "priority", "auto_renew", "renewal_notice_days", "renewal_term_months",
    "rounding_increment", "rounding_direction", "rounding_minimum",
)
# Type-specific terms and the value they take on a contract of another type.
CONTRACT_TYPE_FIELD_DEFAULTS: dict[str, Any] = {
    "fee": None,
    "fee_trigger": "",
    "overage_rate": None,
    "included_minutes": None,
    "cascade": False,
    "rollover": True,
    "block_expiry_months": None,
    "auto_repurchase": False,
    "alert_thresholds": DEFAULT_ALERT_THRESHOLDS,
    "budget_minutes": None,
    "budget_amount": None,
    "unit_price": None,
    "included_quantity": Decimal("0"),
    "usage_unit": "",
}
_BLOCK_FIELDS = frozenset({"cascade", "rollover", "block_expiry_months", "auto_repurchase", "alert_thresholds"})
CONTRACT_TYPE_FIELDS: dict[str, frozenset[str]] = {
    Contract.Type.HOURLY: frozenset(),
    Contract.Type.BLOCK_HOURS: _BLOCK_FIELDS | {"overage_rate"},
    Contract.Type.BLOCK_MONEY: _BLOCK_FIELDS,
    Contract.Type.RETAINER: frozenset({"fee", "included_minutes", "overage_rate"}),
    Contract.Type.REMOTE_MONITORING: frozenset(),
    Contract.Type.PROJECT_HOURLY: frozenset({"budget_minutes", "budget_amount", "alert_thresholds"}),
    Contract.Type.PROJECT_ONE_TIME_FEE: frozenset({"fee", "fee_trigger"}),
    Contract.Type.ONLINE_BACKUP: frozenset({"unit_price", "included_quantity", "usage_unit"}),
}
CONTRACT_MONEY_FIELDS = frozenset({"fee", "overage_rate", "budget_amount", "unit_price"})
CONTRACT_UPDATE_FIELDS = frozenset(CONTRACT_COMMON_FIELDS) | set(CONTRACT_TYPE_FIELD_DEFAULTS) | {"type"}
# A change to one of these can move time entries to another contract.
CONTRACT_ROUTING_FIELDS = ("type", "status", "priority", "exclusion_set_id", "start_date", "end_date")
RECURRING_TYPES = frozenset({Contract.Type.RETAINER, Contract.Type.REMOTE_MONITORING, Contract.Type.ONLINE_BACKUP})


# --- helpers ------------------------------------------------------------------------------


def plain(value: Decimal) -> str:
    """A Decimal without trailing zeros or exponent: 60.000 → "60", 12.50 → "12.5"."""
    return format(value.normalize(), "f")


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year without one
        return day.replace(year=day.year + years, day=28)


def _check_currency(errors: Errors, field: str, code: Any) -> str:
    code = (code or "").strip().upper() if isinstance(code, str) else ""
    if code not in CURRENCY_CODES:
        errors.add(field, "Choose a valid ISO 4217 currency code, such as EUR or USD.")
    return code


def check_tax_codes(errors: Errors, field: str, value: Any) -> str:
    """Tax codes (comma-separated text or a list) that must all exist as tax rates; stored
    as "GST, PST". An unknown code is named in the message."""
    if value is None:
        return ""
    if not isinstance(value, (str, list, tuple)) or (not isinstance(value, str) and not all(isinstance(v, str) for v in value)):
        errors.add(field, "Enter tax codes separated by commas, such as GST, PST.")
        return ""
    codes = parse_codes(value)
    if codes:
        known = set(TaxRate.objects.filter(code__in=codes).values_list("code", flat=True))
        missing = [code for code in codes if code not in known]
        if missing:
            errors.add(field, f"Unknown tax code{'s' if len(missing) > 1 else ''}: {', '.join(missing)}. "
                              "Add it under Catalogue → Tax rates first.")
    text = ", ".join(codes)
    if len(text) > 200:
        errors.add(field, "Keep the tax codes under 200 characters.")
    return text


def _clean(instance: Model, errors: Errors, *, exclude: Iterable[str] = ()) -> None:
    """Model validation (lengths, e-mail, ranges, choices) merged into ``errors``, then raise."""
    try:
        instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            field = field.removesuffix("_currency")
            for message in messages:
                if message not in errors.messages.get(field, []):
                    errors.add(field, message)
    errors.raise_if_any()


def _save(instance: Model, *, conflict_field: str, conflict_message: str, **kwargs) -> None:
    """Save; a unique-constraint race becomes a field message instead of a 500."""
    try:
        with transaction.atomic():
            instance.save(**kwargs)
    except IntegrityError as error:
        raise ValidationError({conflict_field: conflict_message}) from error


def _snapshot(instance: Model, fields: Iterable[str]) -> dict[str, Any]:
    return {name: _as_stored(instance, name, getattr(instance, name)) for name in fields}


def _as_stored(instance: Model, name: str, value: Any) -> Any:
    """A decimal or money value with the places its column keeps (450 → 450.00), so the audit
    trail shows it as it is stored. Values are validated first, so this only pads zeros."""
    try:
        places = getattr(instance._meta.get_field(name), "decimal_places", None)
    except FieldDoesNotExist:
        return value
    if places is None:
        return value
    exponent = Decimal(1).scaleb(-places)
    if isinstance(value, Money):
        return Money(value.amount.quantize(exponent), value.currency)
    if isinstance(value, Decimal) and value.is_finite():
        return value.quantize(exponent)
    return value


def _audit(action: str, instance: Model, acting_user, *, before: Mapping | None = None, after: Mapping | None = None,
           on: Model | None = None, message: str = "") -> None:
    """Record ``action`` in the audit trail of ``on`` (default: ``instance``).

    With both ``before`` and ``after`` only the changed keys are kept, and nothing is
    recorded when nothing changed. Related rows are shown by name, not by id.
    """
    before = _readable(before) if before is not None else None
    after = _readable(after) if after is not None else None
    if before is not None and after is not None:
        before, after = changed_only(before, after)
        if not after:
            return
    audit_record(actor=acting_user, action=action, obj=on if on is not None else instance, before=before, after=after,
                 message=message)


def _readable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Related rows as their names; ``<name>_id`` dropped where ``<name>`` is given too."""
    shown = {}
    for key, value in values.items():
        if key.endswith("_id") and key.removesuffix("_id") in values:
            continue
        shown[key] = str(value) if isinstance(value, Model) else value
    return shown


def _reject_unknown(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(sorted(unknown))}")
