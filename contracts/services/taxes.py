"""Writes for tax rates (versioned: a new rate is a new version from a date) and tax categories."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction

from contracts.models import TaxCategory, TaxRate
from contracts.services._common import (
    _audit,
    _clean,
    _reject_unknown,
    _save,
    _snapshot,
    check_tax_codes,
)
from msp_billing.validation import Errors, check_date, clean_decimal, clean_text
from msp_billing.templatetags.formatting import day as format_day

# --- tax rates (versioned) ----------------------------------------------------------------

TAX_RATE_AUDITED = ("code", "name", "percent", "compound", "effective_from")


@transaction.atomic
def tax_rate_create(*, code: str, name: str, percent: Decimal, compound: bool = False, effective_from: dt.date,
                    acting_user) -> TaxRate:
    """A new tax: its first version."""
    errors = Errors()
    code = clean_text(code).upper()
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
    errors = Errors()
    versions = TaxRate.objects.select_for_update().filter(code=tax_rate.code).order_by("-effective_from")
    latest = versions.first()
    if latest is not None and isinstance(effective_from, dt.date) and effective_from <= latest.effective_from:
        errors.add("effective_from", f"A new version must start after the latest one "
                                     f"({format_day(latest.effective_from)}); earlier versions never change.")
    tax_rate_version = _tax_rate_build(errors, code=tax_rate.code, name=name, percent=percent, compound=compound,
                                       effective_from=effective_from)
    _save(tax_rate_version, conflict_field="effective_from",
          conflict_message="Another version of this tax starts on that date.")
    _audit("tax_rate_new_version", tax_rate_version, acting_user,
           before=_snapshot(latest, TAX_RATE_AUDITED) if latest else {},
           after=_snapshot(tax_rate_version, TAX_RATE_AUDITED))
    return tax_rate_version


def _tax_rate_build(errors: Errors, *, code: str, name: str, percent, compound: bool, effective_from) -> TaxRate:
    name = clean_text(name)
    if not name:
        errors.add("name", "Enter the name printed on invoices, such as VAT.")
    value = clean_decimal(errors, "percent", percent)
    if value is not None and value > 100:
        errors.add("percent", "Enter a percentage from 0 to 100.")
    check_date(errors, "effective_from", effective_from)
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
    errors = Errors()
    if "code" in data:
        category.code = clean_text(data["code"]).upper()
        if not category.code:
            errors.add("code", "Enter a short code, such as LABOUR or PARTS.")
        elif TaxCategory.objects.filter(code__iexact=category.code).exclude(pk=category.pk).exists():
            errors.add("code", f"A tax category with the code {category.code} already exists.")
    if "name" in data:
        category.name = clean_text(data["name"])
        if not category.name:
            errors.add("name", "Enter a name, such as Labour.")
    if "taxable" in data:
        category.taxable = bool(data["taxable"])
    if "tax_codes" in data:
        category.tax_codes = check_tax_codes(errors, "tax_codes", data["tax_codes"])
    errors.raise_if_any()
    _clean(category, errors)
