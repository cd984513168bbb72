"""Reads for ticket and time pages."""
from __future__ import annotations

from django.db.models import Count, Prefetch, Q, Sum

from tickets.models import Charge, Ticket, TimeAllocation, TimeEntry


def ticket_list():
    return Ticket.objects.select_related("customer", "technician").annotate(
        minutes=Sum("time_entries__minutes"), entries=Count("time_entries")
    )


def open_tickets_of(tickets, *, user):
    """Tickets assigned to ``user`` that are not done (open or in progress)."""
    return tickets.filter(technician=user, status__in=[Ticket.Status.OPEN, Ticket.Status.IN_PROGRESS])


def ticket_detail(*, ticket_id: int):
    return Ticket.objects.select_related("customer__parent", "default_contract", "technician").get(pk=ticket_id)


def time_entries_for_ticket(*, ticket: Ticket, user, sees_all: bool):
    """A technician sees their own time on a ticket; billing people see everyone's."""
    entries = (
        TimeEntry.objects.filter(ticket=ticket)
        .select_related("technician", "work_type", "role", "chosen_contract")
        .prefetch_related(Prefetch("allocations", queryset=TimeAllocation.objects.select_related("contract")))
        .order_by("-date", "-id")
    )
    return entries if sees_all else entries.filter(technician=user)


def time_entry_visible(*, entry_id: int, user, sees_all: bool) -> TimeEntry:
    entries = TimeEntry.objects.select_related("ticket__customer", "technician", "work_type", "role", "chosen_contract", "chosen_rate_item")
    if not sees_all:
        entries = entries.filter(technician=user)
    return entries.prefetch_related(Prefetch("allocations", queryset=TimeAllocation.objects.select_related("contract"))).get(pk=entry_id)


def charges_for_ticket(*, ticket: Ticket):
    return Charge.objects.filter(ticket=ticket).select_related("product").order_by("-date", "-id")


def my_time(*, user):
    return (
        TimeEntry.objects.filter(technician=user)
        .select_related("ticket__customer", "work_type")
        .prefetch_related(Prefetch("allocations", queryset=TimeAllocation.objects.select_related("contract")))
        .order_by("-date", "-id")
    )


def unrouted_entries():
    return TimeEntry.objects.filter(Q(is_unrouted=True), billed_at__isnull=True).select_related("ticket__customer", "work_type", "technician")


def unrouted_charges():
    """Billable parts and expenses no contract takes (see tickets.services.charge_contract_for)."""
    return Charge.objects.filter(contract__isnull=True, billed_at__isnull=True, billable=True).select_related("ticket__customer")


def retainer_usage(spans: dict[int, tuple]) -> dict[int, dict[str, int]]:
    """Minutes each retainer absorbed (within its included hours) and billed as overage, each over its
    own span: {contract id: {"absorbed": raw minutes, "overage": billed minutes}}; one query.

    ``spans`` maps a contract id to (start, end) dates, e.g. from ``tickets.routing.included_period``;
    absorbed minutes are counted as routing counts them against the cap (raw minutes)."""
    if not spans:
        return {}
    within = Q()
    for contract_id, (start, end) in spans.items():
        within |= Q(contract_id=contract_id, entry__date__range=(start, end))
    rows = (TimeAllocation.objects.filter(within, bucket__in=["absorbed", "overage"]).order_by()
            .values("contract_id").annotate(absorbed=Sum("minutes", filter=Q(bucket="absorbed")),
                                            overage=Sum("billed_minutes", filter=Q(bucket="overage"))))
    usage = {contract_id: {"absorbed": 0, "overage": 0} for contract_id in spans}
    for row in rows:
        usage[row["contract_id"]] = {"absorbed": row["absorbed"] or 0, "overage": row["overage"] or 0}
    return usage
