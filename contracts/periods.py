"""Contract periods, generated ahead of time (docs/design.md § Readiness, periods and approval).

The period grid itself (anchor day, partial first/last period) is the pure rule
:func:`contracts.rules.proration.contract_periods`; this module stores it. Choices are
written down in ``docs/periods-and-alerts.md``; in short:

* **Periods are generated up to a horizon**: every period that *starts* on or before
  ``today + horizon_days`` (and on or before the contract's end). A contract running
  20 years out gets about 13 months of periods, and the daily task adds the rest as
  time passes.
* **Bill date** is the first covered day when billed in advance, the last covered day
  when billed in arrears. For a whole period that is its start or end; a partial first
  period is not billed before the contract starts, and a partial last period is billed
  when the contract ends, not at the end of the grid period.
* **Unbilled periods follow the contract**: when a contract's dates move (a renewal, an
  edit), unbilled periods are brought up to date, and unbilled periods no longer on the
  contract's grid (after a shortened end, before a later start, on the old grid after a
  change of frequency or anchor day) are removed. Billed periods are never changed; the
  contract services refuse a change of frequency or anchor day once a period is billed.
* **Idempotent**: the unique (contract, start) constraint and a lock on the contract row
  make a second or concurrent run a no-op.
* **Stored before money is read**: creating, editing or renewing a contract stores its
  periods in the same transaction, and every reader of what is due (the batch pages, the
  run, the dashboard, the contract page) first calls ``periods_generate_through`` for its
  cut-off, which fills in only the contracts whose stored periods do not reach it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable

from django.db import transaction
from django.db.models import Exists, OuterRef, ProtectedError, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Least

from contracts.models import Contract, ContractPeriod
from contracts.rules.proration import BillingFrequency, Period, add_months, contract_periods
from msp_billing.claims import claim_unbilled
from msp_billing.tenants.today import tenant_today

DEFAULT_HORIZON_DAYS = 400
"""A little over a year, so even a yearly contract always has its next period ready."""

GENERATING_STATUSES = (Contract.Status.ACTIVE, Contract.Status.ENDED)
"""Draft contracts get periods once activated; cancelled ones get no new periods."""

_ONE_DAY = dt.timedelta(days=1)
_REFRESHED_FIELDS = ("end", "covered_start", "covered_end", "bill_date")




def term_end(*, start: dt.date, months: int) -> dt.date:
    """Last day of a term of ``months`` months starting on ``start`` (1 Jan + 12 → 31 Dec)."""
    return add_months(start, months) - _ONE_DAY


def planned_periods(*, contract: Contract, today: dt.date, horizon_days: int = DEFAULT_HORIZON_DAYS) -> list[Period]:
    """The periods the contract should have by ``today``: pure, nothing is stored."""
    horizon = today + dt.timedelta(days=horizon_days)
    frequency = BillingFrequency(contract.billing_frequency)
    start, end = contract.start_date, contract.end_date
    if frequency is BillingFrequency.ONE_TIME:
        if start > horizon:
            return []
        if end is None:
            # Billed in arrears, a one-time contract waits for its end (completion) date;
            # billed in advance, it is billed on its start date.
            if contract.billing_timing == Contract.Timing.ARREARS:
                return []
            end = start
        return contract_periods(start=start, end=end, frequency=frequency, anchor_day=contract.anchor_day)

    last = horizon if end is None else min(end, horizon)
    if last < start:
        return []
    periods = contract_periods(start=start, end=last, frequency=frequency, anchor_day=contract.anchor_day)
    # The grid is the same whatever the end; only the last period was clipped to the
    # horizon rather than to the contract, so give it back its true covered end.
    return [
        Period(
            start=p.start,
            end=p.end,
            covered_start=p.covered_start,
            covered_end=p.end if end is None else min(p.end, end),
        )
        for p in periods
    ]


def bill_date_for(*, contract: Contract, period: Period) -> dt.date:
    if contract.billing_timing == Contract.Timing.ARREARS:
        return period.covered_end
    return period.covered_start


def _generate_locked(contracts: list[Contract], *, today: dt.date, horizon_days: int) -> list[ContractPeriod]:
    """Store the missing periods of ``contracts`` (rows locked by the caller) and bring their
    unbilled ones up to date, with a fixed number of queries however many contracts.
    Returns the rows to create (without ids)."""
    contracts = [c for c in contracts if c.status in GENERATING_STATUSES]
    if not contracts:
        return []
    existing: dict[int, dict[dt.date, ContractPeriod]] = {c.pk: {} for c in contracts}
    for period in ContractPeriod.objects.filter(contract_id__in=existing):
        existing[period.contract_id][period.start] = period
    stale: list[int] = []
    to_create: list[ContractPeriod] = []
    to_refresh: list[ContractPeriod] = []
    for contract in contracts:
        stored = existing[contract.pk]
        # Unbilled periods already stored further ahead (for a far cut-off) are planned again, not dropped.
        furthest = max((p.start for p in stored.values() if p.billed_at is None), default=today)
        planned = planned_periods(contract=contract, today=today, horizon_days=max(horizon_days, (furthest - today).days))
        # Unbilled periods off the contract's grid go: after a shortened end, before a later
        # start, or on the old grid after a change of frequency or anchor day.
        starts = {period.start for period in planned}
        stale += [p.pk for p in stored.values() if p.billed_at is None and p.start not in starts]
        for period in planned:
            values = {
                "end": period.end,
                "covered_start": period.covered_start,
                "covered_end": period.covered_end,
                "bill_date": bill_date_for(contract=contract, period=period),
            }
            row = stored.get(period.start)
            if row is None:
                to_create.append(ContractPeriod(contract=contract, start=period.start, **values))
            elif row.billed_at is None and any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                to_refresh.append(row)
    if stale:
        _delete_unbilled(stale)
    if to_refresh:
        ContractPeriod.objects.bulk_update(to_refresh, _REFRESHED_FIELDS, batch_size=1000)
    if to_create:
        # The contract locks serialise our own runs; ignore_conflicts keeps any other
        # writer of the same (contract, start) from failing the whole run.
        ContractPeriod.objects.bulk_create(to_create, ignore_conflicts=True, batch_size=1000)
    return to_create


def _delete_unbilled(ids: list[int]) -> None:
    """Delete these unbilled periods, except any still printed on an invoice (a voided one):
    those stay, as the invoice does."""
    try:
        with transaction.atomic():
            ContractPeriod.objects.filter(pk__in=ids).delete()
    except ProtectedError as error:
        kept = {getattr(obj, "contract_period_id", None) for obj in error.protected_objects}
        ContractPeriod.objects.filter(pk__in=set(ids) - kept).delete()


@transaction.atomic
def contract_periods_generate(
    *, contract: Contract, today: dt.date, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> list[ContractPeriod]:
    """Store the contract's missing periods up to the horizon; return the ones created.

    Running it again creates nothing. Unbilled periods are refreshed from the contract
    (see the module docstring); billed periods are left alone.
    """
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    to_create = _generate_locked([contract], today=today, horizon_days=horizon_days)
    if not to_create:
        return []
    return list(contract.periods.filter(start__in=[p.start for p in to_create]).order_by("start"))


def contracts_missing_periods(*, cutoff: dt.date) -> QuerySet[Contract]:
    """Contracts that should have a period reaching ``cutoff`` (or their end) but do not.

    One query with an anti-join on the stored periods: when every contract is up to date
    (the usual case, the daily task having run) it finds nothing and nothing else is done.
    """
    reaching = ContractPeriod.objects.filter(
        contract=OuterRef("pk"), end__gte=Least(Value(cutoff), Coalesce(OuterRef("end_date"), Value(cutoff))))
    one_time = Q(billing_frequency=Contract.Frequency.ONE_TIME)
    return (
        Contract.objects.filter(status__in=GENERATING_STATUSES, start_date__lte=cutoff)
        # billed in arrears without an end date, a one-time contract has no period yet
        .exclude(one_time & Q(billing_timing=Contract.Timing.ARREARS, end_date__isnull=True))
        .exclude(one_time & Exists(ContractPeriod.objects.filter(contract=OuterRef("pk"))))
        .exclude(Exists(reaching))
    )


def periods_generate_through(*, cutoff: dt.date, today: dt.date | None = None,
                             contract_ids: Iterable[int] | None = None) -> int:
    """Make sure every period billed by ``cutoff`` is stored before anything due is read.

    Generates, like the daily task, up to today's horizon — or up to the cut-off when it
    lies further ahead — but only for the contracts whose stored periods do not reach the
    cut-off (``contracts_missing_periods``). The contracts are locked in id order, in the
    caller's transaction when there is one (a billing run keeps them locked until it
    commits). Returns how many periods were created; a second call creates nothing.
    """
    today = today or tenant_today()
    missing = contracts_missing_periods(cutoff=cutoff)
    if contract_ids is not None:
        missing = missing.filter(pk__in=list(contract_ids))
    ids = list(missing.values_list("pk", flat=True))
    if not ids:
        return 0
    horizon_days = max(DEFAULT_HORIZON_DAYS, (cutoff - today).days)
    with transaction.atomic():
        contracts = list(Contract.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
        return len(_generate_locked(contracts, today=today, horizon_days=horizon_days))


def periods_generate_all(*, today: dt.date, horizon_days: int = DEFAULT_HORIZON_DAYS) -> list[ContractPeriod]:
    """Generate periods for every contract of the active MSP; one transaction per contract."""
    created: list[ContractPeriod] = []
    for contract in Contract.objects.filter(status__in=GENERATING_STATUSES).order_by("pk"):
        created.extend(contract_periods_generate(contract=contract, today=today, horizon_days=horizon_days))
    return created


def periods_claim(*, period_ids: Collection[int], at: dt.datetime) -> None:
    """A billing run bills these periods: marked billed, locked in id order; ``AlreadyClaimed``
    (``msp_billing.claims``) when one is billed already."""
    claim_unbilled(ContractPeriod, period_ids, at=at)


def periods_release(*, period_ids: Collection[int]) -> None:
    """A deleted batch gives these periods back: unbilled again."""
    ContractPeriod.objects.filter(pk__in=period_ids).update(billed_at=None)


def periods_mark_billed_through(*, contract: Contract, through: dt.date, billed_at: Callable[[dt.date], dt.datetime],
                                today: dt.date) -> int:
    """Another system billed the contract's periods up to ``through`` (an import): its periods
    are stored and those ending by then marked billed (``billed_at(bill date)``). Returns how many."""
    contract_periods_generate(contract=contract, today=max(today, through))
    marked = 0
    for period in ContractPeriod.objects.filter(contract=contract, end__lte=through, billed_at__isnull=True):
        period.billed_at = billed_at(period.bill_date)
        period.save(update_fields=["billed_at"])
        marked += 1
    return marked
