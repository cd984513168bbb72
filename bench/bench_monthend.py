"""Month end, end to end: from Save As / Run to issued invoices with stored PDFs, e-mailed.

A scratch tenant like ``bench_batch``'s (contracts, resolved tickets, routed time), sized so
that about BENCH_MONTHEND_INVOICES invoices are due (default 500; the goal is set for
5,000: BENCH_MONTHEND_INVOICES=5000), each customer with a billing e-mail. Then, timed
stage by stage, exactly as an admin's month end goes:

1. **Run**: ``billing.services.batch_run`` of everything due (draft invoices), in this process;
2. **Generate**: ``billing.services.batch_generate`` with the confirmation token the admin
   would see (numbers, issue), in this process; its commit queues the PDF renders;
3. **PDFs**: BENCH_MONTHEND_WORKERS Celery worker processes (default 2, ``--pool=solo``
   each) render them, timed until ``pdf_progress`` says all are stored;
4. **E-mail**: ``invoices.delivery.invoices_email`` in as many jobs as workers (at most 500
   invoices each, the job limit), sent by the same workers through SMTP to a local aiosmtpd server, timed
   until the server has accepted every message.

Prints each stage's seconds and share, the total against the goal (≤ 6 minutes for 5,000
invoices on two cores, scaled linearly for other sizes), the e-mails accepted and the
invoices whose total is not the sum of their lines (must be 0).
Run: `python -m bench monthend` (or `make bench`).
"""
from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from bench._django import msps_drop
from bench._processes import solo_workers_start

