"""The billing dashboard: unbilled work, receivables, what needs attention, saved widgets.

Every figure links to the list it is the total of: unbilled figures to Reports →
Unbilled work in progress with the widget's filters, receivables to Outstanding, and so
on (docs/dashboard.md). A user pins a filtered list to their own dashboard as a saved
widget; an accountant reads but saves nothing (POST is 403).
"""
from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing import selectors
from billing.models import SavedWidget
from billing.unbilled import AGE_BUCKETS, AGES, STATES
from contracts.models import Contract, Customer
from contracts.selectors import unmatched_device_reports
from msp_billing.accounts.access import requires
from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Capability
from msp_billing.tenants.today import current_msp, tenant_today

SEARCH_MAX = 100


class UnbilledFilterForm(forms.Form):
    """The filters of the unbilled work list (and of a saved widget)."""

    state = forms.ChoiceField(label="State", required=False, choices=[("", "Any state"), *STATES.items()])
    age = forms.ChoiceField(label="Age", required=False, choices=[("", "Any age"), *AGES.items()])
    customer = forms.ModelChoiceField(label="Customer", required=False, queryset=Customer.objects.order_by("legal_name"),
                                      empty_label="Any customer")
    contract_type = forms.ChoiceField(label="Contract type", required=False, choices=[("", "Any type"), *Contract.Type.choices])
    technician = forms.ModelChoiceField(label="Technician", required=False, empty_label="Any technician",
                                        queryset=User.objects.filter(time_entries__isnull=False).distinct().order_by("email"))
    older_than = forms.IntegerField(label="Older than (days)", required=False, min_value=0, max_value=3650)

    def filters(self) -> dict:
        return {key: value for key, value in self.cleaned_data.items() if value not in (None, "")}


def unbilled_url(**filters) -> str:
    """The unbilled work list with these filters (model instances by id), as the widgets link to it."""
    query = {key: getattr(value, "pk", value) for key, value in filters.items() if value not in (None, "")}
    return reverse("reports:unbilled") + (f"?{urlencode(query)}" if query else "")


class SaveWidgetForm(UnbilledFilterForm):
    title = forms.CharField(label="Widget title", max_length=80)

    def clean(self):
        data = super().clean()
        data.pop("older_than", None)  # the MSP's own threshold is highlighted on every widget
        return data


@requires(Capability.VIEW_BILLING)
def dashboard(request):
    today = tenant_today()
    batch_search = request.GET.get("batch_q", "").strip()[:SEARCH_MAX]
    invoice_search = request.GET.get("invoice_q", "").strip()[:SEARCH_MAX]
    attention_days = current_msp().unbilled_attention_days
    board = selectors.dashboard(today=today, user=request.user, attention_days=attention_days, batch_search=batch_search,
                                invoice_search=invoice_search, age_links=[unbilled_url(age=key) for key, *_ in AGE_BUCKETS])
    context = {
        "board": board, "batch_q": batch_search, "invoice_q": invoice_search,
        "states": [(key, label, board.unbilled.by_state.get(key), unbilled_url(state=key)) for key, label in STATES.items()],
        "ages": [(key, label, board.unbilled.by_age.get(key), unbilled_url(age=key)) for key, label, *_ in AGE_BUCKETS],
        "types": [(Contract.Type(key).label, figure, unbilled_url(contract_type=key))
                  for key, figure in sorted(board.unbilled.by_contract_type.items())],
        "customers": [(customer, figure, unbilled_url(customer=customer)) for customer, figure in board.top_customers],
        "older_url": unbilled_url(older_than=attention_days),
        "total_url": unbilled_url(),
        "widgets": [(widget, figure, unbilled_url(**widget.filters())) for widget, figure in board.widgets],
        "can_save": request.user.can(Capability.MANAGE_BILLING),
        "unmatched_devices": unmatched_device_reports(),
    }
    if request.headers.get("HX-Request") and request.GET.get("part") in ("batches", "invoices"):
        return render(request, f"billing/_dashboard_{request.GET['part']}.html", context)
    return render(request, "dashboard.html", context)


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
@require_POST
def widget_save(request):
    """Pin the unbilled list, with its filters, to the signed-in user's own dashboard."""
    form = SaveWidgetForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(f"{form.fields[name].label if name in form.fields else ''}: {' '.join(errors)}".strip(": ")
                             for name, errors in form.errors.items())
        return HttpResponseBadRequest(f"The widget was not saved: {problems}", content_type="text/plain; charset=utf-8")
    data = form.cleaned_data
    with transaction.atomic():
        SavedWidget.objects.create(user=request.user, title=data["title"].strip(), state=data.get("state") or "",
                                   age=data.get("age") or "", contract_type=data.get("contract_type") or "",
                                   customer=data.get("customer"), technician=data.get("technician"))
    messages.success(request, f"“{data['title'].strip()}” is on your dashboard.")
    return redirect("dashboard")


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
@require_POST
def widget_delete(request, widget_id: int):
    """Remove one of the user's own widgets; anyone else's is 404, as if it did not exist."""
    widget = get_object_or_404(SavedWidget, pk=widget_id, user=request.user)
    widget.delete()
    messages.success(request, f"“{widget.title}” was removed from your dashboard.")
    return redirect("dashboard")
