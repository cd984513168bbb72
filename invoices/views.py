"""Invoice pages: list, detail, edit, issue, void, credit notes, payments, aging, settings.

Everyone with billing access reads them; changing anything needs MANAGE_BILLING (an
accountant's POST is 403), and the invoice settings need MANAGE_SETTINGS. Input that does
not validate — in the form or in the service — is shown again with its messages and
status 400; an action the invoice's state does not allow (editing a paid invoice, paying
a void one) is explained on the page with status 409. An id that is not this MSP's is 404.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms as django_forms
from django.apps import apps
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from contracts.models import Customer
from invoices import forms, selectors, services
from invoices.delivery import with_email_state
from invoices.models import Invoice, InvoiceSettings
from invoices.services import tenant_today
from msp_billing import crud
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.csv_download import csv_download
from msp_billing.templatetags.formatting import day as format_day

billing = requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)


def _can_manage(request: HttpRequest) -> bool:
    return request.user.can(Capability.MANAGE_BILLING)


def _invoice(invoice_id: int) -> Invoice:
    return get_object_or_404(Invoice.objects.select_related("customer"), pk=invoice_id)


def _refused(request: HttpRequest, invoice: Invoice, message: str) -> HttpResponse:
    """The invoice page with why the action is not possible (409: the invoice's state says no)."""
    messages.error(request, message)
    return _detail_page(request, invoice.pk, status=409)


def _form_page(request: HttpRequest, template: str, *, status: int | None = None, **context: Any) -> HttpResponse:
    form = context.get("form")
    if status is None:
        status = 400 if form is not None and form.is_bound and form.errors else 200
    return render(request, template, {"can_manage": _can_manage(request), **context}, status=status)


# --- list and detail -----------------------------------------------------------------------


class _DateFilterField(django_forms.DateField):
    widget = django_forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def invoice_rows(request: HttpRequest) -> crud.Filtered:
    """The invoice list's rows: its page and its CSV read the same search and filters."""
    return crud.filtered(
        request,
        with_email_state(selectors.invoice_list()),
        search_fields=["number", "customer__legal_name", "customer__display_name", "customer_name"],
        filters=[
            crud.choice_filter("status", "Status", choices=Invoice.Status.choices),
            crud.choice_filter("kind", "Kind", choices=Invoice.Kind.choices),
            crud.model_filter("customer", "Customer", queryset=Customer.objects.order_by("legal_name")),
            # billing/ builds on invoices/, so its batches are looked up by name, not imported
            crud.model_filter("batch", "Billing batch", queryset=apps.get_model("billing", "BillingBatch").objects.order_by("-created_at"),
                              lookup="batch_link__batch"),
            crud.Filter("issued_from", _DateFilterField(label="Issued from", required=False), "issue_date__gte"),
            crud.Filter("issued_to", _DateFilterField(label="Issued to", required=False), "issue_date__lte"),
        ],
    )


@billing
def invoice_list(request):
    listing = crud.list_page(request, invoice_rows(request))
    return render(request, "invoices/invoice_list.html", {"listing": listing, "can_manage": _can_manage(request)},
                  status=listing.status)


def _detail_page(request: HttpRequest, invoice_id: int, *, status: int = 200, **context: Any) -> HttpResponse:
    invoice = selectors.invoice_detail(invoice_id=invoice_id)
    context.setdefault("issue_form", forms.IssueForm(initial={"issue_date": tenant_today()}))
    return render(request, "invoices/invoice_detail.html", {
        "invoice": invoice,
        "customer": invoice.customer,
        "tax_summary": selectors.invoice_tax_summary(invoice),
        "audit_events": selectors.invoice_audit_trail(invoice)[:100],
        "can_manage": _can_manage(request),
        "edit_refusal": services.edit_refusal(invoice),
        "void_refusal": services.void_refusal(invoice),
        "credit_refusal": services.credit_note_refusal(invoice),
        "payment_refusal": services.payment_refusal(invoice),
        **context,
    }, status=status)


@billing
def invoice_detail(request, invoice_id: int):
    return _detail_page(request, invoice_id)


# --- create and edit -----------------------------------------------------------------------


@billing
def invoice_create(request):
    form = forms.InvoiceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invoice = services.invoice_create_draft(customer=form.cleaned_data["customer"], notes=form.cleaned_data["notes"],
                                                    acting_user=request.user)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Draft invoice created; add its lines.")
            return redirect("invoices:edit", invoice_id=invoice.pk)
    return _form_page(request, "invoices/invoice_create.html", form=form)


@billing
def invoice_edit(request, invoice_id: int):
    invoice = _invoice(invoice_id)
    refusal = services.edit_refusal(invoice)
    if refusal:
        return _refused(request, invoice, refusal)
    lines = list(invoice.lines.order_by("sort_order", "id"))
    line_kwargs = forms.line_form_kwargs(lines)
    if request.method == "POST":
        header = forms.InvoiceHeaderForm(request.POST, invoice=invoice)
        formset = forms.LineFormSet(request.POST, prefix="lines", form_kwargs=line_kwargs)
    else:
        header = forms.InvoiceHeaderForm(initial=forms.InvoiceHeaderForm.initial_for(invoice), invoice=invoice)
        formset = forms.LineFormSet(initial=[forms.LineForm.initial_for(line) for line in lines], prefix="lines",
                                    form_kwargs=line_kwargs)
    service_errors: list[str] = []
    if request.method == "POST":
        try:
            valid = header.is_valid() & formset.is_valid()
        except ValidationError:  # a tampered management form
            valid = False
            service_errors.append("The form was incomplete; reload the page and try again.")
        if valid:
            try:
                services.invoice_edit(invoice_id=invoice.pk, acting_user=request.user, lines=formset.line_inputs(),
                                      **header.service_kwargs())
            except ValidationError as error:
                if hasattr(error, "error_dict"):
                    for field, errors in error.error_dict.items():
                        if field in header.fields:
                            header.add_error(field, errors)
                        else:
                            service_errors.extend(message for e in errors for message in e.messages)
                else:
                    service_errors.extend(error.messages)
            else:
                messages.success(request, f"{invoice} saved.")
                return redirect("invoices:detail", invoice_id=invoice.pk)
    sources = {line.pk: line for line in lines}
    rows = [(form, sources.get(form.initial.get("line_id") or _int(form["line_id"].value()))) for form in formset.forms]
    bad = request.method == "POST"
    return _form_page(request, "invoices/invoice_edit.html", invoice=invoice, header=header, formset=formset, rows=rows,
                      service_errors=service_errors, taxes_owned_by=line_kwargs["taxes_owned_by"],
                      status=400 if bad else 200)


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@billing
def invoice_delete(request, invoice_id: int):
    """GET: what deleting the draft removes (its lines, its total); POST with the token shown: delete it.
    A draft of a billing batch is deleted from its batch, which releases its items."""
    from invoices.delivery import draft_delete_token

    invoice = _invoice(invoice_id)
    if not invoice.is_draft:
        if request.method != "POST":
            return redirect("invoices:detail", invoice_id=invoice.pk)
        return _refused(request, invoice, f"{invoice} is not a draft; correct it with a credit note or void it.")
    if hasattr(invoice, "batch_link"):
        return redirect("billing:batch_invoice_delete", batch_id=invoice.batch_link.batch_id, invoice_id=invoice.pk)
    token = draft_delete_token(invoice)
    if request.method != "POST" or request.POST.get("confirmed") != token:
        return render(request, "invoices/invoice_delete_confirm.html", {
            "invoice": invoice, "lines": invoice.lines.order_by("sort_order", "id"), "token": token,
            "can_manage": _can_manage(request),
        }, status=409 if request.method == "POST" else 200)
    try:
        services.invoice_delete_draft(invoice_id=invoice.pk, acting_user=request.user)
    except ValidationError as error:
        return _refused(request, invoice, " ".join(error.messages))
    messages.success(request, "Draft deleted.")
    return redirect("invoices:list")


# --- actions -------------------------------------------------------------------------------


@billing
def invoice_issue(request, invoice_id: int):
    invoice = _invoice(invoice_id)
    if request.method != "POST":
        return redirect("invoices:detail", invoice_id=invoice.pk)
    if not invoice.is_draft or invoice.is_credit_note:
        return _refused(request, invoice, f"{invoice} is already issued.")
    form = forms.IssueForm(request.POST)
    if form.is_valid():
        try:
            issued = services.invoice_issue(invoice_id=invoice.pk, acting_user=request.user,
                                            issue_date=form.cleaned_data["issue_date"])
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Issued as {issued.number}, due {format_day(issued.due_date)}.")
            return redirect("invoices:detail", invoice_id=invoice.pk)
    for message in _form_messages(form):
        messages.error(request, message)
    return _detail_page(request, invoice.pk, status=400, issue_form=form)


@billing
def invoice_void(request, invoice_id: int):
    invoice = _invoice(invoice_id)
    refusal = services.void_refusal(invoice)
    if refusal:
        return _refused(request, invoice, refusal)
    form = forms.VoidForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.invoice_void(invoice_id=invoice.pk, acting_user=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"{invoice} is void.")
            return redirect("invoices:detail", invoice_id=invoice.pk)
    return _form_page(request, "invoices/invoice_action.html", form=form, invoice=invoice, title=f"Void {invoice}",
                      intro="The number stays used and the invoice stays on record, marked void.",
                      submit_label="Void", danger=True)


@billing
def credit_note_create(request, invoice_id: int):
    invoice = _invoice(invoice_id)
    refusal = services.credit_note_refusal(invoice)
    if refusal:
        return _refused(request, invoice, refusal)
    creditable = [item for item in services.creditable_lines(invoice) if item.taxable_amount > 0]
    form = forms.CreditNoteForm(request.POST or None, creditable=creditable)
    if request.method == "POST" and form.is_valid():
        try:
            credit = services.credit_note_create(invoice_id=invoice.pk, reason=form.cleaned_data["reason"],
                                                 acting_user=request.user, lines=form.credit_lines(),
                                                 issue_date=form.cleaned_data["issue_date"])
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Credit note {credit.number} issued for {invoice}.")
            return redirect("invoices:detail", invoice_id=credit.pk)
    return _form_page(request, "invoices/credit_note_form.html", form=form, invoice=invoice)


@billing
def payment_create(request, invoice_id: int):
    invoice = _invoice(invoice_id)
    refusal = services.payment_refusal(invoice)
    if refusal:
        return _refused(request, invoice, refusal)
    form = forms.PaymentForm(request.POST or None, initial={"amount": invoice.amount_due, "date": tenant_today()})
    if request.method == "POST" and form.is_valid():
        try:
            services.payment_record(invoice_id=invoice.pk, acting_user=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            invoice.refresh_from_db()
            messages.success(request, f"Payment recorded; {invoice} is {invoice.get_status_display().lower()}.")
            return redirect("invoices:detail", invoice_id=invoice.pk)
    return _form_page(request, "invoices/invoice_action.html", form=form, invoice=invoice,
                      title=f"Record a payment on {invoice}",
                      intro=f"Still due: {invoice.amount_due} {invoice.currency}. A payment can be partial; "
                            "more than is due is refused.",
                      submit_label="Record payment")


def _form_messages(form) -> list[str]:
    result = []
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else None
        result.extend(f"{label}: {error}" if label else error for error in errors)
    return result


# --- reports -------------------------------------------------------------------------------


class AsOfForm(django_forms.Form):
    as_of = django_forms.DateField(label="As of", required=False,
                                   widget=django_forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


def _as_of(request: HttpRequest) -> tuple[AsOfForm, dt.date, int]:
    form = AsOfForm(request.GET or None)
    today = tenant_today()
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data["as_of"] or today, 200
    if form.is_bound:
        return form, today, 400
    return AsOfForm(initial={"as_of": today}), today, 200


@billing
def aging(request):
    form, as_of, status = _as_of(request)
    report = selectors.aging_report(as_of=as_of)
    if request.GET.get("format") == "csv" and status == 200:
        rows = [(row.customer.legal_name, row.currency, *row.cells, row.total) for row in report.rows]
        return csv_download(f"aging-{as_of}.csv", ["Customer", "Currency", *report.labels(), "Total"], rows)
    return render(request, "invoices/aging.html", {"form": form, "report": report, "as_of": as_of}, status=status)


@billing
def outstanding(request):
    form, as_of, status = _as_of(request)
    balances = selectors.outstanding_by_customer(as_of=as_of)
    if request.GET.get("format") == "csv" and status == 200:
        rows = [(b.customer.legal_name, b.currency, b.invoices, b.outstanding, b.overdue, b.oldest_due_date) for b in balances]
        return csv_download(f"outstanding-{as_of}.csv", ["Customer", "Currency", "Open invoices", "Outstanding", "Overdue",
                                                         "Oldest due date"], rows)
    return render(request, "invoices/outstanding.html", {"form": form, "balances": balances, "as_of": as_of},
                  status=status)


# --- settings ------------------------------------------------------------------------------


@requires(Capability.MANAGE_SETTINGS)
def invoice_settings(request):
    row = InvoiceSettings.load()
    form = forms.InvoiceSettingsForm(request.POST or None, initial=forms.InvoiceSettingsForm.initial_for(row))
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():  # a refused next number leaves the other settings unsaved too
                services.invoice_settings_update(data=form.service_data(), acting_user=request.user)
                for field, (series, number) in form.next_numbers().items():
                    try:
                        services.invoice_numbering_set_next(series=series, next_number=number, acting_user=request.user,
                                                            year=form.cleaned_data.get("numbering_year"))
                    except ValidationError as error:
                        raise ValidationError({field if name == "next_number" else "numbering_year" if name == "year" else name: messages_
                                               for name, messages_ in error.message_dict.items()}) from None
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Invoice settings saved.")
            return redirect("invoices:settings")
    example = services.format_number(prefix=row.number_prefix, year=tenant_today().year if row.number_yearly_reset else 0,
                                     number=42, padding=row.number_padding)
    return render(request, "invoices/settings.html", {"form": form, "example": example, "cancel_url": reverse("invoices:list")},
                  status=400 if form.errors else 200)
