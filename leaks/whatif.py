"""What-if for a contract: last month's time re-rated as if the customer were on another
contract (another structure or exclusion set), in memory — nothing is written."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from contracts.models import Contract
from contracts.rules.routing import Bucket
from msp_billing.money import round_money
from tickets.models import TimeAllocation, TimeEntry
from tickets.routing import ENTRY_RELATED, entries_plan

PER_MONTH = {Contract.Frequency.MONTHLY: Decimal(1), Contract.Frequency.QUARTERLY: Decimal(1) / 3,
             Contract.Frequency.YEARLY: Decimal(1) / 12}
CHARGED = (Bucket.CHARGED, Bucket.OVERAGE)


@dataclass(frozen=True)
class Side:
    contract: Contract
    fee: Decimal
    time: Decimal
    minutes: int

    @property
    def total(self) -> Decimal:
        return self.fee + self.time

    @property
    def effective_rate(self) -> Decimal | None:
        return round_money(self.total * 60 / self.minutes, self.contract.currency) if self.minutes else None


@dataclass(frozen=True)
class WhatIf:
    start: dt.date
    end: dt.date
    now: Side
    then: Side

    @property
    def difference(self) -> Decimal:
        return self.then.total - self.now.total


def last_month(today: dt.date) -> tuple[dt.date, dt.date]:
    end = today.replace(day=1) - dt.timedelta(days=1)
    return end.replace(day=1), end


def monthly_fee(contract: Contract) -> Decimal:
    """The recurring fee a month carries (a quarterly fee's third, a yearly fee's twelfth)."""
    if contract.fee is None or contract.type not in (Contract.Type.RETAINER, Contract.Type.REMOTE_MONITORING,
                                                     Contract.Type.ONLINE_BACKUP):
        return Decimal("0.00")
    return round_money(contract.fee.amount * PER_MONTH.get(contract.billing_frequency, Decimal(1)), contract.currency)


def what_if(*, contract: Contract, alternative: Contract, today: dt.date) -> WhatIf:
    """Last month's billable time that ``contract`` took, re-routed and re-rated with ``alternative``
    in its place; both sides with the month's share of the recurring fee."""
    start, end = last_month(today)
    taken = TimeAllocation.objects.filter(contract=contract, entry__date__range=(start, end), entry__billable=True)
    entries = list(TimeEntry.objects.filter(pk__in=taken.values("entry_id")).select_related(*ENTRY_RELATED))
    ids = [e.pk for e in entries]
    current = list(TimeAllocation.objects.filter(entry_id__in=ids))
    planned = [a for _, allocations in entries_plan(entries, swap={contract.pk: alternative}) for a in allocations]

    def charged(allocations) -> Decimal:
        return sum((a.amount.amount for a in allocations if a.bucket in CHARGED and a.amount is not None), Decimal("0.00"))

    minutes = sum(a.billed_minutes for a in current)
    return WhatIf(start=start, end=end,
                  now=Side(contract=contract, fee=monthly_fee(contract), time=charged(current), minutes=minutes),
                  then=Side(contract=alternative, fee=monthly_fee(alternative), time=charged(planned),
                            minutes=sum(a.billed_minutes for a in planned)))