INVOICES = int(os.environ.get("BENCH_MONTHEND_INVOICES", 500))
ENTRIES_PER_INVOICE = int(os.environ.get("BENCH_MONTHEND_ENTRIES_PER_INVOICE", 12))
WORKERS = int(os.environ.get("BENCH_MONTHEND_WORKERS", 2))
SCHEMA = "bench_monthend"
QUEUE = "bench_monthend"  # its own queue: other workers on the same broker never take these tasks
GOAL_SECONDS_PER_5000 = 6 * 60
BASE_DIR = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _smtp_server(port: int):
    """A local aiosmtpd server that counts what it accepts; returns (controller, accepted list)."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd narrates every connection

    accepted: list[str] = []

    class Count:
        async def handle_DATA(self, server, session, envelope):
            accepted.append(envelope.rcpt_tos[0] if envelope.rcpt_tos else "")
            return "250 Message accepted for delivery"

    controller = Controller(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller, accepted



def _wait(condition, *, timeout: float, what: str, workers: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a benchmark worker exited with {worker.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not done after {timeout:.0f} s")
        time.sleep(0.1)


def main() -> None:
    # What the workers need comes from the environment they inherit: the SMTP server, and no
    # sweeps of their own at start.
    port = _free_port()
    os.environ.update({"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
                       "EMAIL_PORT": str(port), "EMAIL_USE_TLS": "false",
                       "INVOICE_PDF_SWEEP_ON_WORKER_START": "false"})
    from bench._django import django_ready

    django_ready()
    from django.conf import settings
    from django.db import connection
    from django.db.models import Value
    from django.db.models.functions import Cast, Concat
    from django_tenants.utils import schema_context

    from bench.bench_batch import CUTOFF, build
    from billing import services
    from billing.consequences import generate_consequences
    from billing.models import BillingBatch
    from contracts.models import Customer
    from invoices import delivery, selectors
    from invoices.models import Invoice, InvoiceEmail
    from msp_billing.accounts.models import User
    from msp_billing.celery import app

    app.conf.task_default_queue = QUEUE  # what this process queues goes to the benchmark's workers
    # Hourly and retainer contracts have money due; block-hours time is deducted (0.00, not billed).
    contracts = 2 * math.ceil(INVOICES / 0.9 / 2)  # two contracts per customer
    log_dir = Path(tempfile.mkdtemp(prefix="bench_monthend_"))
    controller, accepted = _smtp_server(port)
    workers: list[subprocess.Popen] = []
    msp = None
    try:
        t0 = time.perf_counter()
        msp = build(SCHEMA, contracts=contracts, entries=contracts * ENTRIES_PER_INVOICE)
        with schema_context(SCHEMA):
            Customer.objects.update(billing_email=Concat(Value("ap"), Cast("id", output_field=Customer._meta.get_field(
                "legal_name")), Value("@customer.example")))
            admin = User.objects.get(email="bench@example.com")
        setup_seconds = time.perf_counter() - t0

        workers = solo_workers_start(WORKERS, queue=QUEUE, log_dir=log_dir)
        names = [f"bench_monthend_{index}@{socket.gethostname()}" for index in range(WORKERS)]
        _wait(lambda: len(app.control.inspect(destination=names, timeout=1).ping() or {}) == WORKERS,
              timeout=120, what="workers start", workers=workers)

        stages: dict[str, float] = {}
        with schema_context(SCHEMA):
            start = time.perf_counter()
            selection = services.selection_everything_due(cutoff=CUTOFF)
            batch = services.batch_run(name="Month end", cutoff=CUTOFF, selection=selection, consolidated=False,
                                       acting_user=admin)
            stages["Run (draft invoices)"] = time.perf_counter() - start

            start = time.perf_counter()
            token = generate_consequences(BillingBatch.objects.get(pk=batch.pk)).token
            issued = services.batch_generate(batch_id=batch.pk, acting_user=admin, confirmed=token)
            stages["Generate (numbers, issue)"] = time.perf_counter() - start

            start = time.perf_counter()
            _wait(lambda: selectors.pdf_progress(issued)[0] == len(issued), timeout=max(600, len(issued) * 2),
                  what="every PDF", workers=workers)
            stages[f"PDFs ({WORKERS} workers)"] = time.perf_counter() - start

            start = time.perf_counter()
            # As many jobs as workers at least (each job is one task), none above the job limit.
            jobs = max(WORKERS, math.ceil(len(issued) / delivery.MAX_INVOICES))
            size = math.ceil(len(issued) / jobs)
            for first in range(0, len(issued), size):
                delivery.invoices_email(invoice_ids=issued[first:first + size], acting_user=admin)
            _wait(lambda: len(accepted) >= len(issued), timeout=max(600, len(issued)), what="every e-mail",
                  workers=workers)
            stages[f"E-mail ({WORKERS} workers, SMTP)"] = time.perf_counter() - start

            sent = InvoiceEmail.objects.filter(invoice_id__in=issued, status=InvoiceEmail.Status.SENT).count()
            with connection.cursor() as cursor:
                cursor.execute("""SELECT count(*) FROM invoices_invoice i WHERE i.id = ANY(%s) AND i.total <>
                                  (SELECT coalesce(sum(l.amount + l.tax_amount), 0) FROM invoices_invoiceline l
                                   WHERE l.invoice_id = i.id)""", [issued])
                mismatched = cursor.fetchone()[0]
            lines = Invoice.objects.filter(pk__in=issued).values_list("lines").count()

        total = sum(stages.values())
        goal = GOAL_SECONDS_PER_5000 * len(issued) / 5000
        print(f"  month end: {len(issued)} invoices ({lines} lines) from {contracts} contracts, {WORKERS} worker "
              f"processes, {os.cpu_count()} CPUs (setup {setup_seconds:.1f} s)")
        for name, seconds in stages.items():
            print(f"  {name:<34} {seconds:8.1f} s  {100 * seconds / total:5.1f} %  "
                  f"{1000 * seconds / max(1, len(issued)):7.1f} ms/invoice")
        print(f"  {'total':<34} {total:8.1f} s  (goal ≤ {goal:.0f} s for {len(issued)} invoices, "
              f"i.e. 6 min per 5,000: {'met' if total <= goal else 'NOT met'})")
        print(f"  e-mails accepted by the SMTP server: {len(accepted)}, recorded sent: {sent} of {len(issued)}; "
              f"invoices whose total is not the sum of their lines: {mismatched}")
    finally:
        from bench._processes import stop_process_groups

        stop_process_groups(workers)
        controller.stop()
        msps_drop(msp)
        shutil.rmtree(Path(settings.MEDIA_ROOT) / SCHEMA, ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)
