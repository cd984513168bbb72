"""Tickets, time entries and charges: every write goes through here.

Billed items are locked: the services refuse with a clear message, and database triggers
(migration 0002) refuse any other path.
"""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from contracts.models import Contract, Customer, RateItem, WorkType
from msp_billing.tenants.today import current_msp
from tickets.models import Charge, TechnicianProfile, Ticket, TimeEntry
from tickets.routing import ENTRY_RELATED as _ENTRY_RELATED
from tickets.routing import clear_routing, entry_route, route_entries

MAX_MINUTES_PER_ENTRY = 24 * 60
LOCKED_HINT = "Open a new ticket for further work."


class LockedError(ValidationError):
    """The item was billed; it can no longer change."""


@contextmanager
def _database_lock_as_message(what: str):
    """Turn the database's lock trigger into the same message the services give."""
    try:
        yield
    except IntegrityError as error:
        if "is locked" in str(error) or "billed and locked" in str(error):
            raise LockedError(f"{what} was billed and is locked. {LOCKED_HINT}") from error
        raise


def _ensure_ticket_open_for_work(ticket: Ticket) -> None:
    if ticket.is_locked:
        raise LockedError(f"Ticket #{ticket.pk} was billed and is locked: it takes no more time or charges. {LOCKED_HINT}")


def contracts_valid_for(customer: Customer, on: dt.date | None = None):
    """Contracts a technician or admin may pick for a customer's work: its own and its parent's."""
    owners = [customer.pk] + ([customer.parent_id] if customer.parent_id else [])
    contracts = Contract.objects.filter(customer_id__in=owners, status=Contract.Status.ACTIVE)
    if on is not None:
        contracts = contracts.filter(start_date__lte=on).filter(Q(end_date__isnull=True) | Q(end_date__gte=on))
    return contracts.order_by("priority", "id")


# --- tickets -------------------------------------------------------------------------------------


@transaction.atomic
def ticket_create(*, customer: Customer, title: str, technician=None, default_contract: Contract | None = None) -> Ticket:
    if not title.strip():
        raise ValidationError({"title": "Give the ticket a title."})
    if default_contract is not None and not contracts_valid_for(customer).filter(pk=default_contract.pk).exists():
        raise ValidationError({"default_contract": "That contract is not an active contract of this customer."})
    return Ticket.objects.create(customer=customer, title=title.strip(), technician=technician, default_contract=default_contract)


@transaction.atomic
def ticket_update(*, ticket_id: int, title: str, technician=None, default_contract: Contract | None = None) -> Ticket:
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    if ticket.is_locked:
        raise LockedError(f"Ticket #{ticket.pk} was billed and is locked: it cannot be edited. {LOCKED_HINT}")
    if default_contract is not None and not contracts_valid_for(ticket.customer).filter(pk=default_contract.pk).exists():
        raise ValidationError({"default_contract": "That contract is not an active contract of this customer."})
    contract_changed = ticket.default_contract_id != (default_contract.pk if default_contract else None)
    ticket.title, ticket.technician, ticket.default_contract = title.strip(), technician, default_contract
    ticket.save(update_fields=["title", "technician", "default_contract"])
    if contract_changed:
        route_entries(ticket.time_entries.filter(billed_at__isnull=True).select_related(*_ENTRY_RELATED))
    return ticket


@transaction.atomic
def ticket_set_status(*, ticket_id: int, status: str) -> Ticket:
    if status not in Ticket.Status.values:
        raise ValidationError({"status": f"Unknown status “{status}”."})
    ticket = Ticket.objects.select_for_update().get(pk=ticket_id)
    if ticket.is_locked and status != Ticket.Status.CLOSED:
        raise LockedError(f"Ticket #{ticket.pk} was billed and is locked: it cannot be reopened. {LOCKED_HINT}")
    ticket.status = status
    resolved = status in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)
    ticket.resolved_at = ticket.resolved_at or (timezone.now() if resolved else None)
    if not resolved:
        ticket.resolved_at = None
    with _database_lock_as_message(f"Ticket #{ticket.pk}"):
        ticket.save(update_fields=["status", "resolved_at"])
    return ticket


@transaction.atomic
def ticket_merge(*, source_id: int, target_id: int) -> Ticket:
    """Move the source ticket's time and charges onto the target and close the source."""
    if source_id == target_id:
        raise ValidationError("A ticket cannot be merged into itself.")
    tickets = {t.pk: t for t in Ticket.objects.select_for_update().filter(pk__in=[source_id, target_id])}
    source, target = tickets[source_id], tickets[target_id]
    for ticket in (source, target):
        if ticket.is_locked:
            raise LockedError(f"Ticket #{ticket.pk} was billed and is locked: it cannot be merged. {LOCKED_HINT}")
    if source.customer_id != target.customer_id:
        raise ValidationError("Only tickets of the same customer can be merged.")
    source.time_entries.update(ticket=target)
    source.charges.update(ticket=target)
    source.status = Ticket.Status.CLOSED
    source.save(update_fields=["status"])
    route_entries(target.time_entries.filter(billed_at__isnull=True).select_related(*_ENTRY_RELATED))
    return target


