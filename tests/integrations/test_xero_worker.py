"""Exports to the fake Xero through a real Celery worker process.

* A 429 comes back to Celery as a retry with Xero's ``Retry-After`` as the countdown: the
  worker neither sleeps in the SDK nor hammers Xero, and the run finishes after the wait.
* A worker killed with SIGKILL while Xero is creating a batch is restarted; the run resumes
  and every invoice exists exactly once in Xero (the resend carries the same
  Idempotency-Key, so Xero answers with what it did the first time).

The data these tests export must be visible to the worker, so it is committed (schema alpha,
issued in a year no other test uses) and removed afterwards.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connections
from django_tenants.utils import schema_context

from integrations import services
from integrations.models import AccountingConnection, ExportRun, IntegrationLog, RemoteMapping
from invoices import services as invoice_services
from invoices.models import AuditEvent, Invoice, NumberSequence
from msp_billing.celery import app
from tests.fakes import xero as xero_fakes
from tests.fakes.xero import Limits
from tests.support import celery_command, process_env, running

pytestmark = [pytest.mark.worker, pytest.mark.django_db]

YEAR = 2089  # numbers INV-2089-…: no other test issues in that year
ISSUE_DAY = dt.date(YEAR, 5, 4)

fake_xero = xero_fakes.fake_xero  # fixture


def worker_env(fake) -> dict[str, str]:
    return process_env(
        XERO_API_URL=fake.api_url, XERO_IDENTITY_API_URL=fake.url, XERO_AUTHORIZE_URL=fake.authorize_url,
        XERO_TOKEN_URL=fake.token_url, XERO_REVOKE_URL=fake.revoke_url,
        XERO_CLIENT_ID=fake.client_id, XERO_CLIENT_SECRET=fake.client_secret,
    )


def start_worker(fake, log):
    def ready() -> bool:
        return bool(app.control.inspect(timeout=0.5).ping())

    command = celery_command("worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO", "--without-heartbeat",
                             "--without-gossip", "--without-mingle")
    return running(command, env=worker_env(fake), ready=ready, timeout=90, log=log)


class Committer:
    """Runs database work on its own thread, hence its own connection, in autocommit: the worker
    sees it at once (the test's own connection is inside pytest-django's transaction)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)

    def __call__(self, function, *args, **kwargs):
        def job():
            with schema_context("alpha"):
                return function(*args, **kwargs)

        return self.pool.submit(job).result()

    def close(self) -> None:
        self.pool.submit(connections.close_all).result()
        self.pool.shutdown()


@pytest.fixture
def committed_export(db, fake_xero):
    """Alpha connected to the fake (committed), and a factory of committed issued invoices; all removed afterwards."""
    from contracts.models import Customer, TaxRate

    commit = Committer()
    created: list[int] = []

    def set_up():
        vat = TaxRate.objects.create(code="XVAT20", name="VAT 20 %", percent=Decimal("20"), effective_from=dt.date(2020, 1, 1))
        buyer = Customer.objects.create(legal_name="Worker Test Kunde GmbH", currency="EUR", payment_terms_days=14)
        tokens = fake_xero.issue_tokens()
        connection = services.connection_store(system="xero", acting_user=None, tokens={
            **tokens, "remote_tenant_id": fake_xero.org.tenant_id, "remote_name": fake_xero.org.name,
            "scopes": tokens["scope"]})
        return vat, buyer, connection

    vat, buyer, connection = commit(set_up)

    def issue(count: int) -> list[int]:
        ids = []
        for index in range(count):
            draft = invoice_services.invoice_create_draft(customer=buyer, acting_user=None, lines=[
                invoice_services.LineInput(description=f"Managed services {index}", quantity=Decimal("1"),
                                           unit_price=Decimal(100 + index), tax_rate_codes=("XVAT20",))])
            invoice_services.invoice_issue(invoice_id=draft.pk, acting_user=None, issue_date=ISSUE_DAY)
            ids.append(draft.pk)
        created.extend(ids)
        return ids

    def tear_down():
        IntegrationLog.objects.filter(system="xero").delete()
        ExportRun.objects.filter(system="xero").delete()
        RemoteMapping.objects.filter(system="xero").delete()
        AccountingConnection.objects.filter(pk=connection.pk).delete()
        AuditEvent.objects.filter(object_type="invoices.invoice", object_id__in=[str(i) for i in created]).delete()
        AuditEvent.objects.filter(object_type="integrations.accountingconnection").delete()
        Invoice.objects.filter(pk__in=created).delete()
        NumberSequence.objects.filter(year=YEAR).delete()
        buyer.delete()
        vat.delete()

    try:
        yield SimpleNamespace(issue=lambda count: commit(issue, count), commit=commit)
    finally:
        commit(tear_down)
        commit.close()


