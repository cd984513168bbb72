"""Actions on many invoices at once, from the invoice list's selection.

* :func:`payments_record_in_full` — one payment per invoice, each for what is still due on
  it, through ``invoices.services.payment_record`` (its checks, audit record and
  listeners). **All or nothing**: every invoice is checked in one transaction, and if any
  one is refused, nothing is recorded and every refusal is reported with its invoice.
* :func:`pdf_archive` — the current PDFs of a selection as one zip, streamed: invoices
  whose current PDF exists go in, the others are named (with why) in ``not-included.txt``.

Ids are checked first (:func:`invoices_selected`): an id that is not an invoice of this
MSP refuses the whole request before anything is read or written.
"""
from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection, transaction

from invoices.models import Invoice, Payment
from invoices.pdf import pdf_is_stored
from invoices.selectors import current_pdf
from invoices.services import payment_record

MAX_SELECTED = 500
READ_CHUNK = 64 * 1024


class UnknownInvoices(Exception):
    """Ids that are no invoice of this MSP (another MSP's, deleted, made up)."""

    def __init__(self, ids: Sequence[int]):
        super().__init__(f"No such invoice: {', '.join(map(str, ids))}.")
        self.ids = list(ids)


@dataclass(frozen=True)
class Refusal:
    invoice: Invoice
    message: str


class BulkRefused(Exception):
    """Some invoices could not be paid; nothing was recorded."""

    def __init__(self, refusals: Sequence[Refusal]):
        super().__init__("; ".join(f"{r.invoice}: {r.message}" for r in refusals))
        self.refusals = list(refusals)


def parse_ids(values: Iterable[str]) -> list[int]:
    """Repeated ``invoice=<id>`` values → ids in the order given, repeats dropped; anything else refused."""
    ids: list[int] = []
    for value in values:
        value = value.strip()
        if not value.isascii() or not value.isdigit() or len(value) > 18 or int(value) < 1:
            raise ValidationError("The selection holds something that is not an invoice: reload the list and select again.")
        if int(value) not in ids:
            ids.append(int(value))
    if not ids:
        raise ValidationError("Select at least one invoice.")
    if len(ids) > MAX_SELECTED:
        raise ValidationError(f"Select at most {MAX_SELECTED} invoices at a time.")
    return ids


def invoices_selected(ids: Sequence[int]) -> list[Invoice]:
    """The invoices ``ids`` in the order given; :class:`UnknownInvoices` when any is not this MSP's."""
    found = {invoice.pk: invoice for invoice in Invoice.objects.filter(pk__in=list(ids)).select_related("customer")}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise UnknownInvoices(missing)
    return [found[pk] for pk in ids]


@transaction.atomic
def payments_record_in_full(*, invoice_ids: Sequence[int], date: dt.date, reference: str = "",
                            method: str = Payment.Method.BANK_TRANSFER, acting_user) -> list[Payment]:
    """Record, on each invoice, a payment of all that is still due on it — or nothing at all.

    Each payment goes through ``payment_record`` (which locks the invoice and checks its
    state), so a stale selection (an invoice paid or voided meanwhile) is refused like a
    single payment would be. Refusals are collected for every invoice before the whole
    transaction is rolled back (``BulkRefused``).
    """
    invoices = invoices_selected(invoice_ids)
    # Lock in id order, so two bulk payments over overlapping selections cannot deadlock.
    locked = {invoice.pk: invoice for invoice in
              Invoice.objects.select_for_update().filter(pk__in=[i.pk for i in invoices]).order_by("pk")}
    refusals: list[Refusal] = []
    payments: list[Payment] = []
    for invoice in invoices:
        current = locked[invoice.pk]
        try:
            payments.append(payment_record(invoice_id=current.pk, amount=current.amount_due, date=date, method=method,
                                           reference=reference, acting_user=acting_user))
        except ValidationError as error:  # payment_record's own savepoint undid its part
            refusals.append(Refusal(invoice=current, message=" ".join(error.messages)))
    if refusals:
        raise BulkRefused(refusals)
    return payments


# --- PDFs as one zip ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchivePlan:
    """Which selected invoices have a current PDF to put in the zip, and why the others have none."""

    included: list[tuple[Invoice, str]]  # (invoice, storage name of its current PDF)
    left_out: list[Refusal]


def pdf_archive_plan(invoices: Sequence[Invoice]) -> ArchivePlan:
    included, left_out = [], []
    schema_folder = f"{connection.schema_name}/"
    for invoice in invoices:
        if invoice.is_draft:
            left_out.append(Refusal(invoice, "a draft has no PDF; issue it first"))
            continue
        pdf = current_pdf(invoice)
        if pdf is None or not pdf.file.name.startswith(schema_folder) or not pdf_is_stored(pdf):
            left_out.append(Refusal(invoice, "its PDF is still being prepared"))
            continue
        included.append((invoice, pdf.file.name))
    return ArchivePlan(included=included, left_out=left_out)


class _Pipe:
    """A write-only, unseekable file: ``zipfile`` writes into it, the response takes what was written."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._written += len(data)
        return len(data)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def pdf_archive(plan: ArchivePlan) -> Iterator[bytes]:
    """The zip, piece by piece: each PDF read and sent in chunks, never the whole archive in memory.

    PDFs are already compressed, so they are stored as they are. Names are the invoice
    numbers (``INV-2026-00042.pdf``).
    """
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for invoice, name in plan.included:
            with default_storage.open(name, "rb") as source, archive.open(f"{invoice.number}.pdf", mode="w") as target:
                while chunk := source.read(READ_CHUNK):
                    target.write(chunk)
                    yield pipe.take()
            yield pipe.take()
        if plan.left_out:
            lines = ["These selected invoices have no PDF in this file:", ""]
            lines += [f"{refusal.invoice}: {refusal.message}" for refusal in plan.left_out]
            archive.writestr("not-included.txt", "\n".join(lines) + "\n")
    yield pipe.take()
