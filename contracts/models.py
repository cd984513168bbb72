"""Customers, catalogue and contracts: what each customer is sold and on which terms.

Amounts are django-money ``MoneyField``s; rates and unit prices keep 4 decimal places and
are rounded only by ``msp_billing.money``. Dates are the MSP's local calendar dates.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from djmoney.models.fields import MoneyField

from contracts.rules.proration import BillingFrequency
from contracts.rules.rounding import RoundingDirection
from contracts.rules.routing import ContractType
from contracts.rules.taxes import (
    CategoryTerms,
    CustomerTaxTerms,
    customer_untaxed,
    exemption_in_effect,
    parse_codes,
)

RATE = dict(max_digits=14, decimal_places=4, default_currency=None)
AMOUNT = dict(max_digits=14, decimal_places=2, default_currency=None)


class Customer(models.Model):
    legal_name = models.CharField(max_length=200, help_text="The name accounting systems match on.")
    display_name = models.CharField(max_length=200, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="sites",
        help_text="Sites and sub-accounts are billed to their parent when consolidated.",
    )
    billing_email = models.EmailField(blank=True, help_text="Invoices go to this address, and to the billing contacts.")
    address = models.TextField(blank=True)
    currency = models.CharField(max_length=3)
    tax_exempt = models.BooleanField(default=False)
    tax_id = models.CharField(max_length=60, blank=True, help_text="Tax or VAT number.")
    # Taxes (docs/invoices.md "Which taxes a line charges").
    tax_codes = models.CharField(max_length=200, blank=True,
                                 help_text="Comma-separated tax codes of the customer's jurisdiction, such as GST, PST.")
    tax_exemption_reason = models.CharField(max_length=200, blank=True)
    tax_exemption_certificate = models.CharField(max_length=60, blank=True)
    tax_exemption_expires = models.DateField(null=True, blank=True,
                                             help_text="The exemption no longer applies after this date.")
    reverse_charge = models.BooleanField(
        default=False, help_text="EU business customer in another country: no VAT, the customer accounts for it.")
    payment_terms_days = models.PositiveSmallIntegerField(default=30)
    region = models.CharField(max_length=60, blank=True)
    default_hourly_contract = models.ForeignKey(
        "Contract", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Takes time no other contract takes (routing fallback).",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["legal_name"]
        constraints = [models.UniqueConstraint(fields=["legal_name"], name="customer_unique_legal_name")]

    def __str__(self) -> str:
        return self.display_name or self.legal_name

    def tax_terms(self) -> CustomerTaxTerms:
        return CustomerTaxTerms(codes=parse_codes(self.tax_codes), exempt=self.tax_exempt,
                                exemption_expires=self.tax_exemption_expires, reverse_charge=self.reverse_charge)

    def exemption_in_effect(self, on: dt.date) -> bool:
        return exemption_in_effect(exempt=self.tax_exempt, expires=self.tax_exemption_expires, on=on)

    def untaxed_on(self, on: dt.date) -> bool:
        """No tax at all on ``on``: reverse charge, or an exemption in effect."""
        return customer_untaxed(self.tax_terms(), on=on)


class BillingContact(models.Model):
    """Someone who receives the customer's invoices: on the To line or in copy (Cc).

    Written by ``contracts.services.contacts``; invoices read them when e-mailing.
    """

    class Kind(models.TextChoices):
        TO = "to", "To"
        CC = "cc", "Cc"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="billing_contacts")
    email = models.EmailField(help_text="Stored in lower case.")
    name = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=2, choices=Kind.choices, default=Kind.TO)
    position = models.SmallIntegerField(default=0)

    class Meta:
        ordering = ["customer", "position", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "email"], name="billing_contact_once_per_customer"),
            models.CheckConstraint(condition=models.Q(kind__in=("to", "cc")), name="billing_contact_kind"),
            models.CheckConstraint(condition=models.Q(position__gte=0), name="billing_contact_position_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class TaxCategory(models.Model):
    """What kind of thing is sold, for taxes: Labour, Parts, Software — set on work types,
    rate items and products. Not taxed, or taxed with the customer's codes (optionally
    only some of them)."""

    code = models.CharField(max_length=40, unique=True, help_text="Such as LABOUR or PARTS.")
    name = models.CharField(max_length=100)
    taxable = models.BooleanField(default=True, help_text="Untick when this kind of item is not taxed (such as labour).")
    tax_codes = models.CharField(
        max_length=200, blank=True,
        help_text="Only these of the customer's tax codes apply (comma-separated); empty: all of them.")

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "tax categories"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def terms(self) -> CategoryTerms:
        return CategoryTerms(taxable=self.taxable, codes=parse_codes(self.tax_codes))


def tax_category_field(help_text: str = "How what is sold is taxed; empty: with the customer's tax codes."):
    """The tax category of what is sold (work types, rate items, products, device classes)."""
    return models.ForeignKey("TaxCategory", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                             help_text=help_text)


class NamedInOrder(models.Model):
    """A catalogue entry shown by its name and listed in name order."""

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WorkType(NamedInOrder):
    """The billing code a technician picks: Remote Support, Onsite Support, ..."""

    name = models.CharField(max_length=100, unique=True)
    is_after_hours = models.BooleanField(default=False, help_text="Work of this type is always after hours.")
    after_hours_multiplier = models.DecimalField(max_digits=6, decimal_places=4, default=Decimal("1.5"))
    billable = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    tax_category = tax_category_field()


class Role(NamedInOrder):
    """A technician's role (Tier 1, Engineer, Architect) with default and cost rates."""

    name = models.CharField(max_length=100, unique=True)
    default_rate = MoneyField(**RATE)
    cost_rate = MoneyField(**RATE)


