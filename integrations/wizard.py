"""The sync wizard: match products / rate items and customers, import accounting-only customers.

Nothing is saved until Done (the pages keep the choices in the session). At Done
(:func:`wizard_complete`) every choice is validated first; then what must be created in
the accounting system is created (idempotently: a repeated Done never creates twice);
then every mapping and every imported customer is written in **one** transaction.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from contracts.models import Customer, Product, RateItem
from contracts.services import customer_create
from integrations import registry
from integrations.base import LocalItem, RemoteRecord
from integrations.matching import Candidate, Proposal, exact_key, name_key, propose
from integrations.models import AccountingConnection, RemoteMapping
from integrations.selectors import home_currency
from invoices.audit import audit_record

CREATE = "create"
SKIP = "skip"


def remote_snapshot(records: Sequence[RemoteRecord]) -> list[dict[str, Any]]:
    """Remote records as JSON for the session (what Done will validate against)."""
    return [{"id": r.remote_id, "name": r.name, "code": r.code, "price": str(r.price) if r.price is not None else "",
             "currency": str(r.data.get("currency", "")), "email": str(r.data.get("email", "")),
             "address": str(r.data.get("address", ""))} for r in records]


def wizard_fetch(*, connection: AccountingConnection) -> dict[str, list[dict[str, Any]]]:
    """Read the accounting system's customers and items once, for the whole wizard."""
    connector = registry.connector_for(connection)
    return {"items": remote_snapshot(connector.fetch_items()), "customers": remote_snapshot(connector.fetch_customers())}


