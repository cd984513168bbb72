"""The API's periodic work, per MSP."""
from __future__ import annotations

from api.services import idempotent_requests_forget
from msp_billing.tasks import tenant_task


@tenant_task(ignore_result=True)
def idempotent_requests_clean() -> int:
    return idempotent_requests_forget()