class RateItem(NamedInOrder):
    """A named, priced labour service; maps to an accounting item."""

    name = models.CharField(max_length=120, unique=True)
    rate = MoneyField(**RATE)
    accounting_code = models.CharField(max_length=60, blank=True)
    tax_category = tax_category_field()


class Product(models.Model):
    sku = models.CharField(max_length=60, unique=True)
    name = models.CharField(max_length=200)
    price = MoneyField(**RATE)
    cost = MoneyField(**RATE)
    taxable = models.BooleanField(default=True)
    accounting_code = models.CharField(max_length=60, blank=True)
    is_active = models.BooleanField(default=True)
    tax_category = tax_category_field()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"


class TaxRate(models.Model):
    """One version of a tax rate; a change is a new row with a later effective date."""

    code = models.CharField(max_length=40, help_text="Groups the versions of one tax.")
    name = models.CharField(max_length=100)
    percent = models.DecimalField(max_digits=7, decimal_places=4, validators=[MinValueValidator(0), MaxValueValidator(100)])
    compound = models.BooleanField(default=False, help_text="Charged on the amount plus the other taxes.")
    effective_from = models.DateField()

    class Meta:
        ordering = ["code", "-effective_from"]
        constraints = [models.UniqueConstraint(fields=["code", "effective_from"], name="taxrate_one_version_per_day")]

    def __str__(self) -> str:
        return f"{self.name} {self.percent.normalize()} % from {self.effective_from}"


class ExclusionSet(NamedInOrder):
    """Work types (and roles) a contract does not absorb — typically one set per tier."""

    name = models.CharField(max_length=100, unique=True)
    work_types = models.ManyToManyField(WorkType, blank=True, related_name="exclusion_sets")
    roles = models.ManyToManyField(Role, blank=True, related_name="exclusion_sets")
    changed_at = models.DateTimeField(auto_now=True)


