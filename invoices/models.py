"""Invoices, credit notes, their lines and taxes, payments and numbering.

Amounts are ``Decimal`` in the invoice's one ``currency`` (a single column per document:
every amount on an invoice is in the same currency, so django-money's per-field currency
column would only add ways to disagree). ``Invoice.as_money(...)`` gives ``Money`` where a
caller wants it. Unit prices and quantities keep 4 decimal places; amounts keep 2 (the
currency's minor unit — currencies with 3-decimal minor units are refused when a draft is
created, so the database never rounds a second time). Every amount is computed by
``msp_billing.money`` in ``invoices.calculation``; nothing here rounds.

The rules (numbering, taxes, discounts, what may be edited) live in ``invoices.services``
and are written down in ``docs/invoices.md``.
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import PurePosixPath

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import connection, models
from djmoney.money import Money

# The audit trail has its own app now; the name stays importable from here.
from msp_billing.audit.models import AuditEvent  # noqa: F401

AMOUNT = dict(max_digits=14, decimal_places=2, default=Decimal("0"))
PRECISE = dict(max_digits=16, decimal_places=4)  # unit prices, quantities, discount values
PERCENT = dict(max_digits=7, decimal_places=4, validators=[MinValueValidator(0), MaxValueValidator(100)])
# A brand colour is interpolated into the PDF's CSS, so nothing but #RRGGBB may ever be stored.
HEX_COLOUR = r"\A#[0-9A-Fa-f]{6}\Z"  # \A and \Z: whole string, in Python and PostgreSQL alike (no "$" before a newline)


def tenant_media_name(*parts: str) -> str:
    """A storage name under this MSP's own folder: ``<schema>/<parts...>``.

    Files of different MSPs never share a folder, and the views that serve them check
    that a name starts with the active schema (media is never served by a public URL).
    """
    from msp_billing.tasks import TenantContextMissing

    schema = getattr(connection, "schema_name", None)
    if not schema or schema == settings.PUBLIC_SCHEMA_NAME:
        raise TenantContextMissing("invoice files belong to an MSP: activate an MSP's schema first")
    return str(PurePosixPath(schema, *parts))


def branding_logo_name(instance, filename: str) -> str:
    suffix = PurePosixPath(filename).suffix.lower()
    return tenant_media_name("branding", f"logo-{uuid.uuid4().hex[:12]}{suffix}")


class InvoiceSettings(models.Model):
    """Numbering, defaults, printed texts and PDF branding of this MSP's invoices (one row per tenant schema).

    Branding (logo, brand colour, template) is changed through ``invoices.branding``,
    which validates the logo's content (PNG, JPEG or SVG, at most 1 MB).
    """

    class PdfTemplate(models.TextChoices):
        CLASSIC = "classic", "Classic"
        MODERN = "modern", "Modern"

    SINGLETON_ID = 1

    number_prefix = models.CharField(max_length=12, default="INV", blank=True,
                                     help_text="Printed before the number, such as INV.")
    number_padding = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="Digits of the running number: 5 gives 00042.")
    number_yearly_reset = models.BooleanField(
        default=True, help_text="Start again at 1 each year; the year is part of the number (INV-2026-00001).")
    credit_note_prefix = models.CharField(max_length=12, default="CN", blank=True,
                                          help_text="Credit notes have their own series, such as CN.")
    default_discount_percent = models.DecimalField(default=Decimal("0"), **PERCENT)
    default_surcharge_percent = models.DecimalField(default=Decimal("0"), **PERCENT)
    default_payment_terms_days = models.PositiveSmallIntegerField(
        default=30, validators=[MaxValueValidator(365)],
        help_text="Used when an invoice is created without terms of its own.")
    default_tax_codes = models.CharField(
        max_length=200, blank=True,
        help_text="Comma-separated tax codes applied to taxable lines that name no tax of their own.")
    terms = models.TextField(blank=True, help_text="Terms printed on every invoice.")
    payment_instructions = models.TextField(blank=True, help_text="Bank details, how to pay.")
    footer = models.TextField(blank=True)
    issue_zero_invoices = models.BooleanField(
        default=False, help_text="Bill contracts whose due total is 0.00 (only covered or deducted time) in every run, "
                                 "so each gets a numbered 0.00 invoice. Off: such time waits for the contract's next "
                                 "invoice with something to charge.")
    # The e-mail that carries the PDF (placeholders: invoices.delivery.PLACEHOLDERS)
    email_subject = models.CharField(
        max_length=200, default="{document} {invoice_number} from {seller}",
        help_text="Placeholders: {invoice_number}, {customer}, {total}, {due_date}, {issue_date}, {seller}, {document}.")
    email_body = models.TextField(
        default="Dear {customer},\n\nplease find attached {document_lower} {invoice_number} of {issue_date} "
                "for {total}, due on {due_date}.\n\nKind regards,\n{seller}\n",
        help_text="The same placeholders as the subject.")
    # PDF branding
    logo = models.FileField(upload_to=branding_logo_name, max_length=200, blank=True,
                            help_text="PNG, JPEG or SVG, at most 1 MB; printed at the top of every invoice.")
    brand_colour = models.CharField(
        max_length=7, default="#1F4E79", validators=[RegexValidator(HEX_COLOUR, "Enter a colour as #RRGGBB, such as #1F4E79.")],
        help_text="Headings and rules of the PDF, as #RRGGBB.")
    pdf_template = models.CharField(max_length=20, choices=PdfTemplate.choices, default=PdfTemplate.CLASSIC)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "invoice settings"
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="invoice_settings_singleton"),
            models.CheckConstraint(condition=models.Q(brand_colour__regex=HEX_COLOUR), name="invoice_settings_brand_colour_hex"),
        ]

    def __str__(self) -> str:
        return "Invoice settings"

    @classmethod
    def load(cls) -> InvoiceSettings:
        instance, _ = cls.objects.get_or_create(pk=cls.SINGLETON_ID)
        return instance

    def tax_codes(self) -> list[str]:
        return [code.strip().upper() for code in self.default_tax_codes.split(",") if code.strip()]


class NumberSequence(models.Model):
    """The next number of one series (invoices or credit notes) in one year (0: no yearly reset).

    Always read with ``SELECT ... FOR UPDATE`` inside the issuing transaction, so two
    issues never get the same number and a rolled-back issue hands its number back.
    """

    class Series(models.TextChoices):
        INVOICE = "invoice", "Invoices"
        CREDIT_NOTE = "credit_note", "Credit notes"

    series = models.CharField(max_length=12, choices=Series.choices)
    year = models.PositiveSmallIntegerField(help_text="0 when numbers do not restart each year.")
    next_number = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["series", "year"], name="number_sequence_one_per_series_year")]

    def __str__(self) -> str:
        return f"{self.series} {self.year or 'all years'}: next {self.next_number}"


class AdjustmentKind(models.TextChoices):
    """How a discount or surcharge is given."""

    NONE = "", "None"
    PERCENT = "percent", "Percent"
    AMOUNT = "amount", "Amount"


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ISSUED = "issued", "Issued"
        PARTIALLY_PAID = "partially_paid", "Partially paid"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    class Move(models.TextChoices):
        """What moves an invoice from one status to another."""

        ISSUE = "issue"
        PAY = "pay"
        CREDIT = "credit"
        CREDIT_VOIDED = "credit_voided"  # one of its credit notes voided: its credit taken off again
        VOID = "void"

    # The one statement of the invoice's states: status -> {status it may move to: the moves
    # that take it there}. A move that leaves the status as it is (a second partial payment)
    # is listed under its own status, so every action allowed in a status appears here. A
    # credit note is issued when it is created and can only be voided (issued -> void).
    # Checked by ``invoices.states.invoice_transition_refusal`` with the invoice row locked.
    TRANSITIONS: dict[str, dict[str, frozenset[str]]] = {
        Status.DRAFT: {Status.ISSUED: frozenset({Move.ISSUE})},
        Status.ISSUED: {
            Status.PARTIALLY_PAID: frozenset({Move.PAY, Move.CREDIT}),
            Status.PAID: frozenset({Move.PAY, Move.CREDIT}),
            Status.VOID: frozenset({Move.VOID}),
        },
        Status.PARTIALLY_PAID: {
            Status.ISSUED: frozenset({Move.CREDIT_VOIDED}),
            Status.PARTIALLY_PAID: frozenset({Move.PAY, Move.CREDIT, Move.CREDIT_VOIDED}),
            Status.PAID: frozenset({Move.PAY, Move.CREDIT}),
        },
        Status.PAID: {
            Status.ISSUED: frozenset({Move.CREDIT_VOIDED}),
            Status.PARTIALLY_PAID: frozenset({Move.CREDIT_VOIDED}),
            Status.PAID: frozenset({Move.CREDIT, Move.CREDIT_VOIDED}),
        },
        Status.VOID: {},
    }

    customer = models.ForeignKey("contracts.Customer", on_delete=models.PROTECT, related_name="invoices")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    credited_invoice = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes",
        help_text="For a credit note: the invoice it corrects.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3)

    # Numbering: set on issue from NumberSequence, never reused.
    number = models.CharField(max_length=40, null=True, blank=True, unique=True)
    number_year = models.PositiveSmallIntegerField(null=True, blank=True)
    number_sequence = models.PositiveIntegerField(null=True, blank=True)

    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    payment_terms_days = models.PositiveSmallIntegerField(default=30)

    # Customer as billed, frozen on issue (drafts show the live customer).
    customer_name = models.CharField(max_length=200, blank=True)
    customer_address = models.TextField(blank=True)
    customer_tax_id = models.CharField(max_length=60, blank=True)
    customer_tax_exempt = models.BooleanField(default=False, help_text="An exemption in effect on the issue date.")
    customer_reverse_charge = models.BooleanField(
        default=False, help_text="No VAT: the customer accounts for it (the reverse-charge note is printed).")
    customer_email = models.EmailField(blank=True)
    # Tax rate versions used, frozen on issue: {code: {"id", "name", "percent", "compound"}}.
    tax_snapshot = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    # Invoice-level discount and surcharge (spread over the lines before tax; docs/invoices.md).
    discount_kind = models.CharField(max_length=8, choices=AdjustmentKind.choices, default=AdjustmentKind.NONE, blank=True)
    discount_value = models.DecimalField(default=Decimal("0"), **PRECISE)
    surcharge_kind = models.CharField(max_length=8, choices=AdjustmentKind.choices, default=AdjustmentKind.NONE, blank=True)
    surcharge_value = models.DecimalField(default=Decimal("0"), **PRECISE)

    # Totals: plain sums of the printed lines (invoices.calculation).
    subtotal = models.DecimalField(**AMOUNT)
    discount_total = models.DecimalField(**AMOUNT)
    surcharge_total = models.DecimalField(**AMOUNT)
    tax_total = models.DecimalField(**AMOUNT)
    total = models.DecimalField(**AMOUNT)
    # Kept with the payments and credit notes that change them, in the same transaction.
    amount_paid = models.DecimalField(**AMOUNT)
    amount_credited = models.DecimalField(**AMOUNT)

    notes = models.TextField(blank=True)
    terms = models.TextField(blank=True)
    payment_instructions = models.TextField(blank=True)
    footer = models.TextField(blank=True)
    reason = models.TextField(blank=True, help_text="Credit notes: why the invoice is credited.")

    # Export to an accounting system (integrations/ fills these).
    exported_to = models.CharField(max_length=30, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    remote_id = models.CharField(max_length=100, blank=True)
    remote_url = models.URLField(max_length=500, blank=True)

    pdf_version = models.PositiveIntegerField(default=0, help_text="Goes up whenever the printed invoice changes.")

    # Frozen on issue (invoices.exchange): one unit of ``currency`` in the MSP's home currency.
    exchange_rate = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True,
                                        help_text="Home currency per unit of the invoice currency, frozen on issue.")
    exchange_rate_date = models.DateField(null=True, blank=True, help_text="The day of the rate frozen; empty: no dated rate.")
    home_currency = models.CharField(max_length=3, blank=True, help_text="The MSP's home currency when the rate was frozen.")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    issued_at = models.DateTimeField(null=True, blank=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    void_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-issue_date", "-id"]
        indexes = [
            models.Index(fields=["customer", "status"]),
            models.Index(fields=["status", "due_date"]),
            models.Index(fields=["issue_date"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="draft") | models.Q(number__isnull=False),
                name="invoice_number_once_issued",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="invoice", credited_invoice__isnull=True)
                | models.Q(kind="credit_note", credited_invoice__isnull=False),
                name="invoice_credit_note_has_invoice",
            ),
        ]

    @property
    def reverse_charge_note(self) -> str:
        """The legal note a reverse-charge invoice prints: the customer as it is now on a
        draft, as frozen on issue otherwise; "" when it does not apply."""
        from contracts.rules.taxes import REVERSE_CHARGE_NOTE

        applies = self.customer.reverse_charge if self.status == self.Status.DRAFT else self.customer_reverse_charge
        return REVERSE_CHARGE_NOTE if applies else ""

    def __str__(self) -> str:
        label = self.get_kind_display()
        return f"{label} {self.number}" if self.number else f"Draft {label.lower()} #{self.pk}"

    @property
    def is_credit_note(self) -> bool:
        return self.kind == self.Kind.CREDIT_NOTE

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def is_exported(self) -> bool:
        return self.exported_at is not None

    @property
    def amount_due(self) -> Decimal:
        """What the customer still owes (negative: the MSP owes a refund)."""
        if self.kind == self.Kind.CREDIT_NOTE or self.status in (self.Status.DRAFT, self.Status.VOID):
            return Decimal("0.00")
        return self.total - self.amount_paid - self.amount_credited

    @property
    def display_customer_name(self) -> str:
        return self.customer_name or self.customer.legal_name

    def as_money(self, value: Decimal) -> Money:
        return Money(value, self.currency)


def invoice_pdf_name(invoice: Invoice, version: int) -> str:
    """Where one rendering of one version goes; a random part keeps every rendering's file its own."""
    label = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in (invoice.number or f"draft-{invoice.pk}"))
    return tenant_media_name("invoices", "pdf", str(invoice.pk), f"{label}-v{version}-{uuid.uuid4().hex[:12]}.pdf")


