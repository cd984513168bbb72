"""File exports that need no API: QuickBooks Desktop IIF, Xero CSV, plain CSV.

Pure functions of loaded invoices (``integrations.selectors.documents_for_export``); the
views only parse ids and return the bytes. Rules and choices: docs/integrations.md.

Every document is exported at its printed figures: each line at its taxable amount (the
line amount with its share of the invoice discount and surcharge), each tax as printed,
so the file always adds up to the invoice total.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from integrations.base import quantity_and_price
from invoices.models import Invoice, InvoiceLine

# --- QuickBooks Desktop IIF ---------------------------------------------------------------

IIF_AR_ACCOUNT = "Accounts Receivable"
IIF_TAX_ACCOUNT = "Sales Tax Payable"
IIF_INCOME_ACCOUNT = "Sales"  # lines whose product / rate item names no accounting code
IIF_TRNS_COLUMNS = ("TRNSID", "TRNSTYPE", "DATE", "ACCNT", "NAME", "AMOUNT", "DOCNUM", "MEMO", "DUEDATE", "TOPRINT", "ADDR1",
                    "ADDR2", "ADDR3", "ADDR4", "ADDR5")
IIF_SPL_COLUMNS = ("SPLID", "TRNSTYPE", "DATE", "ACCNT", "NAME", "AMOUNT", "DOCNUM", "MEMO", "QNTY", "PRICE", "INVITEM",
                   "TAXABLE")
IIF_ENCODING = "cp1252"  # QuickBooks Desktop reads IIF as Windows ANSI

# --- Xero CSV -----------------------------------------------------------------------------

XERO_HEADER = ("*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,PORegion,"
               "POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,InventoryItemCode,*Description,"
               "*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,TrackingName1,TrackingOption1,TrackingName2,"
               "TrackingOption2,Currency,BrandingTheme").split(",")
XERO_MAX_INVOICES = 500  # per file (Xero's import limit); more become several files in a zip
XERO_DEFAULT_ACCOUNT = "200"  # Xero's default Sales account
XERO_NO_TAX = "Tax Exempt"

PLAIN_HEADER = ["document", "number", "status", "customer", "issue_date", "due_date", "currency", "line", "description",
                "item", "quantity", "unit_price", "line_amount", "discount_share", "surcharge_share", "taxable_amount",
                "tax_codes", "tax_amount", "line_total", "document_total"]


@dataclass(frozen=True)
class ExportFile:
    filename: str
    content_type: str
    content: bytes


def _text(value: str) -> str:
    """One cell of a tab- or comma-separated row: no tabs or line breaks inside."""
    return " ".join(str(value or "").replace("\t", " ").split())


def _formula_safe(value: str) -> str:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe."""
    text = _text(value)
    if text[:1] in ("=", "+", "@") or (text[:1] == "-" and not text[1:2].isdigit()):
        return "'" + text
    return text


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _plain(value: Decimal) -> str:
    """A quantity or unit price without trailing zeros (2.5000 → 2.5, 100.0000 → 100)."""
    text = format(value.normalize(), "f")
    return text if text not in ("-0",) else "0"


def _customer_name(invoice: Invoice) -> str:
    return invoice.customer_name or invoice.customer.legal_name


def _customer_address(invoice: Invoice) -> list[str]:
    address = invoice.customer_address if invoice.customer_name else invoice.customer.address
    return [part.strip() for part in (address or "").splitlines() if part.strip()]


def _item_name(line: InvoiceLine) -> str:
    if line.product_id:
        return line.product.name
    if line.rate_item_id:
        return line.rate_item.name
    return ""


def _accounting_code(line: InvoiceLine) -> str:
    if line.product_id and line.product.accounting_code:
        return line.product.accounting_code
    if line.rate_item_id and line.rate_item.accounting_code:
        return line.rate_item.accounting_code
    return ""


def _taxes_by_code(invoice: Invoice) -> OrderedDict[str, tuple[str, Decimal]]:
    """code → (name, amount) summed over the lines, in first-seen order."""
    taxes: OrderedDict[str, tuple[str, Decimal]] = OrderedDict()
    for line in invoice.lines.all():
        for tax in line.taxes.all():
            name, amount = taxes.get(tax.code, (tax.name, Decimal("0")))
            taxes[tax.code] = (name, amount + tax.amount)
    return taxes


