"""Our invoices, credit notes, customers, items and tax rates ↔ xero-python models.

Pure functions: no ORM queries, no HTTP. They read the attributes of the objects they are
given (model instances or anything shaped like them) plus an :class:`ExportContext` that
the connector fills from the remote mappings, so every rule here is tested without a
database or a server.

The rules (``docs/integrations-xero.md`` has the why):

* **Dates** are ``datetime.date`` objects: the SDK writes them as ``/Date(ms)/``.
* **Amounts**: each line goes out at its *taxable amount* (the printed line amount with its
  share of the invoice discount and surcharge), with our own per-line ``TaxAmount``, so
  Xero's invoice equals ours to the cent. The gross (before discounts) goes out as
  quantity × unit price (``unitdp=4``): as printed when that gives it, else with the price
  recomputed to 4 places, else as ``1 × gross`` (a prorated fee); the line's discount and
  its share of the invoice discount go out as ``DiscountAmount``. A surcharge share is
  carried in the price (Xero has no negative discounts).
* **Account code** per line: the product's / rate item's accounting code (translated
  through an ``account`` mapping where the MSP set one), else the connection's default
  sales account.
* **Item code** only where the organisation has that item (a ``product`` / ``rate_item``
  mapping with a code): organisations without inventory items refuse unknown codes.
* **Tax type** from the ``tax_rate`` mapping of the line's tax code(s) — several taxes on
  one line (GST + compound QST) map as one combined key ``"GST+QST"``; a line without
  tax gets the connection's no-tax type (``NONE`` by default).
* **Credit notes** are Xero ``ACCRECCREDIT`` documents with positive figures.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from xero_python.accounting import models as xm

from integrations.base import LocalItem, RemotePayment, RemoteRecord, quantity_and_price

DEFAULT_SALES_ACCOUNT = "200"
NO_TAX_TYPE = "NONE"
TAX_KEY_SEPARATOR = "+"
MAX_DESCRIPTION = 4000
ITEM_CODE_LENGTH = 30
ITEM_NAME_LENGTH = 50


class MappingError(ValueError):
    """Something on our side has no Xero counterpart yet (a tax code, a currency, a contact)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ExportContext:
    """What the connector knows about the organisation, read once per chunk."""

    contact_ids: Mapping[int, str] = field(default_factory=dict)  # customer id → ContactID
    item_codes: Mapping[tuple[str, int], str] = field(default_factory=dict)  # ("product"|"rate_item", id) → Code
    tax_types: Mapping[str, str] = field(default_factory=dict)  # tax code or "A+B" → TaxType
    account_codes: Mapping[str, str] = field(default_factory=dict)  # our accounting code → Xero account code
    contract_names: Mapping[int, str] = field(default_factory=dict)  # contract id → name (for Reference)
    no_tax_type: str = NO_TAX_TYPE
    default_account_code: str = DEFAULT_SALES_ACCOUNT


# --- customers ↔ contacts ------------------------------------------------------------------------


def customer_to_contact(customer: Any, *, contact_number: str) -> xm.Contact:
    """A customer as a Xero contact; ``contact_number`` (our key) lets us find it again."""
    lines = [line.strip() for line in (customer.address or "").splitlines() if line.strip()]
    addresses = []
    if lines:
        first, rest = lines[:3], lines[3:]
        parts = first + ([", ".join(rest)] if rest else [])
        addresses.append(xm.Address(address_type="POBOX", **{f"address_line{n}": text[:500] for n, text in enumerate(parts, 1)}))
    contact = xm.Contact(
        name=customer.legal_name.strip()[:255],
        contact_number=contact_number[:50],
        email_address=(customer.billing_email or None),
        tax_number=(customer.tax_id or "")[:50] or None,
        addresses=addresses or None,
        is_customer=True,
    )
    currency = currency_code(customer.currency, strict=False)
    if currency is not None:
        contact.default_currency = currency
    return contact


