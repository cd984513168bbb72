"""Celery across hosts: two worker "hosts" (processes with their own ``--hostname``) on RabbitMQ
share a month end's PDFs and its export to QuickBooks, and either may die mid-way.

RabbitMQ is the broker here (the suite otherwise uses Redis): at 127.0.0.1:5672, or
``RABBITMQ_URL``; without one the test is skipped, saying so. The work is queued the way a web
host queues it — by another process whose broker is RabbitMQ — on a queue of this run's own
(``CELERY_TASK_DEFAULT_QUEUE``). Tasks are acknowledged late, so the tasks a killed host held
unacknowledged go back to the queue the moment its connection drops, and the other host takes
them: no visibility timeout to wait for, no beat needed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django_tenants.utils import schema_context

from tests.integrations.committed import fake_in_environ, issued_in_alpha
from tests.support import BASE_DIR, process_env, stop_process_group, worker_process

from cryptography.fernet import Fernet  # noqa: E402

os.environ.setdefault("INTEGRATION_FERNET_KEYS", Fernet.generate_key().decode())  # the connection's tokens, encrypted
RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
INVOICES = 24


def _rabbitmq_reachable() -> bool:
    from kombu.utils.url import url_to_parts

    parts = url_to_parts(RABBITMQ_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5672), timeout=2):
            return True
    except OSError:
        return False


pytestmark = [pytest.mark.worker, pytest.mark.django_db,
              pytest.mark.skipif(not _rabbitmq_reachable(), reason=f"no RabbitMQ at {RABBITMQ_URL} (set RABBITMQ_URL)")]

QUEUE_PDFS = """
import django, json, sys
django.setup()
from django_tenants.utils import schema_context
from invoices.tasks import queue_pdf_renders
with schema_context("alpha"):
    print(queue_pdf_renders(json.loads(sys.argv[1])))
"""

QUEUE_EXPORT = """
import django, json, sys
django.setup()
from django_tenants.utils import schema_context
from integrations.services import export_run_create
from msp_billing.accounts.models import User
with schema_context("alpha"):
    run = export_run_create(document_ids=json.loads(sys.argv[1]), acting_user=User.objects.get(email="billing-admin@alpha.example"))
    print(run.pk)
"""


def _web_host(env: dict, code: str, ids: list[int]) -> str:
    """What a web host does: queue the work, on the broker of its environment."""
    import json

    done = subprocess.run([sys.executable, "-c", code, json.dumps(ids)], cwd=BASE_DIR, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def _wait(predicate, *, timeout: float, what: str, logs: list[Path] = ()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tails = "\n".join(f"--- {log.name}\n{log.read_text()[-1500:]}" for log in logs if log.exists())
    raise TimeoutError(f"waited {timeout}s for {what}\n{tails}")


class Host:
    """One worker "host": a Celery worker process group named ``name@<machine>``."""

    def __init__(self, name: str, env: dict, logs: Path) -> None:
        self.name, self.env, self.log, self.process = name, env, logs / f"{name}.log", None
        self.starts = 0

    def start(self) -> Host:
        self.starts += 1
        self.log = self.log.with_name(f"{self.name}-{self.starts}.log")
        self.process = worker_process(self.env, self.log, "--pool=solo", "--loglevel=INFO", "--without-gossip",
                                      "--without-mingle", "--without-heartbeat", f"--hostname={self.name}@%h")
        _wait(lambda: self.log.exists() and " ready." in self.log.read_text(), timeout=90, what=f"{self.name} ready",
              logs=[self.log])
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group, as when the machine dies."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def succeeded(self, task: str) -> int:
        """How many ``task`` runs this host finished, over all its starts."""
        return sum(line.startswith("[") and f"Task {task}[" in line and " succeeded in " in line
                   for log in self.log.parent.glob(f"{self.name}-*.log") for line in log.read_text().splitlines())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process_group(self.process)


@pytest.fixture(scope="module")
def month_end(django_db_setup, django_db_blocker, tmp_path_factory):
    """Alpha connected to a fake QuickBooks with INVOICES issued invoices (committed), two hosts'
    environment on RabbitMQ with a queue of this run's own; everything removed afterwards."""
    from kombu import Connection

    from msp_billing.celery import app
    from tests.fakes.quickbooks import FakeQuickBooks

    media = tmp_path_factory.mktemp("two-hosts-media")
    logs = tmp_path_factory.mktemp("two-hosts-logs")
    queue = f"two-hosts-{uuid.uuid4().hex[:8]}"
    fake = FakeQuickBooks().start()
    with fake_in_environ(fake), issued_in_alpha(django_db_blocker, fake, name="Two Hosts", count=INVOICES) as ids:
        app.control.purge()  # the renders issuing queued on the suite's Redis broker: this test queues its own on RabbitMQ
        env = process_env(CELERY_BROKER_URL=RABBITMQ_URL, CELERY_TASK_DEFAULT_QUEUE=queue, MSP_TEST_MEDIA_ROOT=str(media),
                          QBO_BATCH_SIZE="2", MSP_PDF_TEST_DELAY="0.4", OAUTHLIB_INSECURE_TRANSPORT="1",
                          **fake.environ())
        hosts = [Host("host-a", env, logs), Host("host-b", env, logs)]
        try:
            yield {"ids": ids, "env": env, "hosts": hosts, "fake": fake, "media": media, "logs": logs}
        finally:
            for host in hosts:
                host.stop()
            with Connection(RABBITMQ_URL) as broker:
                broker.default_channel.queue_delete(queue)
    fake.stop()


