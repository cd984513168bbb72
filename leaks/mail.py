"""The weekly leak summary to billing admins: Monday 08:00 in the MSP's own time zone."""
from __future__ import annotations

import datetime as dt
import zoneinfo

from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from leaks.services import leaks_open
from leaks.views import totals_by_currency
from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role
from msp_billing.tenants.today import current_msp
from msp_billing.templatetags.formatting import money
from msp_billing.tenants.urls import tenant_url

WEEKDAY, HOUR = 0, 8  # Monday, 08:00 local
TOP = 5


def weekly_slot(now: dt.datetime) -> bool:
    """Whether ``now`` (local) is in the weekly slot; beat asks hourly, so each MSP is mailed once a week."""
    return now.weekday() == WEEKDAY and now.hour == HOUR


def leaks_weekly_send(*, now: dt.datetime | None = None) -> int:
    """Mail the active MSP's billing admins the leaks found, when its local time is the weekly slot.
    Returns the number of recipients (0: not the slot, no admin, or no leak)."""
    msp = current_msp()
    local = (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(msp.timezone))
    if not weekly_slot(local):
        return 0
    recipients = sorted(User.objects.filter(role=Role.BILLING_ADMIN, is_active=True).values_list("email", flat=True))
    leaks = leaks_open(today=local.date())
    if not recipients or not leaks:
        return 0
    totals = " + ".join(money(total, currency) for currency, total in totals_by_currency(leaks).items())
    lines = [f"{msp.name}: {len(leaks)} revenue leak{'s' if len(leaks) != 1 else ''} found, {totals} in all.", "",
             f"The largest {min(TOP, len(leaks))}:"]
    lines += [f"- {leak.label}, {leak.customer}: {money(leak.amount, leak.currency)} ({leak.age_days} days). {leak.description}"
              for leak in leaks[:TOP]]
    lines += ["", f"Fix or dismiss them: {tenant_url(msp, reverse('leaks:list'))}"]
    send_mail(subject=f"{msp.name}: {len(leaks)} revenue leaks, {totals}", message="\n".join(lines) + "\n",
              from_email=None, recipient_list=recipients)
    return len(recipients)
