"""Billing batches: what was billed together, and which item went on which invoice.

``BatchInvoice`` lists the invoices a batch created. Billed periods and charges are
recorded in ``BatchItem``; billed time by the invoice's time lines themselves. Unique
constraints on both (``period_billed_once``, ``charge_billed_once`` here,
``line_time_billed_once`` on invoice lines) make billing an item twice impossible in the
database itself, whatever two runs do at the same moment.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models


class BillingBatch(models.Model):
    class Status(models.TextChoices):
        RUN = "run", "Run — draft invoices"
        GENERATED = "generated", "Invoices generated"

    class Origin(models.TextChoices):
        WIZARD = "wizard", "Billing wizard"
        SCHEDULE = "schedule", "Scheduled run"
        COMMAND = "command", "Command line"

    name = models.CharField(max_length=120)
    cutoff = models.DateField()
    consolidated = models.BooleanField(default=False, help_text="One invoice per customer instead of one per contract.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RUN)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WIZARD)
    run_key = models.CharField(max_length=80, unique=True, null=True, blank=True,
                               help_text="Scheduled runs: one batch per schedule slot, however often retried.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    generated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "billing batches"

    def __str__(self) -> str:
        return self.name


class BatchInvoice(models.Model):
    """An invoice created by a batch."""

    batch = models.ForeignKey(BillingBatch, on_delete=models.CASCADE, related_name="invoice_links")
    invoice = models.OneToOneField("invoices.Invoice", on_delete=models.PROTECT, related_name="batch_link")


class BatchItem(models.Model):
    """One billed period or charge and the invoice it is on (billed time is on the invoice's time lines)."""

    class Kind(models.TextChoices):
        PERIOD = "period", "Contract period"
        CHARGE = "charge", "Part or expense"

    batch = models.ForeignKey(BillingBatch, on_delete=models.CASCADE, related_name="items")
    invoice = models.ForeignKey("invoices.Invoice", on_delete=models.PROTECT, related_name="batch_items")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # Each is indexed by its "billed once" unique constraint below (only where set).
    period = models.ForeignKey("contracts.ContractPeriod", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               db_index=False)
    charge = models.ForeignKey("tickets.Charge", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["period"], condition=models.Q(period__isnull=False), name="period_billed_once"),
            models.UniqueConstraint(fields=["charge"], condition=models.Q(charge__isnull=False), name="charge_billed_once"),
            models.CheckConstraint(
                condition=(
                    models.Q(kind="period", period__isnull=False, charge__isnull=True)
                    | models.Q(kind="charge", period__isnull=True, charge__isnull=False)
                ),
                name="batch_item_period_or_charge",
            ),
        ]


class BillingSchedule(models.Model):
    """The MSP's monthly billing run (one row per MSP schema)."""

    class Mode(models.TextChoices):
        DRAFTS = "drafts", "Create draft invoices for review"
        ISSUE = "issue", "Issue and e-mail the invoices"

    enabled = models.BooleanField(default=False)
    day_of_month = models.PositiveSmallIntegerField(default=1, help_text="1–28; the run bills what is due by that day.")
    time_of_day = models.TimeField(default="06:00")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.DRAFTS)
    consolidated = models.BooleanField(default=False)
    enabled_at = models.DateTimeField(null=True, blank=True, help_text="When the schedule was last turned on.")

    @classmethod
    def load(cls) -> "BillingSchedule":
        schedule, _ = cls.objects.get_or_create(pk=1)
        return schedule


class SavedWidget(models.Model):
    """A filtered view of unbilled work a user pinned to their own dashboard (docs/dashboard.md).

    Lives in the MSP's schema and belongs to one user: nobody else sees it.
    """

    AGES = [("0-30", "0–30 days"), ("31-60", "31–60 days"), ("61-90", "61–90 days"), ("over-90", "Over 90 days")]
    STATES = [("ready", "Ready to bill"), ("waiting", "Waiting for approval"), ("in_progress", "In progress")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_widgets")
    title = models.CharField(max_length=80)
    state = models.CharField(max_length=12, choices=STATES, blank=True)
    customer = models.ForeignKey("contracts.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    contract_type = models.CharField(max_length=30, blank=True)
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    age = models.CharField(max_length=8, choices=AGES, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def contract_type_label(self) -> str:
        from contracts.models import Contract

        return Contract.Type(self.contract_type).label if self.contract_type in Contract.Type.values else ""

    def filters(self) -> dict:
        """The widget's filters as the unbilled list reads them from its query string."""
        values = {"state": self.state, "customer": self.customer_id, "contract_type": self.contract_type,
                  "technician": self.technician_id, "age": self.age}
        return {key: value for key, value in values.items() if value}
