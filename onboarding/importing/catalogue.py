"""The catalogue sections: work types, roles, rate items, products, tax rates and categories, exclusion sets."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from djmoney.money import Money

from contracts import services as contract_services
from contracts.models import (
    TaxCategory,
    TaxRate,
)
from contracts.rules.taxes import parse_codes
from onboarding.importing.core import ImportCore, RecordFailed
from onboarding.importing.document import natural_key

# Catalogue values the services take as Decimal (the file may give them as strings).
CATALOGUE_DECIMALS = frozenset({"after_hours_multiplier", "default_rate", "cost_rate", "rate", "price", "cost"})


class CatalogueSection(ImportCore):
    # -- catalogue --

    def _catalogue(self, section: str, kind: str, key_field: str, table: dict, fields: Iterable[str],
                   create: Callable, update: Callable, object_name: str, compare: Callable,
                   create_defaults: Mapping[str, Any] | None = None) -> None:
        for path, record, key in self.keyed_records(section, key_field, kind):
            data = {name: self.decimal(record[name]) if name in CATALOGUE_DECIMALS else record[name]
                    for name in fields if name in record}
            if "tax_category" in record:
                try:
                    data["tax_category"] = self.tax_category(record["tax_category"], (*path, "tax_category"))
                except RecordFailed:
                    self.fail(kind, key)
                    continue
            if table.get(natural_key(key)) is None:
                data = {**(create_defaults or {}), **data}
            try:
                self.upsert(path, table, key, data, counted=f"{kind}s", create=create, create_args={key_field: key.strip()},
                            update=update, object_name=object_name, same=compare)
            except RecordFailed:
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
            except RecordFailed:
                pass

    def import_tax_categories(self) -> None:
        for path, record, code in self.keyed_records("tax_categories", "code", "tax category"):
            data = {name: record[name] for name in ("name", "taxable", "tax_codes") if name in record}
            try:
                self.upsert(path, self.tax_categories, code, data, counted="tax categories",
                            create=contract_services.tax_category_create, create_args={"code": code},
                            update=contract_services.tax_category_update, object_name="tax_category", same=self._same)
            except RecordFailed:
                self.fail("tax category", code)

    def import_exclusion_sets(self) -> None:
        for path, record, name in self.keyed_records("exclusion_sets", "name", "exclusion set"):
            try:
                work_types = self._members(record, path, "work_types", self.work_types, "work type")
                roles = self._members(record, path, "roles", self.roles, "role")
                existing = self.exclusion_sets.get(natural_key(name))
                if existing is None:
                    self.exclusion_sets[natural_key(name)] = self.attempt(
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
                    self.exclusion_sets[natural_key(name)] = self.attempt(
                        path, contract_services.exclusion_set_update, exclusion_set=existing, data=changes,
                        acting_user=self.acting_user)
                    self.count("exclusion sets", "updated")
                else:
                    self.count("exclusion sets", "unchanged")
            except RecordFailed:
                self.fail("exclusion set", name)

    def _members(self, record: dict, path: tuple, name: str, table: dict, label: str) -> list:
        found, missing = [], False
        for index, member in enumerate(record.get(name, [])):
            if not isinstance(member, str):
                missing = True
                continue
            try:
                found.append(self.lookup(table, label, member, (*path, name, index), label))
            except RecordFailed:
                missing = True
        if missing:
            raise RecordFailed
        return found
