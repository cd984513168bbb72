"""Writes for accounting integrations, the same for every system.

* connections: store tokens (encrypted), mark expired / revoked, disconnect;
* export runs: deterministic chunks, results saved atomically per chunk, progress,
  resumption after a crash, rate limits handed back to Celery;
* payments pulled back through ``invoices.services.payment_record(remote_id=...)``;
* failures: resolve, retry, e-mail billing admins until resolved.

The connectors (``integrations.base.Connector``) only talk to their system.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from integrations import crypto, registry
from integrations.hooks import sync_failed_on_commit
from integrations.base import (
    ConnectionLost,
    DocumentResult,
    IntegrationError,
    RateLimited,
    TemporaryFailure,
)
from integrations.files import FORMATS as FILE_FORMATS
from integrations.models import (
    AccountingConnection,
    ExportRun,
    IntegrationLog,
    RemoteMapping,
    System,
)
from integrations.selectors import documents_for_export, open_failures
from integrations.store import (  # noqa: F401 (re-exported: callers write services.mapping_set)
    connection_tokens_update,
    mapping_get,
    mapping_set,
    mappings_for,
    token_expiry,
    xero_item_codes,
)
from invoices.audit import audit_record
from invoices.models import Invoice, Payment
from invoices.services import invoice_mark_exported, payment_record, tenant_today
from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role
from msp_billing.celery import app as celery_app
from msp_billing.db_locks import advisory_lock_try
from msp_billing.tenants.models import Msp
from msp_billing.tenants.urls import tenant_url

logger = logging.getLogger(__name__)

EXPORTABLE_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.PARTIALLY_PAID, Invoice.Status.PAID)
MAX_TEMPORARY_RETRIES = 5

__all__ = [
    "EXPORTABLE_STATUSES", "ExportStep", "connection_disconnect", "connection_mark_lost", "connection_store",
    "connection_tokens_update", "export_refusal", "export_run_create", "export_run_execute", "failure_resolve",
    "failures_notify", "mapping_get", "mapping_set", "payments_pull",
]


# --- connections ---------------------------------------------------------------------------


@transaction.atomic
def connection_store(*, system: str, tokens: dict[str, Any], acting_user) -> AccountingConnection:
    """Save a fresh authorization (connect or reconnect). Only one system may be active at a time."""
    if system not in System.values:
        raise ValidationError(f"Unknown accounting system {system!r}.")
    other = (AccountingConnection.objects.select_for_update().exclude(system=system)
             .exclude(status=AccountingConnection.Status.DISCONNECTED).first())
    if other is not None:
        raise ValidationError(f"{other.get_system_display()} is connected; disconnect it before connecting "
                              f"{System(system).label}.")
    conn = AccountingConnection.objects.select_for_update().filter(system=system).first()
    if conn is None:
        conn = AccountingConnection(system=system)
    remote_tenant_id = str(tokens.get("remote_tenant_id") or "")
    if conn.pk and conn.remote_tenant_id and remote_tenant_id and conn.remote_tenant_id != remote_tenant_id:
        # Another company: what was matched against the old one means nothing there.
        RemoteMapping.objects.filter(system=system).delete()
        conn.wizard_completed_at = None
        conn.options = {}
    conn.remote_tenant_id = remote_tenant_id
    conn.remote_name = str(tokens.get("remote_name") or conn.remote_name or "")[:200]
    conn.access_token = tokens.get("access_token") or ""
    conn.refresh_token = tokens.get("refresh_token") or ""
    conn.access_expires_at = token_expiry(tokens.get("expires_in"))
    conn.refresh_expires_at = token_expiry(tokens.get("refresh_expires_in"))
    conn.scopes = str(tokens.get("scopes") or "")[:500]
    conn.status = AccountingConnection.Status.CONNECTED
    conn.status_changed_at = timezone.now()
    conn.connected_at = timezone.now()
    conn.connected_by = acting_user
    conn.last_error = ""
    conn.save()
    export_runs_unpause(system=system)
    audit_record(actor=acting_user, action="accounting_connected", obj=conn,
                 after={"system": system, "remote_tenant_id": conn.remote_tenant_id, "remote_name": conn.remote_name})
    return conn


def connection_mark_lost(*, connection: AccountingConnection, error: IntegrationError) -> AccountingConnection:
    """The refresh token is dead or access was revoked: show a reconnect button, pause exports."""
    status = AccountingConnection.Status.REVOKED if getattr(error, "revoked", False) else AccountingConnection.Status.EXPIRED
    AccountingConnection.objects.filter(pk=connection.pk).update(
        status=status, last_error=error.message[:2000], status_changed_at=timezone.now(), updated_at=timezone.now())
    connection.status = status
    connection.last_error = error.message
    return connection


@transaction.atomic
def connection_disconnect(*, connection: AccountingConnection, acting_user) -> AccountingConnection:
    """Revoke remotely (best effort) and forget the tokens. Mappings are kept for a reconnect."""
    conn = AccountingConnection.objects.select_for_update().get(pk=connection.pk)
    if conn.status == AccountingConnection.Status.DISCONNECTED:
        return conn
    if conn.status == AccountingConnection.Status.CONNECTED:
        try:
            registry.connector_for(conn).disconnect()
        except IntegrationError as error:
            logger.warning("revoking %s failed: %s", conn.system, error)
    conn.access_token = ""
    conn.refresh_token = ""
    conn.access_expires_at = None
    conn.refresh_expires_at = None
    conn.status = AccountingConnection.Status.DISCONNECTED
    conn.status_changed_at = timezone.now()
    conn.save()
    ExportRun.objects.filter(system=conn.system, state__in=[ExportRun.State.QUEUED, ExportRun.State.RUNNING,
                                                            ExportRun.State.WAITING, ExportRun.State.PAUSED]).update(
        state=ExportRun.State.FAILED, last_error="Disconnected", finished_at=timezone.now())
    audit_record(actor=acting_user, action="accounting_disconnected", obj=conn, after={"system": conn.system})
    return conn


@transaction.atomic
def connections_reencrypt() -> int:
    """Re-encrypt every stored token with the current first key (after adding a new key)."""

    count = 0
    for conn in AccountingConnection.objects.select_for_update().all():
        conn.access_token_encrypted = crypto.reencrypt(conn.access_token_encrypted)
        conn.refresh_token_encrypted = crypto.reencrypt(conn.refresh_token_encrypted)
        conn.save(update_fields=["access_token_encrypted", "refresh_token_encrypted", "updated_at"])
        count += 1
    return count


# --- export runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportStep:
    """What one task run achieved: the run's state, and when to come back (rate limit, 5xx)."""

    state: str
    retry_after: float | None = None


