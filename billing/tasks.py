"""Scheduled billing work, run in every MSP (beat → ``fan_out_to_tenants``)."""
from __future__ import annotations

from billing.alerts import alerts_check_all
from msp_billing.tenants.today import tenant_today
from msp_billing.tasks import tenant_task


@tenant_task
def alerts_check() -> dict:
    """Block and budget threshold alerts (and auto-repurchases). Safe to run twice."""
    today = tenant_today()
    return {"today": today.isoformat(), "notifications": len(alerts_check_all(today=today))}


@tenant_task
def scheduled_billing_run() -> int | None:
    """The MSP's monthly billing run, when its day and time have come (hourly check; safe to repeat)."""
    from billing.schedule import scheduled_run

    batch = scheduled_run()
    return batch.pk if batch else None