# --- time entries -------------------------------------------------------------------------------



def role_of(technician):
    profile = TechnicianProfile.objects.select_related("role").filter(user=technician).first()
    if profile is None:
        raise ValidationError(f"{technician} has no role in their profile yet; ask an admin to set one.")
    return profile.role


def is_after_hours(*, tenant, date: dt.date, started_at: dt.datetime | None) -> bool:
    """From the MSP's business hours: the start time if known, else the weekday."""
    if started_at is not None:
        return not tenant.is_business_time(timezone.localtime(started_at))
    weekdays = {int(day) for day in tenant.business_weekdays.split(",") if day.strip().isdigit()}
    return date.weekday() not in weekdays


def _validated_entry_fields(*, ticket: Ticket, work_type: WorkType, date: dt.date, minutes, started_at, ended_at,
                            chosen_contract: Contract | None, chosen_rate_item: RateItem | None) -> int:
    errors: dict[str, str] = {}
    if started_at and ended_at:
        if ended_at <= started_at:
            errors["ended_at"] = "The end must be after the start."
        else:
            minutes = int((ended_at - started_at).total_seconds() // 60)
    if minutes is None:
        errors.setdefault("minutes", "Enter the time worked, or a start and an end.")
    elif not 0 < minutes <= MAX_MINUTES_PER_ENTRY:
        errors.setdefault("minutes", "Time worked must be between 1 minute and 24 hours.")
    if not work_type.is_active:
        errors["work_type"] = f"Work type {work_type.name} is no longer in use."
    if chosen_contract is not None and not contracts_valid_for(ticket.customer, date).filter(pk=chosen_contract.pk).exists():
        errors["chosen_contract"] = "Pick one of this customer's contracts active on that date."
    if chosen_rate_item is not None and not RateItem.objects.filter(pk=chosen_rate_item.pk).exists():
        errors["chosen_rate_item"] = "Unknown rate item."
    if errors:
        raise ValidationError(errors)
    return minutes


@transaction.atomic
def time_entry_log(
    *, ticket: Ticket, technician, work_type: WorkType, date: dt.date, minutes: int | None = None,
    started_at: dt.datetime | None = None, ended_at: dt.datetime | None = None, notes: str = "",
    billable: bool | None = None, after_hours: bool | None = None, chosen_contract: Contract | None = None,
    chosen_rate_item: RateItem | None = None,
) -> TimeEntry:
    """Log time on a ticket; the role comes from the technician's profile, the contract from routing."""
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    _ensure_ticket_open_for_work(ticket)
    minutes = _validated_entry_fields(
        ticket=ticket, work_type=work_type, date=date, minutes=minutes, started_at=started_at, ended_at=ended_at,
        chosen_contract=chosen_contract, chosen_rate_item=chosen_rate_item,
    )
    msp = current_msp()
    if after_hours is None:
        after_hours = work_type.is_after_hours or is_after_hours(tenant=msp, date=date, started_at=started_at)
    entry = TimeEntry(
        ticket=ticket, technician=technician, role=role_of(technician), work_type=work_type, date=date,
        started_at=started_at, ended_at=ended_at, minutes=minutes, notes=notes,
        billable=work_type.billable if billable is None else billable, after_hours=after_hours,
        chosen_contract=chosen_contract, chosen_rate_item=chosen_rate_item,
        approval=TimeEntry.Approval.PENDING if msp.time_approval_required else TimeEntry.Approval.APPROVED,
    )
    with _database_lock_as_message(f"Ticket #{ticket.pk}"):
        entry.save()
    entry = TimeEntry.objects.select_related(*_ENTRY_RELATED).get(pk=entry.pk)
    entry_route(entry)
    return entry


@transaction.atomic
def time_entry_update(*, entry_id: int, **changes) -> TimeEntry:
    """Change an unbilled entry (work type, date, time, notes, flags, explicit contract) and re-route it."""
    entry = TimeEntry.objects.select_for_update(of=("self",)).select_related(*_ENTRY_RELATED).get(pk=entry_id)
    if entry.billed_at is not None:
        raise LockedError(f"This time entry was billed and is locked. {LOCKED_HINT}")
    _ensure_ticket_open_for_work(entry.ticket)
    allowed = {"work_type", "date", "minutes", "started_at", "ended_at", "notes", "billable", "after_hours", "chosen_contract", "chosen_rate_item"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    for name, value in changes.items():
        setattr(entry, name, value)
    entry.minutes = _validated_entry_fields(
        ticket=entry.ticket, work_type=entry.work_type, date=entry.date, minutes=entry.minutes,
        started_at=entry.started_at, ended_at=entry.ended_at, chosen_contract=entry.chosen_contract,
        chosen_rate_item=entry.chosen_rate_item,
    )
    with _database_lock_as_message("This time entry"):
        entry.save()
    entry_route(entry)
    return entry


@transaction.atomic
def time_entry_delete(*, entry_id: int) -> None:
    entry = TimeEntry.objects.select_for_update().get(pk=entry_id)
    if entry.billed_at is not None:
        raise LockedError(f"This time entry was billed and is locked. {LOCKED_HINT}")
    clear_routing([entry.pk])
    with _database_lock_as_message("This time entry"):
        entry.delete()


def entries_reroute(*, contract_ids, effective_date: dt.date) -> int:
    """Re-route the unbilled entries dated on or after a change to these contracts' terms."""
    customers = Contract.objects.filter(pk__in=contract_ids).values_list("customer_id", flat=True)
    parents_of = Customer.objects.filter(parent_id__in=customers).values_list("pk", flat=True)
    entries = (
        TimeEntry.objects.filter(billed_at__isnull=True, date__gte=effective_date)
        .filter(Q(ticket__customer_id__in=customers) | Q(ticket__customer_id__in=parents_of))
        .select_related(*_ENTRY_RELATED)
        .order_by("date", "id")
    )
    return entries_route(entries)


STREAM_CHUNK = 5000


@transaction.atomic
def entries_route(entries) -> int:
    """Route a queryset of unbilled entries in date order, a chunk at a time (bounded memory)."""
    from tickets.routing import RoutingContext

    context = RoutingContext()
    ordered = entries.order_by("date", "id")
    count, last = 0, None
    while True:
        page = ordered
        if last is not None:
            page = page.filter(Q(date__gt=last[0]) | Q(date=last[0], id__gt=last[1]))
        chunk = list(page[:STREAM_CHUNK])
        if not chunk:
            return count
        count += route_entries(chunk, context=context)
        last = (chunk[-1].date, chunk[-1].pk)


def unbilled_recalculate(*, contract: Contract | None = None) -> int:
    """"Recalculate unbilled": re-route and re-rate every unbilled entry (of one contract's customer)."""
    entries = TimeEntry.objects.filter(billed_at__isnull=True).select_related(*_ENTRY_RELATED).order_by("date", "id")
    if contract is not None:
        entries = entries.filter(Q(ticket__customer_id=contract.customer_id) | Q(ticket__customer__parent_id=contract.customer_id))
    return entries_route(entries)


# --- charges -----------------------------------------------------------------------------------


def charge_contract_for(*, ticket: Ticket, on: dt.date) -> Contract | None:
    """Which contract bills a part or expense logged on a ticket.

    The ticket's own contract; else the customer's (then the parent's) default Hourly
    contract, if active on the charge's date. With neither, the charge stays without a
    contract: it is listed as unrouted, never dropped.
    """
    customer = ticket.customer
    candidates = [ticket.default_contract, customer.default_hourly_contract]
    if customer.parent_id:
        candidates.append(customer.parent.default_hourly_contract)
    valid = set(contracts_valid_for(customer, on).values_list("pk", flat=True))
    return next((c for c in candidates if c is not None and c.pk in valid), None)


@transaction.atomic
def charge_add(*, ticket: Ticket | None = None, contract: Contract | None = None, description: str, date: dt.date,
               quantity, unit_price, product=None, unit_cost=None, markup_percent=0, billable: bool = True,
               is_expense: bool = False) -> Charge:
    if ticket is None and contract is None:
        raise ValidationError("A charge belongs to a ticket or a contract.")
    if ticket is not None:
        ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
        _ensure_ticket_open_for_work(ticket)
    if quantity is None or quantity <= 0:
        raise ValidationError({"quantity": "Quantity must be more than zero."})
    if unit_price is None or unit_price.amount < 0:
        raise ValidationError({"unit_price": "Unit price cannot be negative."})
    billed_in = (ticket.customer if ticket else contract.customer).currency
    if str(unit_price.currency) != billed_in:
        what = f"{product} is priced" if product else "The price is"
        raise ValidationError({"unit_price": f"{what} in {unit_price.currency}; this customer is billed in {billed_in}. Enter the price in {billed_in}."})
    if contract is None:
        contract = charge_contract_for(ticket=ticket, on=date)
    charge = Charge(ticket=ticket, contract=contract, product=product, description=description.strip() or (product.name if product else ""),
                    date=date, quantity=quantity, unit_price=unit_price, unit_cost=unit_cost, markup_percent=markup_percent,
                    billable=billable, is_expense=is_expense)
    with _database_lock_as_message(f"Ticket #{ticket.pk}" if ticket else "This contract"):
        charge.save()
    return charge


@transaction.atomic
def charge_delete(*, charge_id: int) -> None:
    charge = Charge.objects.select_for_update().get(pk=charge_id)
    if charge.billed_at is not None:
        raise LockedError(f"This charge was billed and is locked. {LOCKED_HINT}")
    with _database_lock_as_message("This charge"):
        charge.delete()


@transaction.atomic
def technician_role_set(*, user, role) -> TechnicianProfile:
    """Set the labour role a person's time is rated at (their profile)."""
    profile, _ = TechnicianProfile.objects.update_or_create(user=user, defaults={"role": role})
    return profile