class InvoicePdf(models.Model):
    """One rendered PDF of one version (``Invoice.pdf_version``) of an invoice or credit note.

    Exactly one row per invoice is current (a partial unique index says so); rows of
    older versions are kept, superseded, as the copies that may have been sent.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="pdfs")
    version = models.PositiveIntegerField()
    file = models.FileField(max_length=300, help_text="Storage name under MEDIA_ROOT: <schema>/invoices/pdf/...")
    size = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    template = models.CharField(max_length=20, blank=True)
    is_current = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "version"], name="invoice_pdf_one_per_version"),
            models.UniqueConstraint(fields=["invoice"], condition=models.Q(is_current=True), name="invoice_pdf_one_current"),
        ]

    def __str__(self) -> str:
        return f"PDF of {self.invoice_id} v{self.version}{' (current)' if self.is_current else ''}"


class InvoiceEmailJob(models.Model):
    """One press of Send for a set of invoices (a batch, or invoices picked on the list).

    Its e-mails are the rows that point at it; a Celery task sends them one by one and the
    page polls the job's progress (``invoices.delivery``).
    """

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    total = models.IntegerField(default=0, help_text="How many e-mails the job sends.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(total__gte=0), name="invoice_email_job_total_not_negative")]

    def __str__(self) -> str:
        return f"E-mail job {self.pk} ({self.total})"


class InvoiceEmail(models.Model):
    """An invoice e-mailed (or being e-mailed) to the customer, with the PDF attached.

    One row per invoice and version (``invoice_email_once_per_version``): however often a
    job is retried or Send is pressed, a version goes out once; sending it again is an
    explicit resend (``resend``), a row of its own. A row is claimed (queued → sending) in
    its own committed update before the message is handed to the mail server.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="emails")
    version = models.IntegerField(null=True, blank=True, help_text="The invoice's pdf_version this e-mail sends.")
    resend = models.BooleanField(default=False, help_text="Sent again on request, after the version was sent once.")
    job = models.ForeignKey(InvoiceEmailJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="emails")
    pdf = models.ForeignKey(InvoicePdf, null=True, on_delete=models.SET_NULL, related_name="+",
                            help_text="The copy attached.")
    to = models.CharField(max_length=2000, help_text="The To addresses, separated by commas.")
    cc = models.CharField(max_length=2000, blank=True, help_text="The Cc addresses, separated by commas.")
    subject = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sending_since = models.DateTimeField(null=True, blank=True, help_text="When the row was last claimed for sending.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["invoice", "-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "version"], condition=models.Q(resend=False),
                                    name="invoice_email_once_per_version"),
            models.CheckConstraint(condition=models.Q(version__gte=0) | models.Q(version__isnull=True),
                                   name="invoice_email_version_not_negative"),
        ]
        indexes = [models.Index(fields=["job", "status"], name="invoice_email_job_status")]

    def __str__(self) -> str:
        return f"{self.invoice_id} to {self.to}: {self.status}"

    @property
    def to_list(self) -> list[str]:
        return [address for address in (part.strip() for part in self.to.split(",")) if address]

    @property
    def cc_list(self) -> list[str]:
        return [address for address in (part.strip() for part in self.cc.split(",")) if address]