def export_refusal(invoice: Invoice, *, system: str) -> str | None:
    if invoice.status not in EXPORTABLE_STATUSES:
        return f"{invoice} is {invoice.get_status_display().lower()}; only issued invoices and credit notes are exported."
    if invoice.exported_to and invoice.exported_to != system:
        return f"{invoice} was already exported to {invoice.exported_to}."
    return None


def _usable_connection() -> AccountingConnection:
    connection = registry.active_connection()
    if connection is None:
        raise ValidationError("Connect an accounting system first (Admin → Accounting).")
    if not connection.is_usable:
        raise ValidationError(f"The {connection.get_system_display()} connection is "
                              f"{connection.get_status_display().lower()}: reconnect it first.")
    return connection


@transaction.atomic
def export_run_create(*, document_ids: Sequence[int], acting_user) -> ExportRun:
    """Queue the export of issued invoices / credit notes to the connected system (already exported ones are skipped).

    Credit notes go after invoices, so an invoice is in the accounting system before its
    credit note. The task starts after commit.
    """
    connection = _usable_connection()
    ids = list(dict.fromkeys(int(pk) for pk in document_ids))
    documents = {doc.pk: doc for doc in Invoice.objects.filter(pk__in=ids)}
    missing = [pk for pk in ids if pk not in documents]
    if missing:
        raise ValidationError(f"No such invoice: {', '.join(map(str, missing[:10]))}.")
    refusals = [refusal for pk in ids if (refusal := export_refusal(documents[pk], system=connection.system))]
    if refusals:
        raise ValidationError(refusals[:10])
    todo = [pk for pk in ids if documents[pk].exported_to != connection.system]
    todo.sort(key=lambda pk: documents[pk].is_credit_note)  # stable: invoices first, in the order asked
    run = ExportRun.objects.create(system=connection.system, document_ids=todo, total=len(todo), created_by=acting_user,
                                   state=ExportRun.State.QUEUED if todo else ExportRun.State.DONE,
                                   finished_at=None if todo else timezone.now())
    if todo:
        _enqueue_run(run.pk)
    return run


