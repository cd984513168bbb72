"""Writes for customers: their details, parent, billing contacts and taxes."""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from contracts.hooks import notify_routing_changed
from contracts.models import Contract, Customer
from contracts.services.contacts import contacts_parse, contacts_replace, contacts_text
from contracts.services._common import (
    MAX_PAYMENT_TERMS_DAYS,
    _audit,
    _check_currency,
    _clean,
    _reject_unknown,
    _save,
    _snapshot,
    check_tax_codes,
)
from msp_billing.validation import Errors, check_date, clean_text

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
    billing_contacts: str | list | None = None,
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
    contacts = _contacts(billing_contacts)
    _customer_apply(
        customer,
        dict(legal_name=legal_name, currency=currency, display_name=display_name, parent=parent,
             billing_email=billing_email, address=address,
             tax_exempt=tax_exempt, tax_id=tax_id, payment_terms_days=payment_terms_days, region=region,
             is_active=is_active, tax_codes=tax_codes, tax_exemption_reason=tax_exemption_reason,
             tax_exemption_certificate=tax_exemption_certificate, tax_exemption_expires=tax_exemption_expires,
             reverse_charge=reverse_charge),
    )
    _save(customer, conflict_field="legal_name", conflict_message=_legal_name_taken(customer.legal_name))
    contacts_replace(customer, contacts)
    _audit("customer_create", customer, acting_user, after=_snapshot_with_contacts(customer))
    return customer


def _contacts(value):
    """The parsed billing contacts, or the customer's field errors with them."""
    try:
        return contacts_parse(value)
    except ValidationError as error:
        raise ValidationError(error.message_dict) from None


def _snapshot_with_contacts(customer: Customer) -> dict:
    fields = [name for name in CUSTOMER_AUDITED if name != "billing_contacts"]
    return {**_snapshot(customer, fields), "billing_contacts": contacts_text(customer)}


@transaction.atomic
def customer_update(*, customer: Customer, data: Mapping[str, Any], acting_user) -> Customer:
    """Change a customer; ``data`` holds any of CUSTOMER_FIELDS and ``default_hourly_contract``."""
    _reject_unknown(data, (*CUSTOMER_FIELDS, "default_hourly_contract"))
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    watched = ("parent_id", "default_hourly_contract_id")
    before = _snapshot(customer, watched)
    audited_before = _snapshot_with_contacts(customer)
    contacts = _contacts(data["billing_contacts"]) if "billing_contacts" in data else None
    _customer_apply(customer, {k: v for k, v in data.items() if k != "billing_contacts"}, existing=True)
    _save(customer, conflict_field="legal_name", conflict_message=_legal_name_taken(customer.legal_name))
    if contacts is not None:
        contacts_replace(customer, contacts)
    after = _snapshot(customer, watched)
    _audit("customer_update", customer, acting_user, before=audited_before, after=_snapshot_with_contacts(customer))
    if (before["parent_id"], before["default_hourly_contract_id"]) != (after["parent_id"], after["default_hourly_contract_id"]):
        # The customer (and so its sites) now falls back elsewhere; a site that moved has left
        # its old parent's list of sites, so the customers are named, not found through contracts.
        # A parent or fallback has no effective date: every unbilled entry is re-routed.
        owners = {customer.pk, before["parent_id"], after["parent_id"]} - {None}
        contract_ids = set(Contract.objects.filter(customer_id__in=owners).values_list("pk", flat=True))
        contract_ids |= {before["default_hourly_contract_id"], after["default_hourly_contract_id"]} - {None}
        notify_routing_changed(contract_ids=contract_ids, customer_ids=owners, effective_date=None)
    return customer


def _customer_tax_check(errors: Errors, customer: Customer) -> None:
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
    errors = Errors()
    if "legal_name" in data:
        customer.legal_name = clean_text(data["legal_name"])
        if not customer.legal_name:
            errors.add("legal_name", "Enter the legal name accounting systems know the customer by.")
        elif Customer.objects.filter(legal_name__iexact=customer.legal_name).exclude(pk=customer.pk).exists():
            errors.add("legal_name", _legal_name_taken(customer.legal_name))
    for name in ("display_name", "address", "tax_id", "region", "tax_exemption_reason",
                 "tax_exemption_certificate"):
        if name in data:
            setattr(customer, name, clean_text(data[name]))
    if "billing_email" in data:
        customer.billing_email = clean_text(data["billing_email"]).lower()
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
            check_date(errors, "tax_exemption_expires", expires)
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
