"""Set-based writes to tickets, time entries and charges for the flows that handle them by
the thousand: a billing run's claims and ticket locks, a batch's release, and the billed
marks and time entries an import brings from another system.

``billing/`` selects what a run bills and ``onboarding/`` reads the import file; the rows
are written here, by the app that owns them. A run hands over its temporary table of picked
time allocations (columns ``entry_id`` and ``ticket_id``), as it does to ``invoices.bulk``.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping

from django.db import OperationalError, connection, transaction
from django.db.models import QuerySet

from msp_billing.claims import AlreadyClaimed, claim_unbilled
from tickets.models import Charge, Ticket, TimeEntry

DEADLOCK = "40P01"


def time_entries_claim(*, source_table: str, at: dt.datetime) -> int:
    """Mark the entries of ``source_table`` billed in one statement, all or nothing; returns how many.

    Two runs over the same entries wait for each other, and the second finds them billed (or
    PostgreSQL breaks a deadlock between them): either way the second raises ``AlreadyClaimed``.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(DISTINCT entry_id) FROM {source_table}")
        expected = cursor.fetchone()[0]
        try:
            with transaction.atomic():
                cursor.execute(f"""
                    UPDATE tickets_timeentry e SET billed_at = %s FROM (SELECT DISTINCT entry_id FROM {source_table}) b
                    WHERE e.id = b.entry_id AND e.billed_at IS NULL
                """, [at])
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) == DEADLOCK:
                raise AlreadyClaimed from None
            raise
        if cursor.rowcount != expected:
            raise AlreadyClaimed
    return expected


def charges_claim(*, charge_ids: Collection[int], at: dt.datetime) -> None:
    """Mark the charges billed, locked in id order; ``AlreadyClaimed`` when one is billed already."""
    claim_unbilled(Charge, charge_ids, at=at)


def tickets_lock(*, source_table: str, ticket_ids: Iterable[int], at: dt.datetime) -> int:
    """Lock (mark billed) the tickets of ``source_table``'s entries and ``ticket_ids``; returns how many."""
    with connection.cursor() as cursor:
        cursor.execute(f"""
            UPDATE tickets_ticket SET billed_at = %s WHERE billed_at IS NULL AND id IN (
                SELECT ticket_id FROM {source_table} UNION SELECT unnest(%s::bigint[]))
        """, [at, list(ticket_ids)])
        return cursor.rowcount


def billed_release(*, entry_ids: QuerySet | Collection[int], charge_ids: Collection[int]) -> None:
    """Make the entries and charges unbilled again; a ticket unlocks once none of its items is billed."""
    entries = TimeEntry.objects.filter(pk__in=entry_ids)
    ticket_ids = set(entries.values_list("ticket_id", flat=True).distinct()) | set(
        Charge.objects.filter(pk__in=charge_ids, ticket__isnull=False).values_list("ticket_id", flat=True))
    entries.update(billed_at=None)
    Charge.objects.filter(pk__in=charge_ids).update(billed_at=None)
    still_billed = set(TimeEntry.objects.filter(ticket_id__in=ticket_ids, billed_at__isnull=False).values_list("ticket_id", flat=True)) | set(
        Charge.objects.filter(ticket_id__in=ticket_ids, billed_at__isnull=False).values_list("ticket_id", flat=True))
    Ticket.objects.filter(pk__in=ticket_ids - still_billed).update(billed_at=None)


def time_entries_add(entries: list[TimeEntry]) -> None:
    """Store imported entries (checked by the caller, unrouted) in one statement; route them next."""
    TimeEntry.objects.bulk_create(entries)


def ticket_resolved_at_set(*, ticket_id: int, at: dt.datetime) -> None:
    """When a resolved ticket was resolved, as the system it comes from says."""
    Ticket.objects.filter(pk=ticket_id).update(resolved_at=at)


def billed_history_mark(*, entries: Mapping[int, dt.datetime], charges: Iterable[tuple[int, dt.datetime]],
                        tickets: Mapping[int, dt.datetime | None]) -> tuple[int, int, int]:
    """Mark entries, charges and tickets billed when another system billed them (an import):
    items billed here already keep their mark. Returns how many entries, charges and tickets."""
    billed_entries = sum(TimeEntry.objects.filter(pk=entry_id, billed_at__isnull=True).update(billed_at=moment)
                         for entry_id, moment in entries.items())
    billed_charges = sum(Charge.objects.filter(pk=charge_id, billed_at__isnull=True).update(billed_at=moment)
                         for charge_id, moment in charges)
    billed_tickets = sum(Ticket.objects.filter(pk=ticket_id, billed_at__isnull=True).update(billed_at=moment)
                         for ticket_id, moment in tickets.items() if moment is not None)
    return billed_entries, billed_charges, billed_tickets
