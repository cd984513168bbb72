"""Invoice PDFs: one Django template per look, rendered by WeasyPrint, stored once per version.

Rendering (``invoice_html``, ``render_invoice_pdf``) turns an invoice into the printed
document: seller and logo, customer as billed, lines grouped as services, tickets and
time, products and expenses (each with its detail rows: the line's ``detail["rows"]``, or
what its source links say), taxes per rate, totals, notes, terms, payment instructions
and footer, in the MSP's brand colour. The same HTML is the print page (``for_print``).

Storing (``invoice_pdf_ensure``) keeps the rule that every issued invoice ends with
exactly one current PDF of its current ``pdf_version``, whatever crashes on the way:

* the PDF is written to a temporary file in its final folder, flushed, and moved into
  place with ``os.replace`` (atomic): a killed worker leaves at most a temporary file,
  never half a PDF under a real name;
* the row is created and made current, and the previous one superseded, in one
  transaction that holds the invoice's row lock, after checking that the invoice is
  still at the version that was rendered;
* a run for a version that already has its current PDF does nothing, so a task that is
  delivered twice (``acks_late``: a killed worker's task comes back) is harmless;
* a run for an older version renders the current one if it is missing; nothing is ever
  rendered for a superseded version.

WeasyPrint's ``FontConfiguration`` and the pre-parsed stylesheets are made once per
process (lazily, so a forked worker makes its own) and reused for every render.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.template.loader import render_to_string

from invoices import selectors
from invoices.branding import logo_data_uri, text_colour_on
from invoices.models import Invoice, InvoiceLine, InvoicePdf, InvoiceSettings, invoice_pdf_name, tenant_media_name
from msp_billing.templatetags.formatting import day
from msp_billing.tenants.today import tenant_today

logger = logging.getLogger(__name__)

CSS_DIR = Path(__file__).resolve().parent / "static" / "invoices" / "pdf"
TEMPLATES = tuple(InvoiceSettings.PdfTemplate.values)
STALE_TEMP_SECONDS = 3600

_lock = threading.Lock()
_font_config = None
_stylesheets: dict[str, list] = {}
_url_fetcher = None


# --- WeasyPrint, once per process ----------------------------------------------------------


def _weasyprint():
    """(FontConfiguration, URL fetcher), made on first use in this process."""
    global _font_config, _url_fetcher
    if _font_config is None:
        with _lock:
            if _font_config is None:
                # WeasyPrint narrates each step of each render at INFO: noise in a worker's log.
                logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
                from weasyprint import URLFetcher
                from weasyprint.text.fonts import FontConfiguration

                # Only data: URIs (the logo). The document never reaches the network or the
                # file system, whatever an SVG logo or a line description contains.
                _url_fetcher = URLFetcher(allowed_protocols=("data",))
                _font_config = FontConfiguration()
    return _font_config, _url_fetcher


def stylesheets(template: str) -> list:
    """The pre-parsed print CSS for ``template``: the shared sheet and the template's own."""
    if template not in TEMPLATES:
        template = InvoiceSettings.PdfTemplate.CLASSIC
    sheets = _stylesheets.get(template)
    if sheets is None:
        font_config, url_fetcher = _weasyprint()
        from weasyprint import CSS

        with _lock:
            sheets = _stylesheets.get(template)
            if sheets is None:
                sheets = [CSS(filename=str(CSS_DIR / name), font_config=font_config, url_fetcher=url_fetcher)
                          for name in ("invoice.css", f"{template}.css")]
                _stylesheets[template] = sheets
    return sheets


# --- the document --------------------------------------------------------------------------


SECTIONS = (
    ("services", "Services"),
    ("time", "Tickets and time"),
    ("charges", "Products and expenses"),
)
SECTION_OF = {
    InvoiceLine.SourceKind.TIME: "time",
    InvoiceLine.SourceKind.CHARGE: "charges",
}


@dataclass
class PrintedLine:
    line: InvoiceLine
    details: list[str] = field(default_factory=list)
    description: str = ""  # as printed: under its ticket's heading, without the ticket's title again

    def __post_init__(self):
        self.description = self.description or self.line.description


