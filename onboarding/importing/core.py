"""Import an MSP's billing data from one JSON file (format: docs/import-format.md).

The file holds the catalogue, customers, contracts with their terms, technicians,
tickets, time entries and charges; records refer to each other by natural keys (a
customer's legal name, a work type's name, a contract's or ticket's ``ref``), never by
database ids.

How an import runs:

1. The file is checked against ``docs/import.schema.json`` (``jsonschema``).
2. In one transaction every record is written through the same services the pages use
   (``contracts.services``, ``tickets.services``), so it is validated and audited as in
   the app. Time entries are created together and then routed and rated by
   ``tickets.services.entries_route``, oldest first, exactly as logged time is.
3. Every problem — schema, reference or service — is collected with its JSON path
   (``$.contracts[3].rate_lines[0].work_type: unknown work type "Onsite"``). If there is
   any, the transaction is rolled back: nothing is saved.

Re-importing a file upserts by natural key: records that exist are updated where the
file differs, ledgers (device counts, usage, blocks) and time entries and charges are
matched by their content, so nothing is duplicated. What is billed is never changed.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import DataError, connection, transaction
from django.utils import timezone
from djmoney.money import Money
from jsonschema import Draft202012Validator

from onboarding.importing.checks import MAX_DEPTH, TooDeep, json_loads, out_of_range_message, unstorable_values
from contracts import services as contract_services
from contracts.models import (
    BlockPurchase,
    Contract,
    ContractPeriod,
    ContractRateLine,
    Customer,
    DeviceClass,
    ExclusionSet,
    Milestone,
    Product,
    RateItem,
    RecurringServiceLine,
    Role,
    TaxCategory,
    TaxRate,
    WorkType,
)
from contracts.rules.taxes import parse_codes
from invoices import services as invoice_services
from invoices.models import InvoiceSettings
from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role as UserRole
from msp_billing.accounts.services import user_create
from msp_billing.tenants.today import current_msp
from tickets import services as ticket_services
from tickets.models import Charge, TechnicianProfile, Ticket, TimeEntry

SCHEMA_PATH = Path(settings.BASE_DIR) / "docs" / "import.schema.json"
# The order problems are listed in (the import itself takes the tax sections first).
SECTIONS = (
    "settings", "work_types", "roles", "rate_items", "products", "tax_rates", "tax_categories", "exclusion_sets",
    "technicians", "customers", "contracts", "tickets", "time_entries", "charges",
)
# What a contract's ``billed_through`` and a ``billed`` date stand for: noon, MSP time.
BILLED_HOUR = dt.time(12, 0)
RESOLVED_HOUR = dt.time(17, 0)
MAX_ENTRY_MINUTES = ticket_services.MAX_MINUTES_PER_ENTRY
TOO_DEEP = f"arrays and objects are nested more than {MAX_DEPTH} deep; this is not an import file"

# ``settings``: invoice numbering and defaults (``invoices.services.invoice_settings_update``).
INVOICE_SETTING_FIELDS = (
    "number_prefix", "number_padding", "number_yearly_reset", "credit_note_prefix", "default_payment_terms_days",
    "default_discount_percent", "default_surcharge_percent", "terms", "payment_instructions", "footer",
)
# Catalogue values the services take as Decimal (the file may give them as strings).
CATALOGUE_DECIMALS = frozenset({"after_hours_multiplier", "default_rate", "cost_rate", "rate", "price", "cost"})
COMMON_CONTRACT_FIELDS = tuple(f for f in contract_services.CONTRACT_COMMON_FIELDS if f != "name")
TYPE_CONTRACT_FIELDS = tuple(contract_services.CONTRACT_TYPE_FIELD_DEFAULTS)
CONTRACT_MONEY_FIELDS = contract_services.CONTRACT_MONEY_FIELDS


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    """One invalid record or value, located by its JSON path."""

    parts: tuple[str | int, ...]
    message: str

    @property
    def path(self) -> str:
        return json_path(self.parts)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def sort_key(self):
        head = self.parts[0] if self.parts else ""
        section = SECTIONS.index(head) if head in SECTIONS else -1
        return (section, *[(0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.parts[1:]])


class ImportRejected(Exception):
    """The file has problems; nothing was saved."""

    def __init__(self, problems: Iterable[ImportProblem]):
        self.problems = sorted(problems, key=ImportProblem.sort_key)
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported")


@dataclass
class ImportSummary:
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    dry_run: bool = False

    def lines(self) -> list[str]:
        kinds = list(dict.fromkeys([*self.created, *self.updated, *self.unchanged]))
        lines = []
        for kind in kinds:
            parts = [f"{n} {label}" for label, n in (("created", self.created[kind]), ("updated", self.updated[kind]),
                                                     ("unchanged", self.unchanged[kind])) if n]
            lines.append(f"{kind}: {', '.join(parts)}")
        return lines


def json_path(parts: Iterable[str | int]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    return str(value)


def _norm(value: Any) -> str:
    return " ".join(value.split()).casefold() if isinstance(value, str) else ""


# --- reading and the schema ----------------------------------------------------------------


def import_document_load(raw: bytes | str) -> Any:
    """The parsed file; numbers become ``Decimal`` so money never passes through a float."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected([ImportProblem((), "the file is not UTF-8 text")]) from None
    try:
        return json_loads(raw)
    except json.JSONDecodeError as error:
        raise ImportRejected(
            [ImportProblem((), f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}")]
        ) from None
    except TooDeep:
        raise ImportRejected([ImportProblem((), TOO_DEEP)]) from None


@functools.cache
def import_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(import_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _schema_message(error) -> list[tuple[tuple, str]]:
    """One or more (path, message) for a jsonschema error, phrased for people."""
    path = tuple(error.absolute_path)
    kind, value, schema = error.validator, error.validator_value, error.schema
    if kind == "required":
        # One error per missing property, all with the same list: find this one's name.
        missing = [name for name in value if isinstance(error.instance, dict) and name not in error.instance
                   and error.message.startswith(repr(name))]
        return [((*path, name), "is required") for name in missing[:1]] or [(path, error.message)]
    if kind == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = [name for name in error.instance if name not in known]
        return [((*path, name), "is not a field of this record") for name in extra]
    description = schema.get("description")
    if kind == "pattern" and value == "\\S":
        return [(path, "must not be blank")]
    if kind in ("anyOf", "oneOf") or (kind == "pattern" and description):
        return [(path, f"{_show(error.instance)} is not {description}" if description else error.message)]
    if kind == "format" and value == "date":
        return [(path, f"{_show(error.instance)} is not a date (YYYY-MM-DD)")]
    if kind == "format" and value == "email":
        return [(path, f"{_show(error.instance)} is not an e-mail address")]
    if kind == "enum":
        return [(path, f"{_show(error.instance)} is not one of {', '.join(_show(v) for v in value)}")]
    if kind == "const":
        return [(path, f"must be {_show(value)}")]
    if kind == "type":
        expected = " or ".join(value) if isinstance(value, list) else value
        article = "an" if expected[0] in "aeiou" else "a"
        return [(path, f"must be {article} {expected}, not {_show(error.instance)}")]
    if kind == "minLength" and value == 1:
        return [(path, "must not be empty")]
    simple = {
        "minimum": "must be at least {}", "maximum": "must be at most {}", "exclusiveMinimum": "must be more than {}",
        "maxLength": "must be at most {} characters", "minItems": "must have at least {} items",
    }
    if kind in simple:
        return [(path, simple[kind].format(value))]
    if kind == "uniqueItems":
        return [(path, "lists the same item twice")]
    return [(path, error.message)]


def schema_problems(document: Any) -> list[ImportProblem]:
    return schema_check(document)[0]


def schema_check(document: Any) -> tuple[list[ImportProblem], set[tuple]]:
    """Every schema problem, and the records (paths of JSON objects in lists) they make unusable.

    A record with a wrong or missing value is not imported; an unknown field alone does not
    stop it, so its references are still checked and reported.
    """
    problems: dict[tuple, ImportProblem] = {}
    blocked: set[tuple] = set()
    for error in _validator().iter_errors(document):
        for path, message in _schema_message(error):
            # One message per value is enough (a bad date fails both its pattern and its format).
            problems.setdefault(path, ImportProblem(path, message))
        if error.validator != "additionalProperties":
            blocked.add(_enclosing_record(document, tuple(error.absolute_path)))
    return list(problems.values()), blocked


def _enclosing_record(document: Any, path: tuple) -> tuple:
    """The path of the innermost object-in-a-list that contains ``path`` (or its section, or ``()``)."""
    found: tuple = path[:1]
    node = document
    for depth, part in enumerate(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(node, dict):
            found = path[: depth + 1]
    return found


# --- the import ----------------------------------------------------------------------------


class _DryRun(Exception):
    pass


def billing_data_import(*, document: Any, acting_user=None, dry_run: bool = False) -> ImportSummary:
    """Import a parsed file into the active MSP's schema, all or nothing.

    Raises ``ImportRejected`` with every problem (nothing saved); returns what was created,
    updated and left unchanged. ``dry_run`` checks everything and then rolls back.
    """
    tenant = getattr(connection, "tenant", None)
    if tenant is None or connection.schema_name == settings.PUBLIC_SCHEMA_NAME:
        raise RuntimeError("billing data is imported into an MSP's schema: activate one first")
    try:
        unstorable = [ImportProblem(parts, message) for parts, message in unstorable_values(document)]
    except TooDeep:
        raise ImportRejected([ImportProblem((), TOO_DEEP)]) from None
    problems, blocked = schema_check(document)
    if unstorable:
        reported = {problem.path for problem in unstorable}
        raise ImportRejected(unstorable + [problem for problem in problems
                                           if problem.path.replace("\x00", "\\u0000") not in reported])
    if not isinstance(document, dict):
        raise ImportRejected(problems or [ImportProblem((), "the file must hold a JSON object")])
    summary = ImportSummary(dry_run=dry_run)
    try:
        with transaction.atomic():
            importer = _Importer(document, acting_user=acting_user or "import", summary=summary, problems=problems,
                                 blocked=blocked)
            try:
                importer.run()
            except (DataError, OverflowError) as error:  # written outside a checked record: still only a problem
                problems.append(ImportProblem((), out_of_range_message(error)))  # (the transaction is rolled back)
            if problems:
                raise ImportRejected(problems)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    finally:
        # A rolled-back file (problems, dry run) may have switched time approval in memory only.
        if getattr(tenant, "pk", None) is not None and hasattr(tenant, "time_approval_required"):
            tenant.refresh_from_db(fields=["time_approval_required"])
    return summary


class _Failed(Exception):
    """This record cannot be imported; its problems (if any) are already recorded."""


class _Importer:
    def __init__(self, document: dict, *, acting_user, summary: ImportSummary, problems: list[ImportProblem],
                 blocked: set[tuple]):
        self.doc = document
        self.acting_user = acting_user
        self.summary = summary
        self.problems = problems
        self.tenant = current_msp()
        self.tz = zoneinfo.ZoneInfo(self.tenant.timezone)
        # Records with schema problems are not imported; their keys still count as defined
        # in the file, so records that refer to them are skipped without a second message.
        self.blocked = blocked
        self.failed: set[tuple[str, str]] = set()  # (kind, normalised key) defined in the file but not imported
        self.work_types = {_norm(w.name): w for w in WorkType.objects.all()}
        self.roles = {_norm(r.name): r for r in Role.objects.all()}
        self.rate_items = {_norm(r.name): r for r in RateItem.objects.all()}
        self.products = {_norm(p.sku): p for p in Product.objects.all()}
        self.tax_categories = {_norm(c.code): c for c in TaxCategory.objects.all()}
        self.exclusion_sets = {_norm(e.name): e for e in ExclusionSet.objects.prefetch_related("work_types", "roles")}
        self.customers = {_norm(c.legal_name): c for c in Customer.objects.all()}
        self.users = {u.email.lower(): u for u in User.objects.all()}
        self.profiles = {p.user_id: p for p in TechnicianProfile.objects.select_related("role")}
        self.contract_refs: dict[str, Contract] = {}
        self.ticket_refs: dict[str, Ticket] = {}
        self.ticket_billed: dict[int, dt.datetime | None] = {}
        self.contract_billed_through: list[tuple[Contract, dt.date]] = []
        self.ticket_records: dict[int, tuple[tuple, dict]] = {}
        self.entries_to_bill: dict[int, dt.datetime] = {}
        self.charges_to_bill: list[tuple[Charge, dt.datetime]] = []
        self._ledgers: dict = {}

    # -- plumbing --

    def problem(self, parts: tuple, message: str) -> None:
        self.problems.append(ImportProblem(tuple(parts), message))

    def records(self, section: str) -> Iterable[tuple[tuple, dict]]:
        items = self.doc.get(section)
        if (section,) in self.blocked or () in self.blocked or not isinstance(items, list):
            return
        for index, record in enumerate(items):
            if isinstance(record, dict):
                yield (section, index), record

    def usable(self, path: tuple) -> bool:
        return tuple(path) not in self.blocked

    def fail(self, kind: str, key: str) -> None:
        self.failed.add((kind, _norm(key)))

    def lookup(self, table: Mapping[str, Any], kind: str, value: Any, path: tuple, label: str):
        """The object a natural key names, or ``_Failed`` (with a problem unless the file's
        own record for that key already failed)."""
        found = table.get(_norm(value))
        if found is not None:
            return found
        if (kind, _norm(value)) not in self.failed:
            self.problem(path, f"unknown {label} {_show(value)}")
        raise _Failed

    def attempt(self, path: tuple, action: Callable, *args, field_map: Mapping[str, str] | None = None, **kwargs):
        """Run one service call in a savepoint; its ValidationError becomes problems."""
        try:
            with transaction.atomic():
                return action(*args, **kwargs)
        except ValidationError as error:
            self.validation_problems(path, error, field_map or {})
            raise _Failed from None
        except (DataError, OverflowError) as error:  # a value past what its column or the calendar holds
            self.problem(path, out_of_range_message(error))
            raise _Failed from None

    def validation_problems(self, path: tuple, error: ValidationError, field_map: Mapping[str, str]) -> None:
        if hasattr(error, "error_dict"):
            for name, messages in error.message_dict.items():
                where = path if name == NON_FIELD_ERRORS else (*path, field_map.get(name, name))
                for message in messages:
                    self.problem(where, message)
        else:
            for message in error.messages:
                self.problem(path, message)

    def count(self, kind: str, outcome: str, n: int = 1) -> None:
        getattr(self.summary, outcome)[kind] += n

    def decimal(self, value: Any) -> Decimal:
        return value if isinstance(value, Decimal) else Decimal(str(value))

    def date(self, value: str) -> dt.date:
        return dt.date.fromisoformat(value)

    def datetime(self, value: str, path: tuple) -> dt.datetime:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            self.problem(path, f"{_show(value)} is not a date and time")
            raise _Failed from None
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=self.tz)

    def at(self, day: dt.date, hour: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, hour, tzinfo=self.tz)

    def billed_moment(self, value: Any, *, default: dt.datetime | None = None) -> dt.datetime | None:
        if value is True:
            return default or timezone.now()
        if isinstance(value, str):
            return self.at(self.date(value), BILLED_HOUR)
        return None

    def unique_in_file(self, seen: dict, key: Any, path: tuple, what: str) -> bool:
        if key in seen:
            self.problem(path, f"{what} is already in the file at {json_path(seen[key])}")
            return False
        seen[key] = path
        return True

    # -- the run --

    def run(self) -> None:
        # Taxes first: categories, customers, contracts and the settings name tax codes. Then the
        # settings, so the file's time entries follow the file's time approval setting.
        self.import_tax_rates()
        self.import_tax_categories()
        self.import_settings()
        self.import_work_types()
        self.import_roles()
        self.import_rate_items()
        self.import_products()
        self.import_exclusion_sets()
        self.import_technicians()
        self.import_customers()
        self.import_contracts()
        self.import_default_hourly_contracts()
        self.import_tickets()
        self.import_time_entries()
        self.import_charges()
        self.import_ticket_statuses()
        self.mark_billed()

    # -- settings --

    def import_settings(self) -> None:
        """Invoice numbering and defaults, next numbers and time approval, through the settings pages' services.

        Applied first, so the file's time entries follow the file's time approval setting.
        """
        record = self.doc.get("settings")
        if not isinstance(record, dict) or () in self.blocked or any(p[:1] == ("settings",) for p in self.blocked):
            return  # its schema problems are listed already
        path = ("settings",)
        data = {name: record[name] for name in INVOICE_SETTING_FIELDS if name in record}
        if "default_tax_codes" in record:  # the fallback when neither item, contract nor customer names taxes
            data["default_tax_codes"] = ", ".join(parse_codes(record["default_tax_codes"]))
        for name in ("default_discount_percent", "default_surcharge_percent"):
            if name in data:
                data[name] = self.decimal(data[name])
        config = InvoiceSettings.load()
        changes = {name: value for name, value in data.items() if not self._same(config, name, value)}
        numbering_usable = True
        if changes:
            try:
                self.attempt(path, invoice_services.invoice_settings_update, data=changes, acting_user=self.acting_user)
                self.count("invoice settings", "updated")
            except _Failed:
                numbering_usable = False  # next numbers depend on the numbering settings: checked once those are right
        elif data:
            self.count("invoice settings", "unchanged")
        if numbering_usable:
            self._next_numbers(path, record.get("next_numbers") or [])
        if "time_approval_required" in record:
            required = record["time_approval_required"]
            if required == self.tenant.time_approval_required:
                self.count("time approval setting", "unchanged")
            else:
                try:
                    self.attempt(path, ticket_services.time_approval_switch, required=required, acting_user=self.acting_user)
                    self.count("time approval setting", "updated")
                except _Failed:
                    pass
                self.tenant = current_msp()

    def _next_numbers(self, path: tuple, items: list) -> None:
        yearly = InvoiceSettings.load().number_yearly_reset
        seen: dict = {}
        for index, item in enumerate(items):
            where = (*path, "next_numbers", index)
            series, year = item["series"], item.get("year")
            if yearly and year is None:
                self.problem((*where, "year"), "is required: invoice numbers restart each year, so give the year "
                                               "this next number is for")
                continue
            if not yearly and year is not None:
                self.problem((*where, "year"), "numbers do not restart each year (number_yearly_reset is false): "
                                               "leave the year out")
                continue
            if not self.unique_in_file(seen, (series, year), where, f"the next {series.replace('_', ' ')} number"
                                       + (f" for {year}" if year else "")):
                continue
            if invoice_services.next_number_of(series=series, year=year) == item["next_number"]:
                self.count("next numbers", "unchanged")
                continue
            try:
                self.attempt(where, invoice_services.invoice_numbering_set_next, series=series, year=year,
                             next_number=item["next_number"], acting_user=self.acting_user)
                self.count("next numbers", "updated")
            except _Failed:
                pass

    # -- catalogue --

    def _catalogue(self, section: str, kind: str, key_field: str, table: dict, fields: Iterable[str],
                   create: Callable, update: Callable, object_name: str, compare: Callable,
                   create_defaults: Mapping[str, Any] | None = None) -> None:
        seen: dict = {}
        for path, record in self.records(section):
            key = record.get(key_field)
            if not self.usable(path):
                self.fail(kind, key)
                continue
            if not self.unique_in_file(seen, _norm(key), (*path, key_field), f"{kind} {_show(key)}"):
                continue
            data = {name: self.decimal(record[name]) if name in CATALOGUE_DECIMALS else record[name]
                    for name in fields if name in record}
            if "tax_category" in record:
                try:
                    data["tax_category"] = self.tax_category(record["tax_category"], (*path, "tax_category"))
                except _Failed:
                    self.fail(kind, key)
                    continue
            existing = table.get(_norm(key))
            try:
                if existing is None:
                    data = {**(create_defaults or {}), **data}
                    table[_norm(key)] = self.attempt(path, create, **{key_field: key.strip()}, **data,
                                                     acting_user=self.acting_user)
                    self.count(f"{kind}s", "created")
                    continue
                changes = {name: value for name, value in data.items() if not compare(existing, name, value)}
                if changes:
                    table[_norm(key)] = self.attempt(path, update, **{object_name: existing, "data": changes},
                                                     acting_user=self.acting_user)
                    self.count(f"{kind}s", "updated")
                else:
                    self.count(f"{kind}s", "unchanged")
            except _Failed:
                self.fail(kind, key)

    def tax_category(self, value: Any, path: tuple) -> TaxCategory | None:
        """A tax category code from the file or the database; null clears it."""
        if value is None:
            return None
        return self.lookup(self.tax_categories, "tax category", value, path, "tax category")

    def _same(self, obj, name: str, value: Any) -> bool:
        if name == "tax_category":
            return obj.tax_category_id == (value.pk if value is not None else None)
        if name == "tax_codes":
            return getattr(obj, name) == ", ".join(parse_codes(value))
        current = getattr(obj, name)
        if isinstance(current, Money):
            return current.amount == self.decimal(value)
        if isinstance(current, Decimal):
            return current == self.decimal(value)
        if isinstance(current, str) and isinstance(value, str):
            return current == value.strip()
        return current == value

    def _compare_with_currency(self, money_field: str) -> Callable:
        """Compare field by field; ``currency`` is the currency of ``money_field``."""
        def compare(existing, name, value):
            if name == "currency":
                return str(getattr(existing, money_field).currency) == value
            return self._same(existing, name, value)
        return compare

    def import_work_types(self) -> None:
        self._catalogue("work_types", "work type", "name", self.work_types,
                        ("is_after_hours", "after_hours_multiplier", "billable", "is_active", "tax_category"),
                        contract_services.work_type_create, contract_services.work_type_update, "work_type", self._same)

    def import_roles(self) -> None:
        self._catalogue("roles", "role", "name", self.roles, ("default_rate", "cost_rate", "currency"),
                        contract_services.role_create, contract_services.role_update, "role",
                        self._compare_with_currency("default_rate"), {"currency": self.tenant.currency})

    def import_rate_items(self) -> None:
        self._catalogue("rate_items", "rate item", "name", self.rate_items,
                        ("rate", "currency", "accounting_code", "tax_category"),
                        contract_services.rate_item_create, contract_services.rate_item_update, "rate_item",
                        self._compare_with_currency("rate"), {"currency": self.tenant.currency})

    def import_products(self) -> None:
        self._catalogue("products", "product", "sku", self.products,
                        ("name", "price", "cost", "currency", "taxable", "accounting_code", "is_active", "tax_category"),
                        contract_services.product_create, contract_services.product_update, "product",
                        self._compare_with_currency("price"), {"currency": self.tenant.currency})

    def import_tax_rates(self) -> None:
        records = [(path, record) for path, record in self.records("tax_rates") if self.usable(path)]
        # Versions of one tax are added oldest first, whatever their order in the file.
        records.sort(key=lambda item: (item[1]["code"].strip().upper(), item[1]["effective_from"]))
        seen: dict = {}
        for path, record in records:
            code = record["code"].strip().upper()
            day = self.date(record["effective_from"])
            if not self.unique_in_file(seen, (code, day), (*path, "effective_from"), f"tax {code} from {day}"):
                continue
            values = dict(name=record["name"], percent=self.decimal(record["percent"]),
                          compound=record.get("compound", False), effective_from=day)
            versions = list(TaxRate.objects.filter(code__iexact=code).order_by("-effective_from"))
            same_day = next((v for v in versions if v.effective_from == day), None)
            try:
                if same_day is not None:
                    stored = (same_day.name, same_day.percent, same_day.compound)
                    if stored == (values["name"].strip(), values["percent"], values["compound"]):
                        self.count("tax rates", "unchanged")
                    else:
                        self.problem((*path, "percent"), f"tax {code} already has a version from {day} "
                                     f"({same_day.name} {same_day.percent.normalize():f} %); versions never change — "
                                     "add one with a later effective_from")
                    continue
                if versions:
                    self.attempt(path, contract_services.tax_rate_new_version, tax_rate=versions[0], **values,
                                 acting_user=self.acting_user)
                else:
                    self.attempt(path, contract_services.tax_rate_create, code=code, **values,
                                 acting_user=self.acting_user)
                self.count("tax rates", "created")
            except _Failed:
                pass

    def import_tax_categories(self) -> None:
        seen: dict = {}
        for path, record in self.records("tax_categories"):
            code = record.get("code")
            if not self.usable(path):
                self.fail("tax category", code)
                continue
            if not self.unique_in_file(seen, _norm(code), (*path, "code"), f"tax category {_show(code)}"):
                continue
            data = {name: record[name] for name in ("name", "taxable", "tax_codes") if name in record}
            existing = self.tax_categories.get(_norm(code))
            try:
                if existing is None:
                    self.tax_categories[_norm(code)] = self.attempt(
                        path, contract_services.tax_category_create, code=code, **data, acting_user=self.acting_user)
                    self.count("tax categories", "created")
                    continue
                changes = {name: value for name, value in data.items() if not self._same(existing, name, value)}
                if changes:
                    self.tax_categories[_norm(code)] = self.attempt(
                        path, contract_services.tax_category_update, tax_category=existing, data=changes,
                        acting_user=self.acting_user)
                    self.count("tax categories", "updated")
                else:
                    self.count("tax categories", "unchanged")
            except _Failed:
                self.fail("tax category", code)

    def import_exclusion_sets(self) -> None:
        seen: dict = {}
        for path, record in self.records("exclusion_sets"):
            name = record.get("name")
            if not self.usable(path):
                self.fail("exclusion set", name)
                continue
            if not self.unique_in_file(seen, _norm(name), (*path, "name"), f"exclusion set {_show(name)}"):
                continue
            try:
                work_types = self._members(record, path, "work_types", self.work_types, "work type")
                roles = self._members(record, path, "roles", self.roles, "role")
                existing = self.exclusion_sets.get(_norm(name))
                if existing is None:
                    self.exclusion_sets[_norm(name)] = self.attempt(
                        path, contract_services.exclusion_set_create, name=name, work_types=work_types, roles=roles,
                        acting_user=self.acting_user)
                    self.count("exclusion sets", "created")
                    continue
                changes = {}
                if "work_types" in record and {w.pk for w in work_types} != {w.pk for w in existing.work_types.all()}:
                    changes["work_types"] = work_types
                if "roles" in record and {r.pk for r in roles} != {r.pk for r in existing.roles.all()}:
                    changes["roles"] = roles
                if changes:
                    self.exclusion_sets[_norm(name)] = self.attempt(
                        path, contract_services.exclusion_set_update, exclusion_set=existing, data=changes,
                        acting_user=self.acting_user)
                    self.count("exclusion sets", "updated")
                else:
                    self.count("exclusion sets", "unchanged")
            except _Failed:
                self.fail("exclusion set", name)

    def _members(self, record: dict, path: tuple, name: str, table: dict, label: str) -> list:
        found, missing = [], False
        for index, member in enumerate(record.get(name, [])):
            if not isinstance(member, str):
                missing = True
                continue
            try:
                found.append(self.lookup(table, label, member, (*path, name, index), label))
            except _Failed:
                missing = True
        if missing:
            raise _Failed
        return found

    # -- technicians --

    def import_technicians(self) -> None:
        seen: dict = {}
        for path, record in self.records("technicians"):
            email = (record.get("email") or "").strip().lower() if isinstance(record.get("email"), str) else ""
            if not self.usable(path):
                self.fail("technician", email)
                continue
            if not self.unique_in_file(seen, email, (*path, "email"), f"technician {email}"):
                continue
            try:
                role = self.lookup(self.roles, "role", record["role"], (*path, "role"), "role")
                user = self.users.get(email)
                if user is None:
                    try:
                        validate_email(email)
                    except ValidationError:
                        self.problem((*path, "email"), f"{_show(record['email'])} is not an e-mail address")
                        raise _Failed from None
                    # Not a login yet: an admin invites them (password reset) when they should sign in.
                    user = self.attempt(path, user_create, email=email, role=UserRole.TECHNICIAN,
                                        full_name=record.get("full_name", ""), password=None)
                    self.users[email] = user
                    self.count("technicians", "created")
                profile = self.profiles.get(user.pk)
                if profile is None:
                    self.profiles[user.pk] = TechnicianProfile.objects.create(user=user, role=role)
                    self.count("technician roles", "created")
                elif profile.role_id != role.pk:
                    profile.role = role
                    profile.save(update_fields=["role"])
                    self.count("technician roles", "updated")
                else:
                    self.count("technician roles", "unchanged")
            except _Failed:
                self.fail("technician", email)

    def technician(self, value: Any, path: tuple, *, needs_role: bool) -> tuple[User, Role | None]:
        email = value.strip().lower()
        user = self.users.get(email)
        listed_but_failed = ("technician", email) in self.failed
        if user is None:
            if not listed_but_failed:
                self.problem(path, f"unknown user {_show(value)}: add them under $.technicians")
            raise _Failed
        profile = self.profiles.get(user.pk)
        if needs_role and profile is None:
            if not listed_but_failed:
                self.problem(path, f"{email} has no role yet: give them one under $.technicians")
            raise _Failed
        return user, profile.role if profile else None

    # -- customers --

    CUSTOMER_FIELDS = ("display_name", "billing_email", "billing_contacts", "address", "currency", "tax_exempt",
                       "tax_id", "payment_terms_days", "region", "is_active", "tax_codes", "tax_exemption_reason",
                       "tax_exemption_certificate", "tax_exemption_expires", "reverse_charge")

    def import_customers(self) -> None:
        seen: dict = {}
        records = list(self.records("customers"))
        # Parents first: a site refers to a top-level customer, which may come later in the file.
        ordered = [item for item in records if "parent" not in item[1]] + [item for item in records if "parent" in item[1]]
        for path, record in ordered:
            name = record.get("legal_name")
            if not self.usable(path):
                self.fail("customer", name)
                continue
            if not self.unique_in_file(seen, _norm(name), (*path, "legal_name"), f"customer {_show(name)}"):
                continue
            try:
                data = {key: record[key] for key in self.CUSTOMER_FIELDS if key in record}
                if data.get("tax_exemption_expires") is not None:
                    data["tax_exemption_expires"] = self.date(data["tax_exemption_expires"])
                if "parent" in record:
                    data["parent"] = self.lookup(self.customers, "customer", record["parent"], (*path, "parent"), "customer")
                existing = self.customers.get(_norm(name))
                if existing is None:
                    data.setdefault("currency", self.tenant.currency)
                    self.customers[_norm(name)] = self.attempt(
                        path, contract_services.customer_create, legal_name=name, **data, acting_user=self.acting_user)
                    self.count("customers", "created")
                    continue
                changes = {key: value for key, value in data.items() if not self._customer_same(existing, key, value)}
                if changes:
                    self.customers[_norm(name)] = self.attempt(
                        path, contract_services.customer_update, customer=existing, data=changes,
                        acting_user=self.acting_user)
                    self.count("customers", "updated")
                else:
                    self.count("customers", "unchanged")
            except _Failed:
                self.fail("customer", name)

    def _customer_same(self, customer: Customer, name: str, value: Any) -> bool:
        if name == "parent":
            return customer.parent_id == value.pk
        if name == "billing_email":
            return customer.billing_email == value.strip().lower()
        return self._same(customer, name, value)

    # -- contracts --

    def contract_ref(self, value: Any, path: tuple, *, customer: Customer | None = None) -> Contract:
        """A contract ``ref`` from this file or, failing that, the name of an existing contract
        of ``customer`` (or of its parent)."""
        found = self.contract_refs.get(_norm(value))
        if found is not None:
            return found
        if ("contract", _norm(value)) in self.failed:
            raise _Failed
        if customer is not None:
            owners = [customer.pk] + ([customer.parent_id] if customer.parent_id else [])
            matches = [c for c in Contract.objects.filter(customer_id__in=owners) if _norm(c.name) == _norm(value)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                self.problem(path, f"{len(matches)} contracts of {customer.legal_name} are named {_show(value)}; "
                                   "give the contract a ref in this file")
                raise _Failed
        self.problem(path, f"unknown contract {_show(value)}")
        raise _Failed

    def import_contracts(self) -> None:
        seen_refs: dict = {}
        seen_names: dict = {}
        existing_by_key: dict[tuple[int, str], list[Contract]] = defaultdict(list)
        for contract in Contract.objects.select_related("customer", "exclusion_set"):
            existing_by_key[(contract.customer_id, _norm(contract.name))].append(contract)
        for path, record in self.records("contracts"):
            ref = record.get("ref")
            if not self.usable(path):
                self.fail("contract", ref)
                continue
            if not self.unique_in_file(seen_refs, _norm(ref), (*path, "ref"), f"contract ref {_show(ref)}"):
                continue
            try:
                customer = self.lookup(self.customers, "customer", record["customer"], (*path, "customer"), "customer")
                if not self.unique_in_file(seen_names, (customer.pk, _norm(record["name"])), (*path, "name"),
                                           f"contract {_show(record['name'])} of {customer.legal_name}"):
                    raise _Failed
                try:
                    contract = self._contract_upsert(path, record, customer, existing_by_key)
                except _Failed:
                    self._term_references(path, record)
                    raise
                self.contract_refs[_norm(ref)] = contract
                self._contract_terms(path, record, contract)
                if "billed_through" in record:
                    self.contract_billed_through.append((contract, self.date(record["billed_through"])))
            except _Failed:
                self.fail("contract", ref)

    def _term_references(self, path: tuple, record: dict) -> None:
        """The contract itself failed: still report unknown names in its terms."""
        checks = (("rate_lines", "work_type", self.work_types, "work type"), ("rate_lines", "role", self.roles, "role"),
                  ("service_lines", "product", self.products, "product"),
                  ("service_lines", "rate_item", self.rate_items, "rate item"))
        for section, name, table, label in checks:
            for index, item in enumerate(record.get(section, [])):
                where = (*path, section, index)
                if self.usable(where) and isinstance(item.get(name), str):
                    try:
                        self.lookup(table, label, item[name], (*where, name), label)
                    except _Failed:
                        pass

    def _contract_data(self, path: tuple, record: dict) -> dict:
        kind = record["type"]
        own = contract_services.CONTRACT_TYPE_FIELDS[kind]
        data: dict[str, Any] = {}
        bad = False
        for name in COMMON_CONTRACT_FIELDS:
            if name in record:
                data[name] = record[name]
        for name in TYPE_CONTRACT_FIELDS:
            if name not in record:
                continue
            if name not in own:
                # Reported, then left out so that the rest of the contract is still checked.
                label = Contract.Type(kind).label
                self.problem((*path, name), f"{'an' if label[0] in 'AEIOUH' else 'a'} {label} contract has no {name}")
                continue
            data[name] = record[name]
        for name in ("start_date", "end_date"):
            if name in data:
                data[name] = self.date(data[name])
        for name in (*CONTRACT_MONEY_FIELDS, "included_quantity"):
            if name in data:
                data[name] = self.decimal(data[name])
        if "alert_thresholds" in data:
            data["alert_thresholds"] = ",".join(str(n) for n in sorted(data["alert_thresholds"]))
        if "exclusion_set" in data:
            try:
                data["exclusion_set"] = self.lookup(self.exclusion_sets, "exclusion set", data["exclusion_set"],
                                                    (*path, "exclusion_set"), "exclusion set")
            except _Failed:
                bad = True
        if bad:
            raise _Failed
        return data

    def _contract_upsert(self, path: tuple, record: dict, customer: Customer, existing_by_key) -> Contract:
        data = self._contract_data(path, record)
        if "currency" in record and record["currency"] != customer.currency:
            self.problem((*path, "currency"), f"a contract bills in its customer's currency: {customer.currency} "
                                              f"for {customer.legal_name}")
            raise _Failed
        matches = existing_by_key.get((customer.pk, _norm(record["name"])), [])
        if len(matches) > 1:
            self.problem((*path, "name"), f"{len(matches)} contracts of {customer.legal_name} are already named "
                                          f"{_show(record['name'])}; rename one first")
            raise _Failed
        if not matches:
            contract = self.attempt(path, contract_services.contract_create, customer=customer, name=record["name"],
                                    type=record["type"], acting_user=self.acting_user,
                                    **{k: v for k, v in data.items() if k != "start_date"},
                                    start_date=data["start_date"])
            self.count("contracts", "created")
            return contract
        contract = matches[0]
        changes = {name: value for name, value in {"type": record["type"], **data}.items()
                   if not self._contract_same(contract, name, value)}
        if not changes:
            self.count("contracts", "unchanged")
            return contract
        contract = self.attempt(path, contract_services.contract_update, contract=contract, data=changes,
                                acting_user=self.acting_user)
        self.count("contracts", "updated")
        return contract

    def _contract_same(self, contract: Contract, name: str, value: Any) -> bool:
        if name == "exclusion_set":
            return contract.exclusion_set_id == value.pk
        if name == "tax_codes":
            return self._same(contract, name, value)
        current = getattr(contract, name)
        if current is None or value is None:
            return current is value
        return self._same(contract, name, value)

    # -- contract terms --

    def _contract_terms(self, path: tuple, record: dict, contract: Contract) -> None:
        failed = False
        for section, handler in (
            ("rate_lines", self._rate_lines), ("service_lines", self._service_lines),
            ("device_classes", self._device_classes), ("usage_records", self._usage_records),
            ("blocks", self._blocks), ("milestones", self._milestones),
        ):
            for index, item in enumerate(record.get(section, [])):
                if not self.usable((*path, section, index)):
                    failed = True
                    continue
                try:
                    handler((*path, section, index), item, contract)
                except _Failed:
                    failed = True
        if failed:
            raise _Failed

    def _rate_lines(self, path: tuple, item: dict, contract: Contract) -> None:
        work_type = role = None
        missing = False
        for name, table, label in (("work_type", self.work_types, "work type"), ("role", self.roles, "role")):
            if name in item:
                try:
                    found = self.lookup(table, label, item[name], (*path, name), label)
                except _Failed:
                    missing = True
                    continue
                if name == "work_type":
                    work_type = found
                else:
                    role = found
        if missing:
            raise _Failed
        day = self.date(item["effective_from"])
        rate = self.decimal(item["rate"])
        existing = ContractRateLine.objects.filter(contract=contract, work_type=work_type, role=role, effective_from=day).first()
        if existing is not None:
            if existing.rate.amount == rate:
                self.count("rate lines", "unchanged")
                return
            self.problem((*path, "rate"), f"the contract already has a rate of {existing.rate.amount.normalize():f} "
                                          f"for this work type and role from {day}; rates are effective-dated — "
                                          "add a line with a later effective_from to change it")
            raise _Failed
        self.attempt(path, contract_services.rate_line_add, contract=contract, work_type=work_type, role=role,
                     rate=rate, effective_from=day, acting_user=self.acting_user)
        self.count("rate lines", "created")

    def _service_lines(self, path: tuple, item: dict, contract: Contract) -> None:
        product = rate_item = None
        if "product" in item:
            product = self.lookup(self.products, "product", item["product"], (*path, "product"), "product")
        if "rate_item" in item:
            rate_item = self.lookup(self.rate_items, "rate item", item["rate_item"], (*path, "rate_item"), "rate item")
        source = product or rate_item
        description = (item.get("description") or "").strip() or (source.name if source else "")
        day = self.date(item["effective_from"])
        end = self.date(item["effective_to"]) if "effective_to" in item else None
        quantity = self.decimal(item.get("quantity", 1))
        existing = [line for line in RecurringServiceLine.objects.filter(contract=contract, effective_from=day)
                    if _norm(line.description) == _norm(description)]
        if existing:
            line = existing[0]
            same = (line.quantity == quantity and line.product_id == (product.pk if product else None)
                    and line.rate_item_id == (rate_item.pk if rate_item else None)
                    and ("unit_price" not in item or line.unit_price.amount == self.decimal(item["unit_price"])))
            if not same:
                self.problem(path, f"the contract already has the line {_show(line.description)} from {day} with other "
                                   "terms; end it (effective_to) and add a new line to change it")
                raise _Failed
            if end is not None and line.effective_to != end:
                if line.effective_to is not None:
                    self.problem((*path, "effective_to"), f"the line already ends on {line.effective_to}")
                    raise _Failed
                self.attempt(path, contract_services.service_line_end, service_line=line, effective_to=end,
                             acting_user=self.acting_user)
                self.count("service lines", "updated")
            else:
                self.count("service lines", "unchanged")
            return
        self.attempt(path, contract_services.service_line_add, contract=contract, description=description,
                     rate_item=rate_item, product=product, quantity=quantity,
                     unit_price=self.decimal(item["unit_price"]) if "unit_price" in item else None,
                     effective_from=day, effective_to=end, acting_user=self.acting_user)
        self.count("service lines", "created")

    def _device_classes(self, path: tuple, item: dict, contract: Contract) -> None:
        price = self.decimal(item["unit_price"])
        category = self.tax_category(item.get("tax_category"), (*path, "tax_category"))
        device_class = DeviceClass.objects.filter(contract=contract, name__iexact=item["name"].strip()).first()
        if device_class is None:
            device_class = self.attempt(path, contract_services.device_class_add, contract=contract, name=item["name"],
                                        unit_price=price, tax_category=category, acting_user=self.acting_user)
            self.count("device classes", "created")
        elif "tax_category" in item and device_class.tax_category_id != (category.pk if category else None):
            self.problem((*path, "tax_category"), "the device class already has another tax category; it cannot be "
                                                  "changed by an import")
            raise _Failed
        elif device_class.unit_price.amount != price:
            self.problem((*path, "unit_price"), f"the device class already costs {device_class.unit_price.amount.normalize():f}; "
                                                "its price cannot be changed by an import")
            raise _Failed
        else:
            self.count("device classes", "unchanged")
        have = Counter((c.effective_date, c.count) for c in device_class.counts.all())
        failed = False
        for index, count in enumerate(item.get("counts", [])):
            if not self.usable((*path, "counts", index)):
                failed = True
                continue
            key = (self.date(count["effective_date"]), count["count"])
            if have[key]:
                have[key] -= 1
                self.count("device counts", "unchanged")
                continue
            try:
                self.attempt((*path, "counts", index), contract_services.device_count_record, device_class=device_class,
                             effective_date=key[0], count=key[1], acting_user=self.acting_user)
                self.count("device counts", "created")
            except _Failed:
                failed = True
        if failed:
            raise _Failed

    def _usage_records(self, path: tuple, item: dict, contract: Contract) -> None:
        key = (self.date(item["measured_on"]), self.decimal(item["quantity"]))
        have = self._ledger(("usage", contract.pk), lambda: Counter(
            (u.measured_on, u.quantity) for u in contract.usage_records.all()))
        if have[key]:
            have[key] -= 1
            self.count("usage records", "unchanged")
            return
        self.attempt(path, contract_services.usage_record, contract=contract, measured_on=key[0], quantity=key[1],
                     acting_user=self.acting_user)
        self.count("usage records", "created")

    def _ledger(self, key, load: Callable[[], Counter]) -> Counter:
        if key not in self._ledgers:
            self._ledgers[key] = load()
        return self._ledgers[key]

    def _blocks(self, path: tuple, item: dict, contract: Contract) -> None:
        minutes = item.get("minutes")
        if "hours" in item:
            if minutes is not None:
                self.problem((*path, "hours"), "give hours or minutes, not both")
                raise _Failed
            exact = self.decimal(item["hours"]) * 60
            if exact != exact.to_integral_value():
                self.problem((*path, "hours"), f"{item['hours']} hours is not a whole number of minutes")
                raise _Failed
            minutes = int(exact)
        amount = self.decimal(item["amount"]) if "amount" in item else None
        price = self.decimal(item["price"])
        purchased_on = self.date(item["purchased_on"])
        expires_on = self.date(item["expires_on"]) if "expires_on" in item else None
        key = (purchased_on, minutes, amount, price)
        have = self._ledger(("blocks", contract.pk), lambda: Counter(
            (b.purchased_on, b.minutes, b.amount.amount if b.amount else None, b.price.amount)
            for b in BlockPurchase.objects.filter(contract=contract)))
        if have[key]:
            have[key] -= 1
            self.count("block purchases", "unchanged")
            return
        self.attempt(path, contract_services.block_purchase_add, contract=contract, purchased_on=purchased_on,
                     price=price, minutes=minutes, amount=amount, expires_on=expires_on, acting_user=self.acting_user,
                     field_map={"minutes": "hours" if "hours" in item else "minutes"})
        self.count("block purchases", "created")

    def _milestones(self, path: tuple, item: dict, contract: Contract) -> None:
        percent = self.decimal(item["percent"])
        due = self.date(item["due_date"]) if "due_date" in item else None
        milestone = Milestone.objects.filter(contract=contract, name__iexact=item["name"].strip()).first()
        if milestone is None:
            milestone = self.attempt(path, contract_services.milestone_add, contract=contract, name=item["name"],
                                     percent=percent, due_date=due, acting_user=self.acting_user)
            self.count("milestones", "created")
        elif milestone.percent != percent:
            self.problem((*path, "percent"), f"the milestone already takes {milestone.percent.normalize():f} % "
                                             "of the fee; an import does not change it")
            raise _Failed
        else:
            self.count("milestones", "unchanged")
        if "completed_on" in item and milestone.completed_on is None:
            self.attempt(path, contract_services.milestone_complete, milestone=milestone,
                         completed_on=self.date(item["completed_on"]), acting_user=self.acting_user)
            self.count("milestones completed", "updated")

    def import_default_hourly_contracts(self) -> None:
        for path, record in self.records("customers"):
            if "default_hourly_contract" not in record or not self.usable(path):
                continue
            customer = self.customers.get(_norm(record["legal_name"]))
            if customer is None or ("customer", _norm(record["legal_name"])) in self.failed:
                continue
            try:
                contract = self.contract_ref(record["default_hourly_contract"], (*path, "default_hourly_contract"),
                                             customer=customer)
                customer.refresh_from_db()
                if customer.default_hourly_contract_id == contract.pk:
                    continue
                self.attempt(path, contract_services.customer_update, customer=customer,
                             data={"default_hourly_contract": contract}, acting_user=self.acting_user)
                self.count("default hourly contracts", "updated")
            except _Failed:
                pass

    # -- tickets, time and charges --

    def import_tickets(self) -> None:
        seen_refs: dict = {}
        seen_titles: dict = {}
        records = [(path, record) for path, record in self.records("tickets")]
        titles = {record.get("title", "").strip() for _, record in records if isinstance(record.get("title"), str)}
        existing: dict[tuple[int, str], list[Ticket]] = defaultdict(list)
        for ticket in Ticket.objects.filter(title__in=titles):
            existing[(ticket.customer_id, _norm(ticket.title))].append(ticket)
        for path, record in records:
            ref = record.get("ref")
            if not self.usable(path):
                self.fail("ticket", ref)
                continue
            if not self.unique_in_file(seen_refs, _norm(ref), (*path, "ref"), f"ticket ref {_show(ref)}"):
                continue
            try:
                customer = self.lookup(self.customers, "customer", record["customer"], (*path, "customer"), "customer")
                title = record["title"].strip()
                if not self.unique_in_file(seen_titles, (customer.pk, _norm(title)), (*path, "title"),
                                           f"ticket {_show(title)} of {customer.legal_name}"):
                    raise _Failed
                missing = False
                technician = default_contract = None
                if "technician" in record:
                    try:
                        technician, _ = self.technician(record["technician"], (*path, "technician"), needs_role=False)
                    except _Failed:
                        missing = True
                if "default_contract" in record:
                    try:
                        default_contract = self.contract_ref(record["default_contract"], (*path, "default_contract"),
                                                             customer=customer)
                    except _Failed:
                        missing = True
                if missing:
                    raise _Failed
                billed = self.billed_moment(record.get("billed"))
                if billed is not None and record.get("status") not in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
                    self.problem((*path, "billed"), "only a resolved or closed ticket can have been billed: "
                                                    "set its status")
                    raise _Failed
                matches = existing.get((customer.pk, _norm(title)), [])
                if len(matches) > 1:
                    self.problem((*path, "title"), f"{len(matches)} tickets of {customer.legal_name} are already titled "
                                                   f"{_show(title)}; the import cannot tell which one this is")
                    raise _Failed
                if matches:
                    ticket = matches[0]
                    wanted_tech = technician if "technician" in record else ticket.technician
                    wanted_contract = default_contract if "default_contract" in record else ticket.default_contract
                    if ticket.is_locked or (ticket.technician_id, ticket.default_contract_id) == (
                            getattr(wanted_tech, "pk", None), getattr(wanted_contract, "pk", None)):
                        self.count("tickets", "unchanged")
                    else:
                        ticket = self.attempt(path, ticket_services.ticket_update, ticket_id=ticket.pk, title=ticket.title,
                                              technician=wanted_tech, default_contract=wanted_contract)
                        self.count("tickets", "updated")
                else:
                    ticket = self.attempt(path, ticket_services.ticket_create, customer=customer, title=title,
                                          technician=technician, default_contract=default_contract)
                    self.count("tickets", "created")
                self.ticket_refs[_norm(ref)] = ticket
                self.ticket_records[ticket.pk] = (path, record)
                self.ticket_billed[ticket.pk] = billed
            except _Failed:
                self.fail("ticket", ref)

    def _ticket(self, value: Any, path: tuple) -> Ticket:
        return self.lookup(self.ticket_refs, "ticket", value, path, "ticket")

    def _entry_minutes(self, path: tuple, item: dict) -> tuple[int, dt.datetime | None, dt.datetime | None]:
        given = [name for name in ("minutes", "hours") if name in item]
        started = ended = None
        if "started_at" in item or "ended_at" in item:
            if not ("started_at" in item and "ended_at" in item):
                self.problem(path, "give both started_at and ended_at, or neither")
                raise _Failed
            started = self.datetime(item["started_at"], (*path, "started_at"))
            ended = self.datetime(item["ended_at"], (*path, "ended_at"))
            if ended <= started:
                self.problem((*path, "ended_at"), "must be after started_at")
                raise _Failed
            span = int((ended - started).total_seconds() // 60)
            if "minutes" in item and item["minutes"] != span:
                self.problem((*path, "minutes"), f"started_at to ended_at is {span} minutes, not {item['minutes']}")
                raise _Failed
            given = ["span"]
            minutes = span
        if len(given) != 1:
            self.problem(path, "give the time worked: minutes, hours, or started_at and ended_at" if not given
                         else "give minutes or hours, not both")
            raise _Failed
        if given == ["hours"]:
            exact = self.decimal(item["hours"]) * 60
            if exact != exact.to_integral_value():
                self.problem((*path, "hours"), f"{item['hours']} hours is not a whole number of minutes; give minutes")
                raise _Failed
            minutes = int(exact)
        elif given == ["minutes"]:
            minutes = item["minutes"]
        if not 0 < minutes <= MAX_ENTRY_MINUTES:
            self.problem((*path, given[0] if given[0] != "span" else "ended_at"),
                         "time worked must be between 1 minute and 24 hours")
            raise _Failed
        return minutes, started, ended

    def import_time_entries(self) -> None:
        new: list[TimeEntry] = []
        billed_new: list[tuple[TimeEntry, dt.datetime]] = []
        existing: dict[int, Counter] = {}
        existing_ids: dict[tuple, list[int]] = defaultdict(list)
        for path, item in self.records("time_entries"):
            if not self.usable(path):
                continue
            try:
                entry, billed = self._time_entry(path, item)
            except _Failed:
                continue
            ticket = entry.ticket
            if ticket.pk not in existing:
                counter = Counter()
                for old in TimeEntry.objects.filter(ticket=ticket).order_by("id"):
                    key = self._entry_key(old)
                    counter[key] += 1
                    existing_ids[key].append(old.pk)
                existing[ticket.pk] = counter
            key = self._entry_key(entry)
            if existing[ticket.pk][key]:
                existing[ticket.pk][key] -= 1
                self.count("time entries", "unchanged")
                entry_id = existing_ids[key].pop(0)
                if billed is not None:
                    self.entries_to_bill[entry_id] = billed
                continue
            if ticket.is_locked:
                self.problem((*path, "ticket"), f"ticket {_show(item['ticket'])} was billed and is locked: "
                                                "it takes no more time")
                continue
            new.append(entry)
            if billed is not None:
                billed_new.append((entry, billed))
        if not new:
            return
        TimeEntry.objects.bulk_create(new)
        for entry, billed in billed_new:
            self.entries_to_bill[entry.pk] = billed
        self.count("time entries", "created", len(new))
        # Routed oldest first, as if logged one by one: blocks are used up in date order.
        routed = (
            TimeEntry.objects.filter(pk__in=[e.pk for e in new])
            .select_related("ticket__customer__parent", "ticket__default_contract", "work_type", "role",
                            "chosen_contract", "chosen_rate_item")
            .order_by("date", "id")
        )
        ticket_services.entries_route(routed)

    def _entry_key(self, entry: TimeEntry) -> tuple:
        return (entry.ticket_id, entry.technician_id, entry.work_type_id, entry.date, entry.minutes,
                entry.billable_minutes, entry.notes.strip(), entry.started_at)

    def _time_entry(self, path: tuple, item: dict) -> tuple[TimeEntry, dt.datetime | None]:
        missing = False
        resolved: dict[str, Any] = {}
        for name, resolve in (
            ("ticket", lambda v: self._ticket(v, (*path, "ticket"))),
            ("technician", lambda v: self.technician(v, (*path, "technician"), needs_role=True)),
            ("work_type", lambda v: self.lookup(self.work_types, "work type", v, (*path, "work_type"), "work type")),
            ("rate_item", lambda v: self.lookup(self.rate_items, "rate item", v, (*path, "rate_item"), "rate item")),
        ):
            if name in item:
                try:
                    resolved[name] = resolve(item[name])
                except _Failed:
                    missing = True
        try:
            minutes, started, ended = self._entry_minutes(path, item)
        except _Failed:
            missing = True
        if missing:
            raise _Failed
        ticket, (technician, role), work_type = resolved["ticket"], resolved["technician"], resolved["work_type"]
        day = self.date(item["date"])
        chosen = None
        if "contract" in item:
            chosen = self.contract_ref(item["contract"], (*path, "contract"), customer=ticket.customer)
            if not ticket_services.contracts_valid_for(ticket.customer, day).filter(pk=chosen.pk).exists():
                self.problem((*path, "contract"), f"{chosen.name} is not an active contract of "
                                                  f"{ticket.customer.legal_name} on {day}")
                raise _Failed
        if not work_type.is_active:
            self.problem((*path, "work_type"), f"work type {work_type.name} is no longer in use")
            raise _Failed
        billable_minutes = item.get("billable_minutes")
        if billable_minutes is not None and billable_minutes > minutes:
            self.problem((*path, "billable_minutes"), f"{billable_minutes} billable minutes is more than the "
                                                      f"{minutes} minutes worked")
            raise _Failed
        after_hours = item.get("after_hours")
        if after_hours is None:
            after_hours = work_type.is_after_hours or ticket_services.is_after_hours(
                tenant=self.tenant, date=day, started_at=started)
        billed = self._entry_billed(path, item, ticket)
        approval = item.get("approval") or (
            TimeEntry.Approval.PENDING if self.tenant.time_approval_required else TimeEntry.Approval.APPROVED)
        if billed is not None:
            approval = TimeEntry.Approval.APPROVED
        entry = TimeEntry(
            ticket=ticket, technician=technician, role=role, work_type=work_type, date=day, started_at=started,
            ended_at=ended, minutes=minutes, billable_minutes=billable_minutes, notes=(item.get("notes") or "").strip(),
            billable=item.get("billable", work_type.billable), after_hours=after_hours, chosen_contract=chosen,
            chosen_rate_item=resolved.get("rate_item"), approval=approval,
        )
        return entry, billed

    def _entry_billed(self, path: tuple, item: dict, ticket: Ticket) -> dt.datetime | None:
        ticket_billed = self.ticket_billed.get(ticket.pk) or ticket.billed_at
        if "billed" not in item:
            return ticket_billed
        if item["billed"] is False:
            return None
        if ticket_billed is None:
            self.problem((*path, "billed"), "time is billed together with its ticket: mark the ticket billed too")
            raise _Failed
        return self.billed_moment(item["billed"], default=ticket_billed)

    def import_charges(self) -> None:
        have: dict[tuple, list[Charge]] = defaultdict(list)
        loaded = False
        for path, item in self.records("charges"):
            if not self.usable(path):
                continue
            try:
                ticket = contract = product = None
                missing = False
                if "ticket" in item:
                    try:
                        ticket = self._ticket(item["ticket"], (*path, "ticket"))
                    except _Failed:
                        missing = True
                if "contract" in item:
                    try:
                        contract = self.contract_ref(item["contract"], (*path, "contract"),
                                                     customer=ticket.customer if ticket else None)
                    except _Failed:
                        missing = True
                if "product" in item:
                    try:
                        product = self.lookup(self.products, "product", item["product"], (*path, "product"), "product")
                    except _Failed:
                        missing = True
                if missing:
                    raise _Failed
                if ticket is None and contract is None:
                    self.problem(path, "a charge belongs to a ticket or a contract: give ticket, contract or both")
                    raise _Failed
                currency = ticket.customer.currency if ticket else contract.currency
                description = (item.get("description") or "").strip() or (product.name if product else "")
                if not description:
                    self.problem((*path, "description"), "is required when no product is given")
                    raise _Failed
                if "unit_price" in item:
                    unit_price = self.decimal(item["unit_price"])
                elif product is not None and str(product.price.currency) == currency:
                    unit_price = product.price.amount
                else:
                    self.problem((*path, "unit_price"), "is required" if product is None else
                                 f"product {product.sku} is priced in {product.price.currency}; give the unit price in {currency}")
                    raise _Failed
                unit_cost = self.decimal(item["unit_cost"]) if "unit_cost" in item else (
                    product.cost.amount if product is not None and str(product.cost.currency) == currency else None)
                day = self.date(item["date"])
                quantity = self.decimal(item.get("quantity", 1))
                billed = self._charge_billed(path, item, ticket)
                if not loaded:
                    for charge in Charge.objects.all().order_by("id"):
                        have[self._charge_key(charge.ticket_id, charge.contract_id, charge.product_id,
                                              charge.description, charge.date, charge.quantity,
                                              charge.unit_price.amount)].append(charge)
                    loaded = True
                key = self._charge_key(getattr(ticket, "pk", None), getattr(contract, "pk", None),
                                       getattr(product, "pk", None), description, day, quantity, unit_price)
                if have[key]:
                    charge = have[key].pop(0)
                    self.count("charges", "unchanged")
                else:
                    if ticket is not None and ticket.is_locked:
                        self.problem((*path, "ticket"), f"ticket {_show(item['ticket'])} was billed and is locked: "
                                                        "it takes no more charges")
                        raise _Failed
                    charge = self.attempt(
                        path, ticket_services.charge_add, ticket=ticket, contract=contract, product=product,
                        description=description, date=day, quantity=quantity, unit_price=Money(unit_price, currency),
                        unit_cost=Money(unit_cost, currency) if unit_cost is not None else None,
                        markup_percent=self.decimal(item.get("markup_percent", 0)),
                        billable=item.get("billable", True), is_expense=item.get("is_expense", False))
                    self.count("charges", "created")
                if billed is not None and charge.billed_at is None:
                    self.charges_to_bill.append((charge, billed))
            except _Failed:
                continue

    def _charge_key(self, ticket_id, contract_id, product_id, description, day, quantity, unit_price) -> tuple:
        # A charge on a ticket is matched without its contract: the app assigns that itself.
        return (ticket_id, None if ticket_id else contract_id, product_id, _norm(description), day,
                Decimal(quantity).normalize(), Decimal(unit_price).normalize())

    def _charge_billed(self, path: tuple, item: dict, ticket: Ticket | None) -> dt.datetime | None:
        ticket_billed = (self.ticket_billed.get(ticket.pk) or ticket.billed_at) if ticket else None
        if "billed" not in item:
            return ticket_billed
        if item["billed"] is False:
            return None
        if ticket is not None and ticket_billed is None:
            self.problem((*path, "billed"), "a charge on a ticket is billed together with the ticket: "
                                            "mark the ticket billed too")
            raise _Failed
        return self.billed_moment(item["billed"], default=ticket_billed)

    def import_ticket_statuses(self) -> None:
        for ticket_id, (path, record) in self.ticket_records.items():
            ticket = Ticket.objects.get(pk=ticket_id)
            if ticket.is_locked:
                continue
            try:
                if "status" in record and record["status"] != ticket.status:
                    ticket = self.attempt(path, ticket_services.ticket_set_status, ticket_id=ticket.pk,
                                          status=record["status"], field_map={"status": "status"})
                if "resolved_on" in record and ticket.status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
                    moment = self.at(self.date(record["resolved_on"]), RESOLVED_HOUR)
                    if ticket.resolved_at != moment:
                        Ticket.objects.filter(pk=ticket.pk).update(resolved_at=moment)
            except _Failed:
                continue

    def mark_billed(self) -> None:
        """Billed in the system the data comes from: entries and charges first, then their tickets."""
        billed_entries = 0
        for entry_id, moment in self.entries_to_bill.items():
            billed_entries += TimeEntry.objects.filter(pk=entry_id, billed_at__isnull=True).update(billed_at=moment)
        if billed_entries:
            self.count("time entries marked billed", "updated", billed_entries)
        for charge, moment in self.charges_to_bill:
            if Charge.objects.filter(pk=charge.pk, billed_at__isnull=True).update(billed_at=moment):
                self.count("charges marked billed", "updated")
        for ticket_id, moment in self.ticket_billed.items():
            if moment is not None and Ticket.objects.filter(pk=ticket_id, billed_at__isnull=True).update(billed_at=moment):
                self.count("tickets marked billed", "updated")
        self._bill_periods()

    def _bill_periods(self) -> None:
        if not self.contract_billed_through:
            return
        from contracts.periods import contract_periods_generate
        from msp_billing.tenants.today import tenant_today

        today = tenant_today()
        for contract, through in self.contract_billed_through:
            contract_periods_generate(contract=contract, today=max(today, through))
            for period in ContractPeriod.objects.filter(contract=contract, end__lte=through, billed_at__isnull=True):
                period.billed_at = self.at(period.bill_date, BILLED_HOUR)
                period.save(update_fields=["billed_at"])
                self.count("periods marked billed", "updated")


def billing_data_import_file(*, path: str | Path, acting_user=None, dry_run: bool = False) -> ImportSummary:
    """Read, check and import a file (see ``billing_data_import``)."""
    document = import_document_load(Path(path).read_bytes())
    return billing_data_import(document=document, acting_user=acting_user, dry_run=dry_run)

