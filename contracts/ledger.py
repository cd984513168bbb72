"""The block ledger: what each block's balance has given to routed time.

Routing (``tickets.routing``) decides the deductions; the ledger rows are contracts' own
and are written here. A row's ``source`` names what it was deducted for (a time
allocation), so re-routing removes exactly the rows of the allocations it replaces.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from decimal import Decimal

from contracts.models import BlockLedgerEntry
from msp_billing.bulk_insert import rows_insert


def block_ledger_add(deductions: Iterable[tuple[int, dt.date, str, int | Decimal]], *, batch_size: int) -> None:
    """Store deductions as (block id, entry date, source, quantity): minutes (an int) from a
    Block Hours block, an amount (a Decimal) from a Block Money one."""
    rows = []
    for block_id, entry_date, source, quantity in deductions:
        row = BlockLedgerEntry(block_id=block_id, entry_date=entry_date, source=source)
        if isinstance(quantity, Decimal):
            row.amount = quantity
        else:
            row.minutes = quantity
        rows.append(row)
    rows_insert(rows, batch_size=batch_size)


def block_ledger_remove(*, sources: Collection[str]) -> None:
    """Remove the deductions made for ``sources`` (routing done again)."""
    BlockLedgerEntry.objects.filter(source__in=sources).delete()
