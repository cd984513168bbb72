"""Timesheet vs batch reconciliation: why the hours worked and the hours billed differ.

Every time entry (and every part or expense) dated in the range lands in exactly one
reason, so the reasons add up to the timesheet — no minute is unexplained:

* billed — in a batch (named), split into charged time and time covered by a contract
  (absorbed by a retainer or deducted from a block, billed at zero);
* not billable — the entry or its work type is not billable;
* unrouted — no contract takes it;
* ticket not resolved — waiting for the ticket to be resolved or closed (or, with approval
  on, waiting for approval);
* ready, not billed — ready but in no batch yet (left out of a batch, or no batch run since).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Prefetch

from billing.readiness import DONE_STATUSES, _approval_required
from contracts.rules.routing import Bucket
from invoices.models import InvoiceLine
from tickets.models import Charge, TimeAllocation, TimeEntry

REASONS = ["billed — charged", "billed — covered by a contract", "not billable", "unrouted", "ticket not resolved",
           "waiting for approval", "ready, not billed"]


@dataclass
class Reconciliation:
    start: dt.date
    end: dt.date
    worked_minutes: int = 0
    minutes_by_reason: dict[str, int] = field(default_factory=lambda: {reason: 0 for reason in REASONS})
    minutes_by_batch: dict[str, int] = field(default_factory=dict)
    by_technician: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    charges_by_reason: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def explained_minutes(self) -> int:
        return sum(self.minutes_by_reason.values())


def _entry_reason(entry: TimeEntry, approval: bool) -> str:
    if entry.billed_at:
        return "billed"
    if not entry.billable:
        return "not billable"
    if entry.is_unrouted:
        return "unrouted"
    if approval and entry.approval != TimeEntry.Approval.APPROVED:
        return "waiting for approval"
    if not approval and entry.ticket.status not in DONE_STATUSES:
        return "ticket not resolved"
    return "ready, not billed"


def reconcile(*, start: dt.date, end: dt.date) -> Reconciliation:
    report = Reconciliation(start=start, end=end)
    approval = _approval_required()
    batch_of = {
        allocation_id: name
        for allocation_id, name in InvoiceLine.objects.filter(
            time_allocation__entry__date__range=(start, end), source_released_at__isnull=True,
        ).values_list("time_allocation_id", "invoice__batch_link__batch__name")
    }
    entries = (
        TimeEntry.objects.filter(date__range=(start, end)).select_related("ticket", "technician")
        .prefetch_related(Prefetch("allocations", queryset=TimeAllocation.objects.order_by("pk")))
    )
    for entry in entries:
        report.worked_minutes += entry.minutes
        reason = _entry_reason(entry, approval)
        tech = str(entry.technician)
        if reason != "billed":
            report.minutes_by_reason[reason] += entry.minutes
            report.by_technician[tech][reason] += entry.minutes
            continue
        # Billed: the raw minutes, split by what the allocations did with them (in proportion).
        allocations = list(entry.allocations.all())
        billed_total = sum(a.billed_minutes for a in allocations) or 1
        remaining = entry.minutes
        for index, allocation in enumerate(allocations):
            share = remaining if index == len(allocations) - 1 else entry.minutes * allocation.billed_minutes // billed_total
            remaining -= share
            kind = "billed — charged" if allocation.bucket in (Bucket.CHARGED, Bucket.OVERAGE) else "billed — covered by a contract"
            report.minutes_by_reason[kind] += share
            report.by_technician[tech][kind] += share
            batch = batch_of.get(allocation.pk) or "an earlier batch"
            report.minutes_by_batch[batch] = report.minutes_by_batch.get(batch, 0) + share
    for charge in Charge.objects.filter(date__range=(start, end)).select_related("ticket"):
        if charge.billed_at:
            reason = "billed — charged"
        elif not charge.billable:
            reason = "not billable"
        elif charge.contract_id is None:
            reason = "unrouted"
        elif charge.ticket_id and charge.ticket.status not in DONE_STATUSES:
            reason = "ticket not resolved"
        else:
            reason = "ready, not billed"
        report.charges_by_reason[reason] += 1
    report.by_technician = {tech: dict(reasons) for tech, reasons in sorted(report.by_technician.items())}
    report.charges_by_reason = dict(report.charges_by_reason)
    return report
