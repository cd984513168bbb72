"""Writes for contracts: create and update (terms, status, dates, renewal), with their periods."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from djmoney.money import Money

from contracts.hooks import notify_routing_changed
from contracts.models import Contract, Customer
from contracts.periods import contract_periods_generate
from contracts.services._common import (
    CONTRACT_COMMON_FIELDS,
    CONTRACT_TYPE_FIELD_DEFAULTS,
    CONTRACT_TYPE_FIELDS,
    CONTRACT_UPDATE_FIELDS,
    DEFAULT_ALERT_THRESHOLDS,
    MAX_CONTRACT_YEARS,
    RECURRING_TYPES,
    USAGE_UNITS,
    _audit,
    _clean,
    _reject_unknown,
    _snapshot,
    add_years,
    check_tax_codes,
)
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors, check_date, clean_decimal, clean_text
from msp_billing.templatetags.formatting import day as format_day


@transaction.atomic
def contract_create(
    *,
    customer: Customer,
    name: str,
    type: str,
    start_date: dt.date,
    currency: str | None = None,
    acting_user,
    **terms: Any,
) -> Contract:
    """A new contract. ``terms``: any of CONTRACT_COMMON_FIELDS and the type's own fields
    (CONTRACT_TYPE_FIELDS); fields another type uses are ignored and left at their defaults.
    ``currency`` defaults to, and must equal, the customer's currency."""
    _reject_unknown(terms, CONTRACT_UPDATE_FIELDS - {"type", "name", "start_date"})
    errors = Errors()
    if not customer.is_active:
        errors.add("customer", f"“{customer}” is inactive; reactivate the customer first.")
    code = customer.currency if currency in (None, "") else currency
    if code != customer.currency:
        errors.add("currency", f"A contract bills in its customer's currency: {customer.currency} for “{customer}”.")
    contract = Contract(customer=customer, currency=customer.currency)
    _contract_apply(contract, errors, {"name": name, "type": type, "start_date": start_date, **terms})
    contract.save()
    _audit("contract_create", contract, acting_user, after=_contract_audited(contract))
    # Its periods exist as soon as the contract does: a batch run right after bills its fees.
    contract_periods_generate(contract=contract, today=tenant_today())
    # A new contract can take unbilled time from its start on.
    notify_routing_changed(contract_ids=[contract.pk], effective_date=contract.start_date)
    return contract


@transaction.atomic
def contract_update(*, contract: Contract, data: Mapping[str, Any], acting_user,
                    effective_date: dt.date | None = None) -> Contract:
    """Change a contract's terms. ``effective_date`` (default today): from when a change of
    priority, exclusion set, status or type re-routes unbilled time; date changes re-route
    from the earliest day they affect. The customer and currency of a contract never change."""
    _reject_unknown(data, CONTRACT_UPDATE_FIELDS)
    contract = Contract.objects.select_for_update().select_related("customer").get(pk=contract.pk)
    errors = Errors()
    if effective_date is not None:
        check_date(errors, "effective_date", effective_date)
    watched = (*CONTRACT_COMMON_FIELDS, *CONTRACT_TYPE_FIELD_DEFAULTS, "type", "exclusion_set_id")
    before = _snapshot(contract, watched)
    if "type" in data and data["type"] != contract.type:
        _check_type_change(errors, contract)
    current = {name: getattr(contract, name) for name in (*CONTRACT_COMMON_FIELDS, *CONTRACT_TYPE_FIELD_DEFAULTS)}
    _contract_apply(contract, errors, {"type": contract.type, **current, **data})
    _check_billed_periods(contract, before=before)
    contract.save()
    after = _snapshot(contract, watched)
    _audit("contract_update", contract, acting_user, before=before, after=after)
    # Activated, extended or re-dated: missing periods are stored and unbilled ones follow
    # the new terms in the same transaction.
    contract_periods_generate(contract=contract, today=tenant_today())

    routing_from = _routing_change_date(before, after, effective_date or tenant_today())
    if routing_from is not None:
        notify_routing_changed(contract_ids=[contract.pk], effective_date=routing_from)
    return contract


def _contract_audited(contract: Contract) -> dict[str, Any]:
    """What a new contract was created with: its common terms and its type's own."""
    return _snapshot(contract, ("type", "currency", *CONTRACT_COMMON_FIELDS, *sorted(CONTRACT_TYPE_FIELDS[contract.type])))


def _routing_change_date(before: Mapping[str, Any], after: Mapping[str, Any], effective_date: dt.date) -> dt.date | None:
    """The first day whose routing may differ, or None when nothing routing-relevant changed."""
    candidates: list[dt.date] = []
    if any(before[name] != after[name] for name in ("type", "status", "priority", "exclusion_set_id")):
        candidates.append(effective_date)
    if before["start_date"] != after["start_date"]:
        candidates.append(min(before["start_date"], after["start_date"]))
    if before["end_date"] != after["end_date"]:
        ends = [day for day in (before["end_date"], after["end_date"]) if day is not None]
        candidates.append(min(ends) + dt.timedelta(days=1))
    return min(candidates) if candidates else None


