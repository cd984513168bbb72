"""The importer's state (what the MSP already has, what the file defined) and the plumbing every section uses."""
from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DataError, transaction
from django.utils import timezone

from contracts.models import (
    Contract,
    Customer,
    ExclusionSet,
    Product,
    RateItem,
    Role,
    TaxCategory,
    WorkType,
)
from msp_billing.accounts.models import User
from msp_billing.tenants.today import current_msp
from onboarding.importing.checks import out_of_range_message
from onboarding.importing.document import ImportProblem, ImportSummary, json_path, natural_key, shown
from tickets import services as ticket_services
from tickets.models import Charge, TechnicianProfile, Ticket

# What a contract's ``billed_through`` and a ``billed`` date stand for: noon, MSP time.
BILLED_HOUR = dt.time(12, 0)
RESOLVED_HOUR = dt.time(17, 0)
MAX_ENTRY_MINUTES = ticket_services.MAX_MINUTES_PER_ENTRY


class RecordFailed(Exception):
    """This record cannot be imported; its problems (if any) are already recorded."""


class ImportCore:
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
        self.work_types = {natural_key(w.name): w for w in WorkType.objects.all()}
        self.roles = {natural_key(r.name): r for r in Role.objects.all()}
        self.rate_items = {natural_key(r.name): r for r in RateItem.objects.all()}
        self.products = {natural_key(p.sku): p for p in Product.objects.all()}
        self.tax_categories = {natural_key(c.code): c for c in TaxCategory.objects.all()}
        self.exclusion_sets = {natural_key(e.name): e for e in ExclusionSet.objects.prefetch_related("work_types", "roles")}
        self.customers = {natural_key(c.legal_name): c for c in Customer.objects.all()}
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
        self.failed.add((kind, natural_key(key)))

    def lookup(self, table: Mapping[str, Any], kind: str, value: Any, path: tuple, label: str):
        """The object a natural key names, or ``RecordFailed`` (with a problem unless the file's
        own record for that key already failed)."""
        found = table.get(natural_key(value))
        if found is not None:
            return found
        if (kind, natural_key(value)) not in self.failed:
            self.problem(path, f"unknown {label} {shown(value)}")
        raise RecordFailed

    def attempt(self, path: tuple, action: Callable, *args, field_map: Mapping[str, str] | None = None, **kwargs):
        """Run one service call in a savepoint; its ValidationError becomes problems."""
        try:
            with transaction.atomic():
                return action(*args, **kwargs)
        except ValidationError as error:
            self.validation_problems(path, error, field_map or {})
            raise RecordFailed from None
        except (DataError, OverflowError) as error:  # a value past what its column or the calendar holds
            self.problem(path, out_of_range_message(error))
            raise RecordFailed from None

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
            self.problem(path, f"{shown(value)} is not a date and time")
            raise RecordFailed from None
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=self.tz)

    def at(self, day: dt.date, hour: dt.time) -> dt.datetime:
        return dt.datetime.combine(day, hour, tzinfo=self.tz)

    def billed_moment(self, value: Any, *, default: dt.datetime | None = None) -> dt.datetime | None:
        if value is True:
            return default or timezone.now()
        if isinstance(value, str):
            return self.at(self.date(value), BILLED_HOUR)
        return None

    def keyed_records(self, section: str, key_field: str, kind: str, *, what: str | None = None,
                      records: Iterable[tuple[tuple, dict]] | None = None) -> Iterator[tuple[tuple, dict, Any]]:
        """(path, record, key) of each usable record of ``section`` (or of ``records``) whose
        ``key_field`` is new in the file; a blocked record fails its key, a repeated key is a
        problem (``what``: how the message names it, ``kind`` by default)."""
        seen: dict = {}
        for path, record in self.records(section) if records is None else records:
            key = record.get(key_field)
            if not self.usable(path):
                self.fail(kind, key)
                continue
            if self.unique_in_file(seen, natural_key(key), (*path, key_field), f"{what or kind} {shown(key)}"):
                yield path, record, key

    def upsert(self, path: tuple, table: dict, key: Any, data: Mapping[str, Any], *, counted: str, create: Callable,
               create_args: Mapping[str, Any], update: Callable, object_name: str, same: Callable) -> None:
        """Create the object ``key`` names in ``table``, or update what differs (``same(existing,
        name, value)``), through the owning app's services; counted as created, updated or unchanged."""
        existing = table.get(natural_key(key))
        if existing is None:
            table[natural_key(key)] = self.attempt(path, create, **create_args, **data, acting_user=self.acting_user)
            self.count(counted, "created")
            return
        changes = {name: value for name, value in data.items() if not same(existing, name, value)}
        if changes:
            table[natural_key(key)] = self.attempt(path, update, **{object_name: existing, "data": changes},
                                                   acting_user=self.acting_user)
            self.count(counted, "updated")
        else:
            self.count(counted, "unchanged")

    def unique_in_file(self, seen: dict, key: Any, path: tuple, what: str) -> bool:
        if key in seen:
            self.problem(path, f"{what} is already in the file at {json_path(seen[key])}")
            return False
        seen[key] = path
        return True
