"""Tickets, time entries and charges: every write goes through here.

Billed items are locked: the services refuse with a clear message, and database triggers
(migration 0002) refuse any other path.

Where the MSP turns on time approval, new entries wait for an admin: ``time_entries_approve``
approves them as they are, ``time_entry_approve`` approves one with posted hours, rate or
contract (kept beside what was logged, re-routed and re-rated by ``tickets.routing``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from contextlib import contextmanager
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from djmoney.money import Money

from contracts.models import Contract, Customer, RateItem, WorkType
from msp_billing.audit.services import audit_record
from msp_billing.tenants.today import current_msp
from tickets.models import Charge, TechnicianProfile, Ticket, TimeAllocation, TimeEntry
from tickets.routing import ENTRY_RELATED as _ENTRY_RELATED
from tickets.routing import clear_routing, entry_route, route_entries
from msp_billing.templatetags.formatting import day as format_day

MAX_MINUTES_PER_ENTRY = 24 * 60
LOCKED_HINT = "Open a new ticket for further work."


class LockedError(ValidationError):
    """The item was billed; it can no longer change."""


class StaleError(ValidationError):
    """The item changed since the page that acts on it was loaded (or another admin acted first)."""


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
                            chosen_contract: Contract | None, chosen_rate_item: RateItem | None,
                            billable_minutes=None) -> int:
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
    if billable_minutes is not None:
        whole = isinstance(billable_minutes, int) and not isinstance(billable_minutes, bool)
        if not whole or billable_minutes < 0:
            errors["billable_minutes"] = "Billable time must be a whole number of minutes, 0 or more."
        elif minutes is not None and "minutes" not in errors and billable_minutes > minutes:
            errors["billable_minutes"] = (f"Billable time ({billable_minutes} minutes) cannot be more than the time "
                                          f"worked ({minutes} minutes).")
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
    chosen_rate_item: RateItem | None = None, billable_minutes: int | None = None,
) -> TimeEntry:
    """Log time on a ticket; the role comes from the technician's profile, the contract from routing.

    ``billable_minutes`` (None: the time worked) is what is billed when it differs from the
    time worked — 45 billable minutes of a 2-hour visit — billed as given, without rounding.
    """
    ticket = Ticket.objects.select_for_update().get(pk=ticket.pk)
    _ensure_ticket_open_for_work(ticket)
    minutes = _validated_entry_fields(
        ticket=ticket, work_type=work_type, date=date, minutes=minutes, started_at=started_at, ended_at=ended_at,
        chosen_contract=chosen_contract, chosen_rate_item=chosen_rate_item, billable_minutes=billable_minutes,
    )
    msp = current_msp()
    if after_hours is None:
        after_hours = work_type.is_after_hours or is_after_hours(tenant=msp, date=date, started_at=started_at)
    entry = TimeEntry(
        ticket=ticket, technician=technician, role=role_of(technician), work_type=work_type, date=date,
        started_at=started_at, ended_at=ended_at, minutes=minutes, billable_minutes=billable_minutes, notes=notes,
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
    allowed = {"work_type", "date", "minutes", "billable_minutes", "started_at", "ended_at", "notes", "billable", "after_hours",
               "chosen_contract", "chosen_rate_item"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationError(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    changed = [name for name, value in changes.items() if getattr(entry, name) != value]
    for name, value in changes.items():
        setattr(entry, name, value)
    if changed and entry.approval == TimeEntry.Approval.APPROVED and current_msp().time_approval_required:
        # Approved work that changes afterwards needs approving again; the audit trail keeps the earlier approval.
        _approval_clear(entry)
    entry.minutes = _validated_entry_fields(
        ticket=entry.ticket, work_type=entry.work_type, date=entry.date, minutes=entry.minutes,
        started_at=entry.started_at, ended_at=entry.ended_at, chosen_contract=entry.chosen_contract,
        chosen_rate_item=entry.chosen_rate_item, billable_minutes=entry.billable_minutes,
    )
    with _database_lock_as_message("This time entry"):
        entry.save()
    entry_route(entry)
    return entry


# --- approval (Approve & Post) ------------------------------------------------------------------

MAX_POSTED_RATE = Decimal("1000000")


def entry_fingerprint(entry: TimeEntry) -> str:
    """What an approver saw of an entry: changes whenever the entry, its approval or its routing
    changes (every re-route stamps ``routed_at``). A page carries it so a stale page acts on nothing."""
    routed = entry.routed_at.isoformat() if entry.routed_at else ""
    raw = f"{entry.pk}|{entry.minutes}|{entry.billable_minutes}|{entry.date}|{entry.work_type_id}|{entry.billable}|{entry.approval}|{routed}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def allocations_snapshot(entry: TimeEntry) -> list[dict]:
    """How an entry is billed now: per allocation the contract, bucket, billed minutes, rate and amount."""
    allocations = TimeAllocation.objects.filter(entry=entry).select_related("contract").order_by("pk")
    return [
        {"contract_id": a.contract_id, "contract": a.contract.name if a.contract else "Unrouted", "bucket": a.bucket,
         "billed_minutes": a.billed_minutes, "rate": str(a.rate.amount) if a.rate else None,
         "amount": str(a.amount.amount) if a.amount else None, "currency": str(a.rate.currency) if a.rate else None}
        for a in allocations
    ]


def _summary(entry: TimeEntry, allocations: list[dict]) -> dict:
    """One line per value for the audit trail: hours, contract(s), rate(s), amount."""
    def joined(key: str) -> str:
        return " + ".join(str(a[key]) for a in allocations if a[key] is not None) or "—"

    amounts = [Decimal(a["amount"]) for a in allocations if a["amount"] is not None]
    currency = next((a["currency"] for a in allocations if a["currency"]), "")
    return {
        "approval": entry.approval,
        "billed_minutes": sum(a["billed_minutes"] for a in allocations),
        "contract": joined("contract"),
        "rate": joined("rate"),
        "amount": f"{sum(amounts, Decimal(0))} {currency}".strip() if amounts else "—",
    }


def _approvable(entry: TimeEntry, seen: str | None) -> None:
    if entry.billed_at is not None or entry.ticket.is_locked:
        raise LockedError(f"Time entry #{entry.pk} was billed and is locked; it cannot be approved again. {LOCKED_HINT}")
    if entry.approval != TimeEntry.Approval.PENDING:
        by = f" by {entry.approved_by}" if entry.approved_by_id else ""
        raise StaleError(f"Time entry #{entry.pk} was already approved{by}. Reload the page to see what still waits.")
    if seen != entry_fingerprint(entry):
        raise StaleError(f"Time entry #{entry.pk} changed since the page was loaded (its time or routing). "
                         "Reload the page and check it again; nothing was approved.")


def _approval_set(entry: TimeEntry, acting_user, before: list[dict]) -> None:
    entry.approval = TimeEntry.Approval.APPROVED
    entry.approved_by = acting_user if getattr(acting_user, "pk", None) else None
    entry.approved_at = timezone.now()
    entry.routed_before_approval = before
    with _database_lock_as_message(f"Time entry #{entry.pk}"):
        entry.save(update_fields=["approval", "approved_by", "approved_at", "routed_before_approval",
                                  "posted_minutes", "posted_rate", "posted_rate_currency", "posted_contract"])


def _approval_clear(entry: TimeEntry) -> None:
    entry.approval = TimeEntry.Approval.PENDING
    entry.approved_by = entry.approved_at = entry.routed_before_approval = None
    entry.posted_minutes = entry.posted_rate = entry.posted_contract = None


def _locked_entries(entry_ids) -> list[TimeEntry]:
    return list(
        TimeEntry.objects.select_for_update(of=("self",)).select_related(*_ENTRY_RELATED, "approved_by", "ticket")
        .filter(pk__in=entry_ids).order_by("pk")
    )


@transaction.atomic
def time_entries_approve(*, seen: Mapping[int, str], acting_user) -> list[TimeEntry]:
    """Approve entries as they are (all or none). ``seen`` maps each entry id to the fingerprint
    the page showed; an entry that changed, was approved by someone else, was billed or does not
    exist (another MSP's id) makes the whole request refuse, with nothing changed."""
    if not seen:
        raise ValidationError("Select the time entries to approve.")
    entries = _locked_entries(seen)
    missing = set(seen) - {entry.pk for entry in entries}
    if missing:
        raise ValidationError(f"{len(missing)} of the selected time entries do not exist. "
                              "Reload the page; nothing was approved.")
    for entry in entries:
        _approvable(entry, seen[entry.pk])
    for entry in entries:
        before = allocations_snapshot(entry)
        summary = _summary(entry, before)
        _approval_set(entry, acting_user, before)
        audit_record(actor=acting_user, action="time_entry_approved", obj=entry, before=summary,
                     after={**summary, "approval": entry.approval})
    return entries


@transaction.atomic
def time_entry_approve(*, entry_id: int, seen: str | None, acting_user, minutes: int | None = None,
                       rate: Decimal | None = None, contract: Contract | None = None) -> TimeEntry:
    """Approve one entry, posting adjusted ``minutes``, hourly ``rate`` or ``contract`` (None: as
    it is). A value equal to how the entry is billed now is not a change. The logged values and
    how the entry was billed before stay on the entry; the posted ones are routed and rated by
    ``tickets.routing`` and are what the batch bills. Raises ``TimeEntry.DoesNotExist`` for an
    unknown id, ``LockedError`` / ``StaleError`` (409) and ``ValidationError`` (400)."""
    entries = _locked_entries([entry_id])
    if not entries:
        raise TimeEntry.DoesNotExist(f"no time entry {entry_id}")
    entry = entries[0]
    _approvable(entry, seen)
    before = allocations_snapshot(entry)
    billed_now = sum(a["billed_minutes"] for a in before)
    rates_now = {Decimal(a["rate"]) for a in before if a["rate"] is not None}
    contracts_now = {a["contract_id"] for a in before}

    errors: dict[str, str] = {}
    whole = isinstance(minutes, int) and not isinstance(minutes, bool)
    if minutes is not None and (not whole or not 0 < minutes <= MAX_MINUTES_PER_ENTRY):
        errors["minutes"] = "Posted time must be more than 0 and at most 24 hours."
    if rate is not None:
        if not isinstance(rate, Decimal) or not rate.is_finite() or rate < 0:
            errors["rate"] = "Enter a rate of 0 or more."
        elif rate != rate.quantize(Decimal("0.0001")) or rate >= MAX_POSTED_RATE:
            errors["rate"] = "Enter a rate below 1,000,000 with at most 4 decimal places."
    if contract is not None:
        valid = contracts_valid_for(entry.ticket.customer, entry.date).exclude(type=Contract.Type.ONLINE_BACKUP)
        if not valid.filter(pk=contract.pk).exists():
            errors["contract"] = (f"“{contract.name}” cannot take this time: pick one of {entry.ticket.customer}'s "
                                  f"(or its parent's) active contracts that bill time on {format_day(entry.date)}.")
    if errors:
        raise ValidationError(errors)

    entry.posted_minutes = minutes if minutes is not None and minutes != billed_now else None
    posted_rate = rate if rate is not None and rates_now != {rate} else None
    entry.posted_rate = Money(posted_rate, entry.ticket.customer.currency) if posted_rate is not None else None
    entry.posted_contract = contract if contract is not None and contracts_now != {contract.pk} else None
    summary = _summary(entry, before)
    _approval_set(entry, acting_user, before)
    if entry.is_posted:
        route_entries([entry])
    after = _summary(entry, allocations_snapshot(entry))
    posted = {"posted_minutes": entry.posted_minutes, "posted_rate": entry.posted_rate,
              "posted_contract": entry.posted_contract.name if entry.posted_contract else None}
    audit_record(actor=acting_user, action="time_entry_approved", obj=entry, before=summary,
                 after={**after, **{key: value for key, value in posted.items() if value is not None}},
                 message=f"Logged {entry.minutes} minutes" + (", posted with adjustments" if entry.is_posted else ""))
    return entry


@transaction.atomic
def time_approval_switch(*, required: bool, acting_user):
    """Turn time approval on or off for the active MSP (audited), safely for time already logged.

    * Off: readiness goes back to the ticket — every unbilled entry, including those still
      waiting for approval, is ready to bill once its ticket is resolved or closed. Their
      waiting state is kept, so switching approval on again makes them wait again.
    * On: unbilled entries on tickets still open that nobody approved wait for approval
      (else open work would become billable at once); entries on resolved or closed tickets
      were already ready to bill and stay so.
    """
    from msp_billing.tenants.services import msp_set_time_approval

    if not isinstance(required, bool):
        raise ValidationError({"time_approval_required": "Choose whether time needs approval: on or off."})
    msp = current_msp()
    if msp.time_approval_required == required:
        return msp
    held = 0
    if required is True:
        held = (TimeEntry.objects.filter(billed_at__isnull=True, approval=TimeEntry.Approval.APPROVED, approved_by__isnull=True,
                                         approved_at__isnull=True)
                .exclude(ticket__status__in=(Ticket.Status.RESOLVED, Ticket.Status.CLOSED))
                .update(approval=TimeEntry.Approval.PENDING))
        held_charges = (Charge.objects.filter(billed_at__isnull=True, state=Charge.State.READY, approved_at__isnull=True,
                                       ticket__isnull=False)
                 .exclude(ticket__status__in=(Ticket.Status.RESOLVED, Ticket.Status.CLOSED))
                 .update(state=Charge.State.WAITING))
    waiting = TimeEntry.objects.filter(billed_at__isnull=True, approval=TimeEntry.Approval.PENDING).count()
    if required is True:
        message = (f"Time approval switched on: {held} unbilled time entries on open tickets now wait for approval"
                   f"{f', and {held_charges} parts and expenses' if held_charges else ''}.")
    else:
        message = (f"Time approval switched off: {waiting} entries that waited for approval are ready to bill "
                   "once their ticket is resolved or closed.")
    return msp_set_time_approval(msp_id=msp.pk, required=required, acting_user=acting_user, message=message)


@transaction.atomic
def time_entry_delete(*, entry_id: int) -> None:
    entry = TimeEntry.objects.select_for_update().get(pk=entry_id)
    if entry.billed_at is not None:
        raise LockedError(f"This time entry was billed and is locked. {LOCKED_HINT}")
    if TimeAllocation.with_superseded.filter(entry=entry, invoice_lines__isnull=False).exists():
        raise ValidationError("This time entry is printed on a void invoice, which keeps it; "
                              "mark it not billable instead of deleting it.")
    clear_routing([entry.pk])
    with _database_lock_as_message("This time entry"):
        entry.delete()


def rerouted_customer_ids(*, contract_ids=(), customer_ids=()) -> set[int]:
    """The customers whose time a routing change reaches: the customers of these contracts and
    the customers named (with or without contracts of their own), and every site of them,
    since a site's time falls through to its parent's contracts and default Hourly contract."""
    owners = set(Contract.objects.filter(pk__in=list(contract_ids)).values_list("customer_id", flat=True)) | set(customer_ids)
    return owners | set(Customer.objects.filter(parent_id__in=owners).values_list("pk", flat=True))


def entries_reroute(*, contract_ids, effective_date: dt.date | None, customer_ids=()) -> int:
    """Re-route the unbilled entries dated on or after a routing change (None: all of them) of
    the customers it reaches (``rerouted_customer_ids``)."""
    entries = (
        TimeEntry.objects.filter(billed_at__isnull=True,
                                 ticket__customer_id__in=rerouted_customer_ids(contract_ids=contract_ids, customer_ids=customer_ids))
        .select_related(*_ENTRY_RELATED)
        .order_by("date", "id")
    )
    if effective_date is not None:
        entries = entries.filter(date__gte=effective_date)
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
                    billable=billable, is_expense=is_expense,
                    # Parts and expenses on tickets wait for Approve & Post like time does; one put
                    # on a contract directly was entered by billing staff and is ready to deliver.
                    state=Charge.State.WAITING if ticket is not None and current_msp().time_approval_required
                    else Charge.State.READY)
    with _database_lock_as_message(f"Ticket #{ticket.pk}" if ticket else "This contract"):
        charge.save()
    return charge


