"""Missing invoice PDFs come back within minutes, not after the broker's visibility timeout:
every worker start queues them, and a frequent sweep queues those missing for a while."""
from __future__ import annotations

import datetime as dt
import os
import time

import pytest
from django.core.cache import cache
from django.utils import timezone
from django_tenants.utils import schema_context

from invoices import selectors, tasks
from invoices.models import Invoice, InvoicePdf
from tests.invoices.builders import customer, issued, line, render_killed
from tests.support import wait_for

RECOVERY_DAY = dt.date(2032, 1, 15)  # its own number series, removed again afterwards
# The fresh worker keeps an hour's visibility timeout: the lost render must not come back by redelivery.
HOUR_REDELIVERY = {"visibility_timeout": 3600}


def test_the_frequent_sweep_queues_only_pdfs_missing_for_a_while_and_each_once_per_pause(tenant, monkeypatch,
                                                                                        settings):
    settings.INVOICE_PDF_REQUEUE_PAUSE_SECONDS = 600
    queued = []
    monkeypatch.setattr(tasks.invoice_pdfs_render, "delay", lambda ids: queued.extend(ids))
    cust = customer("Sweep Often GmbH")
    lost, fresh = issued(cust, [line("A", "1", "10")]), issued(cust, [line("B", "1", "10")])
    Invoice.objects.filter(pk=lost.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=6))
    cache.delete_many([f"invoice-pdf-requeued:{pk}:1" for pk in (lost.pk, fresh.pk)])

    assert tasks.invoice_pdfs_sweep(missing_for_seconds=300, clean_temporaries=False) == 1
    assert queued == [lost.pk]  # the fresh one's render is most likely still in the queue
    assert tasks.invoice_pdfs_sweep(missing_for_seconds=300, clean_temporaries=False) == 0  # not again right away
    assert queued == [lost.pk]
    queued.clear()
    tasks.invoice_pdfs_sweep()  # the full sweep (daily, and on worker start) takes every one
    assert {lost.pk, fresh.pk} <= set(queued)


def test_beat_runs_the_missing_pdf_sweep_every_few_minutes(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["invoice-pdfs-missing-every-tenant"]
    assert entry["schedule"] <= dt.timedelta(minutes=5)
    assert entry["args"] == ("invoices.tasks.invoice_pdfs_sweep",
                             {"missing_for_seconds": settings.INVOICE_PDF_MISSING_AFTER_SECONDS, "clean_temporaries": False},
                             "invoices.tasks.invoice_pdfs_missing")
    assert settings.INVOICE_PDF_MISSING_AFTER_SECONDS <= 10 * 60
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] < 3600


@pytest.mark.worker
def test_after_a_worker_is_killed_mid_render_a_new_worker_brings_every_pdf_within_a_minute(
        django_db_setup, django_db_blocker, tmp_path_factory):
    with render_killed(django_db_blocker, tmp_path_factory, name="recovery", on=RECOVERY_DAY,
                       lines_of=lambda n: [line(f"Managed service {n}", "1", "100")],
                       INVOICE_PDF_SWEEP_ON_WORKER_START="false") as scene:
        assert scene.killed_id in scene.ids
        started = time.monotonic()
        fresh = scene.start_worker("fresh.log", "--pool=solo", "--loglevel=INFO", "--without-heartbeat",
                                   "--without-gossip", "--without-mingle", transport_options=HOUR_REDELIVERY,
                                   env={**scene.env, "INVOICE_PDF_SWEEP_ON_WORKER_START": "true"})
        with django_db_blocker.unblock(), schema_context("alpha"):
            wait_for(lambda: selectors.pdf_progress(scene.ids) == (len(scene.ids), len(scene.ids)), timeout=60,
                     what="a PDF for every invoice within a minute of the new worker", process=fresh,
                     log=scene.logs / "fresh.log")
            assert time.monotonic() - started < 90
            for invoice in Invoice.objects.filter(pk__in=scene.ids):
                [current] = InvoicePdf.objects.filter(invoice=invoice, is_current=True)
                assert current.version == invoice.pdf_version == 1
                assert InvoicePdf.objects.filter(invoice=invoice).count() == 1  # one PDF per version, however queued
                assert [p.name for p in (scene.media / "alpha" / "invoices" / "pdf" / str(invoice.pk)).glob("*.pdf")] == [
                    os.path.basename(current.file.name)]