def _check_type_change(errors: Errors, contract: Contract) -> None:
    held = [
        (contract.blocks.exists(), "block purchases"),
        (contract.device_classes.exists(), "device classes"),
        (contract.usage_records.exists(), "usage records"),
        (contract.milestones.exists(), "milestones"),
        (contract.periods.filter(billed_at__isnull=False).exists(), "billed periods"),
    ]
    found = [label for present, label in held if present]
    if found:
        errors.add("type", f"This contract already has {', '.join(found)}, so its type cannot change. "
                           "End it and create a new contract of the other type.")


def _check_billed_periods(contract: Contract, *, before: Mapping[str, Any]) -> None:
    """Billed items never change: the dates must still cover every billed period, and the
    period grid (frequency, anchor day) stays as it was billed."""
    billed = contract.periods.filter(billed_at__isnull=False)
    first = billed.order_by("start").first()
    last = billed.order_by("-end").first()
    errors = Errors()
    if first is not None:
        for name, label in (("billing_frequency", "billing frequency"), ("anchor_day", "anchor day")):
            if before[name] != getattr(contract, name):
                errors.add(name, f"This contract already has billed periods, so its {label} cannot change. "
                                 "End it and create a new contract for the new billing cycle.")
    if first is not None and contract.start_date > first.start:
        errors.add("start_date", f"A period from {format_day(first.start)} is already billed; "
                                 "the contract cannot start later than that.")
    if last is not None and contract.end_date is not None and contract.end_date < last.end:
        errors.add("end_date", f"A period up to {format_day(last.end)} is already billed; "
                               "the contract cannot end earlier than that.")
    errors.raise_if_any()


def _contract_apply(contract: Contract, errors: Errors, data: Mapping[str, Any]) -> None:
    """Validate and set the terms in ``data`` on ``contract`` (per type), or raise."""
    contract_type = data.get("type")
    if contract_type not in Contract.Type.values:
        errors.add("type", "Choose one of the contract types.")
        errors.raise_if_any()
    contract.type = contract_type

    contract.name = clean_text(data.get("name"))
    if not contract.name:
        errors.add("name", "Enter a name, such as “Managed Services Gold”.")
    for name, choices in (
        ("status", Contract.Status), ("billing_frequency", Contract.Frequency),
        ("billing_timing", Contract.Timing), ("rounding_direction", Contract.Rounding),
    ):
        if name in data:
            if data[name] not in choices.values:
                errors.add(name, "Choose one of the listed options.")
            else:
                setattr(contract, name, data[name])
    for name in ("taxable", "auto_renew"):
        if name in data:
            setattr(contract, name, bool(data[name]))
    if "tax_codes" in data:
        contract.tax_codes = check_tax_codes(errors, "tax_codes", data["tax_codes"])
    if "exclusion_set" in data:
        contract.exclusion_set = data["exclusion_set"]
    _set_int(errors, contract, data, "anchor_day", 1, 31)
    _set_int(errors, contract, data, "priority", 0, 1000)
    _set_int(errors, contract, data, "renewal_notice_days", 0, 3650)
    _set_int(errors, contract, data, "renewal_term_months", 1, 240)
    _set_int(errors, contract, data, "rounding_increment", 1, 1440)
    _set_int(errors, contract, data, "rounding_minimum", 0, 1440)

    # Dates: end on or after the start, and at most 20 years after it.
    start, end = data.get("start_date"), data.get("end_date")
    check_date(errors, "start_date", start)
    check_date(errors, "end_date", end, required=False)
    if "start_date" not in errors.messages and "end_date" not in errors.messages:
        contract.start_date, contract.end_date = start, end
        if end is not None and end < start:
            errors.add("end_date", "The end date cannot be before the start date.")
        elif end is not None and end > add_years(start, MAX_CONTRACT_YEARS):
            errors.add("end_date", f"A contract runs at most {MAX_CONTRACT_YEARS} years: "
                                   f"end it by {format_day(add_years(start, MAX_CONTRACT_YEARS))}.")

    # Type-specific terms: the type's own fields are read, every other one is reset.
    own = CONTRACT_TYPE_FIELDS[contract_type]
    for name, default in CONTRACT_TYPE_FIELD_DEFAULTS.items():
        if name not in own:
            setattr(contract, name, default)
    currency = contract.currency
    if "fee" in own:
        contract.fee = _money_or_none(errors, "fee", data.get("fee"), currency)
    if "overage_rate" in own:
        contract.overage_rate = _money_or_none(errors, "overage_rate", data.get("overage_rate"), currency)
    if "budget_amount" in own:
        contract.budget_amount = _money_or_none(errors, "budget_amount", data.get("budget_amount"), currency, positive=True)
    if "unit_price" in own:
        contract.unit_price = _money_or_none(errors, "unit_price", data.get("unit_price"), currency)
    for name in ("included_minutes", "budget_minutes"):
        if name in own:
            contract_value = data.get(name)
            if contract_value in (None, ""):
                setattr(contract, name, None)
            elif isinstance(contract_value, bool) or not isinstance(contract_value, int) or contract_value <= 0:
                errors.add(name, "Enter a number of hours greater than zero, or leave it empty.")
            else:
                setattr(contract, name, contract_value)
    if "block_expiry_months" in own:
        months = data.get("block_expiry_months")
        if months in (None, ""):
            contract.block_expiry_months = None
        elif isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 240:
            errors.add("block_expiry_months", "Enter a number of months from 1 to 240, or leave it empty.")
        else:
            contract.block_expiry_months = months
    for name in ("cascade", "rollover", "auto_repurchase"):
        if name in own and name in data:
            setattr(contract, name, bool(data[name]))
    if "alert_thresholds" in own:
        contract.alert_thresholds = _alert_thresholds(errors, data.get("alert_thresholds"))
    if "fee_trigger" in own:
        trigger = data.get("fee_trigger") or ""
        if trigger not in Contract.FeeTrigger.values:
            errors.add("fee_trigger", "Choose when the fee is invoiced: on start, on completion or by milestones.")
        contract.fee_trigger = trigger
    if "included_quantity" in own:
        quantity = clean_decimal(errors, "included_quantity", data.get("included_quantity") or Decimal("0"))
        contract.included_quantity = quantity if quantity is not None else Decimal("0")
    if "usage_unit" in own:
        contract.usage_unit = data.get("usage_unit") or ""

    _check_type_rules(errors, contract)
    errors.raise_if_any()
    _clean(contract, errors, exclude=["customer", "exclusion_set"])


