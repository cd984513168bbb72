"""Billing: dashboard, batches (the Create New Batch wizard), reports."""
from __future__ import annotations

from dataclasses import replace

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from billing import selectors, services
from billing.consequences import delete_consequences, draft_delete_consequences, generate_consequences
from billing.models import BillingBatch, BillingSchedule
from billing.due import issue_zero_invoices
from billing.schedule import schedule_save
from billing.wizard import (MatchChanged, WizardChoice, WizardFilterForm, choice_from_post, contract_items, filter_fields, wizard_page,
                            wizard_summary)
from contracts.models import Contract
from invoices.models import Invoice
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.tenants.today import tenant_today
from msp_billing.templatetags.formatting import day as format_day


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def billing_home(request):
    batches = list(BillingBatch.objects.select_related("created_by")[:50])
    totals = selectors.batch_totals(batch.pk for batch in batches)
    for batch in batches:
        batch.totals = totals.get(batch.pk, [])
    return render(request, "billing/home.html", {"batches": batches})


@requires(Capability.VIEW_BILLING)
def reports(request):
    """The reports moved to their own app; old links and bookmarks land on its index."""
    return redirect("reports:index")


def _filters(request):
    data = request.GET.copy() if request.method == "GET" else request.POST.copy()
    data.setdefault("cutoff", tenant_today().isoformat())
    form = WizardFilterForm(data)
    if not form.is_valid():
        return form, None
    return form, form.cleaned_data


class RunForm(forms.Form):
    name = forms.CharField(label="Save As", max_length=120)
    consolidated = forms.BooleanField(label="One invoice per customer (consolidated)", required=False)


def _consolidated(request) -> bool:
    return request.method == "POST" and request.POST.get("consolidated") in ("on", "true", "1")


def _run_refused(error: ValidationError) -> int:
    text = " ".join(error.messages)
    return 409 if "another batch" in text or "changed since" in text else 400


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def batch_new(request):
    """Billing → Create New Batch: a page of contracts at a time with search and "select all
    that match", the batch details for the whole selection (loaded after the page), Save As, Run.

    A POST runs the batch — unless it turns a page (``page``), selects all that match or
    none (``select``) or asks for the details (``show_details``, the page without
    JavaScript): those draw the page again with the posted choice (the list alone for htmx)."""
    form, filters = _filters(request)
    if filters is None:
        return render(request, "billing/batch_new.html", {"filter_form": form, "rows": [], "run_form": RunForm()}, status=400)
    cutoff = filters["cutoff"]
    choice, summary, status = WizardChoice(), None, 200
    run_form = RunForm(request.POST or None, initial={"name": f"Billing to {format_day(cutoff)}"})
    data = request.POST if request.method == "POST" else request.GET
    select, redraw = data.get("select"), request.method == "POST" and any(k in request.POST for k in ("page", "select", "show_details"))
    if request.method == "POST":
        try:
            choice = choice_from_post(request.POST)
        except forms.ValidationError as error:
            run_form.add_error(None, error)
            choice, status, redraw = WizardChoice(), 400, True
    if select in ("all", "none") and status == 200:
        choice = choice.reset(all_matching=select == "all")
    if request.method == "POST" and not redraw:
        if run_form.is_valid():
            try:
                summary = wizard_summary(filters=filters, choice=choice, consolidated=_consolidated(request), details=False)
                batch = services.batch_run(name=run_form.cleaned_data["name"], cutoff=cutoff, selection=summary.selection,
                                           consolidated=run_form.cleaned_data["consolidated"], acting_user=request.user)
            except MatchChanged:
                run_form.add_error(None, MatchChanged.message)
                status = 409
            except ValidationError as error:
                run_form.add_error(None, error)
                status = _run_refused(error)
            else:
                messages.success(request, f"Batch “{batch.name}” billed: review its draft invoices, then generate them.")
                return redirect("billing:batch_detail", batch_id=batch.pk)
        else:
            status = 400
    details, due_token = None, choice.items.due_token
    if status != 200 or "show_details" in request.POST:
        # Drawn again after a refused run (or asked for without JavaScript): the details now, for
        # what is due and matches now — or, when the choice cannot be read any more, for the pre-selection.
        choice = replace(choice, match_token=None)
        try:
            summary = wizard_summary(filters=filters, choice=choice, consolidated=_consolidated(request))
        except forms.ValidationError:
            choice = WizardChoice()
            summary = wizard_summary(filters=filters, choice=choice, consolidated=False)
        details = summary.details
        due_token = due_token if status == 200 and due_token else summary.token
    listing = wizard_page(filters=filters, choice=choice, page_number=data.get("page") if select is None else 1)
    if request.headers.get("HX-Request") and redraw and status == 200 and details is None:
        # htmx: the list alone; the batch details follow the selection (the form listens for the event).
        response = render(request, "billing/_batch_list.html", _list_context(request, filters, listing))
        response["HX-Trigger-After-Settle"] = "batch-selection-changed"  # the form as swapped in
        return response
    context = {
        **_list_context(request, filters, listing), "filter_form": form, "run_form": run_form, "details": details,
        "due_token": due_token or "", "pending": details is None, "picked_count": len(summary.selection.contract_ids) if details else None,
        "filtered": any(filters.get(name) for name in ("customer", "type", "taxable", "q")), "zero_invoices": issue_zero_invoices(),
    }
    return render(request, "billing/batch_new.html", context, status=status)


