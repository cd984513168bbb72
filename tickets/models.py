"""Tickets, the time technicians log on them, and charges (products and expenses).

Time is kept exactly (``minutes``); what is billed comes from routing and rating and is
stored per allocation, so the raw time is never lost and every minute is visible.
"""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from djmoney.models.fields import MoneyField

from contracts.models import AMOUNT, RATE, Contract, Customer, Product, RateItem, Role, WorkType
from contracts.rules.routing import Bucket


class TechnicianProfile(models.Model):
    """Which labour role a technician works in (sets the rate of their time)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="technician_profile")
    role = models.ForeignKey(Role, on_delete=models.PROTECT)


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tickets")
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    default_contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    billed_at = models.DateTimeField(null=True, blank=True, help_text="Set when a batch bills it; the ticket is then locked.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_locked(self) -> bool:
        return self.billed_at is not None


class TimeEntry(models.Model):
    class Approval(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved"

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="time_entries")
    technician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="time_entries")
    role = models.ForeignKey(Role, on_delete=models.PROTECT)
    work_type = models.ForeignKey(WorkType, on_delete=models.PROTECT)
    date = models.DateField()
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    minutes = models.PositiveIntegerField(help_text="Raw time worked (the logged span).")
    billable_minutes = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Minutes to bill when they differ from the time worked (45 billable minutes of a 2-hour visit; "
                  "0 bills nothing). Billed as given: no rounding or minimum. Empty: the time worked is billed "
                  "under the contract's rounding rule.",
    )
    notes = models.TextField(blank=True)
    billable = models.BooleanField(default=True)
    after_hours = models.BooleanField(default=False)
    chosen_contract = models.ForeignKey(
        Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Picked explicitly instead of routing.", db_index=False,
    )
    chosen_rate_item = models.ForeignKey(
        RateItem, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Bill at this rate item's rate instead of the resolved rate.", db_index=False,
    )
    approval = models.CharField(max_length=10, choices=Approval.choices, default=Approval.APPROVED)
    # Approve & Post: what the admin posted, kept beside what was logged (docs/design.md
    # "Readiness, periods and approval"). Routing and rating use a posted value instead of
    # the logged one; ``routed_before_approval`` keeps how the logged entry was billed.
    posted_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Time posted on approval: billed as posted instead of the logged minutes.",
    )
    posted_rate = MoneyField(**RATE, null=True, blank=True, help_text="Hourly rate posted on approval.")
    posted_contract = models.ForeignKey(
        Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="Contract posted on approval: takes the entry instead of routing or the contract chosen when logging.",
        db_index=False,
    )
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    routed_before_approval = models.JSONField(
        null=True, blank=True, encoder=DjangoJSONEncoder,
        help_text="The entry's allocations as logged, when it was approved: contract, bucket, billed minutes, rate, amount.",
    )
    # Routing result (recomputed while unbilled)
    is_unrouted = models.BooleanField(default=False)
    routing_explanation = models.TextField(blank=True)
    routed_at = models.DateTimeField(null=True, blank=True)
    billed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "-id"]
        verbose_name_plural = "time entries"
        # Marking a month's entries billed touches every one of them. No index depends on
        # ``billed_at`` and the table keeps half of each page free (fillfactor 50, migration
        # 0006), so PostgreSQL marks an entry billed in place (a HOT update) without touching
        # any index. References that are mostly empty are indexed only where set.
        indexes = [
            models.Index(fields=["date"]),
            models.Index(fields=["date"], condition=models.Q(is_unrouted=True), name="timeentry_unrouted"),
            *[models.Index(fields=[name], condition=models.Q(**{f"{name}__isnull": False}), name=f"timeentry_{name}_set"[:30])
              for name in ("chosen_contract", "chosen_rate_item", "posted_contract", "approved_by")],
        ]

    def __str__(self) -> str:
        return f"Time entry #{self.pk}: {self.minutes} min on ticket #{self.ticket_id}, {self.date:%d %b %Y}"

    @property
    def is_posted(self) -> bool:
        """Approved with an adjusted time, rate or contract."""
        return self.posted_minutes is not None or self.posted_rate is not None or self.posted_contract_id is not None

    @property
    def billed_minutes_total(self) -> int | None:
        """The minutes billed for this entry, as routing stored them after the contract's rounding rule
        (``contracts/rules/rounding.py``), summed over its allocations; None when nothing is billed."""
        allocations = self.allocations.all()
        return sum(a.billed_minutes for a in allocations) if allocations else None

    @property
    def billed_hours(self) -> Decimal | None:
        """:attr:`billed_minutes_total` in hours, to the four places an invoice line's quantity has."""
        billed = self.billed_minutes_total
        return None if billed is None else (Decimal(billed) / 60).quantize(Decimal("0.0001"))

    @property
    def minutes_for_billing(self) -> int:
        """The minutes routing starts from: as posted on approval, else the billable minutes, else as logged."""
        if self.posted_minutes is not None:
            return self.posted_minutes
        return self.billable_minutes if self.billable_minutes is not None else self.minutes


