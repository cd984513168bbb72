"""Writes for customers, the catalogue and contracts with their terms.

Every function is keyword-only, runs in one transaction, validates everything it is
given (forms are a convenience, not the guard) and raises ``ValidationError`` with
per-field messages. Money comes in as ``Decimal`` (or ``Money`` in the right currency)
and is stored in the currency of the customer or contract it belongs to.

Changes that can move time entries from one contract to another (priority, exclusion
set, dates, status, type, an exclusion set's members, a customer's parent or default
Hourly contract) end with ``contracts.hooks.notify_routing_changed``.

Creating or changing a contract stores its missing periods (``contracts.periods``) in the
same transaction, so a batch run right after bills its fees.

Every action records an audit event (``msp_billing.audit``) in its own transaction: who,
when, and before/after of what it changed. A contract's terms (rate lines, service lines,
device classes and counts, usage, blocks, milestones) are recorded on the contract, so
its page shows its whole history; an edit that changes nothing records nothing.
"""
from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, FieldDoesNotExist, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Model, Sum
from djmoney.money import Money
from djmoney.settings import CURRENCY_CHOICES

from contracts.hooks import notify_routing_changed
from contracts.models import (
    BlockPurchase,
    Contract,
    ContractRateLine,
    Customer,
    DeviceClass,
    DeviceCount,
    ExclusionSet,
    Milestone,
    Product,
    RateItem,
    RecurringServiceLine,
    Role,
    TaxCategory,
    TaxRate,
    UsageRecord,
    WorkType,
)
from contracts.periods import contract_periods_generate
from contracts.rules.taxes import parse_codes
from msp_billing.audit.services import audit_record, changed_only

CURRENCY_CODES = frozenset(code for code, _ in CURRENCY_CHOICES)
MAX_CONTRACT_YEARS = 20
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)
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


from msp_billing.tenants.today import tenant_today  # noqa: E402  (the one definition)


def plain(value: Decimal) -> str:
    """A Decimal without trailing zeros or exponent: 60.000 → "60", 12.50 → "12.5"."""
    return format(value.normalize(), "f")


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year without one
        return day.replace(year=day.year + years, day=28)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


