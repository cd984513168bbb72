"""Faults during real work, then the books checked: ``python -m tests.chaos.scenario [--full]``.

A deployment of its own under a temporary folder (``stack.py``): PostgreSQL, Redis, gunicorn,
a Celery worker and beat, the demo MSP's data in tenant ``chaos``, connected to a fake
QuickBooks. Then, with faults at random moments (seeded; ``CHAOS_SEED`` to vary):

1. the scheduled month-end run (issue mode: it issues the invoices, and each issued invoice
   queues its PDF): the worker and beat SIGKILLed mid-run, started again;
2. PDF rendering: PostgreSQL restarted (immediate stop), then Redis SIGKILLed and started
   again (its append-only file keeps the queue), then the worker SIGKILLed mid-render;
3. the export of every issued invoice to QuickBooks: the worker SIGKILLed mid-export;
4. the web: gunicorn SIGKILLed while requests are served, started again;
5. an admin's month end over HTTP (Create New Batch → Run, then Generate): gunicorn SIGKILLed
   while each request's transaction is open, the admin submitting again after the restart.

After each fault the time until the work is whole again is measured. Then: one batch for the
month, no time allocation on two invoice lines, nothing that was due left unbilled, every
issued invoice with its current PDF on disk, every invoice exactly once in QuickBooks; the killed
wizard requests left nothing half-made, billed each allocation once, lost no number. Exit
status 0 only if all of it holds. ``--full`` repeats each fault three times at other moments.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from tests.chaos.stack import Postgres, Redis, celery, gunicorn, http_ok, stack_env, wait_for

FIGURES: dict[str, list[float]] = {}


def note(kind: str, seconds: float) -> None:
    FIGURES.setdefault(kind, []).append(seconds)
    print(f"  recovered from {kind} in {seconds:.1f} s", flush=True)


def template_key() -> str:
    """Changes whenever what the prepared database holds could: migrations, the demo data, this set-up."""
    base = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted([*base.glob("*/migrations/*.py"), *base.glob("msp_billing/*/migrations/*.py"),
                        base / "onboarding" / "demo_data" / "demo.json", Path(__file__)]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def build_tenant() -> None:
    """Migrations, tenant ``chaos`` with the demo data, its schedule (issue mode): kept as a template."""
    from django.core.management import call_command
    from django_tenants.utils import schema_context

    from billing.models import BillingSchedule
    from msp_billing.accounts.models import User
    from msp_billing.tenants.services import MspRequest, msp_create, platform_ensure
    from onboarding.demo import DEMO_DATA
    from onboarding.importing import billing_data_import_file

    call_command("migrate_schemas", "--shared", verbosity=0)
    platform_ensure()
    msp = msp_create(request=MspRequest(name="Chaos Managed IT", subdomain="chaos", region="north_america", currency="USD",
                                        timezone="America/New_York", admin_email="owner@chaos.example",
                                        admin_password="chaos-password-2026"))
    with schema_context(msp.schema_name):
        owner = User.objects.get(email="owner@chaos.example")
        billing_data_import_file(path=DEMO_DATA, acting_user=owner)
        schedule = BillingSchedule.load()
        schedule.enabled, schedule.day_of_month, schedule.time_of_day = True, 1, "00:00"
        schedule.mode = BillingSchedule.Mode.ISSUE
        schedule.save()


def services_from_template(folder: Path):
    """PostgreSQL and Redis under ``folder``; PostgreSQL from the prepared data of an earlier run when
    there is one (seconds instead of minutes). Returns them and, when there was none, the folder to
    keep it in once ``build_tenant`` has run (``keep_template``)."""
    template = Path(__file__).resolve().parents[2] / "var" / f"chaos-template-{template_key()}"
    if (template / "pgdata").exists():
        Postgres(folder).adopt(template / "pgdata")
        return Postgres(folder).start(), Redis(folder).start(), None
    return Postgres(folder).start(), Redis(folder).start(), template


def keep_template(postgres: Postgres, template: Path) -> None:
    from django.db import connection

    connection.close()
    postgres.stop()
    for stale in template.parent.glob("chaos-template-*"):  # made for older migrations or set-ups
        shutil.rmtree(stale, ignore_errors=True)
    template.mkdir(parents=True, exist_ok=True)
    shutil.copytree(postgres.data, template / "pgdata", symlinks=True)
    postgres.start()


def connect_fake(fake) -> None:
    from django_tenants.utils import schema_context

    from integrations.services import connection_store
    from msp_billing.accounts.models import User

    with schema_context("chaos"):
        owner = User.objects.get(email="owner@chaos.example")
        company = fake.company()
        tokens = fake.issue_tokens(company.realm)
        connection_store(system="quickbooks", acting_user=owner, tokens={
            "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"], "expires_in": 3600,
            "remote_tenant_id": company.realm, "remote_name": company.name})


def writing_transaction_open() -> bool:
    """Another connection holds an open transaction that has written (the run, mid-way)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()")
        return cursor.fetchone()[0] > 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true", help="each fault three times (default: once)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args(argv)
    rounds = 3 if options.full else 1
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "20261205")))
    folder = Path(tempfile.mkdtemp(prefix="msp-chaos-"))
    postgres, redis, template = services_from_template(folder)
    fresh = template is not None

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from cryptography.fernet import Fernet

    from tests.fakes.quickbooks import FakeQuickBooks

    fake = FakeQuickBooks().start()
    env = stack_env(folder, postgres, redis, CELERY_VISIBILITY_TIMEOUT_SECONDS="15", INVOICE_PDF_SWEEP_ON_WORKER_START="true",
                    INTEGRATION_FERNET_KEYS=Fernet.generate_key().decode(), MSP_CHAOS="1", OAUTHLIB_INSECURE_TRANSPORT="1", QBO_BATCH_SIZE="2",
                    EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend", **fake.environ())
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count
    from django_tenants.utils import schema_context

    from billing.models import BillingBatch
    from billing.schedule import schedule_slot, _local_now
    from billing.models import BillingSchedule
    from integrations.models import ExportRun
    from integrations.services import export_run_create
    from invoices import selectors
    from invoices.models import Invoice, InvoiceLine, InvoicePdf
    from msp_billing.celery import app
    from tickets.models import TimeAllocation

    from tests.support import free_port

    port = free_port()
    logs = folder / "logs"
    logs.mkdir()
    web = gunicorn(env, port, logs / "web.log")
    worker_args = ("worker", "--pool=prefork", "--concurrency=2", "--loglevel=INFO", "--without-gossip", "--without-mingle")
    worker = celery(env, logs / "worker.log", *worker_args)
    beat = celery(env, logs / "beat.log", "beat", "--loglevel=INFO", "--schedule", str(folder / "beat-schedule"), name="beat")
    problems: list[str] = []
    started = time.monotonic()
    try:
        if fresh:
            build_tenant()
            keep_template(postgres, template)
        connect_fake(fake)
        print(f"set-up: tenant chaos with the demo data in {time.monotonic() - started:.0f} s", flush=True)
        web.start()
        connection.set_schema_to_public()
        with schema_context("chaos"):
            run_key, cutoff = schedule_slot(BillingSchedule.load(), _local_now())
            from billing.services import selection_everything_due
            from billing.run import picked_time

            due_time = picked_time(cutoff=cutoff, selection=selection_everything_due(cutoff=cutoff)).count()
        print(f"month end {run_key}: cut-off {cutoff}, {due_time} time allocations due", flush=True)

        # 1. The month-end run, its worker and beat killed mid-run.
        worker.start()
        beat.start()
        wait_for(lambda: app.control.inspect(timeout=0.5).ping(), timeout=90, what="worker")
        with schema_context("chaos"):
            app.send_task("billing.tasks.scheduled_billing_run")
        wait_for(writing_transaction_open, timeout=60, what="the run in progress", poll=0.01)
        time.sleep(rng.uniform(0.0, 0.2))
        mid_run = writing_transaction_open()
        worker.kill()
        beat.kill()
        print(f"killed worker and beat during the month-end run (its transaction {'open' if mid_run else 'just ended'})",
              flush=True)
        moment = time.monotonic()
        worker.start()
        beat.start()

        def generated():
            with schema_context("chaos"):
                return BillingBatch.objects.filter(run_key=run_key, status=BillingBatch.Status.GENERATED).exists()

        wait_for(generated, timeout=180, what="the month-end batch generated", poll=0.5)
        note("worker + beat killed mid month-end", time.monotonic() - moment)
        if not beat.alive:
            problems.append("beat did not stay up after its restart")
        with schema_context("chaos"):
            batch = BillingBatch.objects.get(run_key=run_key)
            from billing.services import batch_invoices

            issued = list(batch_invoices(batch).exclude(status=Invoice.Status.DRAFT).values_list("pk", flat=True))
        print(f"batch {batch.pk}: {len(issued)} invoices issued", flush=True)

        def pdfs_done():
            with schema_context("chaos"):
                done, total = selectors.pdf_progress(issued)
            return done == total

        # 2. PDF rendering: PostgreSQL restarted, Redis restarted, worker killed mid-render.
        for round_ in range(rounds):
            if round_:
                with schema_context("chaos"):  # render them all again: drop the files' rows
                    InvoicePdf.objects.filter(invoice_id__in=issued).delete()
                    app.send_task("invoices.tasks.invoice_pdfs_sweep")
            for fault in ("postgres", "redis", "worker"):
                if pdfs_done():
                    break
                time.sleep(rng.uniform(0.2, 1.5))
                moment = time.monotonic()
                if fault == "postgres":
                    away = postgres.restart()
                    connection.close()
                    print(f"restarted PostgreSQL mid-render (away {away:.1f} s)", flush=True)
                elif fault == "redis":
                    away = redis.restart()
                    print(f"restarted Redis mid-render (away {away:.1f} s)", flush=True)
                else:
                    worker.kill()
                    worker.start()
                    print("killed the worker mid-render", flush=True)
            moment = time.monotonic()
            wait_for(pdfs_done, timeout=300, what="every PDF", poll=0.5)
            note("PostgreSQL, Redis and worker faults mid-render", time.monotonic() - moment)

        # 3. The export, its worker killed mid-way.
        with schema_context("chaos"):
            from msp_billing.accounts.models import User

            owner = User.objects.get(email="owner@chaos.example")
            exportable = list(Invoice.objects.filter(pk__in=issued, status__in=[Invoice.Status.ISSUED]).values_list("pk", flat=True))
        exported, refused = [], []
        for round_ in range(rounds):
            part = exportable[round_::rounds]
            before = fake.count("Invoice")
            fake.released.clear()
            fake.hold_after_invoices = before + max(1, len(part) // 2)
            with schema_context("chaos"):
                run = export_run_create(document_ids=part, acting_user=owner)
            wait_for(lambda: fake.count("Invoice") >= fake.hold_after_invoices, timeout=120, what="half the export")
            time.sleep(0.3)
            worker.kill()
            fake.hold_after_invoices = None
            fake.released.set()
            print(f"killed the worker mid-export ({fake.count('Invoice') - before} of {len(part)} sent)", flush=True)
            moment = time.monotonic()
            worker.start()
            with schema_context("chaos"):
                app.send_task("integrations.tasks.export_runs_resume", kwargs={"older_than_seconds": 0})

            def finished():
                with schema_context("chaos"):
                    return ExportRun.objects.get(pk=run.pk).is_finished

            wait_for(finished, timeout=180, what="the export finished", poll=0.5)
            note("worker killed mid-export", time.monotonic() - moment)
            with schema_context("chaos"):
                run.refresh_from_db()
                from integrations.models import IntegrationLog

                failures = list(IntegrationLog.objects.filter(outcome="failed", export_run=run)
                                .values_list("invoice_id", "error_code", "error"))
            print(f"  export run: {run.state}, {run.done} done, {run.failed} failed; refusals {failures}", flush=True)
            refused += [pk for pk in run.failed_ids]
            exported += [pk for pk in part if pk not in run.failed_ids]

        # 4. The web, killed while serving.
        host = "chaos.localhost"
        for _ in range(rounds):
            errors_before_kill = Counter()
            stop = threading.Event()

            def reader():
                while not stop.is_set():
                    errors_before_kill[http_ok(f"http://127.0.0.1:{port}/accounts/login/", host)] += 1

            thread = threading.Thread(target=reader, daemon=True)
            thread.start()
            time.sleep(rng.uniform(0.3, 1.0))
            web.kill()
            moment = time.monotonic()
            web.start()
            wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/accounts/login/", host), timeout=60, what="the web back")
            note("web killed while serving", time.monotonic() - moment)
            stop.set()
            thread.join(timeout=5)

        # 5. The wizard's month end, the web killed mid-Run and mid-Generate (tests/chaos/wizard.py).
        from tests.chaos.wizard import wizard_month_end

        wizard_checks = wizard_month_end(web=web, port=port, rng=rng, note=note,
                                         writing_transaction_open=writing_transaction_open)

        # The books.
        with schema_context("chaos"):
            batches = BillingBatch.objects.filter(run_key=run_key).count()
            twice = (InvoiceLine.objects.exclude(time_allocation=None).exclude(invoice__status=Invoice.Status.VOID)
                     .values("time_allocation").annotate(n=Count("pk"))
                     .filter(n__gt=1).count())
            still_due = picked_time(cutoff=cutoff, selection=selection_everything_due(cutoff=cutoff)).count()
            billed_time = InvoiceLine.objects.exclude(time_allocation=None).filter(invoice_id__in=issued).count()
            missing_files = [pdf.invoice_id for pdf in InvoicePdf.objects.filter(invoice_id__in=issued, is_current=True)
                             if not pdf.file or not Path(pdf.file.path).exists()]
            done, total = selectors.pdf_progress(issued)
            numbers = dict(Invoice.objects.filter(pk__in=exported).values_list("number", "remote_id"))
            refused_numbers = set(Invoice.objects.filter(pk__in=refused).values_list("number", flat=True))
            allocations = TimeAllocation.objects.count()
        remote = Counter(row["DocNumber"] for row in fake.records("Invoice"))
        checks = {
            "one batch for the month": batches == 1,
            "no time allocation on two invoice lines": twice == 0,
            "nothing due left unbilled": still_due == 0,
            f"every due time allocation billed ({billed_time} of {due_time})": billed_time >= due_time,
            f"every issued invoice has its current PDF ({done} of {total})": done == total and not missing_files,
            f"every exported invoice exactly once in QuickBooks ({len(remote)} of {len(numbers)})":
                set(remote) == set(numbers) and set(remote.values()) <= {1},
            f"what QuickBooks refused ({len(refused)}) is listed as a failure, and not there":
                not refused_numbers & set(remote) and len(refused) + len(exported) == len(exportable),
        }
        checks.update(wizard_checks)
        print(f"\n{len(issued)} invoices, {allocations} time allocations, {len(numbers)} exported, {len(refused)} refused by"
              " QuickBooks's own rules", flush=True)
        for label, ok in checks.items():
            print(f"  {'ok ' if ok else 'FAIL'} {label}", flush=True)
            if not ok:
                problems.append(label)
        for kind, seconds in FIGURES.items():
            print(f"time to recover, {kind}: max {max(seconds):.1f} s over {len(seconds)}", flush=True)
    except Exception as error:  # report, then tear down
        problems.append(f"{type(error).__name__}: {error}")
        print(f"see the logs in {folder / 'logs'}", flush=True)
        options.keep = True
        raise
    finally:
        for role in (web, worker, beat):
            role.stop()
        fake.stop()
        connection.close()
        redis.stop()
        postgres.stop()
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"chaos: {'OK' if not problems else 'FAILED: ' + '; '.join(problems)} in {time.monotonic() - started:.0f} s",
              flush=True)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
