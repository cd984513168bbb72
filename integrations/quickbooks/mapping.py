"""Our customers, items, invoices and credit notes as QuickBooks Online bodies, and back.

Pure translation, no requests: the connector sends what these build. QuickBooks owns taxes
while connected, so lines carry ``TAX`` / ``NON`` and no tax amounts; a document in a
foreign currency carries ``CurrencyRef`` and no ``ExchangeRate``.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from quickbooks.objects.base import Address, EmailAddress, Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer as QboCustomer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice as QboInvoice
from quickbooks.objects.item import Item as QboItem

from integrations.base import LocalItem, RemoteRecord
from integrations.files import line_quantity_and_price
from integrations.models import RemoteMapping

NOTE_PREFIX = "MSP Billing "
TAXABLE_CODE = "TAX"
NON_TAXABLE_CODE = "NON"


def quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def display_name(name: str) -> str:
    """QuickBooks refuses ``:`` in names (it separates sub-customers) and names over 100 characters."""
    return " ".join(name.replace(":", "-").split())[:100]


def ref(value: str, name: str = "") -> Ref:
    ref = Ref()
    ref.value = str(value)
    ref.name = name
    return ref


def address_text(address: dict | None) -> str:
    if not address:
        return ""
    parts = [address.get(f"Line{n}", "") for n in range(1, 6)] + [address.get("City", ""), address.get("PostalCode", ""),
                                                                   address.get("Country", "")]
    return "\n".join(part for part in parts if part)


def customer_mapping_extra(record: RemoteRecord) -> dict:
    """What a customer mapping remembers besides the id: its QuickBooks currency (it never changes there)."""
    currency = str(record.data.get("currency") or "").upper()
    return {"currency": currency} if currency else {}


def customer_body(customer, *, home_currency: str) -> dict:
    body = QboCustomer()
    body.DisplayName = display_name(customer.legal_name)
    if customer.currency and customer.currency.upper() != home_currency:
        body.CurrencyRef = ref(customer.currency.upper())  # fixed for good once created
    body.CompanyName = customer.legal_name[:100]
    if customer.billing_email:
        body.PrimaryEmailAddr = EmailAddress()
        body.PrimaryEmailAddr.Address = customer.billing_email
    lines = [line.strip() for line in (customer.address or "").splitlines() if line.strip()]
    if lines:
        body.BillAddr = Address()
        for number, line in enumerate(lines[:5], start=1):
            setattr(body.BillAddr, f"Line{number}", line[:500])
    body.Taxable = not customer.tax_exempt
    return json.loads(body.to_json())


def item_body(item: LocalItem, income_account_id: str) -> dict:
    body = QboItem()
    body.Name = display_name(item.name)
    body.Type = "NonInventory" if item.local_type == "product" else "Service"
    body.UnitPrice = item.price
    body.Taxable = item.taxable
    body.IncomeAccountRef = ref(income_account_id)
    if item.sku:
        body.Sku = item.sku[:100]
    return json.loads(body.to_json())


def product_item(product) -> LocalItem:
    return LocalItem(local_type="product", local_id=product.pk, name=product.name, price=product.price.amount,
                     currency=str(product.price.currency), taxable=product.taxable, sku=product.sku,
                     accounting_code=product.accounting_code)


def rate_item_item(rate_item) -> LocalItem:
    return LocalItem(local_type="rate_item", local_id=rate_item.pk, name=rate_item.name, price=rate_item.rate.amount,
                     currency=str(rate_item.rate.currency), accounting_code=rate_item.accounting_code)


def item_ids(documents: Iterable) -> dict[str, set[int]]:
    ids: dict[str, set[int]] = {"product": set(), "rate_item": set()}
    for doc in documents:
        for line in doc.lines.all():
            if line.product_id:
                ids["product"].add(line.product_id)
            elif line.rate_item_id:
                ids["rate_item"].add(line.rate_item_id)
    return ids


def document_body(doc, key: str, customers: Mapping[str, RemoteMapping], items: Mapping[str, Mapping[str, RemoteMapping]],
                   defaults: Mapping[str, str], *, home_currency: str = "") -> tuple[str, dict]:
    """An Invoice or a CreditMemo (positive figures), without tax lines: QuickBooks computes tax."""
    credit = doc.is_credit_note
    body = CreditMemo() if credit else QboInvoice()
    body.DocNumber = doc.number
    if home_currency and doc.currency.upper() != home_currency:
        body.CurrencyRef = ref(doc.currency.upper())
        # python-quickbooks sends ExchangeRate 1 (invoice) / 0 (credit memo) by default, which would book a
        # foreign document at par: leave it out, and QuickBooks uses its rate for the document's date (TxnDate).
        body.ExchangeRate = None
    body.TxnDate = doc.issue_date.isoformat()
    if not credit and doc.due_date:
        body.DueDate = doc.due_date.isoformat()
    body.PrivateNote = NOTE_PREFIX + key
    customer = customers[str(doc.customer_id)]
    body.CustomerRef = ref(customer.remote_id, customer.remote_name)
    email = doc.customer_email or doc.customer.billing_email
    if email:
        body.BillEmail = EmailAddress()
        body.BillEmail.Address = email
    exempt = doc.customer_tax_exempt if doc.customer_name else doc.customer.tax_exempt
    for number, line in enumerate(doc.lines.all(), start=1):
        quantity, price = line_quantity_and_price(line)
        amount = line.taxable_amount
        if credit:  # a credit memo carries positive figures
            amount = -amount
            if price < 0:
                price = -price
            else:
                quantity = -quantity
        item_ref = defaults["default_item_id"]
        if line.product_id and str(line.product_id) in items["product"]:
            item_ref = items["product"][str(line.product_id)].remote_id
        elif line.rate_item_id and str(line.rate_item_id) in items["rate_item"]:
            item_ref = items["rate_item"][str(line.rate_item_id)].remote_id
        detail = SalesItemLineDetail()
        detail.ItemRef = ref(item_ref)
        detail.Qty = quantity
        detail.UnitPrice = price
        detail.TaxCodeRef = ref(TAXABLE_CODE if line.taxable and not exempt else NON_TAXABLE_CODE)
        sales_line = SalesItemLine()
        sales_line.LineNum = number
        sales_line.Description = line.description[:4000]
        sales_line.Amount = amount
        sales_line.SalesItemLineDetail = detail
        body.Line.append(sales_line)
    return ("CreditMemo" if credit else "Invoice"), json.loads(body.to_json())
