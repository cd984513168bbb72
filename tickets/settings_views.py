"""Settings → Time approval: switching Approve & Post on or off. The switch decides which of
the tickets' time is ready to bill (``tickets.services.time_approval_switch``), so the page
lives with the tickets; the tenant URLconf mounts it in the ``settings`` namespace."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.shortcuts import redirect, render

from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.audit.selectors import audit_events_for
from msp_billing.forms import add_service_errors
from tickets.forms import TimeApprovalForm
from tickets.models import TimeEntry
from tickets.services import time_approval_switch


@requires(Capability.MANAGE_SETTINGS)
def time_approval(request):
    """Turn time approval (Approve & Post) on or off: owners and billing admins; every switch is audited."""
    tenant = connection.tenant
    form = TimeApprovalForm(request.POST if request.method == "POST" else None, initial={"time_approval_required": tenant.time_approval_required})
    if request.method == "POST" and form.is_valid():
        try:
            time_approval_switch(required=form.cleaned_data["time_approval_required"], acting_user=request.user)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            state = "on" if form.cleaned_data["time_approval_required"] else "off"
            messages.success(request, f"Time approval is {state}.")
            return redirect("settings:time_approval")
    waiting = TimeEntry.objects.filter(billed_at__isnull=True, approval=TimeEntry.Approval.PENDING).count()
    history = audit_events_for(tenant).filter(action="time_approval_switched")[:10]
    return render(request, "settings/time_approval.html",
                  {"form": form, "msp": tenant, "waiting": waiting, "history": history},
                  status=400 if form.errors else 200)