def _check_type_rules(errors: Errors, contract: Contract) -> None:
    kind = contract.type
    if kind == Contract.Type.BLOCK_HOURS and contract.overage_rate is None and "overage_rate" not in errors.messages:
        errors.add("overage_rate", "A Block Hours contract needs an overage rate for hours beyond the block.")
    if kind in (Contract.Type.RETAINER, Contract.Type.PROJECT_ONE_TIME_FEE) and contract.fee is None \
            and "fee" not in errors.messages:
        label = "the fee invoiced each period" if kind == Contract.Type.RETAINER else "the fixed project fee"
        errors.add("fee", f"A {Contract.Type(kind).label} contract needs {label}.")
    if kind == Contract.Type.ONLINE_BACKUP:
        if contract.unit_price is None and "unit_price" not in errors.messages:
            errors.add("unit_price", "An Online Backup contract needs a unit price per GB or seat.")
        if contract.usage_unit not in USAGE_UNITS:
            errors.add("usage_unit", "Choose what usage is counted in: GB or seats.")
    if kind == Contract.Type.PROJECT_HOURLY and contract.budget_minutes is None and contract.budget_amount is None \
            and "budget_minutes" not in errors.messages and "budget_amount" not in errors.messages:
        errors.add("budget_minutes", "A Project — hourly contract needs a budget: in hours, money or both.")
    if kind == Contract.Type.PROJECT_ONE_TIME_FEE:
        contract.billing_frequency = Contract.Frequency.ONE_TIME  # a fixed fee is invoiced once
    elif kind in RECURRING_TYPES and contract.billing_frequency == Contract.Frequency.ONE_TIME:
        errors.add("billing_frequency", f"A {Contract.Type(kind).label} contract bills every period: "
                                        "choose monthly, quarterly or yearly.")
    if contract.auto_renew and contract.end_date is None:
        errors.add("end_date", "Auto-renewal extends the contract at its end date: enter one, or turn renewal off.")


def _set_int(errors: Errors, contract: Contract, data: Mapping[str, Any], name: str, low: int, high: int) -> None:
    if name not in data:
        return
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.add(name, f"Enter a whole number from {low} to {high}.")
    else:
        setattr(contract, name, value)


def _money_or_none(errors: Errors, field: str, value: Any, currency: str, *, positive: bool = False) -> Money | None:
    amount = clean_decimal(errors, field, value, currency=currency, required=False, positive=positive)
    return None if amount is None else Money(amount, currency)


def _alert_thresholds(errors: Errors, value: Any) -> str:
    text = value if isinstance(value, str) else ""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return DEFAULT_ALERT_THRESHOLDS
    if not all(part.isdigit() and 1 <= int(part) <= 100 for part in parts):
        errors.add("alert_thresholds", "Enter percentages from 1 to 100 separated by commas, such as 75,90,100.")
        return DEFAULT_ALERT_THRESHOLDS
    return ",".join(str(number) for number in sorted({int(part) for part in parts}))