class CurrentAllocations(models.Manager):
    """The allocations that route their entry now: superseded ones are left out."""

    def get_queryset(self):
        return super().get_queryset().filter(superseded_at__isnull=True)


class TimeAllocation(models.Model):
    """Part of a time entry taken by one contract (or unrouted), rated and ready to bill.

    Re-routing an unbilled entry replaces its allocations. One still printed on an invoice
    (a void invoice: its batch was deleted and the time released) is kept for that
    invoice's lines and marked ``superseded_at``; the entry bills from its new allocations.
    ``objects`` (and ``entry.allocations``) give current allocations only;
    ``with_superseded`` gives every row, and an invoice line reaches its allocation either way.
    """

    entry = models.ForeignKey(TimeEntry, on_delete=models.CASCADE, related_name="allocations")
    contract = models.ForeignKey(Contract, null=True, on_delete=models.PROTECT, related_name="time_allocations")
    bucket = models.CharField(max_length=10, choices=[(b.value, b.value.title()) for b in Bucket])
    minutes = models.PositiveIntegerField(help_text="Raw minutes of the entry in this allocation.")
    billed_minutes = models.PositiveIntegerField(help_text="After the contract's rounding rule.")
    rate = MoneyField(**RATE, null=True)
    amount = MoneyField(**AMOUNT, null=True, help_text="What is charged (charged and overage buckets only).")
    value = MoneyField(**AMOUNT, null=True, help_text="Worth at rate, for absorbed and deducted time (profitability).")
    rate_explanation = models.TextField(blank=True)
    superseded_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the entry was re-routed while this allocation was on a (void) invoice; the row stays for that invoice.")

    objects = CurrentAllocations()
    with_superseded = models.Manager()

    class Meta:
        ordering = ["entry", "id"]
        indexes = [models.Index(fields=["contract", "bucket"])]
        base_manager_name = "with_superseded"


class Charge(models.Model):
    """A product or expense on a ticket or directly on a contract.

    Its own state (docs/dashboard.md): *ready to deliver* bills with its ticket (or at once
    on a contract); *waiting for approval* holds it back until Approve & Post approves it,
    as it does time, where the MSP turned approval on.
    """

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for approval"
        READY = "ready", "Ready to deliver"

    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.PROTECT, related_name="charges")
    contract = models.ForeignKey(Contract, null=True, blank=True, on_delete=models.PROTECT, related_name="charges")
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.PROTECT)
    description = models.CharField(max_length=200)
    date = models.DateField()
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=1)
    unit_price = MoneyField(**RATE)
    unit_cost = MoneyField(**RATE, null=True, blank=True)
    markup_percent = models.DecimalField(max_digits=7, decimal_places=3, default=0)
    billable = models.BooleanField(default=True)
    is_expense = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.READY)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    db_index=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    billed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(state__in=["waiting", "ready"]), name="charge_state_known"),
            models.CheckConstraint(
                condition=models.Q(ticket__isnull=False) | models.Q(contract__isnull=False),
                name="charge_on_ticket_or_contract",
            )
        ]


class RunningTimer(models.Model):
    """A technician's start/stop timer on a ticket, kept here so a reload or another device sees it.

    One per person and ticket; stopping it removes it and hands the elapsed minutes to the
    time form (tickets/timers.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="running_timers")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="running_timers")
    started_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "ticket"], name="running_timer_one_per_user_ticket")]

    def __str__(self) -> str:
        return f"Timer of {self.user} on ticket #{self.ticket_id} since {self.started_at:%H:%M}"
