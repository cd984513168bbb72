"""Billing → Approve & Post: approve waiting time as it is, or adjust one entry and post it.

Everyone with billing access reads the page; approving needs MANAGE_BILLING (an
accountant's POST is 403). Bad or stale input refuses the whole request with a message —
400 for input that cannot be used, 409 when the page is out of date or the entry was
billed — and changes nothing.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from billing.approval import (
    ApprovalFilterForm,
    PostForm,
    charge_ids_from_post,
    hours_as_minutes,
    pending_charges,
    pending_row,
    pending_time_entries,
    seen_from_post,
    time_entry_for_approval,
)
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.tenants.today import current_msp
from tickets import services as ticket_services
from tickets.models import TimeEntry

PER_PAGE = 50
POST_FIELDS = {"minutes": "hours", "rate": "rate", "contract": "contract"}  # service field → form field


def _conflict(error: ValidationError) -> bool:
    return isinstance(error, (ticket_services.StaleError, ticket_services.LockedError))


def _without_page(request) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _list_url(request) -> str:
    query = request.GET.urlencode()
    return reverse("billing:approval") + (f"?{query}" if query else "")


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def approval_list(request):
    """The time waiting for approval, filtered; POST approves the ticked entries as they are."""
    form = ApprovalFilterForm(request.GET or None)
    status, problem = 200, None
    if request.GET and not form.is_valid():
        return _render_list(request, form, [], status=400)
    if request.method == "POST" and "approve_charges" in request.POST:
        try:
            approved = ticket_services.charges_approve(charge_ids=charge_ids_from_post(request.POST), acting_user=request.user)
        except ValidationError as error:
            problem, status = " ".join(error.messages), 409 if _conflict(error) else 400
        else:
            messages.success(request, f"{len(approved)} part{'' if len(approved) == 1 else 's'} or expense"
                                      f"{'' if len(approved) == 1 else 's'} approved: ready to deliver.")
            return redirect(_list_url(request))
    elif request.method == "POST":
        try:
            seen = seen_from_post(request.POST)
            approved = ticket_services.time_entries_approve(seen=seen, acting_user=request.user)
        except ValidationError as error:
            problem, status = " ".join(error.messages), 409 if _conflict(error) else 400
        else:
            messages.success(request, f"{len(approved)} time entr{'y' if len(approved) == 1 else 'ies'} approved: "
                                      "ready for the next batch.")
            return redirect(_list_url(request))
    filters = form.cleaned_data if request.GET else {}
    entries = pending_time_entries(**{key: value for key, value in filters.items() if value})
    charges = pending_charges(**{key: value for key, value in filters.items() if value})
    return _render_list(request, form, entries, status=status, problem=problem, charges=charges)


def _render_list(request, form, entries, *, status: int, problem: str | None = None, charges=()):
    page = Paginator(entries, PER_PAGE).get_page(request.GET.get("page"))
    context = {"charges": list(charges[:PER_PAGE]) if charges else [],
        "form": form, "page": page, "rows": [pending_row(entry) for entry in page.object_list], "problem": problem,
        "approval_on": current_msp().time_approval_required, "can_approve": request.user.can(Capability.MANAGE_BILLING),
        "querystring": _without_page(request),
    }
    return render(request, "billing/approval.html", context, status=status)


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def approval_entry(request, entry_id: int):
    """One waiting entry: its time, routing and rate, and a form to adjust and post it."""
    try:
        entry = time_entry_for_approval(entry_id=entry_id)
    except TimeEntry.DoesNotExist:
        raise Http404("No such time entry.") from None
    row = pending_row(entry)
    waiting = entry.approval == TimeEntry.Approval.PENDING and entry.billed_at is None
    initial = {"hours": row.hours, "rate": row.rate, "seen": row.fingerprint}
    form = PostForm(request.POST or None, entry=entry, initial=initial)
    status, problem = 200, None
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                posted = ticket_services.time_entry_approve(
                    entry_id=entry.pk, seen=data["seen"], acting_user=request.user,
                    minutes=hours_as_minutes(data["hours"]), rate=data["rate"], contract=data["contract"],
                )
            except TimeEntry.DoesNotExist:
                raise Http404("No such time entry.") from None
            except ValidationError as error:
                if hasattr(error, "error_dict"):
                    for field, errors in error.error_dict.items():
                        form.add_error(POST_FIELDS.get(field), errors)
                    status = 400
                else:
                    problem, status = " ".join(error.messages), 409 if _conflict(error) else 400
            else:
                what = "approved and posted with your adjustments" if posted.is_posted else "approved as it was"
                messages.success(request, f"Time entry #{posted.pk} {what}: ready for the next batch.")
                return redirect("billing:approval")
        else:
            status = 400
    context = {"entry": entry, "row": row, "form": form, "waiting": waiting, "problem": problem,
               "can_approve": request.user.can(Capability.MANAGE_BILLING), "approval_on": current_msp().time_approval_required}
    return render(request, "billing/approval_entry.html", context, status=status)