class Contract(models.Model):
    class Type(models.TextChoices):
        BLOCK_HOURS = ContractType.BLOCK_HOURS, "Block Hours"
        HOURLY = ContractType.HOURLY, "Hourly"
        RETAINER = ContractType.RETAINER, "Retainer / Flat Fee"
        REMOTE_MONITORING = ContractType.REMOTE_MONITORING, "Remote Monitoring"
        BLOCK_MONEY = ContractType.BLOCK_MONEY, "Block Money"
        PROJECT_HOURLY = ContractType.PROJECT_HOURLY, "Project — hourly"
        PROJECT_ONE_TIME_FEE = ContractType.PROJECT_ONE_TIME_FEE, "Project — one-time fee"
        ONLINE_BACKUP = ContractType.ONLINE_BACKUP, "Online Backup"

    class Frequency(models.TextChoices):
        MONTHLY = BillingFrequency.MONTHLY, "Monthly"
        QUARTERLY = BillingFrequency.QUARTERLY, "Quarterly"
        YEARLY = BillingFrequency.YEARLY, "Yearly"
        ONE_TIME = BillingFrequency.ONE_TIME, "One-time"

    class Timing(models.TextChoices):
        ADVANCE = "advance", "In advance"
        ARREARS = "arrears", "In arrears"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        CANCELLED = "cancelled", "Cancelled"

    class Rounding(models.TextChoices):
        UP = RoundingDirection.UP, "Up"
        NEAREST = RoundingDirection.NEAREST, "Nearest"
        DOWN = RoundingDirection.DOWN, "Down"

    class FeeTrigger(models.TextChoices):
        ON_START = "on_start", "On start"
        ON_COMPLETION = "on_completion", "On completion"
        MILESTONES = "milestones", "By milestones"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts")
    name = models.CharField(max_length=200)
    type = models.CharField(max_length=30, choices=Type.choices)
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    billing_frequency = models.CharField(max_length=12, choices=Frequency.choices, default=Frequency.MONTHLY)
    billing_timing = models.CharField(max_length=10, choices=Timing.choices, default=Timing.ADVANCE)
    anchor_day = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(31)])
    taxable = models.BooleanField(default=True)
    tax_codes = models.CharField(max_length=200, blank=True,
                                 help_text="Overrides the customer's tax codes for this contract; empty: the customer's.")
    exclusion_set = models.ForeignKey(ExclusionSet, null=True, blank=True, on_delete=models.PROTECT, related_name="contracts")
    priority = models.PositiveSmallIntegerField(default=10, help_text="Lower numbers take time first.")
    # Renewal
    auto_renew = models.BooleanField(default=False)
    renewal_notice_days = models.PositiveSmallIntegerField(default=90)
    renewal_term_months = models.PositiveSmallIntegerField(default=12)
    # Rating
    rounding_increment = models.PositiveSmallIntegerField(default=15, validators=[MinValueValidator(1)])
    rounding_direction = models.CharField(max_length=8, choices=Rounding.choices, default=Rounding.UP)
    rounding_minimum = models.PositiveSmallIntegerField(default=0, help_text="Minutes billed at least per entry.")
    # Fees and limits (which apply depends on the type)
    fee = MoneyField(**AMOUNT, null=True, blank=True, help_text="Recurring fee per period, or the one-time project fee.")
    fee_trigger = models.CharField(max_length=16, choices=FeeTrigger.choices, blank=True)
    overage_rate = MoneyField(**RATE, null=True, blank=True)
    included_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Retainer: minutes included per period.")
    cascade = models.BooleanField(default=False, help_text="Blocks: when used up, pass time to the next contract.")
    rollover = models.BooleanField(default=True, help_text="Blocks: unused balance carries over instead of expiring.")
    block_expiry_months = models.PositiveSmallIntegerField(null=True, blank=True)
    auto_repurchase = models.BooleanField(default=False)
    alert_thresholds = models.CharField(max_length=60, default="75,90,100", help_text="Percent used that trigger alerts.")
    budget_minutes = models.PositiveIntegerField(null=True, blank=True)
    budget_amount = MoneyField(**AMOUNT, null=True, blank=True)
    unit_price = MoneyField(**RATE, null=True, blank=True, help_text="Online Backup: price per GB or seat.")
    included_quantity = models.DecimalField(max_digits=12, decimal_places=3, default=0)
    usage_unit = models.CharField(max_length=10, blank=True, help_text="GB or seats.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer__legal_name", "priority", "id"]
        indexes = [models.Index(fields=["customer", "status", "priority"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="contract_end_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer} — {self.name}"

    @property
    def is_block(self) -> bool:
        return self.type in (self.Type.BLOCK_HOURS, self.Type.BLOCK_MONEY)

    def thresholds(self) -> list[int]:
        return sorted({int(part) for part in self.alert_thresholds.split(",") if part.strip().isdigit()})


class ContractRateLine(models.Model):
    """A contract's rate for a work type and/or role (neither: the contract's default rate)."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="rate_lines")
    work_type = models.ForeignKey(WorkType, null=True, blank=True, on_delete=models.PROTECT)
    role = models.ForeignKey(Role, null=True, blank=True, on_delete=models.PROTECT)
    rate = MoneyField(**RATE)
    effective_from = models.DateField()

    class Meta:
        ordering = ["contract", "work_type", "role", "effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["contract", "work_type", "role", "effective_from"],
                nulls_distinct=False,
                name="ratelines_one_per_tier_and_day",
            )
        ]


class RecurringServiceLine(models.Model):
    """Billed every period with the contract's fee (e.g. per-licence Office 365)."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="service_lines")
    description = models.CharField(max_length=200)
    rate_item = models.ForeignKey(RateItem, null=True, blank=True, on_delete=models.PROTECT)
    product = models.ForeignKey(Product, null=True, blank=True, on_delete=models.PROTECT)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=1)
    unit_price = MoneyField(**RATE)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)


class DeviceClass(models.Model):
    """Remote Monitoring: a class of device and its price per device per period."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="device_classes")
    name = models.CharField(max_length=100)
    unit_price = MoneyField(**RATE)
    tax_category = tax_category_field("How monitoring these devices is taxed; empty: with the customer's tax codes.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contract", "name"], name="device_class_unique_per_contract")]

    def __str__(self) -> str:
        return self.name


class DeviceCount(models.Model):
    """Ledger: from ``effective_date`` on, the contract monitors ``count`` devices of a class."""

    class Source(models.TextChoices):
        PAGE = "page", "Page"
        IMPORT = "import", "Import"
        API = "api", "API"

    device_class = models.ForeignKey(DeviceClass, on_delete=models.CASCADE, related_name="counts")
    effective_date = models.DateField()
    count = models.PositiveIntegerField()
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.PAGE,
                              help_text="Where the count came from: the contract page, an import or the API (an RMM feed).")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["device_class", "effective_date", "id"]


class UnmatchedDeviceReport(models.Model):
    """A device count reported for a class the contract does not have: devices monitored
    that no contract line bills, listed on the dashboard as a possible leak."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="unmatched_device_reports")
    device_class_name = models.CharField(max_length=100)
    count = models.PositiveIntegerField()
    reported_on = models.DateField()
    source = models.CharField(max_length=8, choices=DeviceCount.Source.choices, default=DeviceCount.Source.API)
    reported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-reported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.device_class_name} × {self.count} on {self.contract}"


