"""What is ready to bill by a cut-off date (docs/design.md § Readiness, periods and approval).

* A contract period is ready once due (bill date on or before the cut-off), overdue included.
  Every reader first calls ``periods_make_ready``: periods are stored ahead by the daily
  task, but a contract imported or created a moment ago, or a cut-off beyond the daily
  task's horizon, must not bill without its periods.
* Ticket time and charges are ready once the ticket is resolved or closed — or, where the
  MSP turned on approval, once an admin approved the entry (a charge: *ready to deliver*).
* Only items with a contract are billable; unrouted time and charges stay on the
  unrouted list until a contract takes them.

These are querysets; the wizard and the scheduled runs aggregate them per contract.
"""
from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from contracts.periods import periods_generate_through
from contracts.selectors_periods import contract_periods_due
from msp_billing.tenants.today import current_msp
from tickets.models import Charge, Ticket, TimeAllocation, TimeEntry

DONE_STATUSES = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)


def _approval_required() -> bool:
    return current_msp().time_approval_required


def ready_time_allocations(*, cutoff: dt.date) -> QuerySet[TimeAllocation]:
    """Unbilled, routed time dated on or before the cut-off whose ticket is done (or approved)."""
    ready = Q(entry__approval=TimeEntry.Approval.APPROVED) if _approval_required() else Q(entry__ticket__status__in=DONE_STATUSES)
    return TimeAllocation.objects.filter(
        ready, entry__billed_at__isnull=True, entry__billable=True, entry__date__lte=cutoff, contract__isnull=False,
    )


def ready_charges(*, cutoff: dt.date) -> QuerySet[Charge]:
    """Unbilled billable parts and expenses with a contract: on a done ticket, or on the contract
    itself — or, where the MSP turned on approval, once *ready to deliver* (approved)."""
    if _approval_required():
        ready = Q(state=Charge.State.READY)
    else:
        ready = Q(ticket__isnull=True) | Q(ticket__status__in=DONE_STATUSES)
    return Charge.objects.filter(ready, billed_at__isnull=True, billable=True, date__lte=cutoff, contract__isnull=False)


def periods_make_ready(*, cutoff: dt.date) -> int:
    """Store every contract period billed by the cut-off that is not stored yet (one quick
    query when nothing is missing); returns how many were created. Idempotent."""
    return periods_generate_through(cutoff=cutoff)


def ready_periods(*, cutoff: dt.date):
    """Due and overdue periods; call ``periods_make_ready`` first (once per page or run)."""
    return contract_periods_due(cutoff=cutoff)