def contact_to_record(contact: xm.Contact) -> RemoteRecord:
    status = getattr(contact, "contact_status", None)
    return RemoteRecord(
        remote_id=str(contact.contact_id), name=contact.name or "", code=contact.contact_number or "",
        active=(status in (None, "ACTIVE")),
        data={"email": contact.email_address or "", "tax_number": contact.tax_number or "",
              "currency": _enum_value(contact.default_currency) or ""},
    )


# --- items -----------------------------------------------------------------------------------------


_CODE_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def item_code_for(item: LocalItem) -> str:
    """The code we give a new Xero item: the product's SKU, or a code made from the rate item's name."""
    base = item.sku or f"{item.name}"
    code = _CODE_SAFE.sub("-", base.strip()).strip("-").upper() or f"ITEM-{item.local_id}"
    if len(code) > ITEM_CODE_LENGTH:
        suffix = f"-{item.local_id}"
        code = code[: ITEM_CODE_LENGTH - len(suffix)].rstrip("-") + suffix
    return code


def local_item_to_item(item: LocalItem, *, code: str, account_code: str) -> xm.Item:
    """A product / rate item as a sold (not tracked) Xero item at our price."""
    return xm.Item(
        code=code[:ITEM_CODE_LENGTH], name=item.name.strip()[:ITEM_NAME_LENGTH], description=item.name.strip()[:MAX_DESCRIPTION],
        is_sold=True, is_purchased=False,
        sales_details=xm.Purchase(unit_price=Decimal(item.price), account_code=account_code),
    )


def item_to_record(item: xm.Item) -> RemoteRecord:
    sales = item.sales_details
    price = getattr(sales, "unit_price", None)
    return RemoteRecord(
        remote_id=str(item.item_id), name=item.name or item.code, code=item.code or "",
        price=Decimal(str(price)) if price is not None else None,
        active=item.is_sold is not False,
        data={"account_code": getattr(sales, "account_code", None) or "", "tax_type": getattr(sales, "tax_type", None) or "",
              "description": item.description or ""},
    )


# --- tax rates --------------------------------------------------------------------------------------


def tax_rate_to_record(rate: xm.TaxRate) -> RemoteRecord:
    effective = rate.effective_rate if rate.effective_rate is not None else rate.display_tax_rate
    return RemoteRecord(
        remote_id=rate.tax_type, name=rate.name or rate.tax_type, code=rate.tax_type,
        percent=Decimal(str(effective)) if effective is not None else None,
        active=(rate.status in (None, "ACTIVE")) and rate.can_apply_to_revenue is not False,
        data={"components": [{"name": c.name, "rate": str(c.rate), "compound": bool(c.is_compound)}
                             for c in (rate.tax_components or [])]},
    )


def tax_key(codes: Iterable[str]) -> str:
    """The mapping key of a line's taxes: ``"VAT19"``, or ``"GST+QST"`` for several, in charging order."""
    return TAX_KEY_SEPARATOR.join(code for code in codes if code)


@dataclass(frozen=True)
class LocalTax:
    """One of our taxes (or a combination charged together on one line)."""

    key: str
    components: tuple[tuple[Decimal, bool], ...]  # (percent, compound) in charging order


def suggest_tax_types(local: Sequence[LocalTax], remote: Sequence[RemoteRecord]) -> dict[str, str]:
    """Exact matches only: the one active Xero rate whose components are the same percents.

    A combination (GST 5 % + compound QST 9.975 %) matches a Xero rate with the same
    components in the same order; a single tax matches a single-component rate (or a rate
    with the same effective percent). Ambiguous or missing matches are left to the admin.
    """
    suggestions: dict[str, str] = {}
    for tax in local:
        wanted = [(percent.normalize(), compound) for percent, compound in tax.components]
        found = []
        for record in remote:
            if not record.active:
                continue
            parts = [(Decimal(str(part["rate"])).normalize(), bool(part["compound"]))
                     for part in record.data.get("components", [])]
            parts = [part for part in parts if part[0] != 0] or parts
            if parts == wanted or (len(wanted) == 1 and not wanted[0][1] and record.percent is not None
                                   and record.percent.normalize() == wanted[0][0] and len(parts) <= 1):
                found.append(record.code)
        if len(found) == 1:
            suggestions[tax.key] = found[0]
    return suggestions


