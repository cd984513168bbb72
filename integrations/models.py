"""Accounting integrations: connections, remote mappings, the call log and export runs.

Every row lives in the MSP's own schema, so the tenant is implicit. What each model means
and how the connectors use it is written down in ``docs/integrations.md``.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from integrations import crypto


class System(models.TextChoices):
    """Accounting systems reached through an API (file exports need no connection)."""

    QUICKBOOKS = "quickbooks", "QuickBooks Online"
    XERO = "xero", "Xero"


class AccountingConnection(models.Model):
    """This MSP's OAuth connection to one accounting system (one row per system, reused on reconnect).

    Tokens are Fernet-encrypted (``integrations.crypto``); read and write them through
    ``access_token`` / ``refresh_token``. Only one system is *active* (not disconnected)
    at a time — ``integrations.services.connection_store`` enforces it.
    """

    class Status(models.TextChoices):
        CONNECTED = "connected", "Connected"
        EXPIRED = "expired", "Expired — reconnect"  # refresh token dead (invalid_grant) or lapsed
        REVOKED = "revoked", "Revoked — reconnect"  # access withdrawn in the accounting system
        DISCONNECTED = "disconnected", "Disconnected"  # by the MSP

    system = models.CharField(max_length=20, choices=System.choices, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CONNECTED)
    remote_tenant_id = models.CharField(
        max_length=100, blank=True, help_text="QuickBooks realm id / Xero tenant id of the connected company.")
    remote_name = models.CharField(max_length=200, blank=True, help_text="The company's name in the accounting system.")
    access_token_encrypted = models.TextField(blank=True)
    refresh_token_encrypted = models.TextField(blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_expires_at = models.DateTimeField(null=True, blank=True)
    scopes = models.CharField(max_length=500, blank=True)
    # Connector-specific choices (e.g. QuickBooks' NON tax code id, the income account used for new items).
    options = models.JSONField(default=dict, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    connected_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    wizard_completed_at = models.DateTimeField(null=True, blank=True, help_text="The sync wizard's Done.")
    payments_synced_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["system"]

    def __str__(self) -> str:
        return f"{self.get_system_display()} ({self.get_status_display()})"

    # --- tokens, encrypted at rest ---------------------------------------------------------

    @property
    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted)

    @access_token.setter
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = crypto.encrypt(value)

    @property
    def refresh_token(self) -> str:
        return crypto.decrypt(self.refresh_token_encrypted)

    @refresh_token.setter
    def refresh_token(self, value: str) -> None:
        self.refresh_token_encrypted = crypto.encrypt(value)

    @property
    def is_active(self) -> bool:
        """Chosen for this MSP: connected, or waiting for a reconnect."""
        return self.status != self.Status.DISCONNECTED

    @property
    def needs_reconnect(self) -> bool:
        return self.status in (self.Status.EXPIRED, self.Status.REVOKED)

    @property
    def is_usable(self) -> bool:
        return self.status == self.Status.CONNECTED


class RemoteMapping(models.Model):
    """A local object's counterpart in one accounting system (remembered so re-syncs never duplicate)."""

    class LocalType(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        PRODUCT = "product", "Product"
        RATE_ITEM = "rate_item", "Rate item"
        TAX_RATE = "tax_rate", "Tax rate"  # local_id is the tax *code* (all its versions)
        ACCOUNT = "account", "Account"  # local_id is an accounting code

    system = models.CharField(max_length=20, choices=System.choices)
    local_type = models.CharField(max_length=16, choices=LocalType.choices)
    local_id = models.CharField(max_length=64, help_text="Primary key as text, or the tax code.")
    remote_id = models.CharField(max_length=100)
    remote_name = models.CharField(max_length=500, blank=True)
    remote_code = models.CharField(max_length=100, blank=True, help_text="Item code / account code where the system has one.")
    extra = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["system", "local_type", "local_id"]
        constraints = [
            models.UniqueConstraint(fields=["system", "local_type", "local_id"], name="remote_mapping_one_per_local"),
        ]
        indexes = [models.Index(fields=["system", "local_type", "remote_id"])]

    def __str__(self) -> str:
        return f"{self.system} {self.local_type}#{self.local_id} → {self.remote_id}"


class ExportRun(models.Model):
    """A set of invoices (and credit notes) being exported: progress bar, resumption after a crash.

    ``document_ids`` is the ordered list asked for; which of them are done is read from the
    invoices themselves (``Invoice.exported_to`` / ``remote_id``) and ``failed_ids``, both
    written in the same transaction as each chunk's results, so a worker killed at any
    point resumes exactly where the database says, with the same next chunk.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting (rate limit)"
        PAUSED = "paused", "Paused (reconnect needed)"
        DONE = "done", "Done"
        DONE_WITH_ERRORS = "done_with_errors", "Done with errors"
        FAILED = "failed", "Failed"

    system = models.CharField(max_length=20, choices=System.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    document_ids = models.JSONField(default=list, help_text="Invoice / credit note ids, in export order.")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    failed_ids = models.JSONField(default=list, blank=True, help_text="Documents the system refused in this run.")
    retries = models.PositiveIntegerField(default=0, help_text="Temporary failures (5xx) in a row; reset by progress.")
    attempts = models.PositiveIntegerField(default=0, help_text="Task runs so far (more than one: resumed).")
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="When waiting: the retry the rate limit asked for.")
    last_error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Export run #{self.pk} to {self.system}: {self.done}/{self.total} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.DONE, self.State.DONE_WITH_ERRORS, self.State.FAILED)

    @property
    def percent(self) -> int:
        if not self.total:
            return 100
        return int(100 * (self.done + self.failed) / self.total)


class IntegrationLog(models.Model):
    """One call to an accounting system (or one failed export), with its outcome.

    Failures stay on the accounting page, and are e-mailed to billing admins, until
    ``resolved_at`` is set (by a later success for the same invoice, or by hand).
    """

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    system = models.CharField(max_length=20, help_text="quickbooks, xero, or a file format.")
    operation = models.CharField(max_length=60, help_text="e.g. token.refresh, customer.create, invoice.export, batch")
    invoice = models.ForeignKey("invoices.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    export_run = models.ForeignKey(ExportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs")
    request_summary = models.CharField(max_length=500, blank=True)
    idempotency_key = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    remote_id = models.CharField(max_length=100, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    notified_at = models.DateTimeField(null=True, blank=True, help_text="Last time billing admins were e-mailed about it.")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["outcome", "resolved_at"]),
            models.Index(fields=["invoice", "outcome"]),
        ]

    def __str__(self) -> str:
        return f"{self.system} {self.operation} {self.outcome}"

    @property
    def is_open_failure(self) -> bool:
        return self.outcome == self.Outcome.FAILED and self.resolved_at is None