def iif_rows(invoice: Invoice) -> list[list[str]]:
    """The TRNS, SPL and ENDTRNS rows of one invoice or credit note (amounts sum to zero).

    TRNS on Accounts Receivable with the total (positive for an invoice); one SPL per line
    on its income account with the line's taxable amount negated (quantity negated, price
    positive, as QuickBooks writes them); one SPL per tax on the sales tax account.
    A credit note is a CREDIT MEMO: its total is negative, so every sign turns over.
    """
    trnstype = "CREDIT MEMO" if invoice.is_credit_note else "INVOICE"
    date = f"{invoice.issue_date:%m/%d/%Y}"
    due = f"{invoice.due_date:%m/%d/%Y}" if invoice.due_date else ""
    name = _text(_customer_name(invoice))
    number = _text(invoice.number or "")
    address = (_customer_address(invoice) + [""] * 5)[:5]
    rows = [["TRNS", "", trnstype, date, IIF_AR_ACCOUNT, name, _money(invoice.total), number,
             _text(invoice.notes)[:4000], due, "N", name, *[_text(part) for part in address[:4]]]]
    for line in invoice.lines.all():
        quantity, price = line_quantity_and_price(line)
        rows.append(["SPL", "", trnstype, date, _text(_accounting_code(line) or IIF_INCOME_ACCOUNT), "",
                     _money(-line.taxable_amount), number, _text(line.description)[:4000], _plain(-quantity),
                     _plain(price), _text(_item_name(line)), "Y" if line.tax_amount else "N"])
    for code, (tax_name, amount) in _taxes_by_code(invoice).items():
        rows.append(["SPL", "", trnstype, date, IIF_TAX_ACCOUNT, "", _money(-amount), number, _text(tax_name),
                     "", "", _text(tax_name or code), "N"])
    rows.append(["ENDTRNS"])
    return rows


def iif_file(invoices: Sequence[Invoice]) -> ExportFile:
    lines = ["\t".join(("!TRNS", *IIF_TRNS_COLUMNS)), "\t".join(("!SPL", *IIF_SPL_COLUMNS)), "!ENDTRNS"]
    for invoice in invoices:
        lines.extend("\t".join(row) for row in iif_rows(invoice))
    content = ("\r\n".join(lines) + "\r\n").encode(IIF_ENCODING, errors="replace")
    return ExportFile(filename=_filename(invoices, "iif"), content_type="application/octet-stream", content=content)


def line_quantity_and_price(line: InvoiceLine) -> tuple[Decimal, Decimal]:
    """A quantity and unit price that give the line's taxable amount exactly (see :func:`base.quantity_and_price`)."""
    return quantity_and_price(quantity=line.quantity or Decimal("1"), unit_price=line.unit_price, target=line.taxable_amount,
                              currency=line.invoice.currency)


def parse_iif(content: bytes) -> list[dict]:
    """Read an IIF file back: one dict per transaction with its TRNS and SPL rows (tests, support)."""
    text = content.decode(IIF_ENCODING)
    headers: dict[str, list[str]] = {}
    transactions: list[dict] = []
    current: dict | None = None
    for raw in text.splitlines():
        cells = raw.split("\t")
        kind = cells[0]
        if kind.startswith("!"):
            headers[kind[1:]] = cells[1:]
            continue
        if kind == "TRNS":
            current = {"TRNS": dict(zip(headers["TRNS"], cells[1:], strict=False)), "SPL": []}
        elif kind == "SPL":
            current["SPL"].append(dict(zip(headers["SPL"], cells[1:], strict=False)))
        elif kind == "ENDTRNS":
            transactions.append(current)
            current = None
    return transactions


# --- Xero CSV ---------------------------------------------------------------------------------


def xero_rows(invoice: Invoice, *, item_codes: dict[tuple[str, int], str] | None = None) -> list[list[str]]:
    """One row per line. Quantity × unit amount gives the line's taxable amount (discounts folded in);
    the tax type is the tax rate's display name (several taxes joined with " + ");
    an item code only where the line's product / rate item is mapped to a Xero item."""
    item_codes = item_codes or {}
    address = (_customer_address(invoice) + [""] * 4)[:4]
    rows = []
    for line in invoice.lines.all():
        quantity, price = line_quantity_and_price(line)
        if invoice.is_credit_note:  # Xero's credit note import takes positive figures
            if price < 0:
                price = -price
            else:
                quantity = -quantity
        taxes = [tax.name for tax in line.taxes.all()]
        item_code = ""
        if line.product_id:
            item_code = item_codes.get(("product", line.product_id), "")
        elif line.rate_item_id:
            item_code = item_codes.get(("rate_item", line.rate_item_id), "")
        rows.append([
            _formula_safe(_customer_name(invoice)), _text(invoice.customer_email or invoice.customer.billing_email),
            *[_formula_safe(part) for part in address], "", "", "", "",
            _text(invoice.number or ""), "", f"{invoice.issue_date:%d/%m/%Y}",
            f"{(invoice.due_date or invoice.issue_date):%d/%m/%Y}", _text(item_code), _formula_safe(line.description),
            _plain(quantity), _plain(price), "", _text(_accounting_code(line) or XERO_DEFAULT_ACCOUNT),
            _text(" + ".join(taxes) if taxes else XERO_NO_TAX), "", "", "", "", invoice.currency, "",
        ])
    return rows


