"""The printed invoice on the invoice page: Print / PDF / E-mail actions and the PDF and e-mail state.

``{% load invoice_documents %}``, then ``{% invoice_document_actions invoice %}`` in the page
actions and ``{% invoice_document_status invoice %}`` in the page (both read ``can_manage``).
"""
from __future__ import annotations

from django import template

from invoices import selectors
from invoices.mail import invoice_email_refusal
from invoices.models import Invoice, InvoiceEmail

register = template.Library()


def _state(context, invoice: Invoice) -> dict:
    issued = invoice.status != Invoice.Status.DRAFT
    return {
        "invoice": invoice,
        "issued": issued,
        "pdf": selectors.current_pdf(invoice) if issued else None,
        "can_manage": context.get("can_manage", False),
        "can_email": issued and invoice.status != Invoice.Status.VOID,
        "emailed": issued and invoice.emails.filter(status=InvoiceEmail.Status.SENT).exists(),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("invoices/_document_actions.html", takes_context=True)
def invoice_document_actions(context, invoice: Invoice) -> dict:
    return _state(context, invoice)


@register.inclusion_tag("invoices/_document_status.html", takes_context=True)
def invoice_document_status(context, invoice: Invoice) -> dict:
    state = _state(context, invoice)
    state["emails"] = list(selectors.invoice_emails(invoice)[:20]) if state["issued"] else []
    state["email_refusal"] = invoice_email_refusal(invoice) if state["can_email"] else None
    return state
