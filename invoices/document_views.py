"""The printed invoice: PDF download, print page, e-mail, rendering progress, and the branding page.

PDFs and logos are never served from a media URL: the PDF view looks the invoice up in
the active MSP's schema (another MSP's id is 404) and only serves a file stored under
that MSP's own folder. Everyone with billing access reads; e-mailing needs
MANAGE_BILLING; branding needs MANAGE_SETTINGS.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import connection
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from invoices import forms, selectors
from invoices.branding import invoice_branding_update, logo_data_uri
from invoices.mail import invoice_email_send
from invoices.models import Invoice, InvoiceSettings
from invoices.pdf import invoice_html, pdf_is_stored
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability

billing = requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
MAX_PROGRESS_IDS = 2000


def _invoice(invoice_id: int) -> Invoice:
    return get_object_or_404(Invoice.objects.select_related("customer"), pk=invoice_id)


@billing
def invoice_pdf(request, invoice_id: int):
    """The current PDF as a download; 404 with the reason while there is none."""
    invoice = _invoice(invoice_id)
    pdf = selectors.current_pdf(invoice)
    if pdf is None or not pdf.file.name.startswith(f"{connection.schema_name}/") or not pdf_is_stored(pdf):
        return render(request, "invoices/pdf_missing.html", {"invoice": invoice, "poll_url": _poll_url([invoice.pk])},
                      status=404)
    response = FileResponse(default_storage.open(pdf.file.name, "rb"), as_attachment=True,
                            filename=f"{invoice.number}.pdf", content_type="application/pdf")
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@billing
def invoice_print(request, invoice_id: int):
    """The invoice as the PDF prints it, as an HTML page with a print stylesheet (drafts too)."""
    try:
        invoice = selectors.invoice_document(invoice_id=invoice_id)
    except Invoice.DoesNotExist:
        raise Http404("No such invoice") from None
    return HttpResponse(invoice_html(invoice, for_print=True, request=request))


@billing
def invoice_email(request, invoice_id: int):
    """POST: e-mail the invoice with its PDF to the customer's billing e-mail (sent by a worker)."""
    from invoices.views import _refused

    invoice = _invoice(invoice_id)
    if request.method != "POST":
        return redirect("invoices:detail", invoice_id=invoice.pk)
    try:
        email = invoice_email_send(invoice_id=invoice.pk, acting_user=request.user)
    except ValidationError as error:
        return _refused(request, invoice, " ".join(error.messages))
    messages.success(request, f"{invoice} is being e-mailed to {email.to} with its PDF attached.")
    return redirect("invoices:detail", invoice_id=invoice.pk)


def _poll_url(ids: list[int]) -> str:
    return f"{reverse('invoices:pdf_progress')}?ids={','.join(map(str, ids))}"


def _ids(request) -> list[int]:
    ids: list[int] = []
    for value in request.GET.getlist("ids"):
        for part in value.split(","):
            part = part.strip()
            if part.isdigit() and len(ids) < MAX_PROGRESS_IDS:
                ids.append(int(part))
    return ids


@billing
def pdf_progress(request):
    """``?ids=1,2,3``: a fragment with a <progress> of the PDFs rendered; it polls itself (htmx) until done."""
    ids = _ids(request)
    done, total = selectors.pdf_progress(ids)
    single = ids[0] if len(ids) == 1 and total == 1 and done == 1 else None
    return render(request, "invoices/_pdf_progress.html", {
        "done": done, "total": total, "complete": done >= total, "single": single,
        "poll_url": _poll_url(ids),
    })


@requires(Capability.MANAGE_SETTINGS)
def invoice_branding(request):
    """Logo, brand colour and template of the PDFs."""
    row = InvoiceSettings.load()
    form = forms.BrandingForm(request.POST or None, request.FILES or None,
                              initial={"brand_colour": row.brand_colour, "pdf_template": row.pdf_template})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            invoice_branding_update(acting_user=request.user, brand_colour=data["brand_colour"],
                                    pdf_template=data["pdf_template"], logo=data["logo"],
                                    remove_logo=data["remove_logo"])
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Branding saved. New and edited invoices are rendered with it.")
            return redirect("invoices:branding")
    sample = selectors.invoice_list().exclude(status=Invoice.Status.DRAFT).first() or selectors.invoice_list().first()
    return render(request, "invoices/branding.html", {
        "form": form, "row": row, "logo": logo_data_uri(row), "sample": sample,
        "cancel_url": reverse("invoices:settings"),
    }, status=400 if form.errors else 200)
