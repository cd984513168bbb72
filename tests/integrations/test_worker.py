"""A real Celery worker exports a set of invoices; SIGKILL mid-export; a new worker finishes; each exists once.

The data is committed (the worker is another process), in alpha, and removed again at the
end — numbering included — so the rest of the session sees alpha as it was.
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from django_tenants.utils import schema_context

from msp_billing.celery import app
from tests.integrations.committed import issued_in_alpha
from tests.support import celery_command, process_env, running

pytestmark = [pytest.mark.worker, pytest.mark.django_db]

INVOICES = 12
BATCH = 2


def _wait(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"waited {timeout}s for {what}")


@pytest.fixture(scope="module")
def committed(django_db_setup, django_db_blocker, qbo_server):
    """Alpha connected to the fake, with INVOICES issued invoices — committed, and cleaned up afterwards."""
    from integrations.services import export_run_create
    from tests.invoices.builders import admin

    qbo_server.reset()
    with issued_in_alpha(django_db_blocker, qbo_server, name="Killed Worker", count=INVOICES) as invoices:
        with django_db_blocker.unblock(), schema_context("alpha"):
            # Queued now (committed: the task is in the broker); the worker the test starts takes it.
            run = export_run_create(document_ids=invoices, acting_user=admin())
        yield invoices, run
    qbo_server.reset()


def _worker(tmp_path_factory, name: str):
    env = process_env(QBO_BATCH_SIZE=str(BATCH))

    def ready() -> bool:
        return bool(app.control.inspect(timeout=0.5).ping())

    log = tmp_path_factory.mktemp("logs") / f"{name}.log"
    command = celery_command("worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO", "--without-heartbeat",
                             "--without-gossip", "--without-mingle", f"--hostname={name}@%h")
    return running(command, env=env, ready=ready, timeout=90, log=log)


def test_sigkill_mid_export_then_a_new_worker_finishes_each_invoice_once(committed, qbo_server, db, tmp_path_factory):
    """The test's own transaction only reads: it sees what the workers commit."""
    from integrations.models import ExportRun
    from integrations.tasks import export_runs_resume
    from invoices.models import Invoice

    committed, run = committed
    # After two batches the fake holds every call: the worker is certainly mid-export when killed.
    qbo_server.released.clear()
    qbo_server.hold_after_invoices = 2 * BATCH
    with _worker(tmp_path_factory, "first") as first:
        _wait(lambda: qbo_server.count("Invoice") >= 2 * BATCH, timeout=60, what="the first batches")
        time.sleep(0.5)  # the next call is now waiting inside the fake
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    qbo_server.hold_after_invoices = None
    qbo_server.released.set()
    created_before_restart = qbo_server.count("Invoice")
    with schema_context("alpha"):
        run.refresh_from_db()
        assert run.state == ExportRun.State.RUNNING  # died mid-run
        assert 0 < created_before_restart < INVOICES
    with _worker(tmp_path_factory, "second"):
        with schema_context("alpha"):
            # What beat does every few minutes: runs nobody holds are queued again.
            assert export_runs_resume.delay(older_than_seconds=0).get(timeout=60) == [run.pk]

            def finished():
                run.refresh_from_db()
                return run.is_finished

            _wait(finished, timeout=90, what="the resumed run")
            assert (run.state, run.done, run.failed, run.attempts) == (ExportRun.State.DONE, INVOICES, 0, 2)
            numbers = list(Invoice.objects.filter(pk__in=committed).values_list("number", "remote_id"))
    remote_numbers = Counter(row["DocNumber"] for row in qbo_server.records("Invoice"))
    assert len(remote_numbers) == INVOICES and set(remote_numbers.values()) == {1}  # each invoice exactly once
    remote_ids = {row["DocNumber"]: row["Id"] for row in qbo_server.records("Invoice")}
    assert all(remote_ids[number] == remote_id for number, remote_id in numbers)
    assert qbo_server.count("Customer") == 3