def _queue(task: str, *args: Any, countdown: float | None = None) -> None:
    """Queue one of ``integrations.tasks`` once this transaction commits.

    By name: the tasks call these services, so the services do not import the tasks.
    The MSP's schema travels with it (``msp_billing.celery``)."""
    transaction.on_commit(lambda: celery_app.send_task(f"integrations.tasks.{task}", args=args, countdown=countdown))


def _enqueue_run(run_id: int, *, countdown: float | None = None) -> None:
    _queue("export_run_task", run_id, countdown=countdown)


def _advisory_key(run_id: int) -> str:
    return f"{db_connection.schema_name}:export_run:{run_id}"


class _RunLock:
    """A PostgreSQL advisory lock per run: one worker at a time, released if the worker dies
    (``msp_billing.db_locks``: a session lock, or behind a transaction pooler a transaction's)."""

    def __init__(self, run_id: int) -> None:
        self.key = _advisory_key(run_id)
        self.held = False

    def __enter__(self) -> _RunLock:
        self._lock = advisory_lock_try(self.key)
        self.held = self._lock.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.__exit__(*exc)


def _remaining(run: ExportRun) -> list[int]:
    """Documents still to send, in order: not exported to the run's system, not refused in this run."""
    exported = set(Invoice.objects.filter(pk__in=run.document_ids, exported_to=run.system)
                   .exclude(remote_id="").values_list("pk", flat=True))
    existing = set(Invoice.objects.filter(pk__in=run.document_ids).values_list("pk", flat=True))
    failed = set(run.failed_ids)
    return [pk for pk in run.document_ids if pk in existing and pk not in exported and pk not in failed]


