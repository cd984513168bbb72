"""An export held back for hours by a daily limit waits in the database, not in the broker.

A real worker exports to the fake Xero until its daily limit answers 429 with a
``Retry-After`` of about a day. The task ends (no countdown: a day-long countdown would sit
unacknowledged in Redis and be redelivered after the visibility timeout, or be cut off by
RabbitMQ's ``consumer_timeout``); the run keeps its next attempt time. Beat's resume,
queued only in the MSPs with due runs (one query across the schemas), sends it on once
that time has come, and each invoice reaches Xero once.
"""
from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from integrations.models import ExportRun
from msp_billing.celery import app
from tests.fakes.xero import Limits
from tests.integrations import test_xero_worker as xero_worker
from tests.integrations.test_xero_worker import start_worker, wait_for_run

committed_export = xero_worker.committed_export  # fixtures
fake_xero = xero_worker.fake_xero

pytestmark = [pytest.mark.worker, pytest.mark.django_db]

RESUME = ("integrations.tasks.export_runs_resume", {}, "integrations.services.export_runs_due")


def _wait_for_state(run_id: int, state: str, *, timeout: float = 90) -> ExportRun:
    deadline = time.monotonic() + timeout
    while True:
        with schema_context("alpha"):
            run = ExportRun.objects.get(pk=run_id)
        if run.state == state:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run.state}"
        time.sleep(0.3)


def _beat_resume() -> int:
    """What beat sends every few minutes (settings.CELERY_BEAT_SCHEDULE), from the public schema."""
    return app.send_task("msp_billing.tasks.fan_out_to_tenants", args=RESUME).get(timeout=60)


def test_a_day_long_limit_leaves_no_task_in_the_broker_and_beat_resumes_the_run(committed_export, fake_xero, tmp_path):
    fake_xero.limits = Limits(per_day=4)  # the set-up calls use the day's calls; the invoices get a 429
    ids = committed_export.issue(3)
    with start_worker(fake_xero, tmp_path / "worker.log"):
        run = committed_export.commit(services_export_run_create, ids)
        run = _wait_for_state(run.pk, ExportRun.State.WAITING)
        assert run.next_attempt_at > timezone.now() + dt.timedelta(hours=20)
        time.sleep(1)  # the task has returned: the worker holds no countdown for it
        scheduled = app.control.inspect(timeout=2).scheduled() or {}
        assert all(not tasks for tasks in scheduled.values()), scheduled
        assert _beat_resume() == 0  # not due yet: no MSP gets a resume task

        # A day later (the fake's clock and the run's times move on together).
        fake_xero.advance(86400)
        committed_export.commit(_day_passed, run.pk)
        assert _beat_resume() == 1  # alpha only
        run = wait_for_run(run.pk)
    assert run.state == ExportRun.State.DONE and run.done == 3 and run.attempts == 2
    remote = Counter(invoice["InvoiceNumber"] for invoice in fake_xero.invoices())
    assert len(remote) == 3 and set(remote.values()) == {1}


def services_export_run_create(ids):
    from integrations import services

    return services.export_run_create(document_ids=ids, acting_user=None)


def _day_passed(run_id: int) -> None:
    day_ago = dt.timedelta(days=1, minutes=5)
    run = ExportRun.objects.get(pk=run_id)
    ExportRun.objects.filter(pk=run_id).update(next_attempt_at=run.next_attempt_at - day_ago,
                                               updated_at=run.updated_at - day_ago)