class UsageRecord(models.Model):
    """Ledger: Online Backup usage (GB or seats) measured on a date."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="usage_records")
    measured_on = models.DateField()
    quantity = models.DecimalField(max_digits=12, decimal_places=3)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["contract", "measured_on", "id"]


class BlockPurchase(models.Model):
    """A block of hours (minutes) or money bought on a Block contract."""

    contract = models.ForeignKey(Contract, on_delete=models.PROTECT, related_name="blocks")
    purchased_on = models.DateField()
    expires_on = models.DateField(null=True, blank=True)
    minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Block Hours: minutes bought.")
    amount = MoneyField(**AMOUNT, null=True, blank=True, help_text="Block Money: prepaid value.")
    price = MoneyField(**AMOUNT, help_text="What the customer is invoiced for the block.")
    auto_purchased = models.BooleanField(default=False)

    class Meta:
        ordering = ["contract", "purchased_on", "id"]


class BlockLedgerEntry(models.Model):
    """Append-only: each deduction from (or reversal to) a block. Balance = size − sum."""

    block = models.ForeignKey(BlockPurchase, on_delete=models.PROTECT, related_name="ledger")
    entry_date = models.DateField()
    minutes = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    source = models.CharField(max_length=60, help_text="What used the block, e.g. time-allocation:123.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["block", "id"]
        indexes = [models.Index(fields=["source"])]


class Milestone(models.Model):
    """Project — one-time fee billed by milestone percentages."""

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="milestones")
    name = models.CharField(max_length=120)
    percent = models.DecimalField(max_digits=6, decimal_places=3, validators=[MinValueValidator(0), MaxValueValidator(100)])
    due_date = models.DateField(null=True, blank=True)
    completed_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["contract", "due_date", "id"]


class ContractPeriod(models.Model):
    """One billing period of a recurring contract, generated ahead of time."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        DUE = "due", "Due"
        OVERDUE = "overdue", "Overdue"
        BILLED = "billed", "Billed"

    contract = models.ForeignKey(Contract, on_delete=models.CASCADE, related_name="periods")
    start = models.DateField()
    end = models.DateField()
    covered_start = models.DateField()
    covered_end = models.DateField()
    bill_date = models.DateField()
    billed_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.JSONField(default=dict, blank=True, help_text="Device counts / usage frozen for the period.")

    class Meta:
        ordering = ["contract", "start"]
        constraints = [models.UniqueConstraint(fields=["contract", "start"], name="one_period_per_start")]


class Notification(models.Model):
    """Stored notifications: renewals coming up, block and budget thresholds."""

    class Kind(models.TextChoices):
        RENEWAL = "renewal", "Renewal notice"
        RENEWED = "renewed", "Contract renewed"
        BLOCK_THRESHOLD = "block_threshold", "Block threshold"
        BUDGET_THRESHOLD = "budget_threshold", "Budget threshold"
        BLOCK_REPURCHASED = "block_repurchased", "Block repurchased"

    kind = models.CharField(max_length=24, choices=Kind.choices)
    contract = models.ForeignKey(Contract, null=True, on_delete=models.CASCADE, related_name="notifications")
    key = models.CharField(max_length=120, unique=True, help_text="Makes each notification happen once.")
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
