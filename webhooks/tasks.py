"""Webhook deliveries in the background, each in the schema of the MSP that raised the event."""
from __future__ import annotations

from msp_billing.tasks import tenant_task
from webhooks import services


@tenant_task(name="webhooks.tasks.deliver", ignore_result=True)  # the outcome is in the delivery log
def deliver(delivery_id: int, manual: bool = False) -> int | None:
    """One attempt of one delivery (nothing when it is not due: a doubled queue entry is harmless)."""
    attempt = services.delivery_attempt(delivery_id=delivery_id, manual=manual)
    return attempt.status_code if attempt is not None else None


@tenant_task(name="webhooks.tasks.deliveries_due", ignore_result=True)
def deliveries_due() -> int:
    """Beat, every minute in every MSP: queue the retries whose time has come."""
    return len(services.deliveries_due())
