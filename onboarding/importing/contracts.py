"""The ``contracts`` section with their terms (rate and service lines, devices, usage, blocks, milestones)."""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from contracts import services as contract_services
from contracts.models import (
    BlockPurchase,
    Contract,
    ContractRateLine,
    Customer,
    DeviceClass,
    Milestone,
    RecurringServiceLine,
)
from onboarding.importing.core import ImportCore, RecordFailed
from onboarding.importing.document import natural_key, shown

COMMON_CONTRACT_FIELDS = tuple(f for f in contract_services.CONTRACT_COMMON_FIELDS if f != "name")
TYPE_CONTRACT_FIELDS = tuple(contract_services.CONTRACT_TYPE_FIELD_DEFAULTS)
CONTRACT_MONEY_FIELDS = contract_services.CONTRACT_MONEY_FIELDS


class ContractsSection(ImportCore):
    # -- contracts --

    def contract_ref(self, value: Any, path: tuple, *, customer: Customer | None = None) -> Contract:
        """A contract ``ref`` from this file or, failing that, the name of an existing contract
        of ``customer`` (or of its parent)."""
        found = self.contract_refs.get(natural_key(value))
        if found is not None:
            return found
        if ("contract", natural_key(value)) in self.failed:
            raise RecordFailed
        if customer is not None:
            owners = [customer.pk] + ([customer.parent_id] if customer.parent_id else [])
            matches = [c for c in Contract.objects.filter(customer_id__in=owners) if natural_key(c.name) == natural_key(value)]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                self.problem(path, f"{len(matches)} contracts of {customer.legal_name} are named {shown(value)}; "
                                   "give the contract a ref in this file")
                raise RecordFailed
        self.problem(path, f"unknown contract {shown(value)}")
        raise RecordFailed

    def import_contracts(self) -> None:
        seen_names: dict = {}
        existing_by_key: dict[tuple[int, str], list[Contract]] = defaultdict(list)
        for contract in Contract.objects.select_related("customer", "exclusion_set"):
            existing_by_key[(contract.customer_id, natural_key(contract.name))].append(contract)
        for path, record, ref in self.keyed_records("contracts", "ref", "contract", what="contract ref"):
            try:
                customer = self.lookup(self.customers, "customer", record["customer"], (*path, "customer"), "customer")
                if not self.unique_in_file(seen_names, (customer.pk, natural_key(record["name"])), (*path, "name"),
                                           f"contract {shown(record['name'])} of {customer.legal_name}"):
                    raise RecordFailed
                try:
                    contract = self._contract_upsert(path, record, customer, existing_by_key)
                except RecordFailed:
                    self._term_references(path, record)
                    raise
                self.contract_refs[natural_key(ref)] = contract
                self._contract_terms(path, record, contract)
                if "billed_through" in record:
                    self.contract_billed_through.append((contract, self.date(record["billed_through"])))
            except RecordFailed:
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
                    except RecordFailed:
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
            except RecordFailed:
                bad = True
        if bad:
            raise RecordFailed
        return data

    def _contract_upsert(self, path: tuple, record: dict, customer: Customer, existing_by_key) -> Contract:
        data = self._contract_data(path, record)
        if "currency" in record and record["currency"] != customer.currency:
            self.problem((*path, "currency"), f"a contract bills in its customer's currency: {customer.currency} "
                                              f"for {customer.legal_name}")
            raise RecordFailed
        matches = existing_by_key.get((customer.pk, natural_key(record["name"])), [])
        if len(matches) > 1:
            self.problem((*path, "name"), f"{len(matches)} contracts of {customer.legal_name} are already named "
                                          f"{shown(record['name'])}; rename one first")
            raise RecordFailed
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
                except RecordFailed:
                    failed = True
        if failed:
            raise RecordFailed

    def _rate_lines(self, path: tuple, item: dict, contract: Contract) -> None:
        work_type = role = None
        missing = False
        for name, table, label in (("work_type", self.work_types, "work type"), ("role", self.roles, "role")):
            if name in item:
                try:
                    found = self.lookup(table, label, item[name], (*path, name), label)
                except RecordFailed:
                    missing = True
                    continue
                if name == "work_type":
                    work_type = found
                else:
                    role = found
        if missing:
            raise RecordFailed
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
            raise RecordFailed
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
                    if natural_key(line.description) == natural_key(description)]
        if existing:
            line = existing[0]
            same = (line.quantity == quantity and line.product_id == (product.pk if product else None)
                    and line.rate_item_id == (rate_item.pk if rate_item else None)
                    and ("unit_price" not in item or line.unit_price.amount == self.decimal(item["unit_price"])))
            if not same:
                self.problem(path, f"the contract already has the line {shown(line.description)} from {day} with other "
                                   "terms; end it (effective_to) and add a new line to change it")
                raise RecordFailed
            if end is not None and line.effective_to != end:
                if line.effective_to is not None:
                    self.problem((*path, "effective_to"), f"the line already ends on {line.effective_to}")
                    raise RecordFailed
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
            raise RecordFailed
        elif device_class.unit_price.amount != price:
            self.problem((*path, "unit_price"), f"the device class already costs {device_class.unit_price.amount.normalize():f}; "
                                                "its price cannot be changed by an import")
            raise RecordFailed
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
                             effective_date=key[0], count=key[1], acting_user=self.acting_user, source="import")
                self.count("device counts", "created")
            except RecordFailed:
                failed = True
        if failed:
            raise RecordFailed

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
                raise RecordFailed
            exact = self.decimal(item["hours"]) * 60
            if exact != exact.to_integral_value():
                self.problem((*path, "hours"), f"{item['hours']} hours is not a whole number of minutes")
                raise RecordFailed
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
            raise RecordFailed
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
            customer = self.customers.get(natural_key(record["legal_name"]))
            if customer is None or ("customer", natural_key(record["legal_name"])) in self.failed:
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
            except RecordFailed:
                pass
