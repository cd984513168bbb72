"""Drafts: creating one (or a billing run's many at once), recalculating one with today's tax rates,
and deleting one (which hands its billed items back).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from contracts.models import Customer
from invoices.audit import audit_record, audit_record_many
from invoices.calculation import PERCENT, Adjustment
from invoices.models import Invoice, InvoiceLine, InvoiceLineTax, InvoiceSettings
from invoices.services._common import _changed, _check_currency, _lock, _notify, _set_adjustments, _state, _user
from invoices.services.inputs import LineInput, ReleasedSources
from invoices.services.lines import (
    TaxCodeResolver,
    _built_lines,
    _existing_sources,
    _figures,
    _recalculate,
    _replace_lines,
    _set_draft_tax_status,
    _tax_specs,
)
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors as _Errors
from msp_billing.validation import clean_text as _text
from msp_billing.validation import whole_number_in


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
    if not whole_number_in(terms_days, 0, 365):
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