def charge_log(*, ticket: Ticket, product=None, description: str = "", date: dt.date, quantity,
               unit_price=None) -> Charge:
    """A part or expense logged on a ticket (the ticket page and the API): a product at its catalogue
    price and cost unless ``unit_price`` (an amount in the customer's currency) is given; without a
    product, an expense, which needs a description and a price. Whether the caller may set a price
    (technicians may not) is the caller's rule."""
    if product is None and not (description or "").strip():
        raise ValidationError({"description": "Describe the expense, or pick a product."})
    if product is None and unit_price is None:
        raise ValidationError({"unit_price": "An expense needs a unit price."})
    price = Money(unit_price, ticket.customer.currency) if unit_price is not None else product.price
    return charge_add(ticket=ticket, product=product, description=description or (product.name if product else ""),
                      date=date, quantity=quantity, unit_price=price, unit_cost=product.cost if product else None,
                      is_expense=product is None)


@transaction.atomic
def charges_approve(*, charge_ids, acting_user) -> list[Charge]:
    """Approve & Post for parts and expenses: the ticked charges become *ready to deliver*.

    All or nothing: a charge that was billed, approved by someone else meanwhile, or whose
    ticket is still open refuses the whole request with a message (nothing is approved).
    """
    ids = sorted({int(pk) for pk in charge_ids})
    if not ids:
        raise ValidationError("Select the parts and expenses to approve.")
    charges = list(Charge.objects.select_for_update(of=("self",)).select_related("ticket").filter(pk__in=ids).order_by("pk"))
    if len(charges) != len(ids):
        raise StaleError("A selected part or expense no longer exists. Reload the page; nothing was approved.")
    for charge in charges:
        if charge.billed_at is not None:
            raise LockedError(f"Charge #{charge.pk} was billed and is locked; it cannot be approved again.")
        if charge.state != Charge.State.WAITING:
            raise StaleError(f"Charge #{charge.pk} was already approved. Reload the page to see what still waits.")
        if charge.ticket is not None and charge.ticket.status not in (Ticket.Status.RESOLVED, Ticket.Status.CLOSED):
            raise StaleError(f"Charge #{charge.pk} is on ticket #{charge.ticket_id}, which was reopened. Nothing was approved.")
    now = timezone.now()
    for charge in charges:
        charge.state, charge.approved_at = Charge.State.READY, now
        charge.approved_by = acting_user if getattr(acting_user, "pk", None) else None
        with _database_lock_as_message(f"Charge #{charge.pk}"):
            charge.save(update_fields=["state", "approved_at", "approved_by"])
        audit_record(actor=acting_user, action="charge_approved", obj=charge, before={"state": Charge.State.WAITING},
                     after={"state": charge.state})
    return charges


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
