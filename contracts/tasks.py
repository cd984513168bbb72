"""Scheduled contract work, run once a day in every MSP (beat → ``fan_out_to_tenants``)."""
from __future__ import annotations

from contracts.periods import periods_generate_all
from msp_billing.tenants.today import tenant_today
from contracts.renewals import contract_renewals_process
from msp_billing.tasks import tenant_task


@tenant_task
def contract_periods_daily() -> dict:
    """Renew contracts that reach their end, then generate periods ahead (so renewed
    contracts get their next periods in the same run). Safe to run twice."""
    today = tenant_today()
    renewals = contract_renewals_process(today=today)
    created = periods_generate_all(today=today)
    return {
        "today": today.isoformat(),
        "periods_created": len(created),
        "renewal_notices": len(renewals.notices),
        "contracts_renewed": len(renewals.renewed),
    }
