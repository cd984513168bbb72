"""The sync wizard: match products / rate items and customers, import accounting-only customers.

Nothing is saved until Done (the pages keep the choices in the session). At Done
(:func:`wizard_complete`) every choice is validated first; then what must be created in
the accounting system is created (idempotently: a repeated Done never creates twice);
then every mapping and every imported customer is written in **one** transaction.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from contracts.models import Customer, Product, RateItem
from contracts.services import customer_create
from integrations import registry
from integrations.base import LocalItem, RemoteRecord
from integrations.matching import Candidate, Proposal, name_key, propose
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


def _chosen(choices: Mapping[str, str]) -> set[str]:
    """The remote ids the choices match to (not Create, not skipped)."""
    return {value for value in choices.values() if value not in (CREATE, SKIP, "")}


def importable_customers(*, system: str, remote_customers: Sequence[Mapping[str, Any]],
                         customer_choices: Mapping[str, str], proposals: Sequence[Proposal]) -> list[dict]:
    """Remote customers that may be imported: none already matched (now or before) or suggested for a
    customer here, and none whose normalised name a customer here has — importing those would make twins."""
    held = _chosen(customer_choices) | {s.remote_id for p in proposals for s in p.suggestions}
    held |= {p.remote_id for p in proposals if p.remote_id}
    held |= set(RemoteMapping.objects.filter(system=system, local_type="customer").values_list("remote_id", flat=True))
    names = {name_key(name) for name in Customer.objects.values_list("legal_name", flat=True)}
    return [row for row in remote_customers if row["id"] not in held and name_key(row["name"]) not in names]


def currency_clash(local: Customer, remote_row: Mapping[str, Any]) -> str:
    """Why ``local`` cannot be matched to ``remote_row`` (a customer's currency never changes there), or ""."""
    remote_currency = str(remote_row.get("currency") or "").upper()
    if remote_currency and local.currency and remote_currency != local.currency.upper():
        return (f"{local.legal_name} bills in {local.currency}, but “{remote_row['name']}” is a "
                f"{remote_currency} customer in the accounting system, and a customer's currency cannot be changed "
                f"there: match a customer in {local.currency}, or create one.")
    return ""


def customer_fit(remote_customers: Sequence[Mapping[str, Any]]) -> Callable[[str, str], bool]:
    """``fit(local_key, remote_id)``: may this customer be matched to that one (same currency, or unknown)?"""
    rows = {row["id"]: row for row in remote_customers}
    locals_ = {f"customer:{c.pk}": c for c in Customer.objects.filter(is_active=True)}

    def fit(local_key: str, remote_id: str) -> bool:
        local, row = locals_.get(local_key), rows.get(remote_id)
        return local is None or row is None or not currency_clash(local, row)

    return fit


def _always(local_key: str, remote_id: str) -> bool:
    return True


def accept_suggestions(proposals: Sequence[Proposal], choices: Mapping[str, str], *,
                       fit: Callable[[str, str], bool] = _always) -> dict[str, str]:
    """Every unmatched row with a suggestion takes it — the first suggestion nobody else has taken and
    that ``fit`` allows, so two rows never end on one remote record. Other rows keep their choice."""
    result = dict(choices)
    taken = _chosen(result)
    for proposal in proposals:
        if proposal.status != "suggested" or result.get(proposal.local_key, SKIP) not in (SKIP, ""):
            continue
        pick = next((s.remote_id for s in proposal.suggestions
                     if s.remote_id not in taken and fit(proposal.local_key, s.remote_id)), None)
        if pick:
            result[proposal.local_key] = pick
            taken.add(pick)
    return result


def create_all(proposals: Sequence[Proposal], choices: Mapping[str, str]) -> dict[str, str]:
    """Create, in the accounting system, every row for which nothing was found there and nothing chosen.

    A row with a suggestion is left as it is: creating it would make a twin of a record that is
    probably the same one. Its own Create still does it, when the admin says so.
    """
    result = dict(choices)
    for proposal in proposals:
        if proposal.status == "none" and result.get(proposal.local_key, SKIP) in (SKIP, ""):
            result[proposal.local_key] = CREATE
    return result


def initial_choices(proposals: Sequence[Proposal], *, fit: Callable[[str, str], bool] = _always) -> dict[str, str]:
    """Remembered and exact matches are chosen, and so are suggestions (see :func:`accept_suggestions`);
    the admin changes any of them before Done."""
    chosen = {p.local_key: (p.remote_id if p.status in ("mapped", "exact") else SKIP) for p in proposals}
    return accept_suggestions(proposals, chosen, fit=fit)


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
        clash = currency_clash(local_customers_[pk], remote_customers[value]) if value in remote_customers else ""
        if clash:
            raise ValidationError(clash)
    existing_names = {name_key(n) for n in Customer.objects.values_list("legal_name", flat=True)}
    mapped_elsewhere = set(RemoteMapping.objects.filter(system=connection.system, local_type="customer")
                           .exclude(local_id__in=[str(pk) for pk in customers]).values_list("remote_id", flat=True))
    for rid in imports:
        if name_key(remote_customers[rid]["name"]) in existing_names or rid in mapped_elsewhere:
            raise ValidationError(f"A customer named “{remote_customers[rid]['name']}” (or very close to it) exists "
                                  "here already; match it instead of importing it.")

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
    "CREATE", "SKIP", "WizardSummary", "accept_suggestions", "create_all", "currency_clash", "customer_fit",
    "customer_proposals", "importable_customers", "initial_choices", "item_proposals",
    "names_match", "remote_snapshot", "wizard_complete", "wizard_fetch", "wizard_summary",
]