# --- documents ---------------------------------------------------------------------------------------


def currency_code(code: str, *, strict: bool = True) -> xm.CurrencyCode | None:
    try:
        return xm.CurrencyCode((code or "").upper())
    except ValueError:
        if strict:
            raise MappingError(f"Xero does not know the currency {code!r}.", code="currency") from None
        return None


def line_figures(*, quantity: Decimal, unit_price: Decimal, gross: Decimal, amount: Decimal,
                 currency: str) -> tuple[Decimal, Decimal, Decimal | None]:
    """(Quantity, UnitAmount, DiscountAmount) that give exactly ``amount`` in Xero.

    ``gross`` is the line before any discount; what the line's own discount and its share of
    the invoice discount take off goes out as ``DiscountAmount``. A line that ends above its
    gross (a surcharge share) carries the amount in its price: Xero has no negative discounts.
    """
    discount = gross - amount
    if discount == 0 or (discount > 0 and gross > 0):
        q, u = quantity_and_price(quantity=quantity, unit_price=unit_price, target=gross, currency=currency)
        return q, u, (discount or None)
    q, u = quantity_and_price(quantity=quantity, unit_price=unit_price, target=amount, currency=currency)
    return q, u, None


def line_tax_codes(line: Any) -> list[str]:
    """The codes of the taxes charged on a line, in charging order."""
    taxes = getattr(line, "taxes", None)
    if taxes is not None and hasattr(taxes, "all"):
        try:
            charged = [tax.code for tax in taxes.all()]
        except ValueError:  # an unsaved line has no tax rows yet
            charged = []
        if charged:
            return charged
    return [code for code in (line.tax_codes or []) if code]


def line_to_line_item(line: Any, *, ctx: ExportContext, currency: str, sign: int = 1) -> xm.LineItem:
    """One invoice line; ``sign=-1`` turns a credit note's negative line into Xero's positive one."""
    amount = sign * line.taxable_amount
    quantity, unit, discount = line_figures(quantity=sign * line.quantity, unit_price=line.unit_price,
                                            gross=sign * line.gross_amount, amount=amount, currency=currency)
    codes = line_tax_codes(line)
    if codes and line.tax_amount:
        key = tax_key(codes)
        tax_type = ctx.tax_types.get(key)
        if not tax_type:
            raise MappingError(f"Tax {key} has no Xero tax rate yet: map it on the accounting page.", code="tax_unmapped")
    elif codes:
        tax_type = ctx.tax_types.get(tax_key(codes)) or ctx.no_tax_type
    else:
        tax_type = ctx.no_tax_type
    item = xm.LineItem(
        description=(line.description or "")[:MAX_DESCRIPTION],
        quantity=quantity, unit_amount=unit, line_amount=amount,
        account_code=account_code_for(line, ctx), tax_type=tax_type, tax_amount=sign * line.tax_amount,
    )
    if discount:
        item.discount_amount = discount
    code = item_code_for_line(line, ctx)
    if code:
        item.item_code = code
    return item


def account_code_for(line: Any, ctx: ExportContext) -> str:
    for source in (getattr(line, "product", None), getattr(line, "rate_item", None)):
        code = getattr(source, "accounting_code", "") if source is not None else ""
        if code:
            return ctx.account_codes.get(code, code)
    return ctx.default_account_code


def item_code_for_line(line: Any, ctx: ExportContext) -> str | None:
    if getattr(line, "product_id", None):
        return ctx.item_codes.get(("product", line.product_id))
    if getattr(line, "rate_item_id", None):
        return ctx.item_codes.get(("rate_item", line.rate_item_id))
    return None


def _contact_for(document: Any, ctx: ExportContext) -> xm.Contact:
    contact_id = ctx.contact_ids.get(document.customer_id)
    if not contact_id:
        raise MappingError(f"{document.customer_name or document.customer_id} has no Xero contact yet.", code="contact_unmapped")
    return xm.Contact(contact_id=contact_id)