def export_run_execute(*, run_id: int) -> ExportStep:
    """Export what is left of a run, chunk by chunk; never inside a transaction (each chunk commits).

    Safe to run twice or after a crash: the next chunk is computed from committed state,
    so a resend is the same request with the same idempotency keys.
    """
    with _RunLock(run_id) as lock:
        if not lock.held:
            return ExportStep(state="locked")
        run = ExportRun.objects.get(pk=run_id)
        if run.is_finished:
            return ExportStep(state=run.state)
        connection = AccountingConnection.objects.filter(system=run.system).first()
        if connection is None or connection.status == AccountingConnection.Status.DISCONNECTED:
            _run_update(run, state=ExportRun.State.FAILED, last_error="Disconnected", finished_at=timezone.now())
            return ExportStep(state=run.state)
        if not connection.is_usable:
            _run_update(run, state=ExportRun.State.PAUSED, last_error=connection.last_error or "Reconnect needed")
            return ExportStep(state=run.state)
        _run_update(run, state=ExportRun.State.RUNNING, attempts=run.attempts + 1, next_attempt_at=None,
                    started_at=run.started_at or timezone.now())
        connector = registry.connector_for(connection, export_run=run)
        while True:
            remaining = _remaining(run)
            if not remaining:
                break
            chunk = selectors_documents(remaining[:connector.export_batch_size])
            try:
                results = connector.export_documents(chunk)
            except RateLimited as error:
                _run_update(run, state=ExportRun.State.WAITING, last_error=error.message,
                            next_attempt_at=timezone.now() + dt.timedelta(seconds=error.retry_after))
                return ExportStep(state=run.state, retry_after=error.retry_after)
            except TemporaryFailure as error:
                if run.retries + 1 >= MAX_TEMPORARY_RETRIES:
                    _record_failures(run, chunk, error)
                    continue
                backoff = min(600.0, 15.0 * 2 ** run.retries)
                _run_update(run, state=ExportRun.State.WAITING, retries=run.retries + 1, last_error=error.message,
                            next_attempt_at=timezone.now() + dt.timedelta(seconds=backoff))
                return ExportStep(state=run.state, retry_after=backoff)
            except ConnectionLost as error:
                connection_mark_lost(connection=connection, error=error)
                _run_update(run, state=ExportRun.State.PAUSED, last_error=error.message)
                _notify_later()
                return ExportStep(state=run.state)
            except IntegrationError as error:  # the chunk as a whole was refused (a customer QuickBooks will not take)
                _record_failures(run, chunk, error)
                continue
            _save_results(run, results)
        failed = bool(run.failed_ids)
        with transaction.atomic():
            _run_update(run, state=ExportRun.State.DONE_WITH_ERRORS if failed else ExportRun.State.DONE,
                        finished_at=timezone.now(), next_attempt_at=None)
            # Call-level hiccups (429, a 5xx that a retry got past) are settled by the finished run.
            IntegrationLog.objects.filter(export_run=run, invoice__isnull=True, outcome=IntegrationLog.Outcome.FAILED,
                                          resolved_at__isnull=True).update(resolved_at=timezone.now())
        if failed:
            _notify_later()
        return ExportStep(state=run.state)


def selectors_documents(ids: Sequence[int]) -> list[Invoice]:

    return documents_for_export(ids=ids)


def _run_update(run: ExportRun, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=[*fields, "updated_at"])


@transaction.atomic
def _save_results(run: ExportRun, results: Sequence[DocumentResult]) -> None:
    now = timezone.now()
    done = 0
    failed_ids = list(run.failed_ids)
    for result in results:
        if result.ok:
            invoice = invoice_mark_exported(invoice_id=result.invoice_id, system=run.system, at=now,
                                            remote_id=result.remote_id, remote_url=result.remote_url,
                                            acting_user=run.created_by, export_run_id=run.pk)
            IntegrationLog.objects.filter(invoice_id=invoice.pk, outcome=IntegrationLog.Outcome.FAILED,
                                          resolved_at__isnull=True).update(resolved_at=now)
            done += 1
        elif result.invoice_id not in failed_ids:
            failed_ids.append(result.invoice_id)
    _run_update(run, done=run.done + done, failed_ids=failed_ids, failed=len(failed_ids), retries=0)


def _record_failures(run: ExportRun, chunk: Sequence[Invoice], error: IntegrationError) -> None:
    with transaction.atomic():
        for doc in chunk:
            log = IntegrationLog.objects.create(
                system=run.system, operation="credit_note.export" if doc.is_credit_note else "invoice.export",
                invoice=doc, export_run=run, outcome=IntegrationLog.Outcome.FAILED, error=error.message,
                error_code=error.code, http_status=error.http_status, request_summary=f"{doc.number}")
            sync_failed_on_commit(log.pk)
        failed_ids = list(dict.fromkeys([*run.failed_ids, *(doc.pk for doc in chunk)]))
        _run_update(run, failed_ids=failed_ids, failed=len(failed_ids), retries=0, last_error=error.message)


def _notify_later() -> None:
    _queue("failures_notify_task")


