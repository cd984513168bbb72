"""Contract periods as the billing wizard sees them: open, due, overdue or billed.

docs/design.md § Readiness, periods and approval, measured against a batch's cut-off date:

* **billed** — the period is in a saved batch (``billed_at`` is set);
* **open** — not billed, and its bill date is after the cut-off;
* **due** — the period of its contract whose bill date is the latest on or before the
  cut-off (billed or not: once billed it shows as billed);
* **overdue** — every earlier unbilled period (left out of an earlier batch, or never
  billed). An overdue period stays overdue: billing a later period never makes it due.

The state is computed by the database (``state`` annotation), so a page or a task gets
it without loading every period.
"""
from __future__ import annotations

import datetime as dt

from django.db.models import CharField, Case, OuterRef, QuerySet, Subquery, Value, When

from contracts.models import Contract, ContractPeriod

State = ContractPeriod.State


def contract_periods_with_state(*, cutoff: dt.date) -> QuerySet[ContractPeriod]:
    """Every period, annotated with ``state`` as of ``cutoff``."""
    # The contract's latest period billed by the cut-off, billed or not: only that one is due.
    latest_by_cutoff = (
        ContractPeriod.objects.filter(contract=OuterRef("contract"), bill_date__lte=cutoff)
        .order_by("-bill_date", "-start")
        .values("pk")[:1]
    )
    return ContractPeriod.objects.annotate(
        state=Case(
            When(billed_at__isnull=False, then=Value(State.BILLED.value)),
            When(bill_date__gt=cutoff, then=Value(State.OPEN.value)),
            When(pk=Subquery(latest_by_cutoff), then=Value(State.DUE.value)),
            default=Value(State.OVERDUE.value),
            output_field=CharField(),
        )
    )


def contract_periods_due(*, cutoff: dt.date) -> QuerySet[ContractPeriod]:
    """Unbilled periods with bill date on or before ``cutoff`` — due and overdue — for a batch.

    Ordered as the wizard lists them: by customer, the customer's contract priority, then
    period start. Each row carries ``state`` ("due" or "overdue") and its contract and
    customer (no extra queries per row).
    """
    return (
        contract_periods_with_state(cutoff=cutoff)
        .filter(billed_at__isnull=True, bill_date__lte=cutoff)
        .select_related("contract", "contract__customer")
        .order_by("contract__customer__legal_name", "contract__priority", "contract_id", "start")
    )


def period_states(*, contract: Contract, cutoff: dt.date) -> list[ContractPeriod]:
    """All periods of one contract in order, each with ``state`` as of ``cutoff``."""
    return list(contract_periods_with_state(cutoff=cutoff).filter(contract=contract).order_by("start"))
