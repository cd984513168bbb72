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
    """POST: e-mail the invoice with its PDF to its recipients (sent by a worker); again: a resend."""
    from invoices.views import _refused

    invoice = _invoice(invoice_id)
    if request.method != "POST":
        return redirect("invoices:detail", invoice_id=invoice.pk)
    try:
        email = invoice_email_send(invoice_id=invoice.pk, acting_user=request.user)
    except ValidationError as error:
        return _refused(request, invoice, " ".join(error.messages))
    again = " again" if email.resend else ""
    messages.success(request, f"{invoice} is being e-mailed{again} to {email.to} with its PDF attached.")
    return redirect("invoices:detail", invoice_id=invoice.pk)


def _email_set(data) -> tuple[list[int], str, str]:
    """(invoice ids, back URL, batch id) from ``?batch=<id>`` or repeated ``?invoice=<id>``;
    raises ValueError with the message for bad input, Http404 for a batch that does not exist."""
    from invoices.delivery import MAX_INVOICES, invoice_set

    batch = data.get("batch", "").strip()
    picked = data.getlist("invoice")
    if batch:
        if not batch.isdigit() or len(batch) > 12:
            raise ValueError("The batch is not valid; open the e-mail page from the batch.")
        found = invoice_set("batch", int(batch))
        if found is None:
            raise Http404("No such billing batch.")
        ids, back = found
        if picked:  # Send posts the ids it showed: only those of the batch
            wanted = set(_digits(picked))
            ids = [pk for pk in ids if pk in wanted]
        return ids, back, batch
    ids = _digits(picked)
    if not ids:
        raise ValueError("Choose the invoices to e-mail.")
    if len(ids) > MAX_INVOICES:
        raise ValueError(f"E-mail at most {MAX_INVOICES} invoices at once.")
    return ids, reverse("invoices:list"), ""


def _digits(values) -> list[int]:
    if any(not value.strip().isdigit() or len(value.strip()) > 12 for value in values):
        raise ValueError("An invoice in the address is not valid; pick the invoices again.")
    return sorted({int(value) for value in values})


@billing
def email_preview(request):
    """E-mail a set of invoices: GET ``?batch=<id>`` or ``?invoice=<id>&invoice=…`` shows what each
    e-mail will be (recipients, subject, text, the PDF); POST sends them in a background job."""
    from invoices.delivery import Preview, email_preview as preview_of, invoices_email, latest_email_job

    data = request.POST if request.method == "POST" else request.GET
    if not data.get("batch") and not data.getlist("invoice"):
        return render(request, "invoices/email_preview.html", {"preview": Preview(), "nothing_chosen": True},
                      status=200 if request.method == "GET" else 400)
    try:
        ids, back_url, batch = _email_set(data)
    except ValueError as error:
        messages.error(request, str(error))
        return render(request, "invoices/email_preview.html", {"preview": Preview()}, status=400)
    preview = preview_of(ids)
    if not preview.rows:
        raise Http404("None of these invoices exists.")
    if request.method == "POST":
        try:
            job = invoices_email(invoice_ids=[row.invoice.pk for row in preview.rows], acting_user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Sending {job.total} e-mail{'s' if job.total != 1 else ''}; the progress shows below.")
            return redirect(back_url if batch else f"{reverse('invoices:email_preview')}?{data.urlencode()}")
    job = latest_email_job(ids)
    return render(request, "invoices/email_preview.html", {
        "preview": preview, "batch": batch, "back_url": back_url, "email_job": job,
        "can_manage": request.user.can(Capability.MANAGE_BILLING),
    }, status=409 if request.method == "POST" else 200)


@requires(Capability.MANAGE_SETTINGS)
def email_template(request):
    """Invoice settings → E-mail: the subject and text every invoice e-mail is written from."""
    from invoices.mail import PLACEHOLDERS, invoice_email_template_update

    row = InvoiceSettings.load()
    form = forms.EmailTemplateForm(request.POST or None, initial={"email_subject": row.email_subject,
                                                                   "email_body": row.email_body})
    if request.method == "POST" and form.is_valid():
        try:
            invoice_email_template_update(subject=form.cleaned_data["email_subject"], body=form.cleaned_data["email_body"],
                                          acting_user=request.user)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "E-mail template saved.")
            return redirect("invoices:email_template")
    return render(request, "invoices/email_template.html", {
        "form": form, "placeholders": PLACEHOLDERS, "cancel_url": reverse("invoices:settings"),
    }, status=400 if form.errors else 200)


@billing
def email_job_progress(request, job_id: int):
    """htmx: the progress bar of one e-mail job; it polls itself until the job is done."""
    from invoices.delivery import email_job_progress as progress_of
    from invoices.models import InvoiceEmailJob

    job = get_object_or_404(InvoiceEmailJob, pk=job_id)
    return render(request, "invoices/_email_progress.html", {"job": job, "progress": progress_of(job)})


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
