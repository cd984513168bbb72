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

The writes are split by what they change — ``drafts`` (create, recalculate, delete),
``issue`` (numbering and issue), ``edits``, ``corrections`` (void and credit notes),
``payments``, ``settings`` and ``exports`` (what an export to an accounting system
records) —, with a draft's lines and their arithmetic in ``lines``, the unsaved preview
of a draft in ``preview``, the callers' inputs in ``inputs`` and what they all share in
``_common``. Callers import from ``invoices.services``, which offers every public name of
the modules.
"""
from __future__ import annotations

from invoices.calculation import Adjustment
from invoices.services._common import (
    CURRENCY_CODES,
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_AMOUNT,
    MAX_DESCRIPTION,
    QUANTITY_PLACES,
)
from invoices.services.corrections import (
    credit_note_create,
    credit_note_refusal,
    creditable_lines,
    invoice_void,
    void_refusal,
)
from invoices.services.drafts import (
    DraftInput,
    invoice_create_draft,
    invoice_create_drafts,
    invoice_delete_draft,
    invoice_recalculate,
)
from invoices.services.edits import (
    edit_refusal,
    invoice_edit,
)
from invoices.services.exports import (
    invoice_mark_exported,
)
from invoices.services.inputs import (
    CreditLineInput,
    LineInput,
    ReleasedSources,
)
from invoices.services.issue import (
    MAX_SEQUENCE_NUMBER,
    SERIES_NAMES,
    format_number,
    invoice_issue,
    invoice_numbering_set_next,
    next_number_of,
    numbering_year,
)
from invoices.services.lines import (
    BILLED_TIME,
    CONTRACT_TAX_CODES,
    FIGURE_FIELDS,
    TAX_CATEGORY_OF,
    TOTAL_FIELDS,
    TaxCodeResolver,
)
from invoices.services.payments import (
    payment_record,
    payment_refusal,
)
from invoices.services.preview import (
    DraftLineFigures,
    invoice_preview_totals,
)
from invoices.services.settings import (
    SETTINGS_FIELDS,
    invoice_settings_update,
)
from msp_billing.tenants.today import tenant_today

__all__ = [
    "Adjustment",
    "BILLED_TIME",
    "CONTRACT_TAX_CODES",
    "CURRENCY_CODES",
    "CreditLineInput",
    "DraftInput",
    "DraftLineFigures",
    "EARLIEST_DATE",
    "FIGURE_FIELDS",
    "LATEST_DATE",
    "LineInput",
    "MAX_AMOUNT",
    "MAX_DESCRIPTION",
    "MAX_SEQUENCE_NUMBER",
    "QUANTITY_PLACES",
    "ReleasedSources",
    "SERIES_NAMES",
    "SETTINGS_FIELDS",
    "TAX_CATEGORY_OF",
    "TOTAL_FIELDS",
    "TaxCodeResolver",
    "credit_note_create",
    "credit_note_refusal",
    "creditable_lines",
    "edit_refusal",
    "format_number",
    "invoice_create_draft",
    "invoice_create_drafts",
    "invoice_delete_draft",
    "invoice_edit",
    "invoice_issue",
    "invoice_mark_exported",
    "invoice_numbering_set_next",
    "invoice_preview_totals",
    "invoice_recalculate",
    "invoice_settings_update",
    "invoice_void",
    "next_number_of",
    "numbering_year",
    "payment_record",
    "payment_refusal",
    "tenant_today",
    "void_refusal",
]
