"""Reads for the billing pages."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, F, Sum

from billing.readiness import periods_make_ready, ready_charges, ready_periods, ready_time_allocations
from contracts.notifications import unread_notification_count
from contracts.rules.rates import marked_up_amount
from invoices.models import Invoice, InvoiceLine
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


# --- batches -----------------------------------------------------------------------------------


@dataclass
class CurrencyTotal:
    currency: str
    invoices: int = 0
    subtotal: Decimal = Decimal("0.00")
    tax: Decimal = Decimal("0.00")
    total: Decimal = Decimal("0.00")

    def add(self, invoice) -> None:
        self.invoices += 1
        self.subtotal += invoice.subtotal - invoice.discount_total + invoice.surcharge_total
        self.tax += invoice.tax_total
        self.total += invoice.total


@dataclass
class CustomerGroup:
    customer: object
    invoices: list = field(default_factory=list)
    totals: dict[str, CurrencyTotal] = field(default_factory=dict)


@dataclass
class BatchOverview:
    """A batch's invoices grouped by customer, each with its contracts, and totals per currency.

    Void invoices are listed but not counted in the totals (they bill nothing)."""

    groups: list[CustomerGroup]
    totals: dict[str, CurrencyTotal]


def _count(totals: dict[str, CurrencyTotal], invoice) -> None:
    if invoice.status != Invoice.Status.VOID:
        totals.setdefault(invoice.currency, CurrencyTotal(invoice.currency)).add(invoice)


def batch_overview(invoices) -> BatchOverview:
    """``invoices`` (ordered by customer) grouped by customer; ``invoice.contracts`` set to the
    contracts its lines bill (one query for all of them)."""
    invoices = list(invoices)
    contracts: dict[int, list] = defaultdict(list)
    for row in (InvoiceLine.objects.filter(invoice__in=[i.pk for i in invoices], contract__isnull=False)
                .values("invoice_id", "contract_id", "contract__name").distinct().order_by("invoice_id", "contract__name")):
        contracts[row["invoice_id"]].append({"id": row["contract_id"], "name": row["contract__name"]})
    groups: dict[int, CustomerGroup] = {}
    totals: dict[str, CurrencyTotal] = {}
    for invoice in invoices:
        invoice.contracts = contracts.get(invoice.pk, [])
        group = groups.setdefault(invoice.customer_id, CustomerGroup(customer=invoice.customer))
        group.invoices.append(invoice)
        _count(group.totals, invoice)
        _count(totals, invoice)
    return BatchOverview(groups=list(groups.values()), totals=dict(sorted(totals.items())))


def batch_totals(batch_ids) -> dict[int, list[CurrencyTotal]]:
    """Per batch, its invoices' count and totals per currency (void ones not counted), in one query."""
    result: dict[int, dict[str, CurrencyTotal]] = defaultdict(dict)
    rows = (Invoice.objects.filter(batch_link__batch_id__in=list(batch_ids)).exclude(status=Invoice.Status.VOID)
            .values("batch_link__batch_id", "currency")
            .annotate(count=Count("pk"), subtotal=Sum(F("subtotal") - F("discount_total") + F("surcharge_total")),
                      tax=Sum("tax_total"), total=Sum("total"))
            .order_by("batch_link__batch_id", "currency"))
    for row in rows:
        result[row["batch_link__batch_id"]][row["currency"]] = CurrencyTotal(
            currency=row["currency"], invoices=row["count"], subtotal=row["subtotal"], tax=row["tax"], total=row["total"])
    return {batch_id: list(totals.values()) for batch_id, totals in result.items()}
