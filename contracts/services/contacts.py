"""A customer's billing contacts: who receives its invoices, on the To line or in copy.

Contacts are given either as text, one per line, as the customer form and older import
files write them::

    Dana Reyes <dana@example.com>
    cc: Controller <controller@example.com>
    ap@example.com

or as a list of ``{"email": ..., "name": ..., "kind": "to" | "cc"}`` (the import file).
``contacts_parse`` reads both and lists every problem by line; ``contacts_replace``
stores the new list in place of the old one (inside the customer service's transaction).
"""
from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from contracts.models import BillingContact, Customer
from msp_billing.validation import Errors, clean_text

MAX_CONTACTS = 20
FIELD = "billing_contacts"


@dataclass(frozen=True)
class ContactSpec:
    email: str
    name: str = ""
    kind: str = BillingContact.Kind.TO

    def as_line(self) -> str:
        address = f"{self.name} <{self.email}>" if self.name else self.email
        return f"cc: {address}" if self.kind == BillingContact.Kind.CC else address


def _from_line(line: str) -> tuple[str, str, str]:
    kind = BillingContact.Kind.TO
    head, sep, rest = line.partition(":")
    if sep and head.strip().lower() in ("to", "cc") and "@" not in head:
        kind, line = head.strip().lower(), rest.strip()
    name, email = parseaddr(line)
    return email, name.strip(), kind


def contacts_parse(value: Any) -> list[ContactSpec]:
    """The contacts in ``value`` (text, a list of mappings, or None for none); raises one
    ``ValidationError`` on ``billing_contacts`` naming every line or entry that is wrong."""
    if value is None or value == "":
        return []
    errors = Errors()
    raw: list[tuple[str, Any, Any, Any]] = []  # (where, email, name, kind)
    if isinstance(value, str):
        for number, line in enumerate(value.splitlines(), start=1):
            if line.strip():
                email, name, kind = _from_line(line.strip())
                raw.append((f"Line {number}", email, name, kind))
    elif isinstance(value, (list, tuple)):
        for number, entry in enumerate(value, start=1):
            if not isinstance(entry, dict):
                errors.add(FIELD, f"Contact {number}: give an object with an e-mail.")
                continue
            raw.append((f"Contact {number}", entry.get("email"), entry.get("name", ""), entry.get("kind", "to")))
    else:
        errors.add(FIELD, "Give the billing contacts as text or as a list.")
    contacts: list[ContactSpec] = []
    seen: set[str] = set()
    for where, email, name, kind in raw:
        email = clean_text(email).lower()
        try:
            validate_email(email)
        except ValidationError:
            errors.add(FIELD, f"{where}: enter an e-mail address, such as Dana Reyes <dana@example.com>.")
            continue
        if kind not in BillingContact.Kind.values:
            errors.add(FIELD, f"{where}: the kind is “to” or “cc”.")
            continue
        if email in seen:
            errors.add(FIELD, f"{where}: {email} is listed twice.")
            continue
        seen.add(email)
        contacts.append(ContactSpec(email=email, name=clean_text(name)[:200], kind=kind))
    if len(contacts) > MAX_CONTACTS:
        errors.add(FIELD, f"At most {MAX_CONTACTS} billing contacts per customer.")
    errors.raise_if_any()
    return contacts


def contacts_of(customer: Customer) -> list[ContactSpec]:
    return [ContactSpec(email=c.email, name=c.name, kind=c.kind) for c in customer.billing_contacts.all()]


def contacts_text(customer: Customer) -> str:
    """The contacts as the customer form shows them, one per line."""
    return "\n".join(contact.as_line() for contact in contacts_of(customer))


def contacts_replace(customer: Customer, contacts: list[ContactSpec]) -> bool:
    """Store ``contacts`` (from ``contacts_parse``) as the customer's; returns whether anything changed."""
    if customer.pk and contacts_of(customer) == contacts:
        return False
    BillingContact.objects.filter(customer=customer).delete()
    BillingContact.objects.bulk_create(
        BillingContact(customer=customer, email=c.email, name=c.name, kind=c.kind, position=position)
        for position, c in enumerate(contacts))
    return True
