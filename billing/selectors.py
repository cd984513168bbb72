"""Reads for the billing pages."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, F, Max, Min, Q, Sum

from billing.models import BillingBatch, SavedWidget
from billing.readiness import periods_make_ready, ready_periods
from billing.unbilled import AGE_BUCKETS, Figure, UnbilledFigures, saved_figures, unbilled_figures
from contracts.models import Contract, Customer
from contracts.notifications import unread_notification_count
from contracts.selectors import ActiveBlockBalance, active_block_balances, contracts_ending
from invoices.models import Invoice, InvoiceLine
from invoices.selectors import receivables_totals, revenue_by_month
from msp_billing.charts import Chart, bar_chart
from msp_billing.tenants.today import current_msp
from tickets.selectors import unrouted_charges, unrouted_entries


TOP_CUSTOMERS = 8
RECENT = 5


@dataclass
class Dashboard:
    """Everything the billing dashboard shows, read in a fixed number of queries (docs/dashboard.md)."""

    today: dt.date
    attention_days: int
    unbilled: UnbilledFigures
    customers: dict[int, Customer]
    periods_due: int
    unrouted_entries: int
    unrouted_minutes: int
    unrouted_charges: int
    unread_notifications: int
    receivables: dict[str, tuple[Decimal, Decimal]]
    blocks_low: list[ActiveBlockBalance]
    ending: list[Contract]
    ending_count: int
    batches: list[BillingBatch]
    invoices: list[Invoice]
    widgets: list[tuple[SavedWidget, Figure]] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)

    @property
    def top_customers(self) -> list[tuple[Customer, Figure]]:
        return [(self.customers[pk], figure) for pk, figure in self.unbilled.by_customer.items() if pk in self.customers]


def month_starts(today: dt.date, months: int = 12) -> list[dt.date]:
    """The first days of the last ``months`` months, oldest first, this month last."""
    year, month, firsts = today.year, today.month, []
    for _ in range(months):
        firsts.append(dt.date(year, month, 1))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return firsts[::-1]


def revenue_chart_data(*, today: dt.date, customer=None, contract_type: str = "") -> tuple[list[dt.date], dict[str, dict[str, list[Decimal]]]]:
    """Invoiced per month (the last 12) by contract type, per currency: ``{currency: {type: [12 amounts]}}``."""
    months = month_starts(today)
    data: dict[str, dict[str, list[Decimal]]] = {}
    for row in revenue_by_month(start=months[0], end=today, customer=customer, contract_type=contract_type):
        index = months.index(row["month"].date() if isinstance(row["month"], dt.datetime) else row["month"])
        by_type = data.setdefault(row["invoice__currency"], {})
        by_type.setdefault(row["ctype"], [Decimal(0)] * len(months))[index] += row["amount"] or Decimal(0)
    return months, data


def contract_type_label(value: str) -> str:
    return Contract.Type(value).label if value in Contract.Type.values else "Without a contract"


def revenue_charts(*, today: dt.date, customer=None, contract_type: str = "", currency: str = "") -> list[Chart]:
    """One chart per currency invoiced in; with nothing invoiced yet, an empty chart in ``currency``."""
    months, data = revenue_chart_data(today=today, customer=customer, contract_type=contract_type)
    if not data and currency:
        data = {currency: {"": [Decimal(0)] * len(months)}}
    return [bar_chart(title="Invoiced per month by contract type", currency=currency,
                      categories=[f"{m:%b %y}" for m in months],
                      series=[(contract_type_label(t), values) for t, values in sorted(by_type.items())])
            for currency, by_type in sorted(data.items())]


def age_charts(unbilled: UnbilledFigures, *, links: list[str]) -> list[Chart]:
    return [bar_chart(title="Unbilled work by age", currency=currency, categories=[label for _k, label, *_ in AGE_BUCKETS],
                      series=[("Unbilled", [unbilled.by_age[key].amount(currency) if key in unbilled.by_age else Decimal(0)
                                            for key, *_ in AGE_BUCKETS])], links=links)
            for currency in unbilled.currencies]


def recent_batches(*, search: str = "", limit: int = RECENT):
    """Latest batches with the first and last invoice number they created; ``search`` matches
    the batch name or one of its invoice numbers."""
    batches = BillingBatch.objects.select_related("created_by")
    if search:
        batches = batches.filter(Q(name__icontains=search) | Q(invoice_links__invoice__number__icontains=search)).distinct()
    return list(batches.annotate(first_number=Min("invoice_links__invoice__number"), last_number=Max("invoice_links__invoice__number"),
                                 invoice_count=Count("invoice_links")).order_by("-id")[:limit])


def recent_invoices(*, search: str = "", limit: int = RECENT):
    """Latest invoices with their batch; ``search`` matches number, customer or batch name."""
    invoices = Invoice.objects.select_related("customer", "batch_link__batch")
    if search:
        invoices = invoices.filter(Q(number__icontains=search) | Q(customer__legal_name__icontains=search)
                                   | Q(customer_name__icontains=search) | Q(batch_link__batch__name__icontains=search))
    return list(invoices.order_by("-id")[:limit])


def dashboard(*, today: dt.date, user, attention_days: int, batch_search: str = "", invoice_search: str = "",
              age_links: list[str] | None = None) -> Dashboard:
    unbilled = unbilled_figures(today=today, attention_days=attention_days)
    top = sorted(unbilled.by_customer.items(), key=lambda item: -sum(item[1].amounts.values()))[:TOP_CUSTOMERS]
    unbilled.by_customer = dict(top)
    customers = Customer.objects.in_bulk([pk for pk, _figure in top])
    periods_make_ready(cutoff=today)
    unrouted = unrouted_entries().aggregate(count=Count("id"), minutes=Sum("minutes"))
    ending = contracts_ending(today=today)
    widgets = list(SavedWidget.objects.filter(user=user).select_related("customer", "technician"))
    saved = saved_figures(today=today, widgets=widgets)
    board = Dashboard(
        today=today, attention_days=attention_days, unbilled=unbilled, customers=customers,
        periods_due=ready_periods(cutoff=today).count(),
        unrouted_entries=unrouted["count"], unrouted_minutes=unrouted["minutes"] or 0,
        unrouted_charges=unrouted_charges().count(), unread_notifications=unread_notification_count(),
        receivables=receivables_totals(as_of=today),
        blocks_low=[b for b in active_block_balances(today=today) if b.below_threshold],
        ending=list(ending[:RECENT]), ending_count=ending.count(),
        batches=recent_batches(search=batch_search), invoices=recent_invoices(search=invoice_search),
        widgets=[(widget, saved[widget.pk]) for widget in widgets],
    )
    home = current_msp().currency
    if not unbilled.currencies:
        unbilled.currencies = [home]
    board.charts = age_charts(unbilled, links=age_links or []) + revenue_charts(today=today, currency=home)
    return board


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
