"""Reads for the billing pages."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum

from billing.readiness import periods_make_ready, ready_charges, ready_periods, ready_time_allocations
from contracts.notifications import unread_notification_count
from contracts.rules.rates import marked_up_amount
from contracts.rules.routing import Bucket
from tickets.selectors import unrouted_charges, unrouted_entries


@dataclass
class DashboardFigures:
    ready_by_currency: dict[str, Decimal] = field(default_factory=dict)
    ready_hours: Decimal = Decimal(0)
    ready_tickets: int = 0
    periods_due: int = 0
    unrouted_entries: int = 0
    unrouted_minutes: int = 0
    unrouted_charges: int = 0
    unread_notifications: int = 0


def dashboard_figures(*, today: dt.date) -> DashboardFigures:
    """Unbilled work ready by today, and what needs attention."""
    figures = DashboardFigures()
    totals: dict[str, Decimal] = defaultdict(Decimal)
    allocations = ready_time_allocations(cutoff=today)
    for row in allocations.filter(bucket__in=[Bucket.CHARGED, Bucket.OVERAGE]).values("amount_currency").annotate(total=Sum("amount")):
        totals[row["amount_currency"]] += row["total"] or Decimal(0)
    for charge in ready_charges(cutoff=today).select_related("contract"):
        currency = charge.contract.currency
        totals[currency] += marked_up_amount(quantity=charge.quantity, unit_price=charge.unit_price.amount,
                                     markup_percent=charge.markup_percent, currency=currency)
    figures.ready_by_currency = dict(sorted(totals.items()))
    summary = allocations.aggregate(minutes=Sum("billed_minutes"), tickets=Count("entry__ticket", distinct=True))
    figures.ready_hours = (Decimal(summary["minutes"] or 0) / 60).quantize(Decimal("0.01"))
    figures.ready_tickets = summary["tickets"]
    periods_make_ready(cutoff=today)
    figures.periods_due = ready_periods(cutoff=today).count()
    unrouted = unrouted_entries().aggregate(count=Count("id"), minutes=Sum("minutes"))
    figures.unrouted_entries, figures.unrouted_minutes = unrouted["count"], unrouted["minutes"] or 0
    figures.unrouted_charges = unrouted_charges().count()
    figures.unread_notifications = unread_notification_count()
    return figures
