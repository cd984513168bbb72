"""The invoice list in bulk: its CSV, a payment for each selected invoice, their PDFs as one zip.

The list's checkboxes send repeated ``invoice=<id>``. Downloads (CSV, zip) are open to
everyone with billing access, accountants included; recording payments needs
MANAGE_BILLING. An id that is not an invoice of this MSP refuses the whole request (404)
before anything is read or written. Export to the accounting system and the e-mail
preview are other apps' pages: the list's buttons submit the same selection there.
"""
from __future__ import annotations

from collections import defaultdict
from functools import wraps
from decimal import Decimal

from django import forms as django_forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from invoices import bulk_actions
from invoices.models import Invoice, Payment
from invoices.services import payment_refusal, tenant_today
from invoices.views import billing, invoice_list, invoice_rows
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.csv_download import CHUNK, list_csv
from msp_billing.validation import EARLIEST_DATE
from msp_billing.templatetags.formatting import day as format_day

manage = requires(Capability.MANAGE_BILLING)


class _Refused(Exception):
    """A selection that cannot be read: the response that says why."""

    def __init__(self, response):
        self.response = response


def _selection(request, data) -> list[Invoice]:
    """The selected invoices, in the order ticked.

    Nothing ticked: back to the list with a message. Malformed ids: 400 with a message.
    Ids of another MSP (or none at all): 404, and nothing is touched."""
    values = data.getlist("invoice")
    if not values:
        messages.error(request, "Select at least one invoice.")
        raise _Refused(redirect("invoices:list"))
    try:
        ids = bulk_actions.parse_ids(values)
    except ValidationError as error:
        raise _Refused(render(request, "invoices/bulk_refused.html", {"message": " ".join(error.messages)},
                              status=400)) from None
    try:
        return bulk_actions.invoices_selected(ids)
    except bulk_actions.UnknownInvoices as error:
        raise Http404(str(error)) from None


def _with_selection(view):
    """Views on a selection: a selection that cannot be read answers for them."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except _Refused as refused:
            return refused.response

    return wrapped


# --- CSV -------------------------------------------------------------------------------------


@billing
def invoice_list_csv(request):
    """The invoice list as CSV, with the list's search and filters (every page of it)."""
    header = ["Id", "Number", "Kind", "Status", "Customer", "Issue date", "Due date", "Currency", "Subtotal", "Discount",
              "Surcharge", "Tax", "Total", "Paid", "Credited", "Due now", "Credits", "Exported to", "Exported at"]

    def lines(invoices):
        for i in invoices.iterator(chunk_size=CHUNK):
            yield [i.pk, i.number or "", i.get_kind_display(), i.get_status_display(), i.display_customer_name,
                   i.issue_date, i.due_date, i.currency, i.subtotal, i.discount_total, i.surcharge_total, i.tax_total,
                   i.total, i.amount_paid, i.amount_credited, i.amount_due,
                   i.credited_invoice.number if i.credited_invoice else "", i.exported_to,
                   timezone.localtime(i.exported_at) if i.exported_at else None]

    return list_csv(request, invoice_rows(request), page=invoice_list, filename="invoices.csv", header=header,
                    lines=lines)


# --- record a payment on each ------------------------------------------------------------------


class BulkPaymentForm(django_forms.Form):
    date = django_forms.DateField(label="Date paid", widget=django_forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
    method = django_forms.ChoiceField(choices=[(v, l) for v, l in Payment.Method.choices if v != Payment.Method.ACCOUNTING_SYNC])
    reference = django_forms.CharField(max_length=200, required=False,
                                       help_text="Bank reference, cheque number … recorded on every payment.")

    def clean_date(self):
        date = self.cleaned_data["date"]
        if date > tenant_today():
            raise django_forms.ValidationError("A payment cannot be dated in the future.")
        if date < EARLIEST_DATE:
            raise django_forms.ValidationError(f"Enter a date between {format_day(EARLIEST_DATE)} and today.")
        return date


def _due_by_currency(invoices: list[Invoice]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for invoice in invoices:
        if payment_refusal(invoice) is None:
            totals[invoice.currency] += invoice.amount_due
    return dict(sorted(totals.items()))


@manage
@_with_selection
def bulk_payment(request):
    """GET with the selection: what will be paid; POST: a payment of what is due on each, all or nothing."""
    invoices = _selection(request, request.POST if request.method == "POST" else request.GET)
    form = BulkPaymentForm(request.POST or None, initial={"date": tenant_today()})
    refusals = [bulk_actions.Refusal(i, r) for i in invoices if (r := payment_refusal(i))]
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                payments = bulk_actions.payments_record_in_full(
                    invoice_ids=[i.pk for i in invoices], date=form.cleaned_data["date"],
                    reference=form.cleaned_data["reference"], method=form.cleaned_data["method"], acting_user=request.user)
            except bulk_actions.BulkRefused as error:
                refusals, status = error.refusals, 409
            else:
                totals = ", ".join(f"{amount} {currency}" for currency, amount in _due_by_currency(invoices).items())
                messages.success(request, f"{len(payments)} payment{'s' if len(payments) != 1 else ''} recorded "
                                          f"({totals}); each invoice is paid in full.")
                return redirect("invoices:list")
    return render(request, "invoices/bulk_payment.html", {
        "invoices": invoices, "form": form, "refusals": refusals, "refused_ids": {r.invoice.pk for r in refusals},
        "due_by_currency": _due_by_currency(invoices),
    }, status=status)


# --- PDFs as one zip ---------------------------------------------------------------------------


@billing
@_with_selection
def pdf_zip(request):
    """GET ``?invoice=1&invoice=2``: the current PDFs as one zip, streamed; the rest listed inside it."""
    invoices = _selection(request, request.GET)
    plan = bulk_actions.pdf_archive_plan(invoices)
    if not plan.included:
        return render(request, "invoices/bulk_no_pdfs.html", {"left_out": plan.left_out}, status=409)
    response = StreamingHttpResponse(bulk_actions.pdf_archive(plan), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="invoices-{tenant_today().isoformat()}.zip"'
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