def _list_context(request, filters: dict, listing) -> dict:
    cutoff = filters["cutoff"]
    return {
        "listing": listing, "rows": listing.rows, "cutoff": cutoff, "filters": filters, "filter_fields": filter_fields(filters),
        # one prefix for every row's "load items" link (reversing it per row costs on a long list)
        "items_base": reverse("billing:batch_contract_items", args=[1]).removesuffix("1/items/"), "cutoff_iso": cutoff.isoformat(),
    }


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def batch_preview(request):
    """htmx: the batch details for the choice the form states, from the run's own arithmetic
    (the whole selection, every page of it)."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form, filters = _filters(request)
    if filters is None:
        return render(request, "billing/_batch_details.html", {"details": None}, status=400)
    try:
        choice = choice_from_post(request.POST)
        summary = wizard_summary(filters=filters, choice=choice, consolidated=_consolidated(request))
    except forms.ValidationError:
        return render(request, "billing/_batch_details.html", {"details": None}, status=400)
    except MatchChanged:
        return render(request, "billing/_batch_details.html", {"details": None, "problem": MatchChanged.message}, status=409)
    # The fingerprint the page had stays: a run bills nothing if what is due changed since.
    return render(request, "billing/_batch_details.html", {
        "details": summary.details, "due_token": choice.items.due_token or summary.token,
        "picked_count": len(summary.selection.contract_ids)})


@requires(Capability.VIEW_BILLING)
def batch_contract_items(request, contract_id: int):
    """htmx: the single items due on one contract, loaded when the admin expands it."""
    form, filters = _filters(request)
    if filters is None:
        return render(request, "billing/_batch_items.html", {"items": None}, status=400)
    if not Contract.objects.filter(pk=contract_id).exists():
        raise Http404("No such contract.")
    items = contract_items(cutoff=filters["cutoff"], contract_ids={contract_id}, selection=None)[contract_id]
    return render(request, "billing/_batch_items.html", {"items": items})


def _batch_or_404(batch_id: int) -> BillingBatch:
    try:
        return BillingBatch.objects.select_related("created_by").get(pk=batch_id)
    except BillingBatch.DoesNotExist:
        raise Http404("No such billing batch.") from None


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def batch_detail(request, batch_id: int):
    from invoices.delivery import latest_email_job, with_email_state

    batch = _batch_or_404(batch_id)
    invoices = list(with_email_state(services.batch_invoices(batch)))
    issued = [i for i in invoices if i.status != Invoice.Status.DRAFT]
    try:
        progress_url = reverse("invoices:pdf_progress") + "?ids=" + ",".join(str(i.pk) for i in issued)
    except NoReverseMatch:
        progress_url = None
    from invoices.audit import audit_events

    context = {"batch": batch, "invoices": invoices, "overview": selectors.batch_overview(invoices), "issued_count": len(issued), "draft_count": len(invoices) - len(issued),
               "pdf_progress_url": progress_url if issued else None, "events": audit_events(obj=batch)[:50],
               "invoice_ids": ",".join(str(i.pk) for i in issued), "can_manage": request.user.can(Capability.MANAGE_BILLING),
               "email_job": latest_email_job([i.pk for i in issued]) if issued else None}
    return render(request, "billing/batch_detail.html", context)


def _confirmation(request, batch, consequences, *, title: str, button: str, action_url: str, status: int = 200):
    """The page that says what an action that cannot be undone will do; its form posts the token back."""
    return render(request, "billing/confirm.html", {
        "batch": batch, "c": consequences, "title": title, "button": button, "action_url": action_url,
        "tickets": consequences.release.tickets(), "periods": consequences.release.periods(),
        "charges": consequences.release.charges(), "can_manage": request.user.can(Capability.MANAGE_BILLING),
    }, status=status)


def _changed(error: ValidationError) -> bool:
    return services.CHANGED_SINCE_CONFIRMED in error.messages


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def batch_invoice_delete(request, batch_id: int, invoice_id: int):
    """GET: what deleting the draft releases; POST (with the token shown): delete it."""
    batch = _batch_or_404(batch_id)
    try:
        consequences = draft_delete_consequences(batch, invoice_id)
    except Invoice.DoesNotExist:
        raise Http404("That invoice is not in this batch.") from None
    page = dict(title=f"Delete the draft for {consequences.delete[0].customer}?", button="Delete draft",
                action_url=reverse("billing:batch_invoice_delete", args=[batch.pk, invoice_id]))
    if request.method != "POST":
        return _confirmation(request, batch, consequences, **page)
    try:
        services.batch_invoice_delete(batch_id=batch.pk, invoice_id=invoice_id, acting_user=request.user,
                                      confirmed=request.POST.get("confirmed", ""))
    except Invoice.DoesNotExist:
        raise Http404("That invoice is not in this batch.") from None
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        if _changed(error):
            return _confirmation(request, batch, draft_delete_consequences(batch, invoice_id), **page, status=409)
    else:
        messages.success(request, "Invoice deleted; its items are unbilled again.")
    return redirect("billing:batch_detail", batch_id=batch.pk)


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def batch_generate(request, batch_id: int):
    """GET: which drafts get which numbers, and the totals; POST (with the token shown): issue them."""
    batch = _batch_or_404(batch_id)
    consequences = generate_consequences(batch)
    page = dict(title=f"Generate {consequences.count} invoice{'s' if consequences.count != 1 else ''}?",
                button=f"Generate {consequences.count} invoice{'s' if consequences.count != 1 else ''}",
                action_url=reverse("billing:batch_generate", args=[batch.pk]))
    if request.method != "POST":
        return _confirmation(request, batch, consequences, **page)
    try:
        issued = services.batch_generate(batch_id=batch.pk, acting_user=request.user, confirmed=request.POST.get("confirmed", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        if _changed(error):
            return _confirmation(request, batch, generate_consequences(batch), **page, status=409)
    else:
        messages.success(request, f"{len(issued)} invoice(s) issued; their PDFs are being prepared.")
    return redirect("billing:batch_detail", batch_id=batch.pk)


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def batch_delete(request, batch_id: int):
    """GET: what deleting the batch voids, deletes and releases; POST (with the token shown): do it."""
    batch = _batch_or_404(batch_id)
    consequences = delete_consequences(batch)
    page = dict(title=f"Delete the batch “{batch.name}”?", button="Delete batch",
                action_url=reverse("billing:batch_delete", args=[batch.pk]))
    if request.method != "POST":
        return _confirmation(request, batch, consequences, **page)
    try:
        released = services.batch_delete(batch_id=batch.pk, acting_user=request.user, confirmed=request.POST.get("confirmed", ""))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        if _changed(error):
            return _confirmation(request, batch, delete_consequences(batch), **page, status=409)
        return redirect("billing:batch_detail", batch_id=batch.pk)
    messages.success(request, f"Batch “{batch.name}” deleted: {released} item(s) released for rebilling.")
    return redirect("billing:home")


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = BillingSchedule
        fields = ["enabled", "day_of_month", "time_of_day", "mode", "consolidated"]
        widgets = {"time_of_day": forms.TimeInput(attrs={"type": "time"})}
        labels = {"enabled": "Run billing every month", "consolidated": "One invoice per customer (consolidated)"}

    def clean_day_of_month(self):
        day = self.cleaned_data["day_of_month"]
        if not 1 <= day <= 28:
            raise forms.ValidationError("Pick a day from 1 to 28, so every month has it.")
        return day


@requires(Capability.MANAGE_SETTINGS)
def schedule_settings(request):
    """Settings → Scheduled billing: the day, time (in the MSP's time zone) and mode of the monthly run."""
    schedule = BillingSchedule.load()
    was_enabled = schedule.enabled
    form = ScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST" and form.is_valid():
        schedule_save(form.save(commit=False), was_enabled=was_enabled)
        messages.success(request, "Scheduled billing saved.")
        return redirect("billing:schedule")
    return render(request, "billing/schedule.html", {"form": form}, status=400 if form.errors else 200)


class PeriodForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return data


@requires(Capability.VIEW_BILLING)
def reconciliation(request):
    """Reports → Timesheet vs batch: every worked minute of the range, and why it was or was not billed."""
    from billing.reconciliation import REASONS, reconcile

    today = tenant_today()
    data = request.GET if request.GET else {"start": today.replace(day=1).isoformat(), "end": today.isoformat()}
    form = PeriodForm(data)
    if not form.is_valid():
        return render(request, "billing/reconciliation.html", {"form": form}, status=400)
    report = reconcile(start=form.cleaned_data["start"], end=form.cleaned_data["end"])
    if request.GET.get("format") == "csv":
        return _reconciliation_csv(report, REASONS)
    return render(request, "billing/reconciliation.html", {"form": form, "report": report, "reasons": REASONS})


def _reconciliation_csv(report, reasons):
    import csv

    from django.http import HttpResponse

    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="reconciliation-{report.start}-{report.end}.csv"'
    writer = csv.writer(response)
    writer.writerow(["Technician", *[reason.capitalize() for reason in reasons], "Worked (minutes)"])
    for tech, by_reason in report.by_technician.items():
        writer.writerow([tech, *[by_reason.get(reason, 0) for reason in reasons], sum(by_reason.values())])
    writer.writerow(["All", *[report.minutes_by_reason[reason] for reason in reasons], report.worked_minutes])
    return response


@requires(Capability.VIEW_BILLING)
def audit_report(request):
    """Reports → Audit trail: every billing action, who did it, when, before and after."""
    from django.core.paginator import Paginator

    from msp_billing.audit.forms import AuditFilterForm
    from msp_billing.audit.selectors import audit_events

    form = AuditFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "billing/audit.html", {"form": form, "page": None}, status=400)
    data = form.cleaned_data if request.GET else {}
    events = audit_events(**{key: value for key, value in data.items() if value})
    if request.GET.get("format") == "csv":
        return _audit_csv(events)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "billing/audit.html", {"form": form, "page": page})


def _audit_csv(events):
    import csv
    import json

    from django.http import HttpResponse

    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="audit-trail.csv"'
    writer = csv.writer(response)
    writer.writerow(["When", "By", "Action", "Object", "Before", "After", "Message", "Action code", "Object type", "Id"])
    for event in events.iterator():
        writer.writerow([event.at.isoformat(), event.actor_label, event.action_label, event.object_label,
                         json.dumps(event.before) if event.before is not None else "",
                         json.dumps(event.after) if event.after is not None else "", event.message,
                         event.action, event.object_type, event.object_id])
    return response
