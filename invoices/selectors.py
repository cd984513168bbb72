"""Reads for the invoice pages and reports: lists, one invoice, balances and aging.

Balances "as of" a date count only what had happened by then: invoices issued on or
before it, payments dated on or before it, credit notes issued on or before it. So an
aging report for last month end is the same today as it was then, whatever has been
paid since. Amounts are per currency: a customer bills in one currency, but a tenant's
customers may use several, and amounts in different currencies are never added up.
"""
from __future__ import annotations

import re

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Count, DecimalField, Exists, F, OuterRef, Prefetch, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.shortcuts import get_object_or_404

from contracts.models import Customer
from invoices.audit import audit_events_for
from invoices.models import AuditEvent, Invoice, InvoiceEmail, InvoiceLine, InvoiceLineTax, InvoicePdf, Payment

ZERO = Decimal("0.00")
_MONEY = DecimalField(max_digits=14, decimal_places=2)
OPEN_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID, Invoice.Status.PAID)

AGING_BUCKETS: tuple[tuple[str, str, int | None, int | None], ...] = (
    # key, label, first and last day past due (None: open-ended)
    ("current", "Current", None, 0),
    ("days_1_30", "1–30 days", 1, 30),
    ("days_31_60", "31–60 days", 31, 60),
    ("days_61_90", "61–90 days", 61, 90),
    ("days_over_90", "Over 90 days", 91, None),
)


def invoice_list() -> QuerySet[Invoice]:
    """Every invoice and credit note, newest first; drafts (no issue date) on top."""
    return Invoice.objects.select_related("customer", "credited_invoice").order_by(
        F("issue_date").desc(nulls_first=True), "-id")


def invoice_detail(*, invoice_id: int) -> Invoice:
    """One invoice with everything its page shows (404 when it does not exist in this MSP)."""
    return get_object_or_404(
        Invoice.objects.select_related("customer", "credited_invoice", "created_by", "issued_by", "voided_by")
        .prefetch_related(
            Prefetch("lines", queryset=InvoiceLine.objects.select_related(
                "time_allocation", "charge", "contract_period", "contract", "credited_line",
            ).prefetch_related(Prefetch("taxes", queryset=InvoiceLineTax.objects.order_by("sort_order", "id")))
                .order_by("sort_order", "id")),
            Prefetch("payments", queryset=Payment.objects.select_related("recorded_by").order_by("date", "id")),
            Prefetch("credit_notes", queryset=Invoice.objects.order_by("issue_date", "id")),
        ),
        pk=invoice_id,
    )


def _name_shows_percent(name: str, percent) -> bool:
    """Whether a tax's name already states its rate ("VAT 19 %", "GST 7.5%"), so it is not printed twice."""
    number = format(percent.normalize(), "f") if percent is not None else ""
    pattern = re.escape(number).replace(r"\.", "[.,]")
    return bool(number) and re.search(rf"(?<![\d.,]){pattern}\s*%", name or "") is not None


def invoice_tax_summary(invoice: Invoice) -> list[dict]:
    """Tax per rate (code, name, percent) over the invoice's lines, in the order first charged."""
    summary: OrderedDict[tuple, dict] = OrderedDict()
    for line in invoice.lines.all():
        for tax in line.taxes.all():
            key = (tax.code, tax.percent, tax.compound)
            row = summary.setdefault(key, {"code": tax.code, "name": tax.name, "percent": tax.percent,
                                           "name_shows_percent": _name_shows_percent(tax.name, tax.percent),
                                           "compound": tax.compound, "base": ZERO, "amount": ZERO})
            row["base"] += tax.base
            row["amount"] += tax.amount
    return list(summary.values())


def invoice_audit_trail(invoice: Invoice) -> QuerySet[AuditEvent]:
    return audit_events_for(invoice)


# --- balances ------------------------------------------------------------------------------


def _open_invoices(as_of: dt.date | None) -> QuerySet[Invoice]:
    """Issued invoices (not credit notes, not void) with what was still due on ``as_of`` (today: None)."""
    payments = Payment.objects.filter(invoice=OuterRef("pk"))
    credits = Invoice.objects.filter(credited_invoice=OuterRef("pk"), kind=Invoice.Kind.CREDIT_NOTE) \
        .exclude(status=Invoice.Status.VOID)
    queryset = Invoice.objects.filter(kind=Invoice.Kind.INVOICE, status__in=OPEN_STATUSES)
    if as_of is not None:
        queryset = queryset.filter(issue_date__lte=as_of)
        payments = payments.filter(date__lte=as_of)
        credits = credits.filter(issue_date__lte=as_of)
    paid = Subquery(payments.order_by().values("invoice").annotate(s=Sum("amount")).values("s"), output_field=_MONEY)
    credited = Subquery(credits.order_by().values("credited_invoice").annotate(s=Sum("total")).values("s"),
                        output_field=_MONEY)
    return queryset.annotate(
        paid_as_of=Coalesce(paid, Value(ZERO), output_field=_MONEY),
        credited_as_of=Coalesce(credited, Value(ZERO), output_field=_MONEY),  # credit note totals are negative
    ).annotate(due_as_of=F("total") - F("paid_as_of") + F("credited_as_of"))