def _candidates(rows: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    return [Candidate(remote_id=row["id"], name=row["name"], code=row.get("code", "")) for row in rows]


def _mapped(system: str, local_types: Sequence[str]) -> dict[str, str]:
    return {f"{m.local_type}:{m.local_id}": m.remote_id
            for m in RemoteMapping.objects.filter(system=system, local_type__in=local_types)}


def local_items() -> list[tuple[str, str, str]]:
    products = [(f"product:{p.pk}", p.name, p.sku) for p in Product.objects.filter(is_active=True).order_by("name")]
    rates = [(f"rate_item:{r.pk}", r.name, "") for r in RateItem.objects.order_by("name")]
    return products + rates


def local_customers() -> list[tuple[str, str, str]]:
    return [(f"customer:{c.pk}", c.legal_name, "") for c in Customer.objects.filter(is_active=True).order_by("legal_name")]


def item_proposals(*, system: str, remote_items: Sequence[Mapping[str, Any]]) -> list[Proposal]:
    return propose(local_items(), _candidates(remote_items), mapped=_mapped(system, ["product", "rate_item"]))


def customer_proposals(*, system: str, remote_customers: Sequence[Mapping[str, Any]]) -> list[Proposal]:
    return propose(local_customers(), _candidates(remote_customers), mapped=_mapped(system, ["customer"]))


def importable_customers(*, remote_customers: Sequence[Mapping[str, Any]], customer_choices: Mapping[str, str]) -> list[dict]:
    """Remote customers nobody here is matched to and whose name no customer here has."""
    chosen = {value for value in customer_choices.values() if value not in (CREATE, SKIP, "")}
    names = {exact_key(name) for name in Customer.objects.values_list("legal_name", flat=True)}
    return [row for row in remote_customers if row["id"] not in chosen and exact_key(row["name"]) not in names]


def initial_choices(proposals: Sequence[Proposal]) -> dict[str, str]:
    """Remembered and exact matches are chosen; suggestions wait for the admin (skip until confirmed)."""
    return {p.local_key: (p.remote_id if p.status in ("mapped", "exact") else SKIP) for p in proposals}


@dataclass
class WizardSummary:
    matched_items: int = 0
    created_items: int = 0
    matched_customers: int = 0
    created_customers: int = 0
    imported_customers: int = 0
    unmatched: list[str] = field(default_factory=list)


def wizard_summary(*, item_choices: Mapping[str, str], customer_choices: Mapping[str, str], imports: Sequence[str]) -> WizardSummary:
    summary = WizardSummary(imported_customers=len(imports))
    for choices, kind in ((item_choices, "items"), (customer_choices, "customers")):
        for key, value in choices.items():
            if value == CREATE:
                setattr(summary, f"created_{kind}", getattr(summary, f"created_{kind}") + 1)
            elif value and value != SKIP:
                setattr(summary, f"matched_{kind}", getattr(summary, f"matched_{kind}") + 1)
            else:
                summary.unmatched.append(key)
    return summary


def _parse_key(key: str, allowed: Sequence[str]) -> tuple[str, int]:
    kind, _, raw = str(key).partition(":")
    if kind not in allowed or not raw.isdigit():
        raise ValidationError(f"Unknown entry {key!r}.")
    return kind, int(raw)


def wizard_complete(*, connection: AccountingConnection, remote: Mapping[str, Sequence[Mapping[str, Any]]],
                    item_choices: Mapping[str, str], customer_choices: Mapping[str, str], imports: Sequence[str],
                    acting_user) -> WizardSummary:
    """Done: validate everything, create what must be created remotely, then save it all at once."""
    if not connection.is_usable:
        raise ValidationError("Reconnect first: the connection is not usable.")
    remote_items = {row["id"]: row for row in remote.get("items", [])}
    remote_customers = {row["id"]: row for row in remote.get("customers", [])}

    # 1. validate (nothing happens anywhere if anything is wrong)
    items: dict[tuple[str, int], str] = {}
    for key, value in item_choices.items():
        kind, pk = _parse_key(key, ("product", "rate_item"))
        if value not in (CREATE, SKIP, "") and value not in remote_items:
            raise ValidationError(f"{key}: that item is not in the accounting system.")
        items[(kind, pk)] = value
    customers: dict[int, str] = {}
    for key, value in customer_choices.items():
        _, pk = _parse_key(key, ("customer",))
        if value not in (CREATE, SKIP, "") and value not in remote_customers:
            raise ValidationError(f"{key}: that customer is not in the accounting system.")
        customers[pk] = value
    taken = [value for value in customers.values() if value not in (CREATE, SKIP, "")]
    if len(taken) != len(set(taken)):
        raise ValidationError("Two customers here are matched to the same customer in the accounting system; "
                              "match each to its own.")
    unknown_imports = [rid for rid in imports if rid not in remote_customers]
    if unknown_imports or len(set(imports)) != len(imports):
        raise ValidationError("Choose customers to import from the list.")
    if set(imports) & set(taken):
        raise ValidationError("A customer matched here cannot be imported as well.")
    products = Product.objects.in_bulk([pk for (kind, pk) in items if kind == "product"])
    rate_items = RateItem.objects.in_bulk([pk for (kind, pk) in items if kind == "rate_item"])
    local_customers_ = Customer.objects.in_bulk(list(customers))
    if len(products) + len(rate_items) != len(items) or len(local_customers_) != len(customers):
        raise ValidationError("Some entries no longer exist here; start the wizard again.")
    for pk, value in customers.items():
        remote_currency = str(remote_customers.get(value, {}).get("currency") or "").upper()
        local = local_customers_[pk]
        if remote_currency and local.currency and remote_currency != local.currency.upper():
            raise ValidationError(
                f"{local.legal_name} bills in {local.currency}, but “{remote_customers[value]['name']}” is a "
                f"{remote_currency} customer in the accounting system, and a customer's currency cannot be changed "
                f"there: match a customer in {local.currency}, or create one.")
    existing_names = {exact_key(n) for n in Customer.objects.values_list("legal_name", flat=True)}
    for rid in imports:
        if exact_key(remote_customers[rid]["name"]) in existing_names:
            raise ValidationError(f"A customer named “{remote_customers[rid]['name']}” exists here already; match it instead.")

    # 2. create remotely (outside the transaction: each call is idempotent by its key)
    connector = registry.connector_for(connection)
    to_create_items = []
    for (kind, pk), value in items.items():
        if value == CREATE:
            if kind == "product":
                p = products[pk]
                to_create_items.append(LocalItem("product", pk, p.name, p.price.amount, str(p.price.currency),
                                                 p.taxable, p.sku, p.accounting_code))
            else:
                r = rate_items[pk]
                to_create_items.append(LocalItem("rate_item", pk, r.name, r.rate.amount, str(r.rate.currency),
                                                 True, "", r.accounting_code))
    created_items = connector.create_items(to_create_items) if to_create_items else {}
    to_create_customers = [local_customers_[pk] for pk, value in customers.items() if value == CREATE]
    created_customers = connector.create_customers(to_create_customers) if to_create_customers else {}

    # 3. save everything at once
    system = connection.system
    with transaction.atomic():
        conn = AccountingConnection.objects.select_for_update().get(pk=connection.pk)
        for (kind, pk), value in items.items():
            if value in (SKIP, ""):
                RemoteMapping.objects.filter(system=system, local_type=kind, local_id=str(pk)).delete()
                continue
            record = created_items[(kind, pk)] if value == CREATE else None
            row = remote_items.get(value, {})
            _map(system, kind, pk, record.remote_id if record else value, record.name if record else row.get("name", ""),
                 record.code if record else row.get("code", ""))
        for pk, value in customers.items():
            if value in (SKIP, ""):
                RemoteMapping.objects.filter(system=system, local_type="customer", local_id=str(pk)).delete()
                continue
            record = created_customers[pk] if value == CREATE else None
            currency = str(record.data.get("currency", "") if record else remote_customers[value].get("currency", ""))
            _map(system, "customer", pk, record.remote_id if record else value,
                 record.name if record else remote_customers[value]["name"], "", currency=currency)
        currency = _home_currency()
        for rid in imports:
            row = remote_customers[rid]
            customer = _import_customer(row, currency=currency, acting_user=acting_user)
            _map(system, "customer", customer.pk, rid, row["name"], "", currency=row.get("currency", ""))
        conn.wizard_completed_at = timezone.now()
        conn.save(update_fields=["wizard_completed_at", "updated_at"])
        summary = wizard_summary(item_choices=item_choices, customer_choices=customer_choices, imports=imports)
        audit_record(actor=acting_user, action="accounting_sync_done", obj=conn, after=summary.__dict__)
    return summary


def _map(system: str, kind: str, pk: int, remote_id: str, name: str, code: str, *, currency: str = "") -> None:
    """A customer's mapping remembers the remote customer's currency (it cannot change there); "" : not known."""
    defaults = {"remote_id": remote_id, "remote_name": name[:500], "remote_code": code[:100]}
    if kind == "customer":
        defaults["extra"] = {"currency": currency.upper()} if currency else {}
    RemoteMapping.objects.update_or_create(system=system, local_type=kind, local_id=str(pk), defaults=defaults)


def _home_currency() -> str:

    return home_currency()


def _import_customer(row: Mapping[str, Any], *, currency: str, acting_user) -> Customer:

    return customer_create(legal_name=row["name"][:200], currency=(row.get("currency") or currency)[:3].upper(),
                           billing_email=row.get("email", ""), address=row.get("address", ""), acting_user=acting_user)


def names_match(a: str, b: str) -> bool:
    return name_key(a) == name_key(b)


__all__ = [
    "CREATE", "SKIP", "WizardSummary", "customer_proposals", "importable_customers", "initial_choices", "item_proposals",
    "names_match", "remote_snapshot", "wizard_complete", "wizard_fetch", "wizard_summary",
]