def _csv_bytes(header: list[str], rows: list[list[str]], *, bom: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")


def xero_csv_files(invoices: Sequence[Invoice], *, item_codes: dict[tuple[str, int], str] | None = None) -> list[bytes]:
    """One CSV per 500 invoices."""
    files = []
    for start in range(0, len(invoices), XERO_MAX_INVOICES):
        chunk = invoices[start:start + XERO_MAX_INVOICES]
        files.append(_csv_bytes(XERO_HEADER, [row for invoice in chunk for row in xero_rows(invoice, item_codes=item_codes)]))
    return files


def xero_csv_file(invoices: Sequence[Invoice], *, item_codes: dict[tuple[str, int], str] | None = None) -> ExportFile:
    """A CSV, or a zip of CSVs of at most 500 documents each (credit notes in files of their own:
    Xero imports them separately, with the same columns and positive amounts)."""
    sales = [invoice for invoice in invoices if not invoice.is_credit_note]
    credits = [invoice for invoice in invoices if invoice.is_credit_note]
    named = [(f"xero-invoices-{n:03d}.csv", part) for n, part in enumerate(xero_csv_files(sales, item_codes=item_codes), 1)]
    named += [(f"xero-credit-notes-{n:03d}.csv", part)
              for n, part in enumerate(xero_csv_files(credits, item_codes=item_codes), 1)]
    if len(named) == 1:
        return ExportFile(filename=_filename(invoices, "csv", prefix="xero"), content_type="text/csv; charset=utf-8",
                          content=named[0][1])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, part in named:
            archive.writestr(name, part)
    return ExportFile(filename=_filename(invoices, "zip", prefix="xero"), content_type="application/zip",
                      content=buffer.getvalue())


# --- plain CSV ------------------------------------------------------------------------------


def plain_rows(invoice: Invoice) -> list[list[str]]:
    rows = []
    for position, line in enumerate(invoice.lines.all(), start=1):
        rows.append([
            invoice.kind, _text(invoice.number or ""), invoice.status, _formula_safe(_customer_name(invoice)),
            invoice.issue_date.isoformat() if invoice.issue_date else "",
            invoice.due_date.isoformat() if invoice.due_date else "", invoice.currency, str(position),
            _formula_safe(line.description), _formula_safe(_item_name(line)), _plain(line.quantity),
            _plain(line.unit_price), _money(line.amount), _money(line.invoice_discount_share),
            _money(line.invoice_surcharge_share), _money(line.taxable_amount),
            " ".join(tax.code for tax in line.taxes.all()), _money(line.tax_amount), _money(line.total),
            _money(invoice.total),
        ])
    return rows


def plain_csv_file(invoices: Sequence[Invoice]) -> ExportFile:
    rows = [row for invoice in invoices for row in plain_rows(invoice)]
    return ExportFile(filename=_filename(invoices, "csv"), content_type="text/csv; charset=utf-8",
                      content=_csv_bytes(PLAIN_HEADER, rows, bom=True))


# --- names ---------------------------------------------------------------------------------

FORMATS = {"iif": "QuickBooks Desktop (IIF)", "xero_csv": "Xero CSV", "csv": "CSV"}


def export_file(fmt: str, invoices: Sequence[Invoice], **options) -> ExportFile:
    if fmt == "iif":
        return iif_file(invoices)
    if fmt == "xero_csv":
        return xero_csv_file(invoices, **options)
    if fmt == "csv":
        return plain_csv_file(invoices)
    raise ValueError(f"unknown export format {fmt!r}")


def _filename(invoices: Sequence[Invoice], extension: str, *, prefix: str = "invoices") -> str:
    if len(invoices) == 1 and invoices[0].number:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in invoices[0].number)
        return f"{safe}.{extension}" if prefix == "invoices" else f"{prefix}-{safe}.{extension}"
    return f"{prefix}-{dt.date.today():%Y%m%d}-{len(invoices)}.{extension}"