def _reference(document: Any, lines: Sequence[Any], ctx: ExportContext) -> str:
    names = []
    for line in lines:
        name = ctx.contract_names.get(getattr(line, "contract_id", None))
        if name and name not in names:
            names.append(name)
    return ", ".join(names)[:255]


def invoice_to_xero(invoice: Any, lines: Sequence[Any], ctx: ExportContext) -> xm.Invoice:
    """An issued invoice as an AUTHORISED Xero sales invoice with our number."""
    if not invoice.number or invoice.issue_date is None:
        raise MappingError("Only issued invoices can be exported.", code="not_issued")
    currency = currency_code(invoice.currency)
    return xm.Invoice(
        type="ACCREC", contact=_contact_for(invoice, ctx), invoice_number=invoice.number,
        reference=_reference(invoice, lines, ctx) or None,
        date=invoice.issue_date, due_date=invoice.due_date or invoice.issue_date,
        currency_code=currency, line_amount_types=xm.LineAmountTypes.EXCLUSIVE, status="AUTHORISED",
        line_items=[line_to_line_item(line, ctx=ctx, currency=invoice.currency) for line in lines],
    )


def credit_note_to_xero(credit_note: Any, lines: Sequence[Any], ctx: ExportContext) -> xm.CreditNote:
    """A credit note as an AUTHORISED Xero ACCRECCREDIT with positive figures and our number."""
    if not credit_note.number or credit_note.issue_date is None:
        raise MappingError("Only issued credit notes can be exported.", code="not_issued")
    credited = getattr(credit_note, "credited_invoice", None)
    reference = f"Credit for {credited.number}" if credited is not None and credited.number else _reference(credit_note, lines, ctx)
    return xm.CreditNote(
        type="ACCRECCREDIT", contact=_contact_for(credit_note, ctx), credit_note_number=credit_note.number,
        reference=reference or None, date=credit_note.issue_date,
        currency_code=currency_code(credit_note.currency), line_amount_types=xm.LineAmountTypes.EXCLUSIVE,
        status="AUTHORISED",
        line_items=[line_to_line_item(line, ctx=ctx, currency=credit_note.currency, sign=-1) for line in lines],
    )


def allocation_for(credit_note: Any, *, invoice_remote_id: str, amount: Decimal) -> xm.Allocations:
    """Apply a pushed credit note to the invoice it corrects (as our books already do)."""
    return xm.Allocations(allocations=[xm.Allocation(
        invoice=xm.Invoice(invoice_id=invoice_remote_id), amount=amount, date=credit_note.issue_date)])


# --- payments back -------------------------------------------------------------------------------------


def payment_to_remote(payment: xm.Payment) -> RemotePayment | None:
    """A Xero payment on a sales invoice (None for deleted ones or ones on other documents)."""
    invoice = payment.invoice
    if invoice is None or not invoice.invoice_id or payment.status not in (None, "AUTHORISED"):
        return None
    return RemotePayment(
        remote_id=str(payment.payment_id), invoice_remote_id=str(invoice.invoice_id),
        amount=Decimal(str(payment.amount)), date=as_date(payment.date),
        reference=(payment.reference or "")[:200],
    )


def allocation_to_remote(allocation: xm.Allocation, *, credit_note_number: str) -> RemotePayment | None:
    """A credit note made in Xero and applied there to one of our invoices: a credit, pulled back like a payment."""
    invoice = allocation.invoice
    if invoice is None or not invoice.invoice_id or allocation.is_deleted:
        return None
    return RemotePayment(
        remote_id=f"allocation:{allocation.allocation_id}", invoice_remote_id=str(invoice.invoice_id),
        amount=Decimal(str(allocation.amount)), date=as_date(allocation.date),
        reference=f"Xero credit note {credit_note_number}".strip()[:200],
    )


def as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise ValueError(f"not a date: {value!r}")


def validation_messages(element: Any) -> list[str]:
    return [error.message for error in (getattr(element, "validation_errors", None) or []) if error.message]


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)