def wait_for_run(run_id: int, *, timeout: float = 90) -> ExportRun:
    deadline = time.monotonic() + timeout
    while True:
        with schema_context("alpha"):
            run = ExportRun.objects.get(pk=run_id)
        if run.is_finished or time.monotonic() > deadline:
            return run
        time.sleep(0.3)


def test_a_429_is_retried_by_celery_after_retry_after(committed_export, fake_xero, tmp_path):
    # Set-up calls (contacts read and created, tax rates, organisation) use the minute's 4 calls; the invoices get a 429.
    fake_xero.limits = Limits(per_minute=4, minute_seconds=4)
    ids = committed_export.issue(3)
    with start_worker(fake_xero, tmp_path / "worker.log"):
        run = committed_export.commit(services.export_run_create, document_ids=ids, acting_user=None)  # queued at once
        run = wait_for_run(run.pk)
    assert run.state == ExportRun.State.DONE and run.done == 3 and run.attempts == 2
    refused, accepted = fake_xero.calls_to("PUT", "/Invoices")
    assert (refused.status, accepted.status) == (429, 200)
    assert refused.response_headers["X-Rate-Limit-Problem"] == "minute"
    assert accepted.headers["idempotency-key"] == refused.headers["idempotency-key"]
    retry_after = float(refused.response_headers["Retry-After"])
    assert retry_after >= 1 and accepted.received_at - refused.received_at >= retry_after - 0.5  # Celery's countdown
    assert len(fake_xero.invoices()) == 3


def test_a_worker_killed_mid_batch_resumes_and_each_invoice_exists_once(committed_export, fake_xero, tmp_path):
    state = {"puts": 0, "worker": None}
    killed = threading.Event()

    def kill_on_second_batch(call):
        if call.method == "PUT" and call.path.endswith("/Invoices"):
            state["puts"] += 1
            if state["puts"] == 2 and state["worker"] is not None:
                os.kill(state["worker"].pid, signal.SIGKILL)  # Xero goes on and creates the batch
                killed.set()

    fake_xero.on_request = kill_on_second_batch
    ids = committed_export.issue(120)  # three batches: 50, 50, 20
    with start_worker(fake_xero, tmp_path / "first.log") as first:
        state["worker"] = first
        run = committed_export.commit(services.export_run_create, document_ids=ids, acting_user=None)
        assert killed.wait(90), "the second batch never reached Xero"
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    state["worker"] = None
    with schema_context("alpha"):
        assert ExportRun.objects.get(pk=run.pk).done == 50  # the second batch was created remotely, not saved here
    with start_worker(fake_xero, tmp_path / "second.log"):
        deadline = time.monotonic() + 60
        # What beat does every few minutes: runs nobody works on go on (once the dead worker's lock is gone).
        while not committed_export.commit(services.export_runs_resume, older_than=dt.timedelta(0)):
            assert time.monotonic() < deadline, "the killed worker's run was never resumed"
            time.sleep(0.5)
        run = wait_for_run(run.pk)
    assert run.state == ExportRun.State.DONE and run.done == 120
    with schema_context("alpha"):
        numbers = list(Invoice.objects.filter(pk__in=ids).values_list("number", "remote_id"))
    remote = Counter(invoice["InvoiceNumber"] for invoice in fake_xero.invoices())
    assert len(remote) == 120 and set(remote.values()) == {1}  # each invoice exactly once in Xero
    assert {number for number, _ in numbers} == set(remote)
    assert all(fake_xero.invoices(number=number)[0]["InvoiceID"] == remote_id for number, remote_id in numbers)
    puts = fake_xero.calls_to("PUT", "/Invoices")
    assert [len(call.body["Invoices"]) for call in puts] == [50, 50, 50, 20]
    assert puts[2].replayed and puts[2].headers["idempotency-key"] == puts[1].headers["idempotency-key"]


@pytest.fixture(autouse=True)
def _forget_the_killed_workers_message():
    """The killed worker's task stays unacknowledged in the broker and would come back in an hour
    to a later worker on this Redis database; it belongs to this test only."""
    yield
    with app.connection_for_write() as broker:
        broker.default_channel.client.delete("unacked", "unacked_index")
