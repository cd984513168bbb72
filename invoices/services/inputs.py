"""How callers describe what they want: the lines of a draft or an edit, the part of a line to credit,
and what a deleted draft gives back.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from djmoney.money import Money

from invoices.calculation import Adjustment
from invoices.models import InvoiceLine


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
