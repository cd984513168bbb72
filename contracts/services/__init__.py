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

The writes are split by what they change — ``customers``, ``catalogue`` (work types,
roles, rate items, products, exclusion sets), ``taxes`` (tax rates and tax categories),
``contracts`` (create and update: terms, status, dates, renewal) and ``terms`` (rate and
service lines, device classes and counts, usage, block purchases, milestones) — with what
they share in ``_common``. Input checks and their messages come from
``msp_billing.validation``. Callers import from ``contracts.services``, which offers every
public name of the modules.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError

from contracts.rules.proration import add_months
from contracts.services._common import (
    CONTRACT_COMMON_FIELDS,
    CONTRACT_MONEY_FIELDS,
    CONTRACT_ROUTING_FIELDS,
    CONTRACT_TYPE_FIELD_DEFAULTS,
    CONTRACT_TYPE_FIELDS,
    CONTRACT_UPDATE_FIELDS,
    CURRENCY_CODES,
    DEFAULT_ALERT_THRESHOLDS,
    MAX_AFTER_HOURS_MULTIPLIER,
    MAX_CONTRACT_YEARS,
    MAX_PAYMENT_TERMS_DAYS,
    RECURRING_TYPES,
    USAGE_UNITS,
    add_years,
    check_tax_codes,
    plain,
)
from contracts.services.catalogue import (
    exclusion_set_create,
    exclusion_set_update,
    product_create,
    product_update,
    rate_item_create,
    rate_item_update,
    role_create,
    role_update,
    work_type_create,
    work_type_update,
)
from contracts.services.contracts import (
    contract_create,
    contract_update,
)
from contracts.services.customers import (
    CUSTOMER_AUDITED,
    CUSTOMER_FIELDS,
    CUSTOMER_TAX_FIELDS,
    customer_create,
    customer_update,
)
from contracts.services.first_block import contract_create_with_block
from contracts.services.taxes import (
    TAX_CATEGORY_FIELDS,
    TAX_RATE_AUDITED,
    tax_category_create,
    tax_category_update,
    tax_rate_create,
    tax_rate_new_version,
)
from contracts.services.terms import (
    SERVICE_LINE_AUDITED,
    block_audited,
    block_purchase_add,
    device_class_add,
    device_count_record,
    device_report_unmatched,
    milestone_add,
    milestone_complete,
    rate_line_add,
    service_line_add,
    service_line_end,
    usage_record,
)
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import EARLIEST_DATE, LATEST_DATE

__all__ = [
    "CONTRACT_COMMON_FIELDS",
    "CONTRACT_MONEY_FIELDS",
    "CONTRACT_ROUTING_FIELDS",
    "CONTRACT_TYPE_FIELDS",
    "CONTRACT_TYPE_FIELD_DEFAULTS",
    "CONTRACT_UPDATE_FIELDS",
    "CURRENCY_CODES",
    "CUSTOMER_AUDITED",
    "CUSTOMER_FIELDS",
    "CUSTOMER_TAX_FIELDS",
    "DEFAULT_ALERT_THRESHOLDS",
    "EARLIEST_DATE",
    "LATEST_DATE",
    "MAX_AFTER_HOURS_MULTIPLIER",
    "MAX_CONTRACT_YEARS",
    "MAX_PAYMENT_TERMS_DAYS",
    "RECURRING_TYPES",
    "SERVICE_LINE_AUDITED",
    "TAX_CATEGORY_FIELDS",
    "TAX_RATE_AUDITED",
    "USAGE_UNITS",
    "ValidationError",
    "add_months",
    "add_years",
    "block_audited",
    "block_purchase_add",
    "check_tax_codes",
    "contract_create",
    "contract_create_with_block",
    "contract_update",
    "customer_create",
    "customer_update",
    "device_class_add",
    "device_count_record",
    "device_report_unmatched",
    "exclusion_set_create",
    "exclusion_set_update",
    "milestone_add",
    "milestone_complete",
    "plain",
    "product_create",
    "product_update",
    "rate_item_create",
    "rate_item_update",
    "rate_line_add",
    "role_create",
    "role_update",
    "service_line_add",
    "service_line_end",
    "tax_category_create",
    "tax_category_update",
    "tax_rate_create",
    "tax_rate_new_version",
    "tenant_today",
    "usage_record",
    "work_type_create",
    "work_type_update",
]