class InvoiceLine(models.Model):
    class SourceKind(models.TextChoices):
        MANUAL = "manual", "Manual"
        TIME = "time", "Time"
        CHARGE = "charge", "Charge"
        PERIOD = "period", "Contract period"
        BLOCK = "block", "Block purchase"
        MILESTONE = "milestone", "Milestone"
        ADJUSTMENT = "adjustment", "Adjustment"
        CREDIT = "credit", "Credit"
        DETAIL = "detail", "Detail"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    sort_order = models.PositiveIntegerField(default=0)
    description = models.TextField()
    quantity = models.DecimalField(default=Decimal("1"), **PRECISE)
    unit_price = models.DecimalField(default=Decimal("0"), **PRECISE)
    fixed_amount = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True,
        help_text="An amount computed by its source (a prorated fee, rated time); otherwise quantity × unit price.")
    gross_amount = models.DecimalField(**AMOUNT)
    discount_kind = models.CharField(max_length=8, choices=AdjustmentKind.choices, default=AdjustmentKind.NONE, blank=True)
    discount_value = models.DecimalField(default=Decimal("0"), **PRECISE)
    discount_amount = models.DecimalField(**AMOUNT)
    amount = models.DecimalField(**AMOUNT, help_text="Printed line amount: gross less the line's own discount.")
    invoice_discount_share = models.DecimalField(**AMOUNT)
    invoice_surcharge_share = models.DecimalField(**AMOUNT)
    taxable_amount = models.DecimalField(**AMOUNT, help_text="Amount less its share of the invoice discount, plus its share of the surcharge.")
    taxable = models.BooleanField(default=True)
    tax_codes = models.JSONField(default=list, blank=True, help_text="Codes of the taxes charged on this line.")
    tax_amount = models.DecimalField(**AMOUNT)
    # Where the line came from; invoices never change their sources, billing/ does.
    source_kind = models.CharField(max_length=12, choices=SourceKind.choices, default=SourceKind.MANUAL)
    # A time line is the record that its time was billed: at most one line per allocation
    # whose source is not released (constraint ``line_time_billed_once``, which also indexes it).
    time_allocation = models.ForeignKey("tickets.TimeAllocation", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="invoice_lines", db_index=False)
    source_released_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When billing released this line's source for rebilling (its batch was deleted); the line stays on its void invoice.")
    # Sparse references (most lines are time) are indexed only where set: a month-end run
    # writes a million time lines, and every index costs on each of them.
    charge = models.ForeignKey("tickets.Charge", null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_lines",
                               db_index=False)
    contract_period = models.ForeignKey("contracts.ContractPeriod", null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="invoice_lines", db_index=False)
    contract = models.ForeignKey("contracts.Contract", null=True, blank=True, on_delete=models.PROTECT, related_name="invoice_lines")
    product = models.ForeignKey("contracts.Product", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    rate_item = models.ForeignKey("contracts.RateItem", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False)
    credited_line = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_lines",
                                      help_text="For a credit note line: the invoice line it credits.", db_index=False)
    detail = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder,
                              help_text="Ticket and time detail for detailed invoices.")

    class Meta:
        ordering = ["invoice", "sort_order", "id"]
        indexes = [
            models.Index(fields=[name], condition=models.Q(**{f"{name}__isnull": False}), name=f"line_{name}_set"[:30])
            for name in ("charge", "contract_period", "product", "rate_item", "credited_line")
        ]
        constraints = [
            models.UniqueConstraint(fields=["time_allocation", "source_released_at"], condition=models.Q(time_allocation__isnull=False),
                                    nulls_distinct=False, name="line_time_billed_once"),
        ]

    def __str__(self) -> str:
        return self.description[:80]

    @property
    def total(self) -> Decimal:
        return self.taxable_amount + self.tax_amount


