"""The MSP's scheduled monthly billing run.

Each month, once the MSP's local date and time reach the chosen day and time, the run bills
everything due by that day — periods, done tickets' time, parts — exactly as the wizard would
with everything selected. Mode "drafts" leaves draft invoices for review; mode "issue" issues
them (numbers, PDFs) and e-mails them. The batch carries a run key for the month: a retried or
overlapping run finds the key taken (or the items already billed) and bills nothing twice.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from billing import services
from billing.models import BillingBatch, BillingSchedule
from msp_billing.templatetags.formatting import day as format_day
from msp_billing.tenants.models import Msp


def _local_now() -> dt.datetime:
    msp = Msp.objects.get(schema_name=connection.schema_name)
    return timezone.now().astimezone(zoneinfo.ZoneInfo(msp.timezone))


def schedule_slot(schedule: BillingSchedule, now: dt.datetime) -> tuple[str, dt.date] | None:
    """This month's run key and cut-off, if the run is due at local time ``now``."""
    day = min(schedule.day_of_month, 28)
    due_at = now.replace(day=day, hour=schedule.time_of_day.hour, minute=schedule.time_of_day.minute, second=0, microsecond=0)
    if now < due_at:
        return None
    return f"schedule:{now:%Y-%m}", due_at.date()


def schedule_save(schedule: BillingSchedule, *, was_enabled: bool) -> BillingSchedule:
    """Save the settings; turning the schedule on notes when (a run missed after that is caught up)."""
    if schedule.enabled and not was_enabled:
        schedule.enabled_at = timezone.now()
    schedule.save()
    return schedule


def _missed_slot(schedule: BillingSchedule, now: dt.datetime) -> tuple[str, dt.date, dt.datetime] | None:
    """Last month's run key, cut-off and local moment, when it was due while the schedule was on
    but no run was made (nothing ran the check between its moment and the end of the month: beat
    or the workers were down)."""
    last_month = (now.replace(day=1) - dt.timedelta(days=1))
    slot = schedule_slot(schedule, last_month.replace(day=28, hour=23, minute=59))
    if slot is None or schedule.enabled_at is None:
        return None
    run_key, cutoff = slot
    due_at = last_month.replace(day=cutoff.day, hour=schedule.time_of_day.hour, minute=schedule.time_of_day.minute,
                                second=0, microsecond=0)
    if schedule.enabled_at > due_at or BillingBatch.objects.filter(run_key=run_key).exists():
        return None
    return run_key, cutoff, last_month


def scheduled_run(*, now: dt.datetime | None = None) -> BillingBatch | None:
    """Run this month's batch if it is due and not yet made; return it (None: nothing to do).

    Before this month's moment, last month's run is made if it was missed (``_missed_slot``),
    with last month's cut-off: a month end is never skipped because nothing was running at
    its moment."""
    schedule = BillingSchedule.load()
    if not schedule.enabled:
        return None
    now = now or _local_now()
    slot = schedule_slot(schedule, now)
    if slot is None:
        missed = _missed_slot(schedule, now)
        if missed is None:
            return None
        run_key, cutoff, now = missed
        slot = run_key, cutoff
    run_key, cutoff = slot
    existing = BillingBatch.objects.filter(run_key=run_key).first()
    if existing is not None:
        batch = existing
    else:
        selection = services.selection_everything_due(cutoff=cutoff)
        if not selection.contract_ids:
            return None
        try:
            batch = services.batch_run(name=f"Scheduled run {format_day(now, 'yMMMM')}", cutoff=cutoff, selection=selection,
                                       consolidated=schedule.consolidated, acting_user=None,
                                       origin=BillingBatch.Origin.SCHEDULE, run_key=run_key)
        except ValidationError:
            # Another run took the key or the items a moment ago: that run bills them.
            return BillingBatch.objects.filter(run_key=run_key).first()
    if schedule.mode == BillingSchedule.Mode.ISSUE and batch.status != BillingBatch.Status.GENERATED:
        services.batch_generate(batch_id=batch.pk, acting_user=None)
        batch.refresh_from_db()
        _email_issued(batch)
    return batch


def _email_issued(batch: BillingBatch) -> None:
    """E-mail each issued invoice once its PDF is ready (the invoice e-mail task waits for it)."""
    from invoices.tasks import invoice_email_when_ready

    for invoice_id in services.batch_invoices(batch).values_list("pk", flat=True):
        transaction.on_commit(lambda invoice_id=invoice_id: invoice_email_when_ready.delay(invoice_id))