def export_runs_due(*, older_than: dt.timedelta = dt.timedelta(minutes=2)):
    """Runs nobody is working on: queued or running but untouched for ``older_than`` (their
    worker died, or their task was lost), or waiting past their next attempt time by as long.
    Beat asks this of every MSP at once (``msp_billing.tenant_scan``) and resumes only those."""
    since = timezone.now() - older_than
    return ExportRun.objects.filter(
        Q(state__in=[ExportRun.State.QUEUED, ExportRun.State.RUNNING])
        | Q(state=ExportRun.State.WAITING) & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=since)),
        updated_at__lte=since,
    )


def export_runs_resume(*, older_than: dt.timedelta = dt.timedelta(minutes=2)) -> list[int]:
    """Queue again runs nobody is working on (their worker died, their delayed retry was lost,
    or they wait for a limit longer than a task may wait in the broker: ``EXPORT_RETRY_COUNTDOWN_MAX_SECONDS``)."""
    queued = []
    for run in export_runs_due(older_than=older_than):
        with _RunLock(run.pk) as lock:
            if not lock.held:
                continue  # a worker holds it: alive
        _enqueue_run(run.pk)
        queued.append(run.pk)
    return queued


def export_runs_unpause(*, system: str) -> list[int]:
    """After a reconnect: paused runs of ``system`` go on."""
    ids = list(ExportRun.objects.filter(system=system, state=ExportRun.State.PAUSED).values_list("pk", flat=True))
    ExportRun.objects.filter(pk__in=ids).update(state=ExportRun.State.QUEUED, updated_at=timezone.now())
    for run_id in ids:
        _enqueue_run(run_id)
    return ids


# --- payments --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentsPulled:
    recorded: int = 0
    already_known: int = 0
    unmatched: int = 0
    failed: int = 0


def payments_pull_later() -> None:
    """Pull payments in the background once this transaction commits."""
    _queue("payments_pull_task")


def payments_pull() -> PaymentsPulled:
    """Record payments made in the accounting system against exported invoices (once each)."""

    connection = _usable_connection()
    connector = registry.connector_for(connection)
    started = timezone.now()
    since = connection.payments_synced_at - dt.timedelta(hours=1) if connection.payments_synced_at else None
    try:
        payments = connector.fetch_payments(since=since)
    except ConnectionLost as error:
        connection_mark_lost(connection=connection, error=error)
        raise
    recorded = known = unmatched = failed = 0
    today = tenant_today()
    for payment in payments:
        invoice = (Invoice.objects.filter(exported_to=connection.system, remote_id=payment.invoice_remote_id,
                                          kind=Invoice.Kind.INVOICE).first())
        if invoice is None:
            unmatched += 1
            continue
        if Payment.objects.filter(invoice=invoice, remote_id=payment.remote_id).exists():
            known += 1
            continue
        try:
            payment_record(invoice_id=invoice.pk, amount=payment.amount, date=min(payment.date, today),
                           method=Payment.Method.ACCOUNTING_SYNC, reference=payment.reference[:200],
                           acting_user=None, remote_id=payment.remote_id)
        except ValidationError as error:
            failed += 1
            log = IntegrationLog.objects.create(
                system=connection.system, operation="payment.record", invoice=invoice,
                outcome=IntegrationLog.Outcome.FAILED, remote_id=payment.remote_id[:100],
                request_summary=f"{payment.amount} on {payment.date} for {invoice.number}",
                error="; ".join(error.messages))
            sync_failed_on_commit(log.pk)
            continue
        IntegrationLog.objects.filter(invoice=invoice, operation="payment.record", outcome=IntegrationLog.Outcome.FAILED,
                                      remote_id=payment.remote_id[:100], resolved_at__isnull=True).update(
            resolved_at=timezone.now())
        recorded += 1
    AccountingConnection.objects.filter(pk=connection.pk).update(payments_synced_at=started)
    if failed:
        _notify_later()
    return PaymentsPulled(recorded=recorded, already_known=known, unmatched=unmatched, failed=failed)