@dataclass
class Section:
    key: str
    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # {"heading": str} or {"line": PrintedLine}


def _minutes(value: int | None) -> str:
    value = value or 0
    return f"{value // 60}:{value % 60:02d} h"


def line_details(line: InvoiceLine) -> list[str]:
    """What is printed under a line: its ``detail["rows"]``, or else what its source says."""
    rows: list[str] = []
    for item in (line.detail or {}).get("rows") or []:
        if isinstance(item, dict):
            text = " · ".join(str(value) for value in item.values() if value not in (None, ""))
        else:
            text = str(item)
        if text.strip():
            rows.append(text.strip())
    if rows:
        return rows
    allocation = line.time_allocation
    if allocation is not None:
        entry = allocation.entry
        parts = [day(entry.date), entry.work_type.name]
        technician = getattr(entry.technician, "full_name", "") or ""
        if technician:
            parts.append(technician)
        worked = f"{_minutes(allocation.billed_minutes)} billed"
        if allocation.minutes != allocation.billed_minutes:
            worked += f" ({_minutes(allocation.minutes)} worked)"
        parts.append(worked)
        rows.append(" · ".join(parts))
        if entry.notes.strip():
            rows.append(entry.notes.strip().splitlines()[0][:200])
    charge = line.charge
    if charge is not None:
        parts = [day(charge.date), "Expense" if charge.is_expense else "Product"]
        if charge.product is not None:
            parts.append(charge.product.sku)
        if charge.ticket is not None:
            parts.append(f"ticket #{charge.ticket_id}")
        rows.append(" · ".join(parts))
    period = line.contract_period
    if period is not None:
        covered = f"{day(period.covered_start)} – {day(period.covered_end)}"
        whole = f"{day(period.start)} – {day(period.end)}"
        rows.append(f"Period {covered}" + (f" (of {whole})" if covered != whole else ""))
    return rows


def _ticket_heading(line: InvoiceLine) -> tuple[int, str, str] | None:
    """(ticket id, the group's heading, the ticket as a line's description names it)."""
    ticket = None
    if line.time_allocation is not None:
        ticket = line.time_allocation.entry.ticket
    elif line.charge is not None:
        ticket = line.charge.ticket
    if ticket is None:
        ticket_id = (line.detail or {}).get("ticket_id")
        title = (line.detail or {}).get("ticket_title", "")
        return (int(ticket_id), f"Ticket #{ticket_id} {title}".strip(), f"#{ticket_id} {title}") if ticket_id else None
    return ticket.pk, f"Ticket #{ticket.pk} {ticket.title}", f"#{ticket.pk} {ticket.title}"


def _without_ticket(description: str, named: str) -> str:
    """A time line's description under its ticket's heading: ``#12 Printer — Remote Support, …``
    prints as ``Remote Support, …`` (the heading already says which ticket)."""
    for separator in (" — ", " - ", ": "):
        if description.startswith(named + separator):
            rest = description[len(named) + len(separator):].strip()
            return rest or description
    return description


def invoice_sections(invoice: Invoice) -> list[Section]:
    """The lines in printed order: services, then tickets and time (by ticket), then products and expenses."""
    sections = {key: Section(key, title) for key, title in SECTIONS}
    for line in invoice.lines.all():
        sections[SECTION_OF.get(line.source_kind, "services")].rows.append({"line": PrintedLine(line, line_details(line))})
    time_rows = sections["time"].rows
    if any(_ticket_heading(row["line"].line) for row in time_rows):
        grouped: dict[Any, list[dict]] = {}
        headings: dict[Any, str] = {}
        for row in time_rows:
            heading = _ticket_heading(row["line"].line)
            key = heading[0] if heading else None
            headings.setdefault(key, heading[1] if heading else "Other time")
            if heading:  # the ticket's title once, in the heading
                row["line"].description = _without_ticket(row["line"].description, heading[2])
            grouped.setdefault(key, []).append(row)
        sections["time"].rows = [item for key, rows in grouped.items() for item in ({"heading": headings[key]}, *rows)]
    return [section for section in sections.values() if section.rows]


