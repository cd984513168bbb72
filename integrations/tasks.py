"""Background work of integrations/: take ids, call one service (docs/integrations.md §Tasks).

Rate limits and 5xx come back from the service as a delay; the task is retried with that
countdown — a worker never sleeps on a remote limit. A delay longer than a task may wait in
the broker (``EXPORT_RETRY_COUNTDOWN_MAX_SECONDS``: a daily limit, hours away) is no countdown:
the run keeps its next attempt time and beat's ``export_runs_resume`` queues it again then.
"""
from __future__ import annotations

import datetime as dt

from django.conf import settings

from integrations import registry, services
from msp_billing.tasks import tenant_task


@tenant_task(bind=True, max_retries=None, acks_late=True)
def export_run_task(self, run_id: int) -> str:
    step = services.export_run_execute(run_id=run_id)
    if step.retry_after is not None and step.retry_after <= settings.EXPORT_RETRY_COUNTDOWN_MAX_SECONDS:
        raise self.retry(countdown=step.retry_after)
    return step.state


@tenant_task
def export_runs_resume(older_than_seconds: float = 120) -> list[int]:
    """Beat (every few minutes, in the MSPs where ``services.export_runs_due`` finds runs): they go on."""
    return services.export_runs_resume(older_than=dt.timedelta(seconds=older_than_seconds))


@tenant_task
def payments_pull_task() -> dict:
    connection = registry.active_connection()
    if connection is None or not connection.is_usable:
        return {}
    return services.payments_pull().__dict__


@tenant_task
def failures_notify_task() -> int:
    """After a failed run, and daily (beat): e-mail billing admins the open failures, until resolved."""
    return services.failures_notify()