# --- file downloads ----------------------------------------------------------------------------


def file_download_record(*, fmt: str, documents: Sequence[Invoice]) -> IntegrationLog:
    """An export file was downloaded: logged like a push, so the invoices' export history shows it."""
    ids = [doc.pk for doc in documents]
    return IntegrationLog.objects.create(
        system=f"file.{fmt}", operation="file.download", outcome=IntegrationLog.Outcome.OK,
        invoice=documents[0] if len(documents) == 1 else None,
        request_summary=f"{FILE_FORMATS[fmt]}: {len(documents)} document(s) " + ",".join(map(str, ids[:60]))[:400],
    )


# --- failures ---------------------------------------------------------------------------------


def failure_resolve(*, log_id: int, acting_user) -> IntegrationLog:
    log = IntegrationLog.objects.get(pk=log_id)
    if log.resolved_at is None:
        log.resolved_at, log.resolved_by = timezone.now(), acting_user
        log.save(update_fields=["resolved_at", "resolved_by"])
    return log


@transaction.atomic
def failure_retry(*, log_id: int, acting_user) -> ExportRun | None:
    """Try a failed export again (a new run for its invoice); other failures are resolved by a fresh pull."""
    log = IntegrationLog.objects.select_for_update().get(pk=log_id)
    if log.resolved_at is not None:
        raise ValidationError("This failure is already resolved.")
    if log.invoice_id and log.operation.endswith(".export"):
        invoice = Invoice.objects.get(pk=log.invoice_id)
        if invoice.exported_to and invoice.remote_id:
            failure_resolve(log_id=log.pk, acting_user=acting_user)
            return None
        return export_run_create(document_ids=[invoice.pk], acting_user=acting_user)
    if log.operation.startswith("payment"):
        payments_pull_later()
    failure_resolve(log_id=log.pk, acting_user=acting_user)
    return None


def _billing_admin_emails() -> list[str]:

    return sorted(User.objects.filter(is_active=True, role__in=[Role.OWNER, Role.BILLING_ADMIN])
                  .values_list("email", flat=True))


def failures_notify(*, resend_after: dt.timedelta = dt.timedelta(hours=24)) -> int:
    """E-mail billing admins the open failures not mailed in the last ``resend_after``; returns how many."""


    now = timezone.now()
    due = list(open_failures().filter(models_q_not_notified_since(now - resend_after))[:200])
    recipients = _billing_admin_emails()
    if not due or not recipients:
        return 0
    tenant = Msp.objects.get(schema_name=db_connection.schema_name)
    try:
        path = reverse("integrations:accounting")
    except NoReverseMatch:
        path = "/integrations/accounting/"
    lines = [f"- {log.created_at:%Y-%m-%d %H:%M} {log.system} {log.operation}"
             f"{' ' + log.invoice.number if log.invoice and log.invoice.number else ''}: {log.error[:300]}"
             for log in due[:50]]
    more = f"\n… and {len(due) - 50} more." if len(due) > 50 else ""
    send_mail(
        subject=f"{len(due)} accounting sync failure{'s' if len(due) != 1 else ''} need attention — {tenant.name}",
        message=("These calls to your accounting system failed and are not resolved yet. Nothing is lost: "
                 "retry them or mark them resolved on the accounting page.\n\n" + "\n".join(lines) + more +
                 f"\n\n{tenant_url(tenant, path)}\n\nYou will be reminded daily until they are resolved."),
        from_email=None, recipient_list=recipients,
    )
    IntegrationLog.objects.filter(pk__in=[log.pk for log in due]).update(notified_at=now)
    return len(due)


def models_q_not_notified_since(moment: dt.datetime):

    return Q(notified_at__isnull=True) | Q(notified_at__lt=moment)