def test_two_hosts_share_the_pdfs_and_the_export_and_either_may_die(month_end, db):
    from django.core.files.storage import default_storage
    from django.test import override_settings

    from integrations.models import ExportRun
    from invoices import selectors
    from invoices.models import Invoice, InvoicePdf

    ids, env, (host_a, host_b), fake = month_end["ids"], month_end["env"], month_end["hosts"], month_end["fake"]
    logs = month_end["logs"]
    host_a.start()
    host_b.start()

    # PDFs: queued by the "web host"; host A dies once both have rendered some.
    tasks = int(_web_host(env, QUEUE_PDFS, ids))
    assert tasks >= 8  # several chunks, so that both hosts get a share

    def progress():
        with schema_context("alpha"):
            return selectors.pdf_progress(ids)[0]

    _wait(lambda: progress() >= INVOICES // 4 and host_a.succeeded("invoices.tasks.invoice_pdfs_render")
          and host_b.succeeded("invoices.tasks.invoice_pdfs_render"),
          timeout=120, what="both hosts rendering", logs=[host_a.log, host_b.log])
    done_at_kill = progress()
    host_a.kill()
    assert done_at_kill < INVOICES, "the PDFs were all done before host A could be killed"
    _wait(lambda: progress() == INVOICES, timeout=120, what="every PDF after host A died", logs=[host_b.log])
    with schema_context("alpha"), override_settings(MEDIA_ROOT=str(month_end["media"])):
        for invoice in Invoice.objects.filter(pk__in=ids):
            [current] = InvoicePdf.objects.filter(invoice=invoice, is_current=True)
            assert current.version == invoice.pdf_version and default_storage.exists(current.file.name)
            with default_storage.open(current.file.name, "rb") as handle:
                assert handle.read(5) == b"%PDF-"

    # The export: host A back, host B dies while the fake holds a call; A finishes the run alone.
    host_a.start()
    fake.released.clear()
    fake.hold_after_invoices = INVOICES // 3
    run_id = int(_web_host(env, QUEUE_EXPORT, ids))
    _wait(lambda: fake.count("Invoice") >= INVOICES // 3, timeout=120, what="a third of the export",
          logs=[host_a.log, host_b.log])
    time.sleep(0.5)  # the next call is waiting inside the fake
    [dying] = [host for host in (host_a, host_b) if "integrations.tasks.export_run_task[" in host.log.read_text()]
    survivor = host_a if dying is host_b else host_b
    dying.kill()
    fake.hold_after_invoices = None
    fake.released.set()

    def finished():
        with schema_context("alpha"):
            return ExportRun.objects.get(pk=run_id).is_finished

    _wait(finished, timeout=180, what="the export finished by the surviving host", logs=[survivor.log, dying.log])
    with schema_context("alpha"):
        run = ExportRun.objects.get(pk=run_id)
        assert (run.state, run.done, run.failed) == (ExportRun.State.DONE, INVOICES, 0)
        numbers = dict(Invoice.objects.filter(pk__in=ids).values_list("number", "remote_id"))
    # The survivor took the dead host's task from RabbitMQ (redelivered when its connection dropped).
    assert "integrations.tasks.export_run_task[" in survivor.log.read_text()
    remote = Counter(row["DocNumber"] for row in fake.records("Invoice"))
    assert set(remote) == set(numbers) and set(remote.values()) == {1}  # each invoice exactly once in QuickBooks
    print(f"two hosts: {tasks} PDF tasks, host A killed at {done_at_kill} of {INVOICES} PDFs; "
          f"{dying.name} killed mid-export, {survivor.name} finished the run ({logs})")
