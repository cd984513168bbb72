"""Contract periods, generated ahead of time (DESIGN.md §2 "Readiness, periods and approval").

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
* **Unbilled periods follow the contract**: when a contract's end date moves (a renewal,
  an edit), unbilled periods are brought up to date and unbilled periods starting after
  a shortened end are removed. Billed periods are never changed.
* **Idempotent**: the unique (contract, start) constraint and a lock on the contract row
  make a second or concurrent run a no-op.
"""
from __future__ import annotations

import calendar
import datetime as dt

from django.db import transaction

from contracts.models import Contract, ContractPeriod
from contracts.rules.proration import BillingFrequency, Period, contract_periods

DEFAULT_HORIZON_DAYS = 400
"""A little over a year, so even a yearly contract always has its next period ready."""

GENERATING_STATUSES = (Contract.Status.ACTIVE, Contract.Status.ENDED)
"""Draft contracts get periods once activated; cancelled ones get no new periods."""

_ONE_DAY = dt.timedelta(days=1)
_REFRESHED_FIELDS = ("end", "covered_start", "covered_end", "bill_date")




def months_later(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` months later, clamped to the month's last day (31 Jan + 1 → 28 Feb)."""
    year, month_zero = divmod(day.year * 12 + day.month - 1 + months, 12)
    last_day = calendar.monthrange(year, month_zero + 1)[1]
    return dt.date(year, month_zero + 1, min(day.day, last_day))


def term_end(*, start: dt.date, months: int) -> dt.date:
    """Last day of a term of ``months`` months starting on ``start`` (1 Jan + 12 → 31 Dec)."""
    return months_later(start, months) - _ONE_DAY


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


@transaction.atomic
def contract_periods_generate(
    *, contract: Contract, today: dt.date, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> list[ContractPeriod]:
    """Store the contract's missing periods up to the horizon; return the ones created.

    Running it again creates nothing. Unbilled periods are refreshed from the contract
    (see the module docstring); billed periods are left alone.
    """
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    if contract.status not in GENERATING_STATUSES:
        return []
    existing = {period.start: period for period in contract.periods.all()}
    if contract.end_date is not None:
        stale = [p.pk for p in existing.values() if p.billed_at is None and p.start > contract.end_date]
        if stale:
            ContractPeriod.objects.filter(pk__in=stale).delete()

    to_create: list[ContractPeriod] = []
    to_refresh: list[ContractPeriod] = []
    for period in planned_periods(contract=contract, today=today, horizon_days=horizon_days):
        values = {
            "end": period.end,
            "covered_start": period.covered_start,
            "covered_end": period.covered_end,
            "bill_date": bill_date_for(contract=contract, period=period),
        }
        row = existing.get(period.start)
        if row is None:
            to_create.append(ContractPeriod(contract=contract, start=period.start, **values))
        elif row.billed_at is None and any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            to_refresh.append(row)
    if to_refresh:
        ContractPeriod.objects.bulk_update(to_refresh, _REFRESHED_FIELDS)
    if not to_create:
        return []
    # The contract lock serialises our own runs; ignore_conflicts keeps any other
    # writer of the same (contract, start) from failing the whole run.
    ContractPeriod.objects.bulk_create(to_create, ignore_conflicts=True)
    return list(contract.periods.filter(start__in=[p.start for p in to_create]).order_by("start"))


def periods_generate_all(*, today: dt.date, horizon_days: int = DEFAULT_HORIZON_DAYS) -> list[ContractPeriod]:
    """Generate periods for every contract of the active MSP; one transaction per contract."""
    created: list[ContractPeriod] = []
    for contract in Contract.objects.filter(status__in=GENERATING_STATUSES).order_by("pk"):
        created.extend(contract_periods_generate(contract=contract, today=today, horizon_days=horizon_days))
    return created