def seller_details() -> tuple[str, str]:
    """(name, postal address) of the MSP printing: from the active tenant, else one query."""
    tenant = getattr(connection, "tenant", None)
    if getattr(tenant, "name", None) and hasattr(tenant, "address"):
        return tenant.name, tenant.address
    from msp_billing.tenants.models import Msp

    row = Msp.objects.filter(schema_name=connection.schema_name).values_list("name", "address").first()
    name, address = row or ("", "")
    return getattr(tenant, "name", None) or name or "", address or ""


def seller_name() -> str:
    return seller_details()[0]


def seller_address() -> str:
    """The MSP's postal address (Settings), printed under its name."""
    return seller_details()[1]


def invoice_document_context(invoice: Invoice, *, branding: InvoiceSettings | None = None,
                             for_print: bool = False, seller: tuple[str, str] | None = None) -> dict[str, Any]:
    branding = branding or InvoiceSettings.load()
    seller_name_, seller_address_ = seller or seller_details()
    draft = invoice.status == Invoice.Status.DRAFT
    customer = invoice.customer
    return {
        "invoice": invoice,
        "title": "Credit note" if invoice.is_credit_note else "Invoice",
        "seller_name": seller_name_,
        "seller_address": seller_address_,
        "bill_to": {
            "name": customer.legal_name if draft else invoice.customer_name,
            "address": customer.address if draft else invoice.customer_address,
            "tax_id": customer.tax_id if draft else invoice.customer_tax_id,
            "tax_exempt": customer.exemption_in_effect(tenant_today()) if draft else invoice.customer_tax_exempt,
            "reverse_charge": bool(invoice.reverse_charge_note),
        },
        "reverse_charge_note": invoice.reverse_charge_note,
        "sections": invoice_sections(invoice),
        "tax_summary": selectors.invoice_tax_summary(invoice),
        "watermark": "Draft" if draft else "Void" if invoice.status == Invoice.Status.VOID else "",
        "brand_colour": branding.brand_colour,
        "brand_text_colour": text_colour_on(branding.brand_colour),
        "logo": logo_data_uri(branding),
        "template_name": branding.pdf_template if branding.pdf_template in TEMPLATES else TEMPLATES[0],
        "for_print": for_print,
    }


def invoice_html(invoice: Invoice, *, branding: InvoiceSettings | None = None, for_print: bool = False,
                 request=None, seller: tuple[str, str] | None = None) -> str:
    """The invoice as an HTML document in the MSP's template (the PDF's source, and the print page)."""
    context = invoice_document_context(invoice, branding=branding, for_print=for_print, seller=seller)
    return render_to_string(f"invoices/pdf/{context['template_name']}.html", context, request=request)


def render_invoice_pdf(invoice: Invoice, *, branding: InvoiceSettings | None = None,
                       seller: tuple[str, str] | None = None) -> bytes:
    """The PDF bytes of ``invoice`` (load it with ``selectors.invoice_document`` to save queries)."""
    font_config, url_fetcher = _weasyprint()
    from weasyprint import HTML

    branding = branding or InvoiceSettings.load()
    template = branding.pdf_template if branding.pdf_template in TEMPLATES else TEMPLATES[0]
    html = invoice_html(invoice, branding=branding, seller=seller)
    document = HTML(string=html, url_fetcher=url_fetcher, media_type="print")
    return document.write_pdf(stylesheets=stylesheets(template), font_config=font_config)


# --- storing: exactly one current PDF per invoice ------------------------------------------


def _test_delay() -> None:
    """Tests make a worker slow here to kill it mid-render; honoured only under the test settings."""
    delay = os.environ.get("MSP_PDF_TEST_DELAY")
    if delay and settings.SETTINGS_MODULE == "msp_billing.settings.test":
        time.sleep(float(delay))