class _Errors:
    """Collects per-field messages so the user sees every problem at once."""

    def __init__(self) -> None:
        self.messages: dict[str, list[str]] = {}

    def add(self, field: str | None, message: str) -> None:
        self.messages.setdefault(field or NON_FIELD_ERRORS, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def raise_if_any(self) -> None:
        if self.messages:
            raise ValidationError(self.messages)


def _check_date(errors: _Errors, field: str, value: Any, *, required: bool = True) -> None:
    if value is None:
        if required:
            errors.add(field, "Enter a date.")
        return
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        errors.add(field, "Enter a date.")
    elif not EARLIEST_DATE <= value <= LATEST_DATE:
        errors.add(field, f"Enter a date between {EARLIEST_DATE:%d %b %Y} and {LATEST_DATE:%d %b %Y}.")


def _decimal(errors: _Errors, field: str, value: Any, *, currency: str | None = None,
             required: bool = True, minimum: Decimal | None = Decimal("0"), positive: bool = False) -> Decimal | None:
    """A finite Decimal (or Money in ``currency``), or None with a message recorded."""
    if value is None or value == "":
        if required:
            errors.add(field, "This field is required.")
        return None
    if isinstance(value, Money):
        if currency is not None and str(value.currency) != currency:
            errors.add(field, f"Enter the amount in {currency}, not {value.currency}.")
            return None
        value = value.amount
    if isinstance(value, (bool, float)) or not isinstance(value, (Decimal, int)):
        errors.add(field, "Enter a number.")
        return None
    value = Decimal(value)
    if not value.is_finite():
        errors.add(field, "Enter a number.")
        return None
    if positive and value <= 0:
        errors.add(field, "Enter an amount greater than zero.")
        return None
    if minimum is not None and value < minimum:
        errors.add(field, f"Enter a value of at least {minimum}.")
        return None
    return value


def _check_currency(errors: _Errors, field: str, code: Any) -> str:
    code = (code or "").strip().upper() if isinstance(code, str) else ""
    if code not in CURRENCY_CODES:
        errors.add(field, "Choose a valid ISO 4217 currency code, such as EUR or USD.")
    return code


def check_tax_codes(errors: _Errors, field: str, value: Any) -> str:
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


def _clean(instance: Model, errors: _Errors, *, exclude: Iterable[str] = ()) -> None:
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


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _reject_unknown(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(data) - set(allowed)
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(sorted(unknown))}")


# --- customers ----------------------------------------------------------------------------

CUSTOMER_FIELDS = (
    "legal_name", "display_name", "parent", "billing_email", "billing_contacts", "address", "currency",
    "tax_exempt", "tax_id", "payment_terms_days", "region", "is_active",
    "tax_codes", "tax_exemption_reason", "tax_exemption_certificate", "tax_exemption_expires", "reverse_charge",
)
# What an accounting system that calculates taxes owns (msp_billing.tax_owner).
CUSTOMER_TAX_FIELDS = ("tax_exempt", "tax_codes", "tax_exemption_reason", "tax_exemption_certificate",
                       "tax_exemption_expires", "reverse_charge")
CUSTOMER_AUDITED = (*CUSTOMER_FIELDS, "default_hourly_contract")


@transaction.atomic
def customer_create(
    *,
    legal_name: str,
    currency: str,
    display_name: str = "",
    parent: Customer | None = None,
    billing_email: str = "",
    billing_contacts: str = "",
    address: str = "",
    tax_exempt: bool = False,
    tax_id: str = "",
    payment_terms_days: int = 30,
    region: str = "",
    is_active: bool = True,
    tax_codes: str | list[str] = "",
    tax_exemption_reason: str = "",
    tax_exemption_certificate: str = "",
    tax_exemption_expires: dt.date | None = None,
    reverse_charge: bool = False,
    acting_user,
) -> Customer:
    customer = Customer()
    _customer_apply(
        customer,
        dict(legal_name=legal_name, currency=currency, display_name=display_name, parent=parent,
             billing_email=billing_email, billing_contacts=billing_contacts, address=address,
             tax_exempt=tax_exempt, tax_id=tax_id, payment_terms_days=payment_terms_days, region=region,
             is_active=is_active, tax_codes=tax_codes, tax_exemption_reason=tax_exemption_reason,
             tax_exemption_certificate=tax_exemption_certificate, tax_exemption_expires=tax_exemption_expires,
             reverse_charge=reverse_charge),
    )
    _save(customer, conflict_field="legal_name", conflict_message=_legal_name_taken(customer.legal_name))
    _audit("customer_create", customer, acting_user, after=_snapshot(customer, CUSTOMER_AUDITED))
    return customer


@transaction.atomic
def customer_update(*, customer: Customer, data: Mapping[str, Any], acting_user) -> Customer:
    """Change a customer; ``data`` holds any of CUSTOMER_FIELDS and ``default_hourly_contract``."""
    _reject_unknown(data, (*CUSTOMER_FIELDS, "default_hourly_contract"))
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    watched = (*CUSTOMER_FIELDS, "parent_id", "default_hourly_contract_id")
    before = _snapshot(customer, watched)
    audited_before = _snapshot(customer, CUSTOMER_AUDITED)
    _customer_apply(customer, data, existing=True)
    _save(customer, conflict_field="legal_name", conflict_message=_legal_name_taken(customer.legal_name))
    after = _snapshot(customer, watched)
    _audit("customer_update", customer, acting_user, before=audited_before, after=_snapshot(customer, CUSTOMER_AUDITED))
    if (before["parent_id"], before["default_hourly_contract_id"]) != (after["parent_id"], after["default_hourly_contract_id"]):
        # The customer (and so its sites) now falls back elsewhere; a site that moved has left
        # its old parent's list of sites, so the customers are named, not found through contracts.
        # A parent or fallback has no effective date: every unbilled entry is re-routed.
        owners = {customer.pk, before["parent_id"], after["parent_id"]} - {None}
        contract_ids = set(Contract.objects.filter(customer_id__in=owners).values_list("pk", flat=True))
        contract_ids |= {before["default_hourly_contract_id"], after["default_hourly_contract_id"]} - {None}
        notify_routing_changed(contract_ids=contract_ids, customer_ids=owners, effective_date=None)
    return customer


def _customer_tax_check(errors: _Errors, customer: Customer) -> None:
    """Exemption and reverse charge hold together. An expiry date already past is accepted
    (the certificate is on file) but exempts nothing: taxes are charged again. The
    certificate details are kept when Tax exempt is unticked; they exempt nothing then."""
    if customer.reverse_charge and customer.tax_exempt:
        errors.add("reverse_charge", "A customer is either tax-exempt or reverse-charged, not both; untick one.")
    if customer.reverse_charge and not customer.tax_id:
        errors.add("tax_id", "Enter the customer's VAT number: a reverse-charge invoice must show it.")


def _legal_name_taken(name: str) -> str:
    return f"A customer with the legal name “{name}” already exists."


def _customer_apply(customer: Customer, data: Mapping[str, Any], *, existing: bool = False) -> None:
    errors = _Errors()
    if "legal_name" in data:
        customer.legal_name = _text(data["legal_name"])
        if not customer.legal_name:
            errors.add("legal_name", "Enter the legal name accounting systems know the customer by.")
        elif Customer.objects.filter(legal_name__iexact=customer.legal_name).exclude(pk=customer.pk).exists():
            errors.add("legal_name", _legal_name_taken(customer.legal_name))
    for name in ("display_name", "billing_contacts", "address", "tax_id", "region", "tax_exemption_reason",
                 "tax_exemption_certificate"):
        if name in data:
            setattr(customer, name, _text(data[name]))
    if "billing_email" in data:
        customer.billing_email = _text(data["billing_email"]).lower()
        if customer.billing_email:
            try:
                validate_email(customer.billing_email)
            except ValidationError:
                errors.add("billing_email", "Enter a valid e-mail address.")
    for name in ("tax_exempt", "is_active", "reverse_charge"):
        if name in data:
            setattr(customer, name, bool(data[name]))
    if "tax_codes" in data:
        customer.tax_codes = check_tax_codes(errors, "tax_codes", data["tax_codes"])
    if "tax_exemption_expires" in data:
        expires = data["tax_exemption_expires"]
        if expires is not None:
            _check_date(errors, "tax_exemption_expires", expires)
        customer.tax_exemption_expires = expires
    _customer_tax_check(errors, customer)
    if "payment_terms_days" in data:
        days = data["payment_terms_days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_PAYMENT_TERMS_DAYS:
            errors.add("payment_terms_days", f"Enter a number of days from 0 to {MAX_PAYMENT_TERMS_DAYS}.")
        else:
            customer.payment_terms_days = days
    if "currency" in data:
        code = _check_currency(errors, "currency", data["currency"])
        if existing and code and code != customer.currency:
            other = Contract.objects.filter(customer=customer).exclude(currency=code).first()
            if other is not None:
                errors.add("currency", f"The customer has contracts in {other.currency} (such as “{other.name}”); "
                                       "its currency cannot change.")
            if customer.sites.exclude(currency=code).exists():
                errors.add("currency", "The customer's sites bill in another currency; change theirs first.")
        customer.currency = code
    if "parent" in data:
        parent = data["parent"]
        if parent is not None:
            if existing and parent.pk == customer.pk:
                errors.add("parent", "A customer cannot be its own parent.")
            elif parent.parent_id is not None:
                errors.add("parent", f"“{parent}” is itself a site of “{parent.parent}”; choose a top-level customer.")
            elif existing and customer.sites.exists():
                errors.add("parent", "This customer has sites of its own, so it cannot become a site.")
            elif customer.currency and parent.currency != customer.currency:
                errors.add("parent", f"A site bills in its parent's currency; “{parent}” bills in {parent.currency}.")
        customer.parent = parent
    if "default_hourly_contract" in data:
        contract = data["default_hourly_contract"]
        if contract is not None and (contract.customer_id != customer.pk or contract.type != Contract.Type.HOURLY):
            errors.add("default_hourly_contract", "Choose one of this customer's own Hourly contracts.")
        customer.default_hourly_contract = contract
    errors.raise_if_any()
    _clean(customer, errors, exclude=["parent", "default_hourly_contract"])


# --- catalogue: work types, roles, rate items, products, exclusion sets -------------------


@dataclass(frozen=True)
class _CatalogueKind:
    """How one kind of simple catalogue row is validated, saved and audited.

    ``unique`` is required and unique ignoring case; ``texts`` are stripped, ``flags`` are
    booleans, ``prices`` are amounts in the row's ``currency`` (an update keeps the stored
    currency and amounts it is not given), ``members`` are many-to-many fields set after the
    row is saved, and ``check`` validates and sets what is particular to the kind.
    """

    model: type[Model]
    action: str  # the audit action: "<action>_create", "<action>_update"
    fields: tuple[str, ...]  # what an update may change
    unique: str
    label: str  # "A work type" → "A work type “…” already exists."
    blank: str  # the message when ``unique`` is empty
    texts: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    prices: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    check: Callable[[Model, Mapping[str, Any], _Errors], None] | None = None
    members_changed: Callable[[Model], None] | None = None  # after an update that changed ``members``

    def taken(self, value: str) -> str:
        return f"{self.label} “{value}” already exists."


def _catalogue_create(kind: _CatalogueKind, values: Mapping[str, Any], acting_user) -> Model:
    instance = kind.model()
    _catalogue_apply(kind, instance, values)
    _catalogue_save(kind, instance, values)
    _audit(f"{kind.action}_create", instance, acting_user, after=_catalogue_snapshot(kind, instance))
    return instance


def _catalogue_update(kind: _CatalogueKind, instance: Model, data: Mapping[str, Any], acting_user) -> Model:
    _reject_unknown(data, kind.fields)
    instance = kind.model.objects.select_for_update().get(pk=instance.pk)
    before = _catalogue_snapshot(kind, instance)
    current = {}
    if kind.prices:
        current = {"currency": str(getattr(instance, kind.prices[0]).currency),
                   **{name: getattr(instance, name).amount for name in kind.prices}}
    _catalogue_apply(kind, instance, {**current, **data})
    _catalogue_save(kind, instance, data)
    after = _catalogue_snapshot(kind, instance)
    _audit(f"{kind.action}_update", instance, acting_user, before=before, after=after)
    if kind.members_changed is not None and any(before[name] != after[name] for name in kind.members):
        kind.members_changed(instance)
    return instance


def _catalogue_apply(kind: _CatalogueKind, instance: Model, data: Mapping[str, Any]) -> None:
    """Validate ``data`` and set it on ``instance``, or raise with every message at once."""
    errors = _Errors()
    if kind.unique in data:
        value = _text(data[kind.unique])
        setattr(instance, kind.unique, value)
        if not value:
            errors.add(kind.unique, kind.blank)
        elif kind.model.objects.filter(**{f"{kind.unique}__iexact": value}).exclude(pk=instance.pk).exists():
            errors.add(kind.unique, kind.taken(value))
    for name in kind.texts:
        if name in data:
            setattr(instance, name, _text(data[name]))
    for name in kind.flags:
        if name in data:
            setattr(instance, name, bool(data[name]))
    if kind.check is not None:
        kind.check(instance, data, errors)
    if kind.prices:
        currency = _check_currency(errors, "currency", data["currency"])
        amounts = {name: _decimal(errors, name, data[name], currency=currency) for name in kind.prices}
        errors.raise_if_any()
        for name, amount in amounts.items():
            setattr(instance, name, Money(amount, currency))
    errors.raise_if_any()
    _clean(instance, errors)


def _catalogue_save(kind: _CatalogueKind, instance: Model, data: Mapping[str, Any]) -> None:
    _save(instance, conflict_field=kind.unique, conflict_message=kind.taken(getattr(instance, kind.unique)))
    for name in kind.members:
        if name in data:
            getattr(instance, name).set(list(data[name]))


def _catalogue_snapshot(kind: _CatalogueKind, instance: Model) -> dict[str, Any]:
    """The audited values: every field an update may change (currency is part of the prices)."""
    watched = [name for name in kind.fields if name != "currency" and name not in kind.members]
    members = {name: sorted(str(member) for member in getattr(instance, name).all()) for name in kind.members}
    return {**_snapshot(instance, watched), **members}


def _work_type_check(work_type: WorkType, data: Mapping[str, Any], errors: _Errors) -> None:
    _tax_category_check(work_type, data, errors)
    if "after_hours_multiplier" in data:
        multiplier = _decimal(errors, "after_hours_multiplier", data["after_hours_multiplier"], minimum=Decimal("1"))
        if multiplier is not None and multiplier > MAX_AFTER_HOURS_MULTIPLIER:
            errors.add("after_hours_multiplier", f"Enter a multiplier from 1 to {MAX_AFTER_HOURS_MULTIPLIER}.")
        elif multiplier is not None:
            work_type.after_hours_multiplier = multiplier


def _tax_category_check(instance: Model, data: Mapping[str, Any], errors: _Errors) -> None:
    if "tax_category" in data:
        category = data["tax_category"]
        if category is not None and not isinstance(category, TaxCategory):
            errors.add("tax_category", "Choose one of the tax categories.")
        else:
            instance.tax_category = category


def _product_check(product: Product, data: Mapping[str, Any], errors: _Errors) -> None:
    if "name" in data and not product.name:
        errors.add("name", "Enter the product's name.")
    _tax_category_check(product, data, errors)


def _exclusion_set_members_changed(exclusion_set: ExclusionSet) -> None:
    """Every contract using the set re-routes its unbilled time from today on."""
    exclusion_set.save(update_fields=["changed_at"])
    notify_routing_changed(contract_ids=exclusion_set.contracts.values_list("pk", flat=True),
                           effective_date=tenant_today())


_WORK_TYPE = _CatalogueKind(
    model=WorkType, action="work_type", unique="name", label="A work type", blank="Enter a name, such as Remote Support.",
    fields=("name", "is_after_hours", "after_hours_multiplier", "billable", "is_active", "tax_category"),
    flags=("is_after_hours", "billable", "is_active"), check=_work_type_check,
)
_ROLE = _CatalogueKind(
    model=Role, action="role", unique="name", label="A role", blank="Enter a name, such as Engineer.",
    fields=("name", "default_rate", "cost_rate", "currency"), prices=("default_rate", "cost_rate"),
)
_RATE_ITEM = _CatalogueKind(
    model=RateItem, action="rate_item", unique="name", label="A rate item",
    blank="Enter a name, such as Network Engineering.",
    fields=("name", "rate", "currency", "accounting_code", "tax_category"), texts=("accounting_code",), prices=("rate",),
    check=_tax_category_check,
)
_PRODUCT = _CatalogueKind(
    model=Product, action="product", unique="sku", label="A product with SKU", blank="Enter the SKU.",
    fields=("sku", "name", "price", "cost", "currency", "taxable", "accounting_code", "is_active", "tax_category"),
    texts=("name", "accounting_code"), flags=("taxable", "is_active"), prices=("price", "cost"), check=_product_check,
)
_EXCLUSION_SET = _CatalogueKind(
    model=ExclusionSet, action="exclusion_set", unique="name", label="An exclusion set",
    blank="Enter a name, such as Gold.", fields=("name", "work_types", "roles"), members=("work_types", "roles"),
    members_changed=_exclusion_set_members_changed,
)


@transaction.atomic
def work_type_create(*, name: str, is_after_hours: bool = False, after_hours_multiplier: Decimal = Decimal("1.5"),
                     billable: bool = True, is_active: bool = True, tax_category: TaxCategory | None = None,
                     acting_user) -> WorkType:
    return _catalogue_create(_WORK_TYPE, dict(name=name, is_after_hours=is_after_hours,
                                              after_hours_multiplier=after_hours_multiplier, billable=billable,
                                              is_active=is_active, tax_category=tax_category), acting_user)


@transaction.atomic
def work_type_update(*, work_type: WorkType, data: Mapping[str, Any], acting_user) -> WorkType:
    return _catalogue_update(_WORK_TYPE, work_type, data, acting_user)


@transaction.atomic
def role_create(*, name: str, default_rate: Decimal, cost_rate: Decimal, currency: str, acting_user) -> Role:
    return _catalogue_create(_ROLE, dict(name=name, default_rate=default_rate, cost_rate=cost_rate, currency=currency),
                             acting_user)


@transaction.atomic
def role_update(*, role: Role, data: Mapping[str, Any], acting_user) -> Role:
    return _catalogue_update(_ROLE, role, data, acting_user)


@transaction.atomic
def rate_item_create(*, name: str, rate: Decimal, currency: str, accounting_code: str = "",
                     tax_category: TaxCategory | None = None, acting_user) -> RateItem:
    return _catalogue_create(_RATE_ITEM, dict(name=name, rate=rate, currency=currency, accounting_code=accounting_code,
                                              tax_category=tax_category), acting_user)


@transaction.atomic
def rate_item_update(*, rate_item: RateItem, data: Mapping[str, Any], acting_user) -> RateItem:
    return _catalogue_update(_RATE_ITEM, rate_item, data, acting_user)


@transaction.atomic
def product_create(*, sku: str, name: str, price: Decimal, cost: Decimal, currency: str, taxable: bool = True,
                   accounting_code: str = "", is_active: bool = True, tax_category: TaxCategory | None = None,
                   acting_user) -> Product:
    return _catalogue_create(_PRODUCT, dict(sku=sku, name=name, price=price, cost=cost, currency=currency,
                                            taxable=taxable, accounting_code=accounting_code, is_active=is_active,
                                            tax_category=tax_category), acting_user)


@transaction.atomic
def product_update(*, product: Product, data: Mapping[str, Any], acting_user) -> Product:
    return _catalogue_update(_PRODUCT, product, data, acting_user)


@transaction.atomic
def exclusion_set_create(*, name: str, work_types: Iterable[WorkType] = (), roles: Iterable[Role] = (),
                         acting_user) -> ExclusionSet:
    return _catalogue_create(_EXCLUSION_SET, dict(name=name, work_types=work_types, roles=roles), acting_user)


@transaction.atomic
def exclusion_set_update(*, exclusion_set: ExclusionSet, data: Mapping[str, Any], acting_user) -> ExclusionSet:
    """Rename or change the members; every contract using the set changes from today on."""
    return _catalogue_update(_EXCLUSION_SET, exclusion_set, data, acting_user)


# --- tax rates (versioned) ----------------------------------------------------------------

TAX_RATE_AUDITED = ("code", "name", "percent", "compound", "effective_from")


@transaction.atomic
def tax_rate_create(*, code: str, name: str, percent: Decimal, compound: bool = False, effective_from: dt.date,
                    acting_user) -> TaxRate:
    """A new tax: its first version."""
    errors = _Errors()
    code = _text(code).upper()
    if not code:
        errors.add("code", "Enter a short code, such as VAT20.")
    elif TaxRate.objects.filter(code__iexact=code).exists():
        errors.add("code", f"A tax with the code {code} already exists; add a new version of it instead.")
    tax_rate = _tax_rate_build(errors, code=code, name=name, percent=percent, compound=compound,
                               effective_from=effective_from)
    _save(tax_rate, conflict_field="code", conflict_message=f"A tax with the code {code} already exists.")
    _audit("tax_rate_create", tax_rate, acting_user, after=_snapshot(tax_rate, TAX_RATE_AUDITED))
    return tax_rate


@transaction.atomic
def tax_rate_new_version(*, tax_rate: TaxRate, name: str, percent: Decimal, compound: bool = False,
                         effective_from: dt.date, acting_user) -> TaxRate:
    """Change a tax from ``effective_from`` on: a new row; earlier versions are never rewritten."""
    errors = _Errors()
    versions = TaxRate.objects.select_for_update().filter(code=tax_rate.code).order_by("-effective_from")
    latest = versions.first()
    if latest is not None and isinstance(effective_from, dt.date) and effective_from <= latest.effective_from:
        errors.add("effective_from", f"A new version must start after the latest one "
                                     f"({latest.effective_from:%d %b %Y}); earlier versions never change.")
    tax_rate_version = _tax_rate_build(errors, code=tax_rate.code, name=name, percent=percent, compound=compound,
                                       effective_from=effective_from)
    _save(tax_rate_version, conflict_field="effective_from",
          conflict_message="Another version of this tax starts on that date.")
    _audit("tax_rate_new_version", tax_rate_version, acting_user,
           before=_snapshot(latest, TAX_RATE_AUDITED) if latest else {},
           after=_snapshot(tax_rate_version, TAX_RATE_AUDITED))
    return tax_rate_version


def _tax_rate_build(errors: _Errors, *, code: str, name: str, percent, compound: bool, effective_from) -> TaxRate:
    name = _text(name)
    if not name:
        errors.add("name", "Enter the name printed on invoices, such as VAT.")
    value = _decimal(errors, "percent", percent)
    if value is not None and value > 100:
        errors.add("percent", "Enter a percentage from 0 to 100.")
    _check_date(errors, "effective_from", effective_from)
    errors.raise_if_any()
    tax_rate = TaxRate(code=code, name=name, percent=value, compound=bool(compound), effective_from=effective_from)
    _clean(tax_rate, errors)
    return tax_rate


# --- tax categories -----------------------------------------------------------------------

TAX_CATEGORY_FIELDS = ("code", "name", "taxable", "tax_codes")


@transaction.atomic
def tax_category_create(*, code: str, name: str, taxable: bool = True, tax_codes: str | list[str] = "",
                        acting_user) -> TaxCategory:
    """A kind of thing sold, for taxes: not taxed, or taxed with (some of) the customer's codes."""
    category = TaxCategory()
    _tax_category_apply(category, dict(code=code, name=name, taxable=taxable, tax_codes=tax_codes))
    _save(category, conflict_field="code", conflict_message=f"A tax category with the code {category.code} already exists.")
    _audit("tax_category_create", category, acting_user, after=_snapshot(category, TAX_CATEGORY_FIELDS))
    return category


@transaction.atomic
def tax_category_update(*, tax_category: TaxCategory, data: Mapping[str, Any], acting_user) -> TaxCategory:
    """Change a category; drafts follow on their next recalculation, issued invoices keep their taxes."""
    _reject_unknown(data, TAX_CATEGORY_FIELDS)
    category = TaxCategory.objects.select_for_update().get(pk=tax_category.pk)
    before = _snapshot(category, TAX_CATEGORY_FIELDS)
    _tax_category_apply(category, data)
    _save(category, conflict_field="code", conflict_message=f"A tax category with the code {category.code} already exists.")
    _audit("tax_category_update", category, acting_user, before=before, after=_snapshot(category, TAX_CATEGORY_FIELDS))
    return category


def _tax_category_apply(category: TaxCategory, data: Mapping[str, Any]) -> None:
    errors = _Errors()
    if "code" in data:
        category.code = _text(data["code"]).upper()
        if not category.code:
            errors.add("code", "Enter a short code, such as LABOUR or PARTS.")
        elif TaxCategory.objects.filter(code__iexact=category.code).exclude(pk=category.pk).exists():
            errors.add("code", f"A tax category with the code {category.code} already exists.")
    if "name" in data:
        category.name = _text(data["name"])
        if not category.name:
            errors.add("name", "Enter a name, such as Labour.")
    if "taxable" in data:
        category.taxable = bool(data["taxable"])
    if "tax_codes" in data:
        category.tax_codes = check_tax_codes(errors, "tax_codes", data["tax_codes"])
    errors.raise_if_any()
    _clean(category, errors)


# --- contracts ----------------------------------------------------------------------------


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
    errors = _Errors()
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
    errors = _Errors()
    if effective_date is not None:
        _check_date(errors, "effective_date", effective_date)
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


def _check_type_change(errors: _Errors, contract: Contract) -> None:
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
    errors = _Errors()
    if first is not None:
        for name, label in (("billing_frequency", "billing frequency"), ("anchor_day", "anchor day")):
            if before[name] != getattr(contract, name):
                errors.add(name, f"This contract already has billed periods, so its {label} cannot change. "
                                 "End it and create a new contract for the new billing cycle.")
    if first is not None and contract.start_date > first.start:
        errors.add("start_date", f"A period from {first.start:%d %b %Y} is already billed; "
                                 "the contract cannot start later than that.")
    if last is not None and contract.end_date is not None and contract.end_date < last.end:
        errors.add("end_date", f"A period up to {last.end:%d %b %Y} is already billed; "
                               "the contract cannot end earlier than that.")
    errors.raise_if_any()


def _contract_apply(contract: Contract, errors: _Errors, data: Mapping[str, Any]) -> None:
    """Validate and set the terms in ``data`` on ``contract`` (per type), or raise."""
    contract_type = data.get("type")
    if contract_type not in Contract.Type.values:
        errors.add("type", "Choose one of the contract types.")
        errors.raise_if_any()
    contract.type = contract_type

    contract.name = _text(data.get("name"))
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
    _check_date(errors, "start_date", start)
    _check_date(errors, "end_date", end, required=False)
    if "start_date" not in errors.messages and "end_date" not in errors.messages:
        contract.start_date, contract.end_date = start, end
        if end is not None and end < start:
            errors.add("end_date", "The end date cannot be before the start date.")
        elif end is not None and end > add_years(start, MAX_CONTRACT_YEARS):
            errors.add("end_date", f"A contract runs at most {MAX_CONTRACT_YEARS} years: "
                                   f"end it by {add_years(start, MAX_CONTRACT_YEARS):%d %b %Y}.")

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
        quantity = _decimal(errors, "included_quantity", data.get("included_quantity") or Decimal("0"))
        contract.included_quantity = quantity if quantity is not None else Decimal("0")
    if "usage_unit" in own:
        contract.usage_unit = data.get("usage_unit") or ""

    _check_type_rules(errors, contract)
    errors.raise_if_any()
    _clean(contract, errors, exclude=["customer", "exclusion_set"])


def _check_type_rules(errors: _Errors, contract: Contract) -> None:
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


def _set_int(errors: _Errors, contract: Contract, data: Mapping[str, Any], name: str, low: int, high: int) -> None:
    if name not in data:
        return
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.add(name, f"Enter a whole number from {low} to {high}.")
    else:
        setattr(contract, name, value)


def _money_or_none(errors: _Errors, field: str, value: Any, currency: str, *, positive: bool = False) -> Money | None:
    amount = _decimal(errors, field, value, currency=currency, required=False, positive=positive)
    return None if amount is None else Money(amount, currency)


def _alert_thresholds(errors: _Errors, value: Any) -> str:
    text = value if isinstance(value, str) else ""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return DEFAULT_ALERT_THRESHOLDS
    if not all(part.isdigit() and 1 <= int(part) <= 100 for part in parts):
        errors.add("alert_thresholds", "Enter percentages from 1 to 100 separated by commas, such as 75,90,100.")
        return DEFAULT_ALERT_THRESHOLDS
    return ",".join(str(number) for number in sorted({int(part) for part in parts}))


# --- contract terms: rate lines, service lines --------------------------------------------


@transaction.atomic
def rate_line_add(*, contract: Contract, work_type: WorkType | None = None, role: Role | None = None,
                  rate: Decimal | Money, effective_from: dt.date, acting_user) -> ContractRateLine:
    """A contract rate for a work type and/or role (neither: the contract's default rate),
    from ``effective_from`` on. A later change is a new line with a later date."""
    errors = _Errors()
    amount = _decimal(errors, "rate", rate, currency=contract.currency)
    _check_date(errors, "effective_from", effective_from)
    errors.raise_if_any()
    exists = ContractRateLine.objects.filter(contract=contract, work_type=work_type, role=role,
                                             effective_from=effective_from).exists()
    if exists:
        errors.add("effective_from", "This contract already has a rate for that work type and role from that date.")
        errors.raise_if_any()
    line = ContractRateLine(contract=contract, work_type=work_type, role=role, rate=Money(amount, contract.currency),
                            effective_from=effective_from)
    _clean(line, errors, exclude=["contract", "work_type", "role"])
    _save(line, conflict_field="effective_from",
          conflict_message="This contract already has a rate for that work type and role from that date.")
    _audit("rate_line_add", line, acting_user, on=contract, after={
        "rate_line": line.pk, "work_type": work_type or "Any", "role": role or "Any",
        **_snapshot(line, ("rate", "effective_from"))})
    return line


@transaction.atomic
def service_line_add(*, contract: Contract, description: str = "", rate_item: RateItem | None = None,
                     product: Product | None = None, quantity: Decimal = Decimal("1"),
                     unit_price: Decimal | Money | None = None, effective_from: dt.date,
                     effective_to: dt.date | None = None, acting_user) -> RecurringServiceLine:
    """A line billed every period with the contract's fee, such as 25 Office 365 licences.
    The unit price defaults to the product's price or the rate item's rate."""
    errors = _Errors()
    if rate_item is not None and product is not None:
        errors.add("product", "Choose a product or a rate item, not both.")
    source = product or rate_item
    description = _text(description) or (source.name if source is not None else "")
    if not description:
        errors.add("description", "Enter a description, or choose a product or rate item.")
    qty = _decimal(errors, "quantity", quantity, positive=True)
    if unit_price in (None, "") and source is not None:
        catalogue_price = product.price if product is not None else rate_item.rate
        if str(catalogue_price.currency) != contract.currency:
            errors.add("unit_price", f"“{source}” is priced in {catalogue_price.currency}; "
                                     f"enter the unit price in {contract.currency}.")
        unit_price = catalogue_price.amount
    price = _decimal(errors, "unit_price", unit_price, currency=contract.currency)
    _check_date(errors, "effective_from", effective_from)
    _check_date(errors, "effective_to", effective_to, required=False)
    errors.raise_if_any()
    if effective_to is not None and effective_to < effective_from:
        errors.add("effective_to", "The line cannot end before it starts.")
    _check_within_contract(errors, contract, "effective_from", effective_from)
    errors.raise_if_any()
    line = RecurringServiceLine(contract=contract, description=description, rate_item=rate_item, product=product,
                                quantity=qty, unit_price=Money(price, contract.currency),
                                effective_from=effective_from, effective_to=effective_to)
    _clean(line, errors, exclude=["contract", "rate_item", "product"])
    line.save()
    _audit("service_line_add", line, acting_user, on=contract,
           after={"service_line": line.pk, **_snapshot(line, SERVICE_LINE_AUDITED)})
    return line


@transaction.atomic
def service_line_end(*, service_line: RecurringServiceLine, effective_to: dt.date, acting_user) -> RecurringServiceLine:
    """Stop billing a service line after ``effective_to`` (a quantity change: end it, add a new one)."""
    line = RecurringServiceLine.objects.select_for_update().get(pk=service_line.pk)
    errors = _Errors()
    _check_date(errors, "effective_to", effective_to)
    errors.raise_if_any()
    if effective_to < line.effective_from:
        errors.add("effective_to", f"The line starts on {line.effective_from:%d %b %Y}; it cannot end before that.")
    errors.raise_if_any()
    before = {"effective_to": line.effective_to}
    line.effective_to = effective_to
    line.save(update_fields=["effective_to"])
    _audit("service_line_end", line, acting_user, on=line.contract, before=before, after={"effective_to": effective_to},
           message=f"Service line “{line.description}” (#{line.pk})")
    return line


SERVICE_LINE_AUDITED = ("description", "product", "rate_item", "quantity", "unit_price", "effective_from", "effective_to")


def _check_within_contract(errors: _Errors, contract: Contract, field: str, day: dt.date) -> None:
    if day < contract.start_date:
        errors.add(field, f"The contract starts on {contract.start_date:%d %b %Y}; enter that date or later.")
    elif contract.end_date is not None and day > contract.end_date:
        errors.add(field, f"The contract ends on {contract.end_date:%d %b %Y}; enter that date or earlier.")


def _require_type(contract: Contract, *types: str, what: str) -> None:
    if contract.type not in types:
        labels = " or ".join(Contract.Type(kind).label for kind in types)
        raise ValidationError(f"{what} belong to {labels} contracts; “{contract.name}” is {contract.get_type_display()}.")


# --- Remote Monitoring: device classes and counts -----------------------------------------


@transaction.atomic
def device_class_add(*, contract: Contract, name: str, unit_price: Decimal | Money,
                     tax_category: TaxCategory | None = None, acting_user) -> DeviceClass:
    _require_type(contract, Contract.Type.REMOTE_MONITORING, what="Device classes")
    errors = _Errors()
    name = _text(name)
    if not name:
        errors.add("name", "Enter a device class, such as Servers or Workstations.")
    elif contract.device_classes.filter(name__iexact=name).exists():
        errors.add("name", f"This contract already has a device class “{name}”.")
    price = _decimal(errors, "unit_price", unit_price, currency=contract.currency)
    if tax_category is not None and not isinstance(tax_category, TaxCategory):
        errors.add("tax_category", "Choose one of the tax categories.")
    errors.raise_if_any()
    device_class = DeviceClass(contract=contract, name=name, unit_price=Money(price, contract.currency),
                               tax_category=tax_category)
    _clean(device_class, errors, exclude=["contract"])
    _save(device_class, conflict_field="name", conflict_message=f"This contract already has a device class “{name}”.")
    _audit("device_class_add", device_class, acting_user, on=contract, after=_snapshot(device_class, ("name", "unit_price", "tax_category")))
    return device_class


@transaction.atomic
def device_count_record(*, device_class: DeviceClass, effective_date: dt.date, count: int, acting_user) -> DeviceCount:
    """From ``effective_date`` on, ``count`` devices of the class are monitored: a new ledger row,
    never an edit (mid-period changes are prorated by day when billed)."""
    contract = device_class.contract
    _require_type(contract, Contract.Type.REMOTE_MONITORING, what="Device counts")
    errors = _Errors()
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
        errors.add("count", "Enter a whole number of devices from 0 to 1,000,000.")
    _check_date(errors, "effective_date", effective_date)
    errors.raise_if_any()
    _check_within_contract(errors, contract, "effective_date", effective_date)
    errors.raise_if_any()
    previous = device_class.counts.filter(effective_date__lte=effective_date).order_by("-effective_date", "-id").first()
    row = DeviceCount.objects.create(device_class=device_class, effective_date=effective_date, count=count)
    _audit("device_count_record", row, acting_user, on=contract, before={"count": previous.count if previous else None},
           after={"count": count, "from": effective_date}, message=f"Device class “{device_class.name}”")
    return row


# --- Online Backup: usage -----------------------------------------------------------------


@transaction.atomic
def usage_record(*, contract: Contract, measured_on: dt.date, quantity: Decimal, acting_user) -> UsageRecord:
    """Usage (GB or seats) measured on a date: a new ledger row."""
    _require_type(contract, Contract.Type.ONLINE_BACKUP, what="Usage records")
    errors = _Errors()
    value = _decimal(errors, "quantity", quantity)
    if value is not None and value != value.quantize(Decimal("0.001")):
        errors.add("quantity", "Enter the quantity with at most 3 decimal places.")
    elif value is not None and value >= Decimal("1e9"):
        errors.add("quantity", "Enter a quantity below 1,000,000,000.")
    _check_date(errors, "measured_on", measured_on)
    errors.raise_if_any()
    _check_within_contract(errors, contract, "measured_on", measured_on)
    if measured_on > tenant_today():
        errors.add("measured_on", "Usage cannot be measured in the future.")
    errors.raise_if_any()
    row = UsageRecord.objects.create(contract=contract, measured_on=measured_on, quantity=value)
    _audit("usage_record", row, acting_user, on=contract,
           after={**_snapshot(row, ("measured_on", "quantity")), "unit": contract.usage_unit})
    return row


# --- Block Hours / Block Money: purchases -------------------------------------------------


@transaction.atomic
def block_purchase_add(*, contract: Contract, purchased_on: dt.date, price: Decimal | Money,
                       minutes: int | None = None, amount: Decimal | Money | None = None,
                       expires_on: dt.date | None = None, acting_user) -> BlockPurchase:
    """A block bought on a Block contract: ``minutes`` for Block Hours, ``amount`` for Block
    Money; ``price`` is what the customer is invoiced. Without ``expires_on`` the block
    expires after the contract's block expiry months (if set)."""
    _require_type(contract, Contract.Type.BLOCK_HOURS, Contract.Type.BLOCK_MONEY, what="Block purchases")
    errors = _Errors()
    if contract.status in (Contract.Status.ENDED, Contract.Status.CANCELLED):
        errors.add(None, f"The contract is {contract.get_status_display().lower()}; it takes no more blocks.")
    if contract.type == Contract.Type.BLOCK_HOURS:
        if amount not in (None, ""):
            errors.add("amount", "A Block Hours contract buys hours, not an amount.")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= 100_000 * 60:
            errors.add("minutes", "Enter the hours bought: more than zero and at most 100,000.")
        block_amount = None
    else:
        if minutes not in (None, ""):
            errors.add("minutes", "A Block Money contract buys an amount, not hours.")
        block_amount = _decimal(errors, "amount", amount, currency=contract.currency, positive=True)
        minutes = None
    block_price = _decimal(errors, "price", price, currency=contract.currency)
    _check_date(errors, "purchased_on", purchased_on)
    _check_date(errors, "expires_on", expires_on, required=False)
    errors.raise_if_any()
    _check_within_contract(errors, contract, "purchased_on", purchased_on)
    if expires_on is None and contract.block_expiry_months:
        expires_on = add_months(purchased_on, contract.block_expiry_months)
    if expires_on is not None and expires_on <= purchased_on:
        errors.add("expires_on", "A block expires after the day it is bought.")
    errors.raise_if_any()
    block = BlockPurchase(
        contract=contract, purchased_on=purchased_on, expires_on=expires_on, minutes=minutes,
        amount=None if block_amount is None else Money(block_amount, contract.currency),
        price=Money(block_price, contract.currency),
    )
    _clean(block, errors, exclude=["contract"])
    block.save()
    _audit("block_purchase_add", block, acting_user, on=contract, after=block_audited(block))
    return block


def block_audited(block: BlockPurchase) -> dict[str, Any]:
    """A block purchase as the audit trail shows it (also used for automatic repurchases)."""
    return {"block": block.pk, **_snapshot(block, ("purchased_on", "minutes", "amount", "price", "expires_on"))}


# --- Project — one-time fee: milestones ---------------------------------------------------


@transaction.atomic
def milestone_add(*, contract: Contract, name: str, percent: Decimal, due_date: dt.date | None = None,
                  acting_user) -> Milestone:
    """A share of the fixed fee, invoiced when the milestone is completed; shares total at most 100 %."""
    _require_type(contract, Contract.Type.PROJECT_ONE_TIME_FEE, what="Milestones")
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    errors = _Errors()
    if contract.fee_trigger != Contract.FeeTrigger.MILESTONES:
        errors.add(None, "This project's fee is not billed by milestones; change “Fee invoiced” to "
                         "“By milestones” on the contract first.")
    name = _text(name)
    if not name:
        errors.add("name", "Enter a name, such as Design approved.")
    share = _decimal(errors, "percent", percent, positive=True)
    _check_date(errors, "due_date", due_date, required=False)
    if share is not None:
        taken = contract.milestones.aggregate(total=Sum("percent"))["total"] or Decimal("0")
        if taken + share > 100:
            errors.add("percent", f"Milestones already take {plain(taken)} % of the fee; "
                                  f"at most {plain(100 - taken)} % is left.")
    errors.raise_if_any()
    milestone = Milestone(contract=contract, name=name, percent=share, due_date=due_date)
    _clean(milestone, errors, exclude=["contract"])
    milestone.save()
    _audit("milestone_add", milestone, acting_user, on=contract,
           after={"milestone": milestone.name, **_snapshot(milestone, ("percent", "due_date"))})
    return milestone


@transaction.atomic
def milestone_complete(*, milestone: Milestone, completed_on: dt.date, acting_user) -> Milestone:
    milestone = Milestone.objects.select_for_update().get(pk=milestone.pk)
    errors = _Errors()
    if milestone.completed_on is not None:
        errors.add(None, f"“{milestone.name}” was completed on {milestone.completed_on:%d %b %Y}.")
    _check_date(errors, "completed_on", completed_on)
    errors.raise_if_any()
    if completed_on > tenant_today():
        errors.add("completed_on", "A milestone cannot be completed in the future.")
    errors.raise_if_any()
    milestone.completed_on = completed_on
    milestone.save(update_fields=["completed_on"])
    _audit("milestone_complete", milestone, acting_user, on=milestone.contract, before={"completed_on": None},
           after={"completed_on": completed_on}, message=f"Milestone “{milestone.name}”")
    return milestone

