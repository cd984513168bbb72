"""The notifications page: renewals coming up, contracts renewed, block and budget thresholds."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from contracts.models import Notification
from contracts.notifications import notifications_for_list, notifications_mark_read, unread_notification_count
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability

PAGE_SIZE = 50


class MarkReadForm(forms.Form):
    """Either one notification (``notification``) or every unread one (``all``)."""

    notification = forms.ModelChoiceField(queryset=Notification.objects.all(), required=False)
    all = forms.BooleanField(required=False)

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all") and not cleaned.get("notification"):
            raise forms.ValidationError("Say which notification to mark as read.")
        return cleaned


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def notification_list(request):
    show_all = request.GET.get("show") == "all"
    if request.method == "POST":
        form = MarkReadForm(request.POST)
        if form.is_valid():
            if form.cleaned_data["all"]:
                count = notifications_mark_read()
            else:
                count = notifications_mark_read(notification_ids=[form.cleaned_data["notification"].pk])
            messages.success(request, f"{count} notification{'' if count == 1 else 's'} marked as read.")
            return redirect(request.get_full_path())
        messages.error(request, " ".join(form.non_field_errors()) or "That notification does not exist.")
        return redirect(request.get_full_path())
    page = Paginator(notifications_for_list(unread_only=not show_all), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "contracts/notifications.html",
        {
            "page": page,
            "show_all": show_all,
            "unread_count": unread_notification_count(),
            "can_mark_read": request.user.can(Capability.MANAGE_BILLING),
        },
    )