class InvoiceLineTax(models.Model):
    """One tax on one line, with the rate version, percent and name as charged."""

    line = models.ForeignKey(InvoiceLine, on_delete=models.CASCADE, related_name="taxes")
    tax_rate = models.ForeignKey("contracts.TaxRate", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=40)
    name = models.CharField(max_length=100)
    percent = models.DecimalField(max_digits=7, decimal_places=4)
    compound = models.BooleanField(default=False)
    base = models.DecimalField(**AMOUNT, help_text="What the tax was charged on.")
    amount = models.DecimalField(**AMOUNT)
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["line", "sort_order", "id"]


class Payment(models.Model):
    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        CARD = "card", "Card"
        DIRECT_DEBIT = "direct_debit", "Direct debit"
        CHEQUE = "cheque", "Cheque"
        CASH = "cash", "Cash"
        ACCOUNTING_SYNC = "accounting_sync", "Synced from accounting"
        OTHER = "other", "Other"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    date = models.DateField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.BANK_TRANSFER)
    reference = models.CharField(max_length=200, blank=True)
    remote_id = models.CharField(max_length=100, blank=True, help_text="Payment id in the accounting system, when synced.")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["invoice", "date", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="payment_amount_positive"),
            models.UniqueConstraint(fields=["invoice", "remote_id"], condition=~models.Q(remote_id=""),
                                    name="payment_remote_id_once_per_invoice"),
        ]

