"""What an action that cannot be undone will do, computed once for the confirmation page and
again, under lock, by the service that acts (docs/billing-batches.md "Confirmations").

* Generate invoices: which drafts get numbers, the numbers they take, totals per currency.
* Delete batch: which drafts are deleted, which issued invoices are voided (their numbers
  stay used), which tickets, periods and charges become unbilled again.
* Delete a draft of a batch: the same for one invoice.

The page carries the consequences' ``token`` (a digest of every invoice, total and item
listed); the service recomputes them and refuses when the token differs, so what the admin
confirmed is exactly what happens.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from billing.models import BatchInvoice, BatchItem, BillingBatch
from contracts.models import ContractPeriod
from invoices.models import Invoice, InvoiceLine, NumberSequence
from invoices.services import format_number, next_number_of
from invoices.models import InvoiceSettings
from msp_billing.tenants.today import tenant_today
from tickets.models import Charge, Ticket, TimeAllocation, TimeEntry

PAID_OR_EXPORTED = "paid or exported"


@dataclass
class Release:
    """Everything a set of invoices bills that becomes unbilled again when they go."""

    items: list[BatchItem] = field(default_factory=list)
    invoice_ids: list[int] = field(default_factory=list)
    entry_ids: list[int] = field(default_factory=list)
    ticket_ids: set[int] = field(default_factory=set)
    charge_ids: list[int] = field(default_factory=list)
    period_ids: list[int] = field(default_factory=list)

    def tickets(self) -> list[Ticket]:
        return list(Ticket.objects.filter(pk__in=self.ticket_ids).select_related("customer").order_by("pk"))

    def periods(self) -> list[ContractPeriod]:
        return list(ContractPeriod.objects.filter(pk__in=self.period_ids).select_related("contract").order_by("contract__name", "start"))

    def charges(self) -> list[Charge]:
        return list(Charge.objects.filter(pk__in=self.charge_ids).order_by("pk"))

    @property
    def numbered(self) -> list[tuple[Invoice, str]]:
        """Each draft to issue with the number it takes."""
        return list(zip(self.issue, self.numbers))

    @property
    def count(self) -> int:
        return len(self.entry_ids) + len(self.charge_ids) + len(self.period_ids)


def release_of(items: list[BatchItem], invoice_ids: list[int]) -> Release:
    time_lines = InvoiceLine.objects.filter(invoice_id__in=invoice_ids, time_allocation__isnull=False, source_released_at__isnull=True)
    entry_ids = sorted(set(TimeAllocation.objects.filter(pk__in=time_lines.values("time_allocation_id")).values_list("entry_id", flat=True)))
    charge_ids = sorted(i.charge_id for i in items if i.charge_id)
    ticket_ids = set(TimeEntry.objects.filter(pk__in=entry_ids).values_list("ticket_id", flat=True).distinct()) | set(
        Charge.objects.filter(pk__in=charge_ids, ticket__isnull=False).values_list("ticket_id", flat=True))
    return Release(items=items, invoice_ids=list(invoice_ids), entry_ids=entry_ids, ticket_ids=ticket_ids,
                   charge_ids=charge_ids, period_ids=sorted(i.period_id for i in items if i.period_id))


@dataclass
class Consequences:
    action: str
    batch: BillingBatch
    issue: list[Invoice] = field(default_factory=list)
    delete: list[Invoice] = field(default_factory=list)
    void: list[Invoice] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    release: Release = field(default_factory=Release)
    refusal: str | None = None

    @property
    def invoices(self) -> list[Invoice]:
        return [*self.issue, *self.delete, *self.void]

    @property
    def numbered(self) -> list[tuple[Invoice, str]]:
        """Each draft to issue with the number it takes."""
        return list(zip(self.issue, self.numbers))

    @property
    def count(self) -> int:
        return len(self.invoices)

    @property
    def totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for invoice in self.invoices:
            totals[invoice.currency] += invoice.total.amount if hasattr(invoice.total, "amount") else invoice.total
        return dict(sorted(totals.items()))

    @property
    def token(self) -> str:
        parts = [self.action, str(self.batch.pk)]
        for name in ("issue", "delete", "void"):
            parts += [f"{name}:{i.pk}:{i.status}:{i.total}:{i.pdf_version}" for i in getattr(self, name)]
        parts += [f"e{pk}" for pk in self.release.entry_ids] + [f"c{pk}" for pk in self.release.charge_ids]
        parts += [f"p{pk}" for pk in self.release.period_ids]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _invoices(batch: BillingBatch, invoice_ids=None):
    ids = BatchInvoice.objects.filter(batch=batch).values("invoice_id")
    queryset = Invoice.objects.filter(pk__in=ids).select_related("customer").order_by("customer__legal_name", "pk")
    return queryset if invoice_ids is None else queryset.filter(pk__in=invoice_ids)


def generate_consequences(batch: BillingBatch, *, issue_date: dt.date | None = None) -> Consequences:
    """Generate invoices: every draft of the batch is numbered, in this order."""
    drafts = list(_invoices(batch).filter(status=Invoice.Status.DRAFT))
    on = issue_date or tenant_today()
    config = InvoiceSettings.load()
    year = on.year if config.number_yearly_reset else 0
    first = next_number_of(series=NumberSequence.Series.INVOICE, year=on.year)
    numbers = [format_number(prefix=config.number_prefix, year=year, number=first + n, padding=config.number_padding)
               for n in range(len(drafts))]
    refusal = None if drafts else "Every invoice of this batch is already issued."
    return Consequences(action="generate", batch=batch, issue=drafts, numbers=numbers, refusal=refusal)


def _refusal(invoices: list[Invoice]) -> str | None:
    for invoice in invoices:
        if invoice.exported_at or invoice.amount_paid:
            return f"Invoice {invoice.number or invoice.pk} is {PAID_OR_EXPORTED}: correct it with a credit note instead."
    return None


def delete_consequences(batch: BillingBatch) -> Consequences:
    """Delete batch: drafts deleted, issued invoices voided, every item released."""
    invoices = list(_invoices(batch))
    ids = [i.pk for i in invoices]
    return Consequences(
        action="delete_batch", batch=batch,
        delete=[i for i in invoices if i.status == Invoice.Status.DRAFT],
        void=[i for i in invoices if i.status not in (Invoice.Status.DRAFT, Invoice.Status.VOID)],
        release=release_of(list(batch.items.all()), ids), refusal=_refusal(invoices))


def draft_delete_consequences(batch: BillingBatch, invoice_id: int) -> Consequences:
    """Delete one draft of the batch: its items released. Raises Invoice.DoesNotExist when it is not the batch's."""
    invoice = _invoices(batch, [invoice_id]).first()
    if invoice is None:
        raise Invoice.DoesNotExist
    refusal = None if invoice.status == Invoice.Status.DRAFT else \
        f"Invoice {invoice.number} is issued: void it or credit it instead of deleting it."
    return Consequences(action="delete_draft", batch=batch, delete=[invoice], refusal=refusal,
                        release=release_of(list(BatchItem.objects.filter(batch=batch, invoice_id=invoice_id)), [invoice_id]))
