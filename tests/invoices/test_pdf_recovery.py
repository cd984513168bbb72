"""Missing invoice PDFs come back within minutes, not after the broker's visibility timeout:
every worker start queues them, and a frequent sweep queues those missing for a while."""
from __future__ import annotations

import ast
import datetime as dt
import os
import shutil
import signal
import time
import uuid

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context

from invoices import selectors, tasks
from invoices.models import AuditEvent, Invoice, InvoicePdf, InvoiceSettings, NumberSequence
from tests.invoices.builders import customer, issued, line
from tests.invoices.test_pdf import _active_render, _stop, _wait, _worker
from tests.support import process_env

RECOVERY_DAY = dt.date(2032, 1, 15)  # its own number series, removed again afterwards
# The fresh worker keeps an hour's visibility timeout: the lost render must not come back by redelivery.
HOUR_REDELIVERY = {"visibility_timeout": 3600}


def test_the_frequent_sweep_queues_only_pdfs_missing_for_a_while_and_each_once_per_pause(tenant, monkeypatch,
                                                                                        settings):
    settings.INVOICE_PDF_REQUEUE_PAUSE_SECONDS = 600
    queued = []
    monkeypatch.setattr(tasks.invoice_pdf_render, "delay", lambda *args: queued.append(args))
    cust = customer("Sweep Often GmbH")
    lost, fresh = issued(cust, [line("A", "1", "10")]), issued(cust, [line("B", "1", "10")])
    Invoice.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=6))
    cache.delete_many([f"invoice-pdf-requeued:{pk}:1" for pk in (lost.pk, fresh.pk)])

    assert tasks.invoice_pdfs_sweep(missing_for_seconds=300, clean_temporaries=False) == 1
    assert queued == [(lost.pk, 1)]  # the fresh one's render is most likely still in the queue
    assert tasks.invoice_pdfs_sweep(missing_for_seconds=300, clean_temporaries=False) == 0  # not again right away
    assert queued == [(lost.pk, 1)]
    queued.clear()
    tasks.invoice_pdfs_sweep()  # the full sweep (daily, and on worker start) takes every one
    assert {(lost.pk, 1), (fresh.pk, 1)} <= set(queued)


def test_beat_runs_the_missing_pdf_sweep_every_few_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["invoice-pdfs-missing-every-tenant"]
    assert entry["schedule"] <= dt.timedelta(minutes=5)
    assert entry["args"] == ("invoices.tasks.invoice_pdfs_sweep",
                             {"missing_for_seconds": settings.INVOICE_PDF_MISSING_AFTER_SECONDS, "clean_temporaries": False})
    assert settings.INVOICE_PDF_MISSING_AFTER_SECONDS <= 10 * 60
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] < 3600


@pytest.mark.worker
def test_after_a_worker_is_killed_mid_render_a_new_worker_brings_every_pdf_within_a_minute(
        django_db_setup, django_db_blocker, tmp_path_factory):
    from django.test import override_settings

    from msp_billing.celery import app

    logs = tmp_path_factory.mktemp("pdf-recovery-logs")
    media = tmp_path_factory.mktemp("pdf-recovery-media")
    media_override = override_settings(MEDIA_ROOT=str(media))
    media_override.enable()
    with django_db_blocker.unblock():
        env = process_env(MSP_TEST_MEDIA_ROOT=str(media), INVOICE_PDF_SWEEP_ON_WORKER_START="false")
        env.pop("MSP_PDF_TEST_DELAY", None)
        app.control.purge()
        with schema_context("alpha"):
            settings_existed = InvoiceSettings.objects.exists()
            sequences_before = set(NumberSequence.objects.values_list("pk", flat=True))
            cust = customer(f"Recovery {uuid.uuid4().hex[:8]} GmbH")
            ids = [issued(cust, [line(f"Managed service {n}", "1", "100")], on=RECOVERY_DAY).pk for n in range(1, 5)]
    slow = fresh = None
    try:
        command = ("--pool=prefork", "--concurrency=1", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
                   "--without-mingle")
        slow = _worker({**env, "MSP_PDF_TEST_DELAY": "120"}, logs / "slow.log", *command)
        task = _wait(lambda: _active_render(app), timeout=90, what="render in progress", process=slow,
                     log=logs / "slow.log")
        args = task["args"] if isinstance(task["args"], (list, tuple)) else ast.literal_eval(task["args"])
        killed_id = args[0]
        folder = media / "alpha" / "invoices" / "pdf" / str(killed_id)
        _wait(lambda: list(folder.glob(".*.tmp")), timeout=30, what="temporary file", process=slow, log=logs / "slow.log")
        os.killpg(slow.pid, signal.SIGKILL)  # mid-render, its task unacknowledged
        slow.wait(timeout=10)
        assert killed_id in ids

        started = time.monotonic()
        fresh = _worker({**env, "INVOICE_PDF_SWEEP_ON_WORKER_START": "true"}, logs / "fresh.log", "--pool=solo",
                        "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle",
                        transport_options=HOUR_REDELIVERY)
        with django_db_blocker.unblock(), schema_context("alpha"):
            _wait(lambda: selectors.pdf_progress(ids) == (len(ids), len(ids)), timeout=60,
                  what="a PDF for every invoice within a minute of the new worker", process=fresh,
                  log=logs / "fresh.log")
            assert time.monotonic() - started < 90
            for invoice in Invoice.objects.filter(pk__in=ids):
                [current] = InvoicePdf.objects.filter(invoice=invoice, is_current=True)
                assert current.version == invoice.pdf_version == 1
                assert InvoicePdf.objects.filter(invoice=invoice).count() == 1  # one PDF per version, however queued
                assert [p.name for p in (media / "alpha" / "invoices" / "pdf" / str(invoice.pk)).glob("*.pdf")] == [
                    os.path.basename(current.file.name)]
    finally:
        for process in (slow, fresh):
            if process is not None:
                _stop(process)
        with django_db_blocker.unblock(), schema_context("alpha"):
            AuditEvent.objects.filter(object_type="invoices.invoice", object_id__in=[str(pk) for pk in ids]).delete()
            InvoicePdf.objects.filter(invoice_id__in=ids).delete()
            Invoice.objects.filter(pk__in=ids).delete()
            cust.delete()
            NumberSequence.objects.exclude(pk__in=sequences_before).delete()
            if not settings_existed:
                InvoiceSettings.objects.all().delete()
        connection.set_schema_to_public()
        media_override.disable()
        shutil.rmtree(media, ignore_errors=True)