def open_invoices(*, as_of: dt.date | None = None, customer: Customer | None = None) -> QuerySet[Invoice]:
    """Invoices with something still due on ``as_of``, oldest due date first."""
    queryset = _open_invoices(as_of).filter(due_as_of__gt=0).select_related("customer")
    if customer is not None:
        queryset = queryset.filter(customer=customer)
    return queryset.order_by("due_date", "id")


@dataclass
class CustomerBalance:
    customer: Customer
    currency: str
    invoices: int = 0
    outstanding: Decimal = ZERO
    overdue: Decimal = ZERO
    oldest_due_date: dt.date | None = None


def outstanding_by_customer(*, as_of: dt.date) -> list[CustomerBalance]:
    """Per customer and currency: open invoices, amount outstanding, and how much of it is overdue.

    A negative outstanding amount (credited after payment) means the MSP owes a refund;
    such customers are listed too, so the credit is not forgotten.
    """
    balances: dict[tuple[int, str], CustomerBalance] = {}
    for invoice in _open_invoices(as_of).exclude(due_as_of=0).select_related("customer"):
        key = (invoice.customer_id, invoice.currency)
        balance = balances.setdefault(key, CustomerBalance(customer=invoice.customer, currency=invoice.currency))
        balance.invoices += 1
        balance.outstanding += invoice.due_as_of
        if invoice.due_as_of > 0:
            if invoice.due_date < as_of:
                balance.overdue += invoice.due_as_of
            if balance.oldest_due_date is None or invoice.due_date < balance.oldest_due_date:
                balance.oldest_due_date = invoice.due_date
    return sorted(balances.values(), key=lambda b: (b.currency, -b.outstanding, b.customer.legal_name))


def customer_outstanding(*, customer: Customer, as_of: dt.date | None = None) -> Decimal:
    """What ``customer`` owes in its own currency (negative: a refund is due)."""
    dues = _open_invoices(as_of).filter(customer=customer).values_list("due_as_of", flat=True)
    return sum(dues, ZERO)


def receivables_totals(*, as_of: dt.date) -> dict[str, tuple[Decimal, Decimal]]:
    """Per currency, in one aggregate: what customers owe on ``as_of`` (the total of
    ``outstanding_by_customer``) and how much of it is overdue.

    The same arithmetic as ``_open_invoices``, written with payments and credit notes summed
    once per invoice and joined, rather than looked up invoice by invoice: the dashboard
    reads it over every open invoice of the MSP each time it opens."""
    invoice, payment = Invoice._meta.db_table, Payment._meta.db_table
    sql = f"""
        SELECT i.currency, sum(d.due), coalesce(sum(d.due) FILTER (WHERE d.due > 0 AND i.due_date < %s), 0)
        FROM {invoice} i
        LEFT JOIN (SELECT invoice_id, sum(amount) AS paid FROM {payment} WHERE date <= %s GROUP BY invoice_id) p
               ON p.invoice_id = i.id
        LEFT JOIN (SELECT credited_invoice_id, sum(total) AS credited FROM {invoice}
                   WHERE kind = %s AND status <> %s AND issue_date <= %s GROUP BY credited_invoice_id) c
               ON c.credited_invoice_id = i.id
        CROSS JOIN LATERAL (SELECT i.total - coalesce(p.paid, 0) + coalesce(c.credited, 0) AS due) d
        WHERE i.kind = %s AND i.status = ANY(%s) AND i.issue_date <= %s AND d.due <> 0
        GROUP BY i.currency ORDER BY i.currency
    """
    params = [as_of, as_of, Invoice.Kind.CREDIT_NOTE, Invoice.Status.VOID, as_of, Invoice.Kind.INVOICE,
              [str(status) for status in OPEN_STATUSES], as_of]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {currency: (outstanding, overdue) for currency, outstanding, overdue in cursor.fetchall()}


def revenue_by_month(*, start: dt.date, end: dt.date, customer: Customer | None = None, contract_type: str = ""):
    """Invoiced per month, contract type and currency: the lines' amounts after the invoice's
    discount and surcharge and before tax (``taxable_amount``), of invoices issued from
    ``start`` to ``end``, less credit notes issued then; lines without a contract have type "".
    Returns rows ``{month, ctype, invoice__currency, amount}``."""
    lines = InvoiceLine.objects.filter(invoice__issue_date__gte=start, invoice__issue_date__lte=end,
                                       invoice__status__in=OPEN_STATUSES)
    if customer is not None:
        lines = lines.filter(invoice__customer=customer)
    if contract_type:
        lines = lines.filter(contract__type=contract_type)
    return (lines.order_by().annotate(month=TruncMonth("invoice__issue_date"), ctype=Coalesce("contract__type", Value("")))
            .values("month", "ctype", "invoice__currency").annotate(amount=Sum("taxable_amount"))
            .order_by("month", "ctype", "invoice__currency"))