def _write_atomically(name: str, content: bytes, *, sweep: bool = True) -> None:
    """Write ``content`` under storage ``name``: a temporary file in the same folder, then one rename."""
    path = Path(default_storage.path(name))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        _test_delay()
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
    try:  # the rename itself survives a power cut once the folder is synced
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:  # pragma: no cover — not every file system syncs folders
        pass
    if sweep:
        _remove_stale_temporaries(path.parent)


def remove_stale_temporaries() -> None:
    """In every invoice folder of the active MSP (the daily sweep)."""
    root = Path(default_storage.path(tenant_media_name("invoices", "pdf")))
    if root.is_dir():
        for folder in root.iterdir():
            if folder.is_dir():
                _remove_stale_temporaries(folder)


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files a killed worker left behind (old enough that no render is still writing them)."""
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in folder.glob(".*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except FileNotFoundError:
            pass


def _delete_file(name: str) -> None:
    try:
        default_storage.delete(name)
    except OSError:  # pragma: no cover
        logger.warning("could not delete %s", name, exc_info=True)


def pdf_is_stored(pdf: InvoicePdf) -> bool:
    return bool(pdf.file.name) and default_storage.exists(pdf.file.name)


def invoice_pdf_ensure(*, invoice_id: int, version: int | None = None) -> InvoicePdf | None:
    """Make sure ``invoice_id`` has its one current PDF for its current version; return it.

    ``version`` is the version the caller saw (the task's argument): an older one means
    the invoice changed since, and the current version is what gets rendered. Returns
    None for a draft or an invoice that no longer exists. Safe to run twice, or
    concurrently: the second run finds the PDF and does nothing.
    """
    if version is not None:
        current = Invoice.objects.filter(pk=invoice_id).values_list("pdf_version", flat=True).first()
        if current is not None and version > current:
            logger.warning("PDF of invoice %s asked for version %s, but it is at %s", invoice_id, version, current)
    return invoice_pdfs_ensure(invoice_ids=[invoice_id]).get(invoice_id)


@dataclass
class _Rendered:
    invoice_id: int
    version: int
    name: str
    size: int
    sha256: str


def _current_pdfs(targets: dict[int, int]) -> dict[int, InvoicePdf]:
    """The stored current PDF of each invoice's target version (one query, one ``exists`` per file)."""
    found = InvoicePdf.objects.filter(invoice_id__in=list(targets), is_current=True)
    return {pdf.invoice_id: pdf for pdf in found if pdf.version == targets[pdf.invoice_id] and pdf_is_stored(pdf)}


def invoice_pdfs_ensure(*, invoice_ids: Iterable[int]) -> dict[int, InvoicePdf | None]:
    """``invoice_pdf_ensure`` for a chunk of invoices at once: {invoice id: its current PDF, or None}.

    What is ours per invoice is paid once per chunk: the invoices, their lines, taxes and
    customers in one query set, branding and seller once, and the rows of every rendered
    PDF stored in one transaction (a few statements, whatever the chunk's size). Each PDF is
    still written atomically before that transaction, and each invoice still gets exactly
    one current PDF of its current version: an invoice edited while the chunk rendered
    keeps no copy (its edit queued its own render), a version another run stored first
    keeps that run's copy. An invoice whose render fails is left without its PDF (the
    sweep queues it again); the others are stored, then the first failure is raised.
    """
    ids = sorted({int(pk) for pk in invoice_ids})
    result: dict[int, InvoicePdf | None] = dict.fromkeys(ids)
    targets = {pk: version for pk, status, version in Invoice.objects.filter(pk__in=ids)
               .values_list("pk", "status", "pdf_version") if status != Invoice.Status.DRAFT}
    if not targets:
        return result
    existing = _current_pdfs(targets)  # already rendered: a repeated or late task is a no-op
    result.update(existing)
    todo = [pk for pk in targets if pk not in existing]
    if not todo:
        return result

    branding = InvoiceSettings.load()
    seller = seller_details()
    rendered: list[_Rendered] = []
    failures: list[BaseException] = []
    for document in selectors.invoice_documents().filter(pk__in=todo).order_by("pk"):
        if document.status == Invoice.Status.DRAFT:
            continue
        try:
            content = render_invoice_pdf(document, branding=branding, seller=seller)
        except Exception as error:  # noqa: BLE001 — one broken invoice does not cost the chunk its PDFs
            logger.exception("PDF of invoice %s could not be rendered", document.pk)
            failures.append(error)
            continue
        name = invoice_pdf_name(document, document.pdf_version)  # the version rendered: the current one
        _write_atomically(name, content, sweep=False)
        rendered.append(_Rendered(document.pk, document.pdf_version, name, len(content),
                                  hashlib.sha256(content).hexdigest()))
    for folder in {Path(default_storage.path(item.name)).parent for item in rendered}:
        _remove_stale_temporaries(folder)

    try:
        result.update(_store_rendered(rendered, template=branding.pdf_template))
    except Exception:
        _delete_unreferenced([item.name for item in rendered])
        raise
    if failures:
        raise failures[0]
    return result


def _delete_unreferenced(names: list[str]) -> None:
    """After the chunk's transaction failed: delete the new files no row refers to.

    A failure can be reported after the commit took place (PostgreSQL stopped between
    writing the commit and answering it), so the rows are read again, on a new connection,
    before any file goes. When even that cannot be asked, the files stay: a stray file costs
    a few kilobytes, a current PDF without its file would be lost for good.
    """
    from django.db import connection

    try:
        if not connection.in_atomic_block:
            connection.close()  # the next query opens a new one
        referenced = set(InvoicePdf.objects.filter(file__in=names).values_list("file", flat=True))
    except Exception:  # noqa: BLE001 — the database is still away: keep every file
        logger.warning("PDF rows could not be read after a failed store; %s new files kept", len(names), exc_info=True)
        return
    for name in names:
        if name not in referenced:
            _delete_file(name)


def _store_rendered(rendered: list[_Rendered], *, template: str) -> dict[int, InvoicePdf | None]:
    """One transaction for the rows of a chunk's new files, holding the invoices' row locks."""
    if not rendered:
        return {}
    stored: dict[int, InvoicePdf | None] = {}
    with transaction.atomic():
        ids = [item.invoice_id for item in rendered]
        locked = {pk: (status, version) for pk, status, version in Invoice.objects.select_for_update()
                  .filter(pk__in=ids).order_by("pk").values_list("pk", "status", "pdf_version")}
        rows = {(row.invoice_id, row.version): row for row in InvoicePdf.objects.select_for_update()
                .filter(invoice_id__in=ids).order_by("pk")}
        kept: list[InvoicePdf] = []
        created: list[InvoicePdf] = []
        for item in rendered:
            status, version = locked.get(item.invoice_id, (None, None))
            if version != item.version or status in (None, Invoice.Status.DRAFT):
                # Edited (or gone) while we rendered: this copy is already out of date; the edit queued its own render.
                transaction.on_commit(partial(_delete_file, item.name))
                stored[item.invoice_id] = None
                continue
            row = rows.get((item.invoice_id, item.version))
            if row is not None and pdf_is_stored(row):
                transaction.on_commit(partial(_delete_file, item.name))  # a concurrent run got there first
                kept.append(row)
            elif row is not None:  # its row lost its file: this copy takes its place
                if row.file.name:
                    transaction.on_commit(partial(_delete_file, row.file.name))
                row.file.name, row.size, row.sha256, row.template = item.name, item.size, item.sha256, template
                kept.append(row)
            else:
                row = InvoicePdf(invoice_id=item.invoice_id, version=item.version, file=item.name, size=item.size,
                                 sha256=item.sha256, template=template, is_current=True)
                created.append(row)
            stored[item.invoice_id] = row
        winners = [row.invoice_id for row in (*kept, *created)]
        if winners:
            InvoicePdf.objects.filter(invoice_id__in=winners, is_current=True) \
                .exclude(pk__in=[row.pk for row in kept]).update(is_current=False)
        if kept:
            for row in kept:
                row.is_current = True
            InvoicePdf.objects.bulk_update(kept, ["file", "size", "sha256", "template", "is_current"])
        if created:
            InvoicePdf.objects.bulk_create(created)
    return stored
