"""Writes for the catalogue: work types, roles, rate items, products and exclusion sets."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Model
from djmoney.money import Money

from contracts.hooks import notify_routing_changed
from contracts.models import (
    ExclusionSet,
    Product,
    RateItem,
    Role,
    TaxCategory,
    WorkType,
)
from contracts.services._common import (
    MAX_AFTER_HOURS_MULTIPLIER,
    _audit,
    _check_currency,
    _clean,
    _reject_unknown,
    _save,
    _snapshot,
)
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors, clean_decimal, clean_text


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
    check: Callable[[Model, Mapping[str, Any], Errors], None] | None = None
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
    errors = Errors()
    if kind.unique in data:
        value = clean_text(data[kind.unique])
        setattr(instance, kind.unique, value)
        if not value:
            errors.add(kind.unique, kind.blank)
        elif kind.model.objects.filter(**{f"{kind.unique}__iexact": value}).exclude(pk=instance.pk).exists():
            errors.add(kind.unique, kind.taken(value))
    for name in kind.texts:
        if name in data:
            setattr(instance, name, clean_text(data[name]))
    for name in kind.flags:
        if name in data:
            setattr(instance, name, bool(data[name]))
    if kind.check is not None:
        kind.check(instance, data, errors)
    if kind.prices:
        currency = _check_currency(errors, "currency", data["currency"])
        amounts = {name: clean_decimal(errors, name, data[name], currency=currency) for name in kind.prices}
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


def _work_type_check(work_type: WorkType, data: Mapping[str, Any], errors: Errors) -> None:
    _tax_category_check(work_type, data, errors)
    if "after_hours_multiplier" in data:
        multiplier = clean_decimal(errors, "after_hours_multiplier", data["after_hours_multiplier"], minimum=Decimal("1"))
        if multiplier is not None and multiplier > MAX_AFTER_HOURS_MULTIPLIER:
            errors.add("after_hours_multiplier", f"Enter a multiplier from 1 to {MAX_AFTER_HOURS_MULTIPLIER}.")
        elif multiplier is not None:
            work_type.after_hours_multiplier = multiplier


def _tax_category_check(instance: Model, data: Mapping[str, Any], errors: Errors) -> None:
    if "tax_category" in data:
        category = data["tax_category"]
        if category is not None and not isinstance(category, TaxCategory):
            errors.add("tax_category", "Choose one of the tax categories.")
        else:
            instance.tax_category = category


def _product_check(product: Product, data: Mapping[str, Any], errors: Errors) -> None:
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
