"""The work sections: tickets, time entries and charges, then what the source system already billed."""
from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

from djmoney.money import Money

from contracts.periods import periods_mark_billed_through
from onboarding.importing.core import BILLED_HOUR, MAX_ENTRY_MINUTES, RESOLVED_HOUR, ImportCore, RecordFailed
from onboarding.importing.document import natural_key, shown
from msp_billing.tenants.today import tenant_today
from tickets import bulk as ticket_bulk
from tickets import services as ticket_services
from tickets.models import Charge, Ticket, TimeEntry


class WorkSection(ImportCore):
    # -- tickets, time and charges --

    def import_tickets(self) -> None:
        seen_titles: dict = {}
        records = [(path, record) for path, record in self.records("tickets")]
        titles = {record.get("title", "").strip() for _, record in records if isinstance(record.get("title"), str)}
        existing: dict[tuple[int, str], list[Ticket]] = defaultdict(list)
        for ticket in Ticket.objects.filter(title__in=titles):
            existing[(ticket.customer_id, natural_key(ticket.title))].append(ticket)
        for path, record, ref in self.keyed_records("tickets", "ref", "ticket", what="ticket ref", records=records):
            try:
                customer = self.lookup(self.customers, "customer", record["customer"], (*path, "customer"), "customer")
                title = record["title"].strip()
                if not self.unique_in_file(seen_titles, (customer.pk, natural_key(title)), (*path, "title"),
                                           f"ticket {shown(title)} of {customer.legal_name}"):
                    raise RecordFailed
                missing = False
                technician = default_contract = None
                if "technician" in record:
                    try:
                        technician, _ = self.technician(record["technician"], (*path, "technician"), needs_role=False)
                    except RecordFailed:
                        missing = True
                if "default_contract" in record:
                    try:
                        default_contract = self.contract_ref(record["default_contract"], (*path, "default_contract"),
                                                             customer=customer)
                    except RecordFailed:
                        missing = True
                if missing:
                    raise RecordFailed
                billed = self.billed_moment(record.get("billed"))
                if billed is not None and record.get("status") not in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
                    self.problem((*path, "billed"), "only a resolved or closed ticket can have been billed: "
                                                    "set its status")
                    raise RecordFailed
                matches = existing.get((customer.pk, natural_key(title)), [])
                if len(matches) > 1:
                    self.problem((*path, "title"), f"{len(matches)} tickets of {customer.legal_name} are already titled "
                                                   f"{shown(title)}; the import cannot tell which one this is")
                    raise RecordFailed
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
                self.ticket_refs[natural_key(ref)] = ticket
                self.ticket_records[ticket.pk] = (path, record)
                self.ticket_billed[ticket.pk] = billed
            except RecordFailed:
                self.fail("ticket", ref)

    def _ticket(self, value: Any, path: tuple) -> Ticket:
        return self.lookup(self.ticket_refs, "ticket", value, path, "ticket")

    def _entry_minutes(self, path: tuple, item: dict) -> tuple[int, dt.datetime | None, dt.datetime | None]:
        given = [name for name in ("minutes", "hours") if name in item]
        started = ended = None
        if "started_at" in item or "ended_at" in item:
            if not ("started_at" in item and "ended_at" in item):
                self.problem(path, "give both started_at and ended_at, or neither")
                raise RecordFailed
            started = self.datetime(item["started_at"], (*path, "started_at"))
            ended = self.datetime(item["ended_at"], (*path, "ended_at"))
            if ended <= started:
                self.problem((*path, "ended_at"), "must be after started_at")
                raise RecordFailed
            span = int((ended - started).total_seconds() // 60)
            if "minutes" in item and item["minutes"] != span:
                self.problem((*path, "minutes"), f"started_at to ended_at is {span} minutes, not {item['minutes']}")
                raise RecordFailed
            given = ["span"]
            minutes = span
        if len(given) != 1:
            self.problem(path, "give the time worked: minutes, hours, or started_at and ended_at" if not given
                         else "give minutes or hours, not both")
            raise RecordFailed
        if given == ["hours"]:
            exact = self.decimal(item["hours"]) * 60
            if exact != exact.to_integral_value():
                self.problem((*path, "hours"), f"{item['hours']} hours is not a whole number of minutes; give minutes")
                raise RecordFailed
            minutes = int(exact)
        elif given == ["minutes"]:
            minutes = item["minutes"]
        if not 0 < minutes <= MAX_ENTRY_MINUTES:
            self.problem((*path, given[0] if given[0] != "span" else "ended_at"),
                         "time worked must be between 1 minute and 24 hours")
            raise RecordFailed
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
            except RecordFailed:
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
                self.problem((*path, "ticket"), f"ticket {shown(item['ticket'])} was billed and is locked: "
                                                "it takes no more time")
                continue
            new.append(entry)
            if billed is not None:
                billed_new.append((entry, billed))
        if not new:
            return
        ticket_bulk.time_entries_add(new)
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
                except RecordFailed:
                    missing = True
        try:
            minutes, started, ended = self._entry_minutes(path, item)
        except RecordFailed:
            missing = True
        if missing:
            raise RecordFailed
        ticket, (technician, role), work_type = resolved["ticket"], resolved["technician"], resolved["work_type"]
        day = self.date(item["date"])
        chosen = None
        if "contract" in item:
            chosen = self.contract_ref(item["contract"], (*path, "contract"), customer=ticket.customer)
            if not ticket_services.contracts_valid_for(ticket.customer, day).filter(pk=chosen.pk).exists():
                self.problem((*path, "contract"), f"{chosen.name} is not an active contract of "
                                                  f"{ticket.customer.legal_name} on {day}")
                raise RecordFailed
        if not work_type.is_active:
            self.problem((*path, "work_type"), f"work type {work_type.name} is no longer in use")
            raise RecordFailed
        billable_minutes = item.get("billable_minutes")
        if billable_minutes is not None and billable_minutes > minutes:
            self.problem((*path, "billable_minutes"), f"{billable_minutes} billable minutes is more than the "
                                                      f"{minutes} minutes worked")
            raise RecordFailed
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
            raise RecordFailed
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
                    except RecordFailed:
                        missing = True
                if "contract" in item:
                    try:
                        contract = self.contract_ref(item["contract"], (*path, "contract"),
                                                     customer=ticket.customer if ticket else None)
                    except RecordFailed:
                        missing = True
                if "product" in item:
                    try:
                        product = self.lookup(self.products, "product", item["product"], (*path, "product"), "product")
                    except RecordFailed:
                        missing = True
                if missing:
                    raise RecordFailed
                if ticket is None and contract is None:
                    self.problem(path, "a charge belongs to a ticket or a contract: give ticket, contract or both")
                    raise RecordFailed
                currency = ticket.customer.currency if ticket else contract.currency
                description = (item.get("description") or "").strip() or (product.name if product else "")
                if not description:
                    self.problem((*path, "description"), "is required when no product is given")
                    raise RecordFailed
                if "unit_price" in item:
                    unit_price = self.decimal(item["unit_price"])
                elif product is not None and str(product.price.currency) == currency:
                    unit_price = product.price.amount
                else:
                    self.problem((*path, "unit_price"), "is required" if product is None else
                                 f"product {product.sku} is priced in {product.price.currency}; give the unit price in {currency}")
                    raise RecordFailed
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
                        self.problem((*path, "ticket"), f"ticket {shown(item['ticket'])} was billed and is locked: "
                                                        "it takes no more charges")
                        raise RecordFailed
                    charge = self.attempt(
                        path, ticket_services.charge_add, ticket=ticket, contract=contract, product=product,
                        description=description, date=day, quantity=quantity, unit_price=Money(unit_price, currency),
                        unit_cost=Money(unit_cost, currency) if unit_cost is not None else None,
                        markup_percent=self.decimal(item.get("markup_percent", 0)),
                        billable=item.get("billable", True), is_expense=item.get("is_expense", False))
                    self.count("charges", "created")
                if billed is not None and charge.billed_at is None:
                    self.charges_to_bill.append((charge, billed))
            except RecordFailed:
                continue

    def _charge_key(self, ticket_id, contract_id, product_id, description, day, quantity, unit_price) -> tuple:
        # A charge on a ticket is matched without its contract: the app assigns that itself.
        return (ticket_id, None if ticket_id else contract_id, product_id, natural_key(description), day,
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
            raise RecordFailed
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
                        ticket_bulk.ticket_resolved_at_set(ticket_id=ticket.pk, at=moment)
            except RecordFailed:
                continue

    def mark_billed(self) -> None:
        """Billed in the system the data comes from: entries and charges first, then their tickets."""
        entries, charges, tickets = ticket_bulk.billed_history_mark(
            entries=self.entries_to_bill, charges=[(charge.pk, moment) for charge, moment in self.charges_to_bill],
            tickets=self.ticket_billed)
        for kind, marked in (("time entries marked billed", entries), ("charges marked billed", charges),
                             ("tickets marked billed", tickets)):
            if marked:
                self.count(kind, "updated", marked)
        self._bill_periods()

    def _bill_periods(self) -> None:
        if not self.contract_billed_through:
            return
        today = tenant_today()
        for contract, through in self.contract_billed_through:
            marked = periods_mark_billed_through(contract=contract, through=through, today=today,
                                                 billed_at=lambda day: self.at(day, BILLED_HOUR))
            if marked:
                self.count("periods marked billed", "updated", marked)
