"""Writes for invoices: drafts, issue with gapless numbers, edits, voids, credit notes, payments.

Every function is keyword-only and runs in one transaction (the caller's, when it has
one — a billing batch creates its drafts inside its own). State changes lock the invoice
with ``SELECT ... FOR UPDATE`` and check its state first, so a doubled or stale request
fails with a message instead of doing the thing twice. Each action writes its
``AuditEvent`` in the same transaction and, once committed, tells ``invoices.hooks``
listeners (PDF, e-mail, export) — never before.

Bad input raises ``ValidationError`` with messages a billing admin can act on. The
arithmetic is in ``invoices.calculation`` (rounding only through ``msp_billing.money``);
the choices are written down in ``docs/invoices.md``.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from djmoney.money import Money
from djmoney.settings import CURRENCY_CHOICES

from contracts.models import Contract, ContractPeriod, Customer, Product, RateItem, TaxCategory, TaxRate
from contracts.rules.taxes import line_tax_codes, line_taxable, parse_codes
from invoices import hooks
from invoices.audit import audit_record, audit_record_many
from invoices.calculation import (
    AMOUNT,
    NO_ADJUSTMENT,
    PERCENT,
    Adjustment,
    CalculationError,
    LineFigures,
    TaxSpec,
    calculate_invoice,
    calculate_invoice_totals,
    is_whole_minor_units,
    line_taxes,
)
from invoices.exchange import invoice_freeze_exchange_rate
from invoices.models import (
    AdjustmentKind,
    Invoice,
    InvoiceLine,
    InvoiceLineTax,
    InvoiceSettings,
    NumberSequence,
    Payment,
)
from invoices.states import invoice_is_final, invoice_transition_refusal, moves_from
from msp_billing.money import minor_unit_exponent, round_money, round_unit_price
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import check_date as _check_date
from msp_billing.validation import clean_decimal
from msp_billing.validation import clean_text as _text
from tickets.models import Charge, TimeAllocation

__all__ = [
    "Adjustment", "CreditLineInput", "LineInput", "ReleasedSources", "credit_note_create", "credit_note_refusal",
    "edit_refusal", "format_number", "invoice_create_draft", "invoice_delete_draft", "invoice_edit", "invoice_issue",
    "invoice_numbering_set_next", "invoice_recalculate", "invoice_settings_update", "invoice_void", "next_number_of",
    "numbering_year", "payment_record", "payment_refusal", "void_refusal",
]

CURRENCY_CODES = frozenset(code for code, _ in CURRENCY_CHOICES)
MAX_AMOUNT = Decimal("999999999999")  # 12 integer digits: what the amount columns hold
MAX_DESCRIPTION = 2000
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)
QUANTITY_PLACES = Decimal("0.0001")


from msp_billing.tenants.today import tenant_today  # noqa: E402  (re-exported for views)


# --- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineInput:
    """One invoice line as a caller (a billing batch, the edit page) describes it.

    ``amount``: an amount the source already computed and rounded (a prorated fee, rated
    time); without it the line is quantity × unit price. ``tax_rate_codes``: None resolves
    the line's taxes (``contracts.rules.taxes``: its tax category — ``tax_category_id``, or
    its product's or rate item's —, its contract's override, the customer's codes, the
    tenant's default); an empty tuple means no tax.
    ``line_id`` (edits only) keeps an existing line and its source links.
    """

    description: str
    quantity: Decimal = Decimal("1")
    unit_price: Decimal | Money = Decimal("0")
    amount: Decimal | Money | None = None
    taxable: bool = True
    tax_rate_codes: Sequence[str] | None = None
    tax_category_id: int | None = None
    discount: Adjustment = Adjustment()
    source_kind: str = InvoiceLine.SourceKind.MANUAL
    time_allocation_id: int | None = None
    charge_id: int | None = None
    contract_period_id: int | None = None
    contract_id: int | None = None
    product_id: int | None = None
    rate_item_id: int | None = None
    detail: Mapping[str, Any] | None = None
    line_id: int | None = None


@dataclass(frozen=True)
class CreditLineInput:
    """Credit part of one invoice line: ``amount`` (before tax) or, when None, all that is left of it."""

    invoice_line_id: int
    amount: Decimal | Money | None = None


@dataclass(frozen=True)
class ReleasedSources:
    """What a deleted draft was billing; billing/ makes these items unbilled again."""

    time_allocation_ids: tuple[int, ...] = ()
    charge_ids: tuple[int, ...] = ()
    contract_period_ids: tuple[int, ...] = ()


# --- settings ------------------------------------------------------------------------------

SETTINGS_FIELDS = (
    "number_prefix", "number_padding", "number_yearly_reset", "credit_note_prefix", "default_discount_percent",
    "default_surcharge_percent", "default_payment_terms_days", "default_tax_codes", "terms", "payment_instructions",
    "footer", "issue_zero_invoices",
)


@transaction.atomic
def invoice_settings_update(*, data: Mapping[str, Any], acting_user) -> InvoiceSettings:
    """Change numbering, defaults and texts. Numbers already issued never change."""
    unknown = set(data) - set(SETTINGS_FIELDS)
    if unknown:
        raise TypeError(f"unexpected fields: {', '.join(sorted(unknown))}")
    InvoiceSettings.load()
    row = InvoiceSettings.objects.select_for_update().get(pk=InvoiceSettings.SINGLETON_ID)
    before = {name: getattr(row, name) for name in SETTINGS_FIELDS}
    errors = _Errors()
    for name in ("number_prefix", "credit_note_prefix"):
        if name in data:
            value = (data[name] or "").strip()
            if value and not all(ch.isalnum() or ch in "-_/." for ch in value):
                errors.add(name, "Use letters, digits and - _ / . only.")
            setattr(row, name, value)
    if row.number_prefix.upper() == row.credit_note_prefix.upper():
        errors.add("credit_note_prefix", "Credit notes need a prefix of their own, so their numbers never "
                                         "look like invoice numbers.")
    if "number_padding" in data:
        padding = data["number_padding"]
        if not isinstance(padding, int) or isinstance(padding, bool) or not 1 <= padding <= 10:
            errors.add("number_padding", "Enter a number of digits from 1 to 10.")
        else:
            row.number_padding = padding
    if "number_yearly_reset" in data:
        row.number_yearly_reset = bool(data["number_yearly_reset"])
    if "issue_zero_invoices" in data:
        row.issue_zero_invoices = bool(data["issue_zero_invoices"])
    for name in ("default_discount_percent", "default_surcharge_percent"):
        if name in data:
            value = _decimal(errors, name, data[name], minimum=Decimal(0))
            if value is not None and value > 100:
                errors.add(name, "Enter a percentage from 0 to 100.")
            elif value is not None and value != value.quantize(QUANTITY_PLACES):
                errors.add(name, "Enter at most 4 decimal places.")
            elif value is not None:
                setattr(row, name, value)
    if "default_payment_terms_days" in data:
        days = data["default_payment_terms_days"]
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 365:
            errors.add("default_payment_terms_days", "Enter a number of days from 0 to 365.")
        else:
            row.default_payment_terms_days = days
    if "default_tax_codes" in data:
        codes = _codes(str(data["default_tax_codes"] or "").split(","))
        known = set(TaxRate.objects.filter(code__in=codes).values_list("code", flat=True))
        missing = [code for code in codes if code not in known]
        if missing:
            errors.add("default_tax_codes", f"Unknown tax code: {', '.join(missing)}. Add it under Catalogue → Tax rates.")
        row.default_tax_codes = ", ".join(codes)
    for name in ("terms", "payment_instructions", "footer"):
        if name in data:
            setattr(row, name, (data[name] or "").strip())
    errors.raise_if_any()
    row.save()
    after = {name: getattr(row, name) for name in SETTINGS_FIELDS}
    audit_record(actor=acting_user, action="invoice_settings_updated", obj=row,
                 before=_changed(before, after, side=0), after=_changed(before, after, side=1))
    return row


MAX_SEQUENCE_NUMBER = 2_147_483_647  # what the number columns hold
SERIES_NAMES = {NumberSequence.Series.INVOICE: "invoice", NumberSequence.Series.CREDIT_NOTE: "credit note"}


def numbering_year(*, year: int | None = None, config: InvoiceSettings | None = None) -> int:
    """The year a series is counted in: ``year`` (this year when None) when numbers restart each year, else 0."""
    config = config or InvoiceSettings.load()
    if not config.number_yearly_reset:
        return 0
    return tenant_today().year if year is None else year


def next_number_of(*, series: str, year: int | None = None) -> int:
    """The number the next document of ``series`` will take (in ``year`` when numbers restart each year)."""
    year = numbering_year(year=year)
    sequence = NumberSequence.objects.filter(series=series, year=year).first()
    return sequence.next_number if sequence else 1


@transaction.atomic
def invoice_numbering_set_next(*, series: str, next_number: int, acting_user, year: int | None = None) -> NumberSequence:
    """Set the number the next invoice (or credit note) of a series takes — when moving in from another
    system, the number after its last one.

    ``year``: when numbers restart each year, the year whose series is set (None: this year);
    without yearly reset there is one series for all years and ``year`` is not used. Refused
    when ``next_number`` is at or below a number already issued in that series and year, so
    numbers are never given twice and stay gapless from the new number on. Audited as a
    settings change; setting the number it already has changes nothing.
    """
    errors = _Errors()
    if series not in NumberSequence.Series.values:
        errors.add("series", f"Unknown series “{series}”: choose invoice or credit_note.")
    if not isinstance(next_number, int) or isinstance(next_number, bool) or not 1 <= next_number <= MAX_SEQUENCE_NUMBER:
        errors.add("next_number", f"Enter a whole number from 1 to {MAX_SEQUENCE_NUMBER}.")
    config = InvoiceSettings.load()
    if year is not None and config.number_yearly_reset and (
            not isinstance(year, int) or isinstance(year, bool) or not EARLIEST_DATE.year <= year <= LATEST_DATE.year):
        errors.add("year", f"Enter a year from {EARLIEST_DATE.year} to {LATEST_DATE.year}.")
    errors.raise_if_any()
    year = numbering_year(year=year, config=config)
    # The same lock an issue takes: no document is numbered while the series changes.
    NumberSequence.objects.bulk_create([NumberSequence(series=series, year=year)], ignore_conflicts=True)
    sequence = NumberSequence.objects.select_for_update().get(series=series, year=year)
    name = SERIES_NAMES[series]
    in_year = f" in {year}" if year else ""
    last = (Invoice.objects.filter(kind=series, number_year=year, number_sequence__isnull=False)
            .order_by("-number_sequence").only("number", "number_sequence").first())
    if last is not None and next_number <= last.number_sequence:
        raise ValidationError({"next_number": (
            f"{last.number} was already issued: the next {name} number{in_year} must be above {last.number_sequence} "
            "(numbers are never given twice). Nothing was changed.")})
    if next_number == sequence.next_number:
        return sequence
    before = sequence.next_number
    sequence.next_number = next_number
    sequence.save(update_fields=["next_number"])
    example = format_number(prefix=config.credit_note_prefix if series == NumberSequence.Series.CREDIT_NOTE else config.number_prefix,
                            year=year, number=next_number, padding=config.number_padding)
    audit_record(actor=acting_user, action="invoice_settings_updated", obj=config,
                 before={"series": series, "year": year, "next_number": before},
                 after={"series": series, "year": year, "next_number": next_number},
                 message=f"Next {name} number{in_year} set to {next_number} ({example}).")
    return sequence


def format_number(*, prefix: str, year: int, number: int, padding: int) -> str:
    """``INV-2026-00042`` (yearly reset), ``INV-00042`` (no reset), ``2026-00042`` (no prefix)."""
    parts = [prefix] if prefix else []
    if year:
        parts.append(str(year))
    parts.append(str(number).zfill(padding))
    return "-".join(parts)


def _take_number(*, series: str, on: dt.date) -> tuple[str, int, int]:
    """The next number of ``series`` for a document dated ``on``: locked until the transaction ends.

    The sequence row is created if missing (``INSERT ... ON CONFLICT DO NOTHING``, so two
    first issues of a year do not collide), then locked with ``SELECT ... FOR UPDATE``:
    concurrent issues queue here one after another, and a rollback gives the number back.
    """
    config = InvoiceSettings.load()
    year = on.year if config.number_yearly_reset else 0
    NumberSequence.objects.bulk_create([NumberSequence(series=series, year=year)], ignore_conflicts=True)
    sequence = NumberSequence.objects.select_for_update().get(series=series, year=year)
    number = sequence.next_number
    sequence.next_number = number + 1
    sequence.save(update_fields=["next_number"])
    prefix = config.credit_note_prefix if series == NumberSequence.Series.CREDIT_NOTE else config.number_prefix
    return format_number(prefix=prefix, year=year, number=number, padding=config.number_padding), year, number


# --- drafts --------------------------------------------------------------------------------


@transaction.atomic
def invoice_create_draft(
    *,
    customer: Customer,
    currency: str | None = None,
    lines: Sequence[LineInput] = (),
    acting_user,
    discount: Adjustment | None = None,
    surcharge: Adjustment | None = None,
    notes: str = "",
    terms: str | None = None,
    payment_instructions: str | None = None,
    payment_terms_days: int | None = None,
) -> Invoice:
    """A draft invoice for ``customer`` with ``lines``; no number until it is issued.

    Discount and surcharge default to the tenant's default percentages, terms and payment
    instructions to the tenant's texts, payment terms to the customer's.
    """
    config = InvoiceSettings.load()
    invoice = _draft_instance(customer=customer, currency=currency, config=config, acting_user=acting_user, discount=discount,
                              surcharge=surcharge, notes=notes, terms=terms, payment_instructions=payment_instructions,
                              payment_terms_days=payment_terms_days)
    invoice.save()
    _replace_lines(invoice, lines, config=config)
    _recalculate(invoice)
    audit_record(actor=acting_user, action="invoice_created", obj=invoice, after=_state(invoice))
    _notify(invoice.pk, "created")
    return invoice


@dataclass(frozen=True)
class DraftInput:
    """One draft of ``invoice_create_drafts``."""

    customer: Customer
    lines: Sequence[LineInput] = ()
    notes: str = ""


@transaction.atomic
def invoice_create_drafts(*, drafts: Sequence[DraftInput], acting_user) -> list[Invoice]:
    """Many drafts at once (a billing batch's run): the same checks, defaults and arithmetic
    as ``invoice_create_draft``, in a fixed number of queries however many drafts."""
    config = InvoiceSettings.load()
    invoices = [_draft_instance(customer=d.customer, config=config, acting_user=acting_user, notes=d.notes) for d in drafts]
    # Lines, figures and taxes are worked out on the unsaved objects, then each kind of row is
    # written once (its references filled in as the rows it points to get their ids).
    refs = _existing_sources(line for d in drafts for line in d.lines)
    resolver = TaxCodeResolver(config=config)
    lines = [_built_lines(invoice, d.lines, config=config, existing={}, refs=refs, resolver=resolver)[0]
             for invoice, d in zip(invoices, drafts)]
    specs_cache: dict = {}
    taxes: list[list[InvoiceLineTax]] = []
    today = tenant_today()
    for invoice, invoice_lines in zip(invoices, lines):
        codes = frozenset(code for line in invoice_lines for code in line.tax_codes)
        if codes not in specs_cache:
            specs_cache[codes] = _tax_specs(invoice, codes, tax_date=today, frozen=False)
        taxes.append(_figures(invoice, invoice_lines, specs_cache[codes], tax_exempt=invoice.customer.untaxed_on(today)))
    Invoice.objects.bulk_create(invoices)
    InvoiceLine.objects.bulk_create([line for built in lines for line in built])
    InvoiceLineTax.objects.bulk_create([tax for group in taxes for tax in group])
    audit_record_many(actor=acting_user, action="invoice_created", records=[
        (invoice, None, _state(invoice, lines=invoice_lines, taxes=invoice_taxes))
        for invoice, invoice_lines, invoice_taxes in zip(invoices, lines, taxes)])
    for invoice in invoices:
        _notify(invoice.pk, "created")
    return invoices


def _draft_instance(*, customer: Customer, config: InvoiceSettings, acting_user, currency: str | None = None,
                    discount: Adjustment | None = None, surcharge: Adjustment | None = None, notes: str = "",
                    terms: str | None = None, payment_instructions: str | None = None,
                    payment_terms_days: int | None = None) -> Invoice:
    """A checked, unsaved draft with the tenant's and the customer's defaults."""
    errors = _Errors()
    if not isinstance(customer, Customer) or customer.pk is None:
        raise TypeError("customer must be a saved Customer")
    currency = _check_currency(errors, customer, currency)
    if discount is None:
        discount = Adjustment(PERCENT, config.default_discount_percent) if config.default_discount_percent else Adjustment()
    if surcharge is None:
        surcharge = Adjustment(PERCENT, config.default_surcharge_percent) if config.default_surcharge_percent else Adjustment()
    if payment_terms_days is not None:
        terms_days = payment_terms_days
    elif customer.payment_terms_days is not None:
        terms_days = customer.payment_terms_days
    else:
        terms_days = config.default_payment_terms_days
    if not isinstance(terms_days, int) or isinstance(terms_days, bool) or not 0 <= terms_days <= 365:
        errors.add("payment_terms_days", "Enter payment terms from 0 to 365 days.")
    errors.raise_if_any()
    invoice = Invoice(
        customer=customer,
        currency=currency,
        status=Invoice.Status.DRAFT,
        kind=Invoice.Kind.INVOICE,
        payment_terms_days=terms_days,
        notes=_text(notes),
        terms=config.terms if terms is None else _text(terms),
        payment_instructions=config.payment_instructions if payment_instructions is None else _text(payment_instructions),
        footer=config.footer,
        created_by=_user(acting_user),
    )
    _set_adjustments(errors, invoice, discount=discount, surcharge=surcharge)
    errors.raise_if_any()
    _set_draft_tax_status(invoice, customer, tenant_today())
    return invoice


def _set_draft_tax_status(invoice: Invoice, customer: Customer, on: dt.date) -> None:
    """A draft shows the customer's exemption and reverse charge as they are on ``on``."""
    invoice.customer_tax_exempt = customer.exemption_in_effect(on)
    invoice.customer_reverse_charge = customer.reverse_charge


@transaction.atomic
def invoice_recalculate(*, invoice_id: int, acting_user=None) -> Invoice:
    """Recompute a draft with today's tax rates (a draft's taxes follow the catalogue until issue)."""
    invoice = _lock(invoice_id)
    if invoice.status != Invoice.Status.DRAFT:
        raise ValidationError("Only a draft is recalculated; an issued invoice keeps the taxes it was issued with.")
    before = _state(invoice)
    _recalculate(invoice)
    after = _state(invoice)
    if before != after:
        audit_record(actor=acting_user, action="invoice_recalculated", obj=invoice,
                     before=_changed(before, after, side=0), after=_changed(before, after, side=1))
        _notify(invoice.pk, "edited")
    return invoice


@transaction.atomic
def invoice_delete_draft(*, invoice_id: int, acting_user) -> ReleasedSources:
    """Delete a draft; returns the items it was billing so billing/ can release them."""
    invoice = _lock(invoice_id)
    if invoice.status != Invoice.Status.DRAFT:
        raise ValidationError(f"{invoice} is not a draft; an issued invoice is corrected by a credit note or a void, "
                              "never deleted.")
    lines = list(invoice.lines.all())
    released = ReleasedSources(
        time_allocation_ids=tuple(sorted({l.time_allocation_id for l in lines if l.time_allocation_id})),
        charge_ids=tuple(sorted({l.charge_id for l in lines if l.charge_id})),
        contract_period_ids=tuple(sorted({l.contract_period_id for l in lines if l.contract_period_id})),
    )
    audit_record(actor=acting_user, action="invoice_draft_deleted", obj=invoice, before=_state(invoice),
                 after={"released": {"time_allocations": list(released.time_allocation_ids),
                                     "charges": list(released.charge_ids),
                                     "contract_periods": list(released.contract_period_ids)}})
    invoice_pk = invoice.pk
    invoice.lines.all().delete()
    invoice.delete()
    _notify(invoice_pk, "deleted")
    return released


# --- issue ---------------------------------------------------------------------------------


@transaction.atomic
def invoice_issue(*, invoice_id: int, acting_user, issue_date: dt.date | None = None) -> Invoice:
    """Give a draft its number, freeze customer and tax details, set the due date."""
    invoice = _lock(invoice_id)
    if invoice.kind != Invoice.Kind.INVOICE:
        raise ValidationError("A credit note is issued when it is created.")
    refusal = invoice_transition_refusal(invoice, Invoice.Status.ISSUED, by=Invoice.Move.ISSUE)
    if refusal:
        raise ValidationError(refusal)
    errors = _Errors()
    issue_date = tenant_today() if issue_date is None else issue_date
    _check_date(errors, "issue_date", issue_date)
    errors.raise_if_any()
    if not invoice.lines.exists():
        raise ValidationError("Add at least one line before issuing the invoice.")
    before = _state(invoice)
    customer = Customer.objects.get(pk=invoice.customer_id)
    invoice.issue_date = issue_date
    # Frozen on issue: the exemption as it stands on the issue date (an expired certificate
    # no longer exempts), and the reverse charge.
    invoice.customer_tax_exempt = customer.exemption_in_effect(issue_date)
    invoice.customer_reverse_charge = customer.reverse_charge
    _recalculate(invoice, tax_date=issue_date, tax_exempt=customer.untaxed_on(issue_date), frozen=False)
    if invoice.total < 0:
        raise ValidationError("The invoice total is negative; issue a credit note instead.")
    invoice.customer_name = customer.legal_name
    invoice.customer_address = customer.address
    invoice.customer_tax_id = customer.tax_id
    invoice.customer_email = customer.billing_email
    invoice.tax_snapshot = _tax_snapshot(invoice)
    invoice.due_date = issue_date + dt.timedelta(days=invoice.payment_terms_days)
    invoice.status = Invoice.Status.ISSUED
    invoice.issued_at = timezone.now()
    invoice.issued_by = _user(acting_user)
    invoice.pdf_version += 1
    invoice_freeze_exchange_rate(invoice)
    # The number last: the sequence row stays locked for as short a time as possible.
    invoice.number, invoice.number_year, invoice.number_sequence = _take_number(
        series=NumberSequence.Series.INVOICE, on=issue_date)
    _save_numbered(invoice)
    audit_record(actor=acting_user, action="invoice_issued", obj=invoice,
                 before={"status": before["status"], "total": before["total"]},
                 after={"status": invoice.status, "number": invoice.number, "issue_date": invoice.issue_date,
                        "due_date": invoice.due_date, "total": invoice.total, "taxes": invoice.tax_snapshot})
    _notify(invoice.pk, "issued")
    return invoice


# --- edit ----------------------------------------------------------------------------------


def edit_refusal(invoice: Invoice) -> str | None:
    """Why ``invoice`` cannot be edited now, or None when it can."""
    if invoice.kind != Invoice.Kind.INVOICE:
        return "A credit note cannot be edited; void it and create another."
    if invoice.status == Invoice.Status.DRAFT:
        return None
    if invoice_is_final(invoice):
        return "A void invoice cannot be edited."
    if invoice.is_exported:
        return (f"{invoice} was exported to {invoice.exported_to or 'the accounting system'}; "
                "correct it with a credit note or void it.")
    if invoice.amount_credited or invoice.credit_notes.exclude(status=Invoice.Status.VOID).exists():
        return f"{invoice} has a credit note; correct it with another credit note."
    if invoice.status != Invoice.Status.ISSUED or invoice.amount_paid:
        return f"{invoice} has payments; correct it with a credit note."
    return None


@transaction.atomic
def invoice_edit(
    *,
    invoice_id: int,
    acting_user,
    lines: Sequence[LineInput] | None = None,
    discount: Adjustment | None = None,
    surcharge: Adjustment | None = None,
    notes: str | None = None,
    terms: str | None = None,
    payment_instructions: str | None = None,
    payment_terms_days: int | None = None,
    due_date: dt.date | None = None,
) -> Invoice:
    """Change a draft, or an issued invoice that is neither exported nor paid (audited).

    Arguments left as None stay as they are. ``lines`` replaces every line: a
    ``LineInput`` with ``line_id`` keeps that line's source links; lines not named are
    removed. An issued invoice keeps its number and the tax rates it was issued with (a
    tax code it did not have yet is taken as in effect on its issue date); its PDF
    version goes up so the printed copy is rendered again.
    """
    invoice = _lock(invoice_id)
    refusal = edit_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    before = _state(invoice)
    errors = _Errors()
    _set_adjustments(errors, invoice,
                     discount=discount if discount is not None else Adjustment(invoice.discount_kind, invoice.discount_value),
                     surcharge=surcharge if surcharge is not None else Adjustment(invoice.surcharge_kind, invoice.surcharge_value))
    for name, value in (("notes", notes), ("terms", terms), ("payment_instructions", payment_instructions)):
        if value is not None:
            setattr(invoice, name, _text(value))
    if payment_terms_days is not None:
        if not isinstance(payment_terms_days, int) or isinstance(payment_terms_days, bool) or not 0 <= payment_terms_days <= 365:
            errors.add("payment_terms_days", "Enter payment terms from 0 to 365 days.")
        else:
            invoice.payment_terms_days = payment_terms_days
            if invoice.issue_date and due_date is None and invoice.status != Invoice.Status.DRAFT:
                invoice.due_date = invoice.issue_date + dt.timedelta(days=payment_terms_days)
    if due_date is not None:
        if invoice.status == Invoice.Status.DRAFT:
            errors.add("due_date", "A draft's due date is set when it is issued, from its payment terms.")
        else:
            _check_date(errors, "due_date", due_date)
            if not errors and due_date < invoice.issue_date:
                errors.add("due_date", f"The due date cannot be before the issue date ({invoice.issue_date:%d %b %Y}).")
            elif not errors:
                invoice.due_date = due_date
    errors.raise_if_any()
    if lines is not None:
        _replace_lines(invoice, lines, config=InvoiceSettings.load())
    _recalculate(invoice)
    if invoice.status != Invoice.Status.DRAFT:
        if not invoice.lines.exists():
            raise ValidationError("An issued invoice keeps at least one line; void it instead.")
        if invoice.total < 0:
            raise ValidationError("The invoice total would be negative; issue a credit note instead.")
        invoice.tax_snapshot = _tax_snapshot(invoice)
    after = _state(invoice)
    if before == after:
        return invoice
    invoice.pdf_version += 1
    invoice.save(update_fields=["pdf_version", "tax_snapshot", "updated_at"])
    audit_record(actor=acting_user, action="invoice_edited", obj=invoice,
                 before=_changed(before, after, side=0), after=_changed(before, after, side=1))
    _notify(invoice.pk, "edited")
    return invoice


# --- void ----------------------------------------------------------------------------------


def void_refusal(invoice: Invoice) -> str | None:
    refusal = invoice_transition_refusal(invoice, Invoice.Status.VOID, by=Invoice.Move.VOID)
    if refusal:
        return refusal
    if invoice.kind == Invoice.Kind.INVOICE:
        if invoice.amount_paid:
            return f"{invoice} has payments; correct it with a credit note instead."
        if invoice.credit_notes.exclude(status=Invoice.Status.VOID).exists():
            return f"{invoice} has credit notes; void them first, or credit the rest."
    return None


@transaction.atomic
def invoice_void(*, invoice_id: int, acting_user, reason: str) -> Invoice:
    """Void an issued invoice without payments, or a credit note. The number stays used."""
    target = Invoice.objects.get(pk=invoice_id)
    credited = None
    if target.kind == Invoice.Kind.CREDIT_NOTE:
        credited = _lock(target.credited_invoice_id)  # always invoice before credit note: no deadlock
    invoice = _lock(invoice_id)
    refusal = void_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    reason = _text(reason)
    if not reason:
        raise ValidationError({"reason": ["Say why it is voided; the reason is kept in the audit trail."]})
    before = {"status": invoice.status}
    invoice.status = Invoice.Status.VOID
    invoice.voided_at = timezone.now()
    invoice.voided_by = _user(acting_user)
    invoice.void_reason = reason
    invoice.pdf_version += 1
    invoice.save(update_fields=["status", "voided_at", "voided_by", "void_reason", "pdf_version", "updated_at"])
    audit_record(actor=acting_user, action="invoice_voided", obj=invoice, before=before,
                 after={"status": invoice.status}, message=reason)
    if credited is not None:
        credited_before = {"amount_credited": credited.amount_credited, "status": credited.status}
        credited.amount_credited += invoice.total  # the credit note's total is negative
        _settle_status(credited, by=Invoice.Move.CREDIT_VOIDED)
        credited.save(update_fields=["amount_credited", "status", "updated_at"])
        audit_record(actor=acting_user, action="credit_note_voided", obj=credited, before=credited_before,
                     after={"amount_credited": credited.amount_credited, "status": credited.status},
                     message=f"{invoice} voided: {reason}")
        _notify(credited.pk, "credited")
    _notify(invoice.pk, "voided")
    return invoice


# --- credit notes --------------------------------------------------------------------------


def credit_note_refusal(invoice: Invoice) -> str | None:
    if invoice.kind != Invoice.Kind.INVOICE:
        return "A credit note cannot itself be credited; void it instead."
    return invoice_transition_refusal(invoice, Invoice.Status.PAID, by=Invoice.Move.CREDIT)


@dataclass
class _Creditable:
    """What is left to credit of one invoice line."""

    line: InvoiceLine
    taxable_amount: Decimal
    taxes: dict[str, Decimal] = field(default_factory=dict)
    touched: bool = False


def creditable_lines(invoice: Invoice) -> list[_Creditable]:
    """Each line of ``invoice`` with what its non-void credit notes have not credited yet."""
    lines = list(invoice.lines.prefetch_related("taxes"))
    credit_lines = InvoiceLine.objects.filter(
        credited_line__invoice=invoice, invoice__kind=Invoice.Kind.CREDIT_NOTE,
    ).exclude(invoice__status=Invoice.Status.VOID).prefetch_related("taxes")
    by_line: dict[int, list[InvoiceLine]] = defaultdict(list)
    for credit in credit_lines:
        by_line[credit.credited_line_id].append(credit)
    result = []
    for line in lines:
        left = _Creditable(line=line, taxable_amount=line.taxable_amount,
                           taxes={tax.code: tax.amount for tax in line.taxes.all()})
        for credit in by_line.get(line.pk, []):
            left.touched = True
            left.taxable_amount += credit.taxable_amount
            for tax in credit.taxes.all():
                left.taxes[tax.code] = left.taxes.get(tax.code, Decimal(0)) + tax.amount
        result.append(left)
    return result


@transaction.atomic
def credit_note_create(
    *,
    invoice_id: int,
    reason: str,
    acting_user,
    lines: Sequence[CreditLineInput] | None = None,
    issue_date: dt.date | None = None,
) -> Invoice:
    """Issue a credit note against an issued invoice: all that is left of it, or ``lines``.

    A line credited in full for the first time is mirrored exactly — every printed figure
    negated, with the invoice's own tax rates — so a full credit note is the invoice to
    the cent with the sign turned. A part of a line is credited as one amount with the
    line's taxes on it; the part that completes a line credits exactly the tax that is
    left, so several partial credits never add up to more (or less) than the invoice.
    """
    invoice = _lock(invoice_id)
    refusal = credit_note_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    errors = _Errors()
    reason = _text(reason)
    if not reason:
        errors.add("reason", "Say why the invoice is credited; it is printed on the credit note.")
    issue_date = tenant_today() if issue_date is None else issue_date
    _check_date(errors, "issue_date", issue_date)
    if not errors and issue_date < invoice.issue_date:
        errors.add("issue_date", f"A credit note cannot be dated before the invoice it credits "
                                 f"({invoice.issue_date:%d %b %Y}).")
    errors.raise_if_any()
    creditable = {item.line.pk: item for item in creditable_lines(invoice)}
    currency = invoice.currency
    zero = round_money(0, currency)

    requested: list[tuple[_Creditable, Decimal | None]] = []
    if lines is None:
        if not any(_left_to_credit(item) for item in creditable.values()):
            raise ValidationError(f"{invoice} is already credited in full.")
        # Untouched lines are all mirrored (zero lines too: a faithful copy); others only if something is left.
        requested = [(item, None) for item in creditable.values() if not item.touched or _left_to_credit(item)]
    else:
        seen: set[int] = set()
        for position, item_input in enumerate(lines, start=1):
            item = creditable.get(item_input.invoice_line_id)
            if item is None or item_input.invoice_line_id in seen:
                errors.add("lines", f"Line {position}: not a line of {invoice}, or named twice.")
                continue
            seen.add(item_input.invoice_line_id)
            amount = None
            if item_input.amount is not None:
                amount = _decimal(errors, "lines", item_input.amount, currency=currency, label=f"Line {position}: amount")
                if amount is None:
                    continue
                if amount <= 0:
                    errors.add("lines", f"Line {position}: enter an amount greater than zero.")
                elif not is_whole_minor_units(amount, currency):
                    errors.add("lines", f"Line {position}: enter the amount in whole {currency} minor units.")
                elif item.line.taxable_amount <= 0:
                    errors.add("lines", f"Line {position}: a line that is not a charge can only be credited in full.")
                elif amount > item.taxable_amount:
                    errors.add("lines", f"Line {position}: at most {item.taxable_amount} {currency} of “{item.line}” "
                                        "is left to credit.")
                if amount == item.taxable_amount:
                    amount = None  # all that is left: closes the line exactly
            if amount is None and not _left_to_credit(item):
                errors.add("lines", f"Line {position}: “{item.line}” is already credited in full.")
            requested.append((item, amount))
        if not requested and not errors:
            errors.add("lines", "Choose at least one line to credit.")
    errors.raise_if_any()

    credit = Invoice(
        customer_id=invoice.customer_id,
        kind=Invoice.Kind.CREDIT_NOTE,
        credited_invoice=invoice,
        status=Invoice.Status.ISSUED,
        currency=currency,
        issue_date=issue_date,
        due_date=issue_date,
        payment_terms_days=0,
        customer_name=invoice.customer_name,
        customer_address=invoice.customer_address,
        customer_tax_id=invoice.customer_tax_id,
        customer_tax_exempt=invoice.customer_tax_exempt,
        customer_reverse_charge=invoice.customer_reverse_charge,
        customer_email=invoice.customer_email,
        tax_snapshot=invoice.tax_snapshot,
        reason=reason,
        footer=invoice.footer,
        created_by=_user(acting_user),
        issued_at=timezone.now(),
        issued_by=_user(acting_user),
        pdf_version=1,
    )
    credit.number, credit.number_year, credit.number_sequence = _take_number(
        series=NumberSequence.Series.CREDIT_NOTE, on=issue_date)
    _save_numbered(credit)
    for order, (item, amount) in enumerate(requested):
        _credit_line(credit, item, amount, order=order, currency=currency)
    _sum_totals(credit)
    credit.save()
    if credit.total > zero:
        raise ValidationError("These lines would make a credit note that charges the customer; credit the "
                              "charged lines too, or edit the invoice.")

    invoice_before = {"amount_credited": invoice.amount_credited, "status": invoice.status}
    invoice.amount_credited -= credit.total
    _settle_status(invoice, by=Invoice.Move.CREDIT)
    invoice.save(update_fields=["amount_credited", "status", "updated_at"])
    audit_record(actor=acting_user, action="credit_note_issued", obj=credit, after=_state(credit), message=reason)
    audit_record(actor=acting_user, action="invoice_credited", obj=invoice, before=invoice_before,
                 after={"amount_credited": invoice.amount_credited, "status": invoice.status,
                        "credit_note": credit.number}, message=reason)
    _notify(credit.pk, "credit_note_issued")
    _notify(invoice.pk, "credited")
    return credit


def _left_to_credit(item: _Creditable) -> bool:
    return bool(item.taxable_amount) or any(item.taxes.values())


def _credit_line(credit: Invoice, item: _Creditable, amount: Decimal | None, *, order: int, currency: str) -> None:
    line = item.line
    zero = round_money(0, currency)
    if amount is None and not item.touched:
        mirrored = InvoiceLine.objects.create(
            invoice=credit, sort_order=order, description=line.description, quantity=-line.quantity,
            unit_price=line.unit_price, fixed_amount=-line.fixed_amount if line.fixed_amount is not None else None,
            gross_amount=-line.gross_amount, discount_kind=line.discount_kind, discount_value=line.discount_value,
            discount_amount=-line.discount_amount, amount=-line.amount,
            invoice_discount_share=-line.invoice_discount_share, invoice_surcharge_share=-line.invoice_surcharge_share,
            taxable_amount=-line.taxable_amount, taxable=line.taxable, tax_codes=line.tax_codes,
            tax_amount=-line.tax_amount, source_kind=InvoiceLine.SourceKind.CREDIT, credited_line=line,
            contract_id=line.contract_id, product_id=line.product_id, rate_item_id=line.rate_item_id,
        )
        InvoiceLineTax.objects.bulk_create([
            InvoiceLineTax(line=mirrored, tax_rate_id=tax.tax_rate_id, code=tax.code, name=tax.name, percent=tax.percent,
                           compound=tax.compound, base=-tax.base, amount=-tax.amount, sort_order=tax.sort_order)
            for tax in line.taxes.all()
        ])
        return
    closing = amount is None
    value = item.taxable_amount if closing else amount
    taxes = list(line.taxes.all())
    if closing:
        tax_rows = [(tax, -item.taxes.get(tax.code, zero)) for tax in taxes]
        bases, charged = {}, zero
        for tax, tax_amount in tax_rows:  # stored simple first, then compound: as the calculation bases them
            bases[tax.code] = -value + (charged if tax.compound else zero)
            charged += tax_amount
    else:
        specs = [TaxSpec(rate_id=t.tax_rate_id, code=t.code, name=t.name, percent=t.percent, compound=t.compound) for t in taxes]
        results = {r.spec.code: r for r in line_taxes(specs=specs, taxable_amount=-value, currency=currency)}
        tax_rows = [(tax, results[tax.code].amount) for tax in taxes]
        bases = {code: result.base for code, result in results.items()}
    tax_amount = sum((amount for _, amount in tax_rows), zero)
    credit_line = InvoiceLine.objects.create(
        invoice=credit, sort_order=order, description=f"{line.description} ({'remainder' if closing else 'part'})",
        quantity=Decimal("-1"), unit_price=round_unit_price(value), fixed_amount=-value, gross_amount=-value,
        amount=-value, taxable_amount=-value, taxable=line.taxable, tax_codes=line.tax_codes, tax_amount=tax_amount,
        source_kind=InvoiceLine.SourceKind.CREDIT, credited_line=line, contract_id=line.contract_id,
        product_id=line.product_id, rate_item_id=line.rate_item_id,
    )
    InvoiceLineTax.objects.bulk_create([
        InvoiceLineTax(line=credit_line, tax_rate_id=tax.tax_rate_id, code=tax.code, name=tax.name, percent=tax.percent,
                       compound=tax.compound, base=bases[tax.code], amount=amount, sort_order=tax.sort_order)
        for tax, amount in tax_rows
    ])


# --- payments ------------------------------------------------------------------------------


def payment_refusal(invoice: Invoice) -> str | None:
    if invoice.kind != Invoice.Kind.INVOICE:
        return "Payments are recorded on invoices, not on credit notes."
    refusal = invoice_transition_refusal(invoice, Invoice.Status.PAID, by=Invoice.Move.PAY)
    if refusal:
        return refusal
    if invoice.amount_due <= 0:
        return f"{invoice} has nothing left to pay."
    return None


@transaction.atomic
def payment_record(
    *,
    invoice_id: int,
    amount: Decimal | Money,
    date: dt.date,
    method: str = Payment.Method.BANK_TRANSFER,
    reference: str = "",
    acting_user,
    remote_id: str = "",
) -> Payment:
    """Record a (partial) payment; more than is still due is refused.

    With ``remote_id`` (a payment synced from the accounting system) a second call for the
    same remote payment returns the first one instead of recording it twice.
    """
    invoice = _lock(invoice_id)
    remote_id = _text(remote_id)
    if remote_id:
        existing = invoice.payments.filter(remote_id=remote_id).first()
        if existing is not None:
            return existing
    refusal = payment_refusal(invoice)
    if refusal:
        raise ValidationError(refusal)
    errors = _Errors()
    value = _decimal(errors, "amount", amount, currency=invoice.currency, minimum=None)
    if value is not None:
        if value <= 0:
            errors.add("amount", "Enter an amount greater than zero.")
        elif not is_whole_minor_units(value, invoice.currency):
            errors.add("amount", f"Enter the amount in whole {invoice.currency} minor units (such as cents).")
        elif value > invoice.amount_due:
            errors.add("amount", f"{value} {invoice.currency} is more than the {invoice.amount_due} {invoice.currency} "
                                 f"still due on {invoice}; record at most that (overpayments are not recorded).")
    _check_date(errors, "date", date)
    if not errors and date > tenant_today():
        errors.add("date", "A payment cannot be dated in the future.")
    if method not in Payment.Method.values:
        errors.add("method", "Choose how it was paid.")
    errors.raise_if_any()
    value = round_money(value, invoice.currency)  # already whole minor units: only the exponent changes
    payment = Payment.objects.create(invoice=invoice, date=date, amount=value, method=method,
                                     reference=_text(reference)[:200], remote_id=remote_id, recorded_by=_user(acting_user))
    before = {"amount_paid": invoice.amount_paid, "status": invoice.status}
    invoice.amount_paid += value
    _settle_status(invoice, by=Invoice.Move.PAY)
    invoice.save(update_fields=["amount_paid", "status", "updated_at"])
    audit_record(actor=acting_user, action="payment_recorded", obj=invoice, before=before,
                 after={"amount_paid": invoice.amount_paid, "status": invoice.status, "payment": payment.pk,
                        "amount": value, "date": date, "method": method, "reference": payment.reference})
    _notify(invoice.pk, "paid")
    return payment


# --- internals: lines and arithmetic --------------------------------------------------------


def _lock(invoice_id: int) -> Invoice:
    return Invoice.objects.select_for_update().get(pk=invoice_id)


def _replace_lines(invoice: Invoice, inputs: Sequence[LineInput], *, config: InvoiceSettings) -> None:
    """Validate ``inputs`` and make them the invoice's lines (amounts follow in ``_recalculate``)."""
    existing = {line.pk: line for line in invoice.lines.all()} if invoice.pk else {}
    built, kept = _built_lines(invoice, inputs, config=config, existing=existing, refs=_existing_sources(inputs))
    removed = [pk for pk in existing if pk not in kept]
    billing_sources = [pk for pk in removed if existing[pk].source_released_at is None and (
        existing[pk].time_allocation_id or existing[pk].charge_id or existing[pk].contract_period_id)]
    if billing_sources:  # the item would stay billed with no line anywhere
        raise ValidationError({"lines": [
            "A line that bills time, a part or a contract period cannot be removed: delete the invoice from its "
            "billing batch to release its items, or keep the line (its amount can be changed)."]})
    if removed:
        InvoiceLine.objects.filter(pk__in=removed).delete()
    # A batch may bring hundreds of lines: one statement for the new ones, one for the kept ones.
    InvoiceLine.objects.bulk_create([line for line in built if line.pk is None])
    kept_lines = [line for line in built if line.pk is not None and line.pk in kept]
    if kept_lines:
        InvoiceLine.objects.bulk_update(kept_lines, [
            "sort_order", "description", "quantity", "unit_price", "fixed_amount", "discount_kind", "discount_value",
            "taxable", "tax_codes",
        ])


def _built_lines(invoice: Invoice, inputs: Sequence[LineInput], *, config: InvoiceSettings, existing: dict[int, InvoiceLine],
                 refs: dict[type | str, Any], resolver: TaxCodeResolver | None = None) -> tuple[list[InvoiceLine], set[int]]:
    """``inputs`` checked and turned into line rows (new, or ``existing`` ones kept), unsaved."""
    errors = _Errors()
    resolver = resolver or TaxCodeResolver(config=config)
    customer = invoice.customer
    currency = invoice.currency
    kinds = set(InvoiceLine.SourceKind.values)
    built: list[InvoiceLine] = []
    kept: set[int] = set()
    for position, item in enumerate(inputs, start=1):
        if not isinstance(item, LineInput):
            raise TypeError("lines must be LineInput instances")
        label = f"Line {position}"
        description = _text(item.description)
        if not description:
            errors.add("lines", f"{label}: enter a description.")
        elif len(description) > MAX_DESCRIPTION:
            errors.add("lines", f"{label}: keep the description under {MAX_DESCRIPTION} characters.")
        price = _decimal(errors, "lines", item.unit_price, currency=currency, minimum=None, label=f"{label}: unit price")
        fixed = None
        if item.amount is not None:
            fixed = _decimal(errors, "lines", item.amount, currency=currency, minimum=None, label=f"{label}: amount")
            if fixed is not None and not is_whole_minor_units(fixed, currency):
                errors.add("lines", f"{label}: the amount has more decimals than {currency} prints.")
        quantity = _decimal(errors, "lines", item.quantity, minimum=None, label=f"{label}: quantity")
        if quantity is not None:
            if fixed is not None:
                quantity = quantity.quantize(QUANTITY_PLACES)  # shown only: the amount is the source's
            elif quantity != quantity.quantize(QUANTITY_PLACES):
                errors.add("lines", f"{label}: enter the quantity with at most 4 decimal places.")
        if price is not None:
            price = round_unit_price(price)
        discount = item.discount if isinstance(item.discount, Adjustment) else None
        if discount is None or discount.kind not in (NO_ADJUSTMENT, PERCENT, AMOUNT):
            errors.add("lines", f"{label}: choose a percent or an amount discount.")
            discount = Adjustment()
        discount_value = _decimal(errors, "lines", discount.value, currency=currency, label=f"{label}: discount")
        if discount_value is not None and discount_value != discount_value.quantize(QUANTITY_PLACES):
            errors.add("lines", f"{label}: enter the discount with at most 4 decimal places.")
        if item.source_kind not in kinds:
            errors.add("lines", f"{label}: unknown source kind “{item.source_kind}”.")
        taxable = bool(item.taxable)
        if item.tax_rate_codes is None:
            category_id = item.tax_category_id
            if category_id is None and item.product_id is not None:
                category_id = refs[TAX_CATEGORY_OF].get((Product, item.product_id))
            if category_id is None and item.rate_item_id is not None:
                category_id = refs[TAX_CATEGORY_OF].get((RateItem, item.rate_item_id))
            contract_codes, site_codes = refs[CONTRACT_TAX_CODES].get(item.contract_id, ("", ""))
            taxable = resolver.taxable(taxable=taxable, category_id=category_id)
            codes = list(resolver.codes(taxable=taxable, category_id=category_id, contract_codes=contract_codes,
                                        customer_codes=site_codes or customer.tax_codes))
        else:
            codes = _codes(item.tax_rate_codes)
        line = existing.get(item.line_id) if item.line_id is not None else None
        if item.line_id is not None:
            if line is None or item.line_id in kept:
                errors.add("lines", f"{label}: that line is not on this invoice (or is listed twice).")
                continue
            kept.add(item.line_id)
            if fixed is None and line.fixed_amount is not None and quantity == line.quantity and price == line.unit_price:
                fixed = line.fixed_amount  # quantity and price untouched: the source's amount stands
        else:
            line = InvoiceLine(invoice=invoice, source_kind=item.source_kind)
            for name, model in (("time_allocation_id", TimeAllocation), ("charge_id", Charge),
                                ("contract_period_id", ContractPeriod), ("contract_id", Contract),
                                ("product_id", Product), ("rate_item_id", RateItem)):
                value = getattr(item, name)
                if value is not None:
                    if value not in refs[model]:
                        errors.add("lines", f"{label}: {model._meta.verbose_name} {value} does not exist.")
                    elif model is TimeAllocation and value in refs[BILLED_TIME]:
                        errors.add("lines", f"{label}: that time is already billed on another invoice.")
                    setattr(line, name, value)
            line.detail = dict(item.detail or {})
        if errors:
            continue
        line.sort_order = position
        line.description = description
        line.quantity = quantity
        line.unit_price = price
        line.fixed_amount = fixed
        line.discount_kind = discount.kind
        line.discount_value = discount_value.quantize(QUANTITY_PLACES) if discount.kind else Decimal("0.0000")
        line.taxable = taxable
        line.tax_codes = codes if taxable else []
        built.append(line)
    errors.raise_if_any()
    return built, kept


def _existing_sources(inputs: Iterable[LineInput]) -> dict[type | str, set[int]]:
    wanted: dict[type, set[int]] = defaultdict(set)
    for item in inputs:
        if not isinstance(item, LineInput) or item.line_id is not None:
            continue
        for name, model in (("time_allocation_id", TimeAllocation), ("charge_id", Charge),
                            ("contract_period_id", ContractPeriod), ("contract_id", Contract),
                            ("product_id", Product), ("rate_item_id", RateItem)):
            value = getattr(item, name)
            if isinstance(value, int) and not isinstance(value, bool):
                wanted[model].add(value)
    found: dict[type | str, Any] = defaultdict(set)
    found[TAX_CATEGORY_OF] = {}
    found[CONTRACT_TAX_CODES] = {}
    for model, ids in wanted.items():
        if model is Contract:
            # The contract's override and its own customer's codes (a site on a consolidated invoice).
            rows = {pk: (codes, site_codes) for pk, codes, site_codes in
                    Contract.objects.filter(pk__in=ids).values_list("pk", "tax_codes", "customer__tax_codes")}
            found[CONTRACT_TAX_CODES] = rows
            found[model] = set(rows)
        elif model in (Product, RateItem):
            rows = dict(model.objects.filter(pk__in=ids).values_list("pk", "tax_category_id"))
            found[TAX_CATEGORY_OF].update({(model, pk): category for pk, category in rows.items()})
            found[model] = set(rows)
        else:
            found[model] = set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
    if wanted.get(TimeAllocation):  # time is billed once: by the one line that still bills it
        found[BILLED_TIME] = set(InvoiceLine.objects.filter(time_allocation_id__in=wanted[TimeAllocation], source_released_at__isnull=True)
                                 .values_list("time_allocation_id", flat=True))
    return found


BILLED_TIME = "billed time"
TAX_CATEGORY_OF = "tax category of"
CONTRACT_TAX_CODES = "contract tax codes"


class TaxCodeResolver:
    """The tax codes of lines (``contracts.rules.taxes``, steps 1–3), with the tax categories
    and the tenant's default codes loaded once (one query) for any number of lines."""

    def __init__(self, *, config: InvoiceSettings | None = None):
        config = config or InvoiceSettings.load()
        self.default_codes = parse_codes(config.tax_codes())
        self.categories = {category.pk: category.terms() for category in TaxCategory.objects.all()}

    def taxable(self, *, taxable: bool, category_id: int | None) -> bool:
        return line_taxable(taxable=taxable, category=self.categories.get(category_id))

    def codes(self, *, taxable: bool, category_id: int | None, contract_codes: str = "",
              customer_codes: str = "") -> tuple[str, ...]:
        return line_tax_codes(taxable=taxable, category=self.categories.get(category_id),
                              contract_codes=parse_codes(contract_codes), customer_codes=parse_codes(customer_codes),
                              default_codes=self.default_codes)


def _tax_specs(invoice: Invoice, codes: Iterable[str], *, tax_date: dt.date, frozen: bool) -> dict[str, TaxSpec]:
    """The tax rate version of each code: frozen on the invoice, else the one in effect on ``tax_date``."""
    codes = _codes(codes)
    specs: dict[str, TaxSpec] = {}
    snapshot = invoice.tax_snapshot if frozen else {}
    for code in codes:
        if code in snapshot:
            row = snapshot[code]
            specs[code] = TaxSpec(rate_id=int(row["id"]), code=code, name=row["name"], percent=Decimal(str(row["percent"])),
                                  compound=bool(row["compound"]))
    missing = [code for code in codes if code not in specs]
    if missing:
        versions: dict[str, TaxRate] = {}
        for rate in TaxRate.objects.filter(code__in=missing, effective_from__lte=tax_date).order_by("code", "effective_from"):
            versions[rate.code] = rate  # the latest version on or before the date wins
        problems = []
        for code in missing:
            rate = versions.get(code)
            if rate is None:
                if TaxRate.objects.filter(code=code).exists():
                    problems.append(f"tax {code} is not in effect yet on {tax_date:%d %b %Y}")
                else:
                    problems.append(f"there is no tax with the code {code}")
                continue
            specs[code] = TaxSpec(rate_id=rate.pk, code=code, name=rate.name, percent=rate.percent, compound=rate.compound)
        if problems:
            raise ValidationError({"lines": [f"Cannot charge tax: {'; '.join(problems)}."]})
    return specs


def _recalculate(invoice: Invoice, *, tax_date: dt.date | None = None, tax_exempt: bool | None = None,
                 frozen: bool | None = None) -> None:
    """Recompute every line and the totals, and save them (the invoice row is locked or new)."""
    is_draft = invoice.status == Invoice.Status.DRAFT
    if frozen is None:
        frozen = not is_draft
    if tax_date is None:
        tax_date = invoice.issue_date or tenant_today()
    if tax_exempt is None:
        if is_draft:
            customer = Customer.objects.get(pk=invoice.customer_id)
            tax_exempt = customer.untaxed_on(tax_date)
            _set_draft_tax_status(invoice, customer, tax_date)
        else:
            tax_exempt = invoice.customer_tax_exempt or invoice.customer_reverse_charge
    lines = list(invoice.lines.order_by("sort_order", "id"))
    specs = _tax_specs(invoice, {code for line in lines for code in line.tax_codes}, tax_date=tax_date, frozen=frozen)
    new_taxes = _figures(invoice, lines, specs, tax_exempt=tax_exempt)
    InvoiceLineTax.objects.filter(line__invoice=invoice).delete()
    if lines:
        InvoiceLine.objects.bulk_update(lines, FIGURE_FIELDS)
    InvoiceLineTax.objects.bulk_create(new_taxes)
    invoice.save()


FIGURE_FIELDS = ["gross_amount", "discount_amount", "amount", "invoice_discount_share", "invoice_surcharge_share",
                 "taxable_amount", "tax_amount"]
TOTAL_FIELDS = ["subtotal", "discount_total", "surcharge_total", "tax_total", "total"]


def _figures(invoice: Invoice, lines: list[InvoiceLine], specs: dict[str, TaxSpec], *, tax_exempt: bool) -> list[InvoiceLineTax]:
    """Every line's figures and the invoice's totals set on the objects (not saved); the line taxes to store."""
    figures = [
        LineFigures(
            quantity=line.quantity, unit_price=line.unit_price, fixed_amount=line.fixed_amount,
            discount_kind=line.discount_kind, discount_value=line.discount_value, taxable=line.taxable,
            taxes=tuple(specs[code] for code in line.tax_codes),
        )
        for line in lines
    ]
    try:
        result = calculate_invoice(
            lines=figures, currency=invoice.currency,
            discount=Adjustment(invoice.discount_kind, invoice.discount_value),
            surcharge=Adjustment(invoice.surcharge_kind, invoice.surcharge_value),
            tax_exempt=tax_exempt,
        )
    except CalculationError as error:
        where = f"Line {error.line_index + 1}: " if error.line_index is not None else ""
        key = "lines" if error.line_index is not None else (error.field or NON_FIELD_ERRORS)
        raise ValidationError({key: [where + error.message]}) from error
    figures_too_large = [abs(x) > MAX_AMOUNT for x in (result.subtotal, result.total, result.tax_total)] + [
        abs(value) > MAX_AMOUNT for line in result.lines for value in (line.gross_amount, line.taxable_amount)]
    if any(figures_too_large):
        raise ValidationError({"lines": ["These amounts are too large for an invoice; check the quantities and prices."]})
    new_taxes = []
    for line, figures_result in zip(lines, result.lines):
        line.gross_amount = figures_result.gross_amount
        line.discount_amount = figures_result.discount_amount
        line.amount = figures_result.amount
        line.invoice_discount_share = figures_result.invoice_discount_share
        line.invoice_surcharge_share = figures_result.invoice_surcharge_share
        line.taxable_amount = figures_result.taxable_amount
        line.tax_amount = figures_result.tax_amount
        for order, tax in enumerate(figures_result.taxes):
            new_taxes.append(InvoiceLineTax(
                line=line, tax_rate_id=tax.spec.rate_id, code=tax.spec.code, name=tax.spec.name,
                percent=tax.spec.percent, compound=tax.spec.compound, base=tax.base, amount=tax.amount, sort_order=order,
            ))
    invoice.subtotal = result.subtotal
    invoice.discount_total = result.discount_total
    invoice.surcharge_total = result.surcharge_total
    invoice.tax_total = result.tax_total
    invoice.total = result.total
    return new_taxes


def _sum_totals(invoice: Invoice) -> None:
    """Totals of a credit note from its (mirrored) lines: the same sums the calculation makes."""
    zero = round_money(0, invoice.currency)
    lines = list(invoice.lines.all())
    invoice.subtotal = sum((line.amount for line in lines), zero)
    invoice.discount_total = sum((line.invoice_discount_share for line in lines), zero)
    invoice.surcharge_total = sum((line.invoice_surcharge_share for line in lines), zero)
    invoice.tax_total = sum((line.tax_amount for line in lines), zero)
    invoice.total = invoice.subtotal - invoice.discount_total + invoice.surcharge_total + invoice.tax_total


def _tax_snapshot(invoice: Invoice) -> dict[str, dict[str, Any]]:
    snapshot: dict[str, dict[str, Any]] = {}
    for tax in InvoiceLineTax.objects.filter(line__invoice=invoice).order_by("id"):
        snapshot.setdefault(tax.code, {"id": tax.tax_rate_id, "name": tax.name, "percent": str(tax.percent),
                                       "compound": tax.compound})
    # Codes on lines that charge no tax right now (an exempt customer) are frozen too.
    for existing_code, row in (invoice.tax_snapshot or {}).items():
        snapshot.setdefault(existing_code, row)
    return snapshot


def _settle_status(invoice: Invoice, *, by: str) -> None:
    """Issued → partially paid → paid, from what payments and credit notes have settled
    (``by``: the move that changed them; the invoice row is locked)."""
    if invoice.kind != Invoice.Kind.INVOICE or by not in moves_from(invoice.status):
        return
    settled = invoice.amount_paid + invoice.amount_credited
    if settled > 0 and invoice.total - settled <= 0:
        to = Invoice.Status.PAID
    elif settled > 0:
        to = Invoice.Status.PARTIALLY_PAID
    else:
        to = Invoice.Status.ISSUED
    if to != invoice.status:
        refusal = invoice_transition_refusal(invoice, to, by=by)
        if refusal:
            raise ValidationError(refusal)
        invoice.status = to


def _save_numbered(invoice: Invoice) -> None:
    try:
        with transaction.atomic():
            invoice.save()
    except IntegrityError as error:
        raise ValidationError(
            f"The number {invoice.number} is already used (the numbering settings were changed back to an earlier "
            "format); change the prefix in the invoice settings."
        ) from error


def _set_adjustments(errors: _Errors, invoice: Invoice, *, discount: Adjustment, surcharge: Adjustment) -> None:
    for name, adjustment in (("discount", discount), ("surcharge", surcharge)):
        if not isinstance(adjustment, Adjustment) or adjustment.kind not in AdjustmentKind.values:
            errors.add(f"{name}_kind", f"Choose a percent or an amount {name}.")
            continue
        value = _decimal(errors, f"{name}_value", adjustment.value, currency=invoice.currency)
        if value is None:
            continue
        if value != value.quantize(QUANTITY_PLACES):
            errors.add(f"{name}_value", "Enter at most 4 decimal places.")
            continue
        if adjustment.kind == PERCENT and value > 100:
            errors.add(f"{name}_value", f"Enter a {name} from 0 to 100 %.")
            continue
        kind = adjustment.kind if value else NO_ADJUSTMENT
        setattr(invoice, f"{name}_kind", kind)
        setattr(invoice, f"{name}_value", value.quantize(QUANTITY_PLACES) if kind else Decimal("0.0000"))


# --- internals: values ----------------------------------------------------------------------


def _check_currency(errors: _Errors, customer: Customer, currency: str | None) -> str:
    code = (currency or customer.currency or "").strip().upper()
    if code not in CURRENCY_CODES:
        errors.add("currency", "Choose a valid ISO 4217 currency code, such as EUR or USD.")
    elif code != customer.currency.upper():
        errors.add("currency", f"{customer} is billed in {customer.currency}, not {code}.")
    elif minor_unit_exponent(code) > 2:
        errors.add("currency", f"{code} has more than two decimal places in its minor unit; invoices in it are not "
                               "supported yet.")
    return code


def _decimal(errors: _Errors, field: str, value: Any, **options) -> Decimal | None:
    """Amounts here may come as text and are bounded by what the amount columns hold."""
    return clean_decimal(errors, field, value, accept_text=True, maximum=MAX_AMOUNT, **options)


def _codes(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        code = str(value).strip().upper()
        if code and code not in seen:
            seen.append(code)
    return seen


def _user(acting_user):
    return acting_user if getattr(acting_user, "pk", None) is not None else None


def _notify(invoice_id: int, action: str) -> None:
    transaction.on_commit(lambda: hooks.invoice_changed(invoice_id, action=action))


def _state(invoice: Invoice, *, lines: list[InvoiceLine] | None = None, taxes: list[InvoiceLineTax] | None = None) -> dict[str, Any]:
    """What the audit trail keeps of an invoice: header figures and printed lines (read from
    the database, or ``lines`` and their ``taxes`` as just computed)."""
    if lines is None:
        rows = [(line, list(line.taxes.all())) for line in invoice.lines.prefetch_related("taxes").order_by("sort_order", "id")]
    else:
        by_line: dict[int, list[InvoiceLineTax]] = defaultdict(list)
        for tax in taxes or ():
            by_line[id(tax.line)].append(tax)
        rows = [(line, by_line[id(line)]) for line in lines]
    lines = []
    for line, line_taxes_ in rows:
        lines.append({
            "id": line.pk, "description": line.description, "quantity": str(line.quantity),
            "unit_price": str(line.unit_price), "discount": f"{line.discount_kind}:{line.discount_value}" if line.discount_kind else "",
            "amount": str(line.amount), "taxable": line.taxable,
            "taxes": {tax.code: str(tax.amount) for tax in line_taxes_},
            "source": line.source_kind,
        })
    return {
        "status": invoice.status,
        "number": invoice.number,
        "currency": invoice.currency,
        "discount": f"{invoice.discount_kind}:{invoice.discount_value}" if invoice.discount_kind else "",
        "surcharge": f"{invoice.surcharge_kind}:{invoice.surcharge_value}" if invoice.surcharge_kind else "",
        "subtotal": str(invoice.subtotal),
        "discount_total": str(invoice.discount_total),
        "surcharge_total": str(invoice.surcharge_total),
        "tax_total": str(invoice.tax_total),
        "total": str(invoice.total),
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "payment_terms_days": invoice.payment_terms_days,
        "notes": invoice.notes,
        "terms": invoice.terms,
        "payment_instructions": invoice.payment_instructions,
        "lines": lines,
    }


def _changed(before: Mapping[str, Any], after: Mapping[str, Any], *, side: int) -> dict[str, Any]:
    """Only the keys that differ, from ``before`` (side 0) or ``after`` (side 1)."""
    source = before if side == 0 else after
    return {key: source.get(key) for key in set(before) | set(after) if before.get(key) != after.get(key)}


class DraftLineFigures:
    """The figures of draft lines with a fixed amount, memoised by (amount, taxable, resolved
    tax codes, untaxed customer, currency) — for previews and batch runs over many lines. Only
    valid without invoice-level adjustments (``adjusted`` says whether the tenant's defaults
    add a discount or surcharge; callers then calculate line by line). ``resolver`` gives the
    codes of a line (``codes_for``), memoised per (contract, customer, category, taxable)."""

    def __init__(self, *, config: InvoiceSettings | None = None, tax_date: dt.date | None = None):
        self.config = config or InvoiceSettings.load()
        self.adjusted = bool(self.config.default_discount_percent or self.config.default_surcharge_percent)
        self.tax_date = tax_date or tenant_today()
        self.resolver = TaxCodeResolver(config=self.config)
        self._specs: dict[tuple[str, ...], tuple[TaxSpec, ...]] = {}
        self._codes: dict[tuple, tuple[bool, tuple[str, ...]]] = {}
        self._memo: dict[tuple, Any] = {}

    def codes_for(self, *, taxable: bool, category_id: int | None, contract_codes: str,
                  customer_codes: str) -> tuple[bool, tuple[str, ...]]:
        """(taxable, codes) of a line: the same resolution a draft's line gets."""
        key = (taxable, category_id, contract_codes, customer_codes)
        found = self._codes.get(key)
        if found is None:
            is_taxable = self.resolver.taxable(taxable=taxable, category_id=category_id)
            found = self._codes[key] = (is_taxable, self.resolver.codes(
                taxable=is_taxable, category_id=category_id, contract_codes=contract_codes, customer_codes=customer_codes))
        return found

    def specs(self, codes: Sequence[str]) -> tuple[TaxSpec, ...]:
        codes = tuple(codes)
        found = self._specs.get(codes)
        if found is None:
            by_code = _tax_specs(Invoice(), codes, tax_date=self.tax_date, frozen=False) if codes else {}
            found = self._specs[codes] = tuple(by_code[code] for code in codes)
        return found

    def line(self, amount: Decimal, *, taxable: bool, tax_exempt: bool, currency: str, codes: Sequence[str] = ()):
        """The ``LineResult`` of one such line charging ``codes`` (``tax_exempt``: an untaxed customer)."""
        codes = tuple(codes)
        key = (amount, taxable, codes, tax_exempt, currency)
        result = self._memo.get(key)
        if result is None:
            figures = LineFigures(quantity=Decimal(1), unit_price=Decimal(0), fixed_amount=amount, taxable=taxable,
                                  taxes=self.specs(codes) if taxable else ())
            result = self._memo[key] = calculate_invoice(lines=[figures], currency=currency, tax_exempt=tax_exempt).lines[0]
        return result


def invoice_preview_totals(*, customer: Customer, lines: Sequence[LineInput], tax_date: dt.date | None = None,
                           counts: Sequence[int] | None = None, config: InvoiceSettings | None = None,
                           specs_cache: dict | None = None):
    """What an invoice of ``lines`` for ``customer`` would come to, computed exactly as a draft
    would be (resolved taxes, tenant default discount and surcharge), without saving anything.

    With ``counts``, ``lines[i]`` stands for ``counts[i]`` alike lines (only the totals and one
    result per distinct line are returned). ``specs_cache`` (a dict kept by the caller)
    saves looking the same tax rates up again when previewing many invoices."""
    config = config or InvoiceSettings.load()
    tax_date = tax_date or tenant_today()
    resolver = TaxCodeResolver(config=config) if any(item.tax_rate_codes is None for item in lines) else None
    codes_per_line = [
        list(resolver.codes(taxable=item.taxable, category_id=item.tax_category_id, customer_codes=customer.tax_codes))
        if item.tax_rate_codes is None else _codes(item.tax_rate_codes)
        for item in lines
    ]
    wanted = frozenset(code for codes in codes_per_line for code in codes)
    cache = specs_cache if specs_cache is not None else {}
    if (wanted, tax_date) not in cache:
        probe = Invoice(customer=customer, currency=customer.currency)
        cache[(wanted, tax_date)] = _tax_specs(probe, wanted, tax_date=tax_date, frozen=False)
    specs = cache[(wanted, tax_date)]

    def plain(value):
        return value.amount if isinstance(value, Money) else Decimal(value)

    figures = [
        LineFigures(
            quantity=Decimal(item.quantity).quantize(QUANTITY_PLACES), unit_price=round_unit_price(plain(item.unit_price)),
            fixed_amount=plain(item.amount) if item.amount is not None else None,
            discount_kind=item.discount.kind, discount_value=item.discount.value, taxable=item.taxable,
            taxes=tuple(specs[code] for code in codes),
        )
        for item, codes in zip(lines, codes_per_line)
    ]
    discount = Adjustment(PERCENT, config.default_discount_percent) if config.default_discount_percent else Adjustment()
    surcharge = Adjustment(PERCENT, config.default_surcharge_percent) if config.default_surcharge_percent else Adjustment()
    if counts is not None:
        return calculate_invoice_totals(lines=figures, counts=counts, currency=customer.currency, discount=discount,
                                        surcharge=surcharge, tax_exempt=customer.untaxed_on(tax_date))
    return calculate_invoice(lines=figures, currency=customer.currency, discount=discount, surcharge=surcharge,
                             tax_exempt=customer.untaxed_on(tax_date))