# --- aging ---------------------------------------------------------------------------------


def aging_bucket(*, due_date: dt.date, as_of: dt.date) -> str:
    """The aging bucket of an amount due on ``due_date``, seen on ``as_of``."""
    days = (as_of - due_date).days
    for key, _label, first, last in AGING_BUCKETS:
        if (first is None or days >= first) and (last is None or days <= last):
            return key
    raise AssertionError("buckets cover every day")  # pragma: no cover


@dataclass
class AgingRow:
    customer: Customer
    currency: str
    buckets: dict[str, Decimal] = field(default_factory=lambda: {key: ZERO for key, *_ in AGING_BUCKETS})

    @property
    def total(self) -> Decimal:
        return sum(self.buckets.values(), ZERO)

    @property
    def cells(self) -> list[Decimal]:
        return [self.buckets[key] for key, *_ in AGING_BUCKETS]


@dataclass
class AgingReport:
    as_of: dt.date
    rows: list[AgingRow]
    totals: dict[str, AgingRow]  # per currency: a row holding that currency's bucket totals

    @staticmethod
    def labels() -> list[str]:
        return [label for _key, label, *_ in AGING_BUCKETS]


def aging_report(*, as_of: dt.date, customer: Customer | None = None) -> AgingReport:
    """Amounts still due on ``as_of``, by customer and currency, in days-past-due buckets.

    Each invoice counts with what was due on it that day, in the bucket of its due date:
    current (not yet due), 1–30, 31–60, 61–90 and over 90 days past due.
    """
    rows: dict[tuple[int, str], AgingRow] = {}
    totals: dict[str, AgingRow] = {}
    for invoice in open_invoices(as_of=as_of, customer=customer):
        bucket = aging_bucket(due_date=invoice.due_date, as_of=as_of)
        row = rows.setdefault((invoice.customer_id, invoice.currency), AgingRow(invoice.customer, invoice.currency))
        row.buckets[bucket] += invoice.due_as_of
        total = totals.setdefault(invoice.currency, AgingRow(invoice.customer, invoice.currency))
        total.buckets[bucket] += invoice.due_as_of
    ordered = sorted(rows.values(), key=lambda r: (r.currency, r.customer.legal_name))
    return AgingReport(as_of=as_of, rows=ordered, totals=dict(sorted(totals.items())))


# --- PDFs and e-mail -----------------------------------------------------------------------


def _has_current_pdf() -> Exists:
    return Exists(InvoicePdf.objects.filter(invoice=OuterRef("pk"), is_current=True, version=OuterRef("pdf_version")))


def invoices_needing_pdf() -> QuerySet[Invoice]:
    """Issued invoices and credit notes (void ones too) without a current PDF of their current version."""
    return Invoice.objects.exclude(status=Invoice.Status.DRAFT).filter(~_has_current_pdf())


def pdf_progress(invoice_ids: Iterable[int]) -> tuple[int, int]:
    """(done, total) for a set of invoices: of those that get a PDF (not drafts), how many have it.

    A PDF counts only when it is current and of the invoice's current version, so an
    invoice edited after rendering counts as not done until its new PDF is in.
    """
    ids = {int(pk) for pk in invoice_ids}
    if not ids:
        return 0, 0
    counts = Invoice.objects.filter(pk__in=ids).exclude(status=Invoice.Status.DRAFT).aggregate(
        total=Count("pk"), done=Count("pk", filter=_has_current_pdf()))
    return counts["done"], counts["total"]


def current_pdf(invoice: Invoice) -> InvoicePdf | None:
    """The PDF to hand out for ``invoice``: current and of its current version (None: not rendered yet)."""
    return InvoicePdf.objects.filter(invoice=invoice, is_current=True, version=invoice.pdf_version).first()


def invoice_documents() -> QuerySet[Invoice]:
    """Invoices with everything their PDFs print: lines with their taxes and sources (tickets, time, charges).

    Filter it to any number of invoices: the lines and their taxes come in one query each,
    however many invoices (three queries in all)."""
    return Invoice.objects.select_related("customer", "credited_invoice").prefetch_related(
        Prefetch("lines", queryset=InvoiceLine.objects.select_related(
            "time_allocation__entry__ticket", "time_allocation__entry__technician", "time_allocation__entry__work_type",
            "charge__ticket", "charge__product", "contract_period", "contract", "product", "rate_item",
        ).prefetch_related(Prefetch("taxes", queryset=InvoiceLineTax.objects.order_by("sort_order", "id")))
            .order_by("sort_order", "id")),
    )


def invoice_document(*, invoice_id: int) -> Invoice:
    """One invoice with everything its PDF prints (``invoice_documents``)."""
    return invoice_documents().get(pk=invoice_id)


def invoice_emails(invoice: Invoice) -> QuerySet[InvoiceEmail]:
    return InvoiceEmail.objects.filter(invoice=invoice).select_related("requested_by").order_by("-requested_at", "-id")
