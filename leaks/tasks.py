"""The weekly leak e-mail, checked hourly in every MSP (beat → ``fan_out_to_tenants``)."""
from __future__ import annotations

from leaks.mail import leaks_weekly_send
from msp_billing.tasks import tenant_task


@tenant_task
def leaks_weekly_mail() -> int:
    """Mail the leak summary when the MSP's local time is Monday 08:00 (once in that hour)."""
    return leaks_weekly_send()
