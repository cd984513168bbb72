"""What a contract period invoices: fees, service lines, devices, usage, blocks, project fees.

Every amount is computed exactly and rounded once per printed line by ``msp_billing.money``.
Choices (also in docs/periods-and-alerts.md):

* **Fees and recurring service lines** are prorated by day over the days the period covers
  (and, for a service line, the days it was in effect): fee × days ÷ days in the period.
* **Remote Monitoring** bills each device class per stretch of days with the same count:
  a change on the 16th of a 31-day month gives two lines, 15/31 and 16/31 of the period.
  The count in force on a day is the latest ledger row dated on or before it.
* **The period's recurring fee is rounded once**, however many lines print it: the contract
  fee, the service lines and the device lines of a period are prorated together
  (``contracts.rules.proration.prorate_lines``) and the rounded total is split into the
  lines by largest remainder. Device classes of 3 × 43.00 and 7 × 43.00 for 16 of 31 days
  bill 430.00 × 16/31 = 221.94 as 66.58 + 155.36, not 66.58 + 155.35 = 221.93.
* **Online Backup** bills the highest usage measured in the covered days (or, with no
  measurement in the period, the latest one before it), less the included quantity.
  Usage is a level, not a duration: it is not prorated.
* **Blocks** (Block Hours, Block Money) are invoiced in the period in which they are bought.
* **Project — one-time fee**: the whole fee in the period holding the start (on start) or
  the end date (on completion); by milestones, each milestone completed in the period bills
  its percentage, the percentages of all milestones being split with largest remainder so
  they add up to the fee exactly.
* Hourly and Project — hourly contracts have no period lines: their time is billed from
  the time entries.

A period's device counts and usage are frozen in ``ContractPeriod.snapshot`` by
``period_snapshot_take``; later ledger rows then change nothing already billed.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from fractions import Fraction

from django.db import transaction

from contracts.models import BlockPurchase, Contract, ContractPeriod, DeviceClass, DeviceCount, Milestone, RecurringServiceLine, UsageRecord
from contracts.rules.proration import prorate_lines
from msp_billing.money import allocate_exactly, round_money, round_unit_price
from msp_billing.templatetags.formatting import day as format_day, day_range

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class PeriodLine:
    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    tax_category_id: int | None = None  # the item's tax category (service lines), for the line's taxes


def _days(start: dt.date, end: dt.date) -> int:
    return (end - start).days + 1


def _period_days(period: ContractPeriod) -> int:
    return _days(period.start, period.end)


def _describe_range(start: dt.date, end: dt.date, period: ContractPeriod) -> str:
    if start == period.start and end == period.end:
        return day_range(start, end)
    return f"{day_range(start, end)} ({_days(start, end)}/{_period_days(period)} days)"


@dataclass(frozen=True)
class _RecurringPart:
    """One printed line of the period's recurring fee, before the fee is rounded."""

    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    start: dt.date
    end: dt.date
    tax_category_id: int | None = None


def _recurring_lines(parts: list[_RecurringPart], period: ContractPeriod, currency: str) -> list[PeriodLine]:
    """The recurring fee's lines, prorated and rounded once together (see the module docstring)."""
    amounts = prorate_lines(
        lines=[(Fraction(part.quantity) * Fraction(part.unit_price), _days(part.start, part.end)) for part in parts],
        days_in_period=_period_days(period), currency=currency,
    )
    return [
        PeriodLine(kind=part.kind, description=f"{part.description}, {_describe_range(part.start, part.end, period)}",
                   quantity=part.quantity, unit_price=round_unit_price(part.unit_price), amount=amount,
                   tax_category_id=part.tax_category_id)
        for part, amount in zip(parts, amounts)
    ]


@dataclass
class ContractTerms:
    """What period lines read besides the contract row, loaded for many contracts at once
    (a fixed number of queries however many periods are priced)."""

    service_lines: dict[int, list] = field(default_factory=lambda: defaultdict(list))
    device_classes: dict[int, list] = field(default_factory=lambda: defaultdict(list))
    device_counts: dict[int, list] = field(default_factory=lambda: defaultdict(list))
    usage: dict[int, list] = field(default_factory=lambda: defaultdict(list))
    blocks: dict[int, list] = field(default_factory=lambda: defaultdict(list))
    milestones: dict[int, list] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def load(cls, contract_ids: Iterable[int], *, needs_ledgers: bool = True) -> ContractTerms:
        ids = sorted(set(contract_ids))
        terms = cls()
        for service in RecurringServiceLine.objects.filter(contract_id__in=ids).select_related("product", "rate_item").order_by("id"):
            terms.service_lines[service.contract_id].append(service)
        for milestone in Milestone.objects.filter(contract_id__in=ids).order_by("due_date", "id"):
            terms.milestones[milestone.contract_id].append(milestone)
        for block in BlockPurchase.objects.filter(contract_id__in=ids).order_by("purchased_on", "id"):
            terms.blocks[block.contract_id].append(block)
        # Device classes always (a few rows): a frozen snapshot names its classes, whose tax
        # category the lines still need.
        for device_class in DeviceClass.objects.filter(contract_id__in=ids).order_by("name"):
            terms.device_classes[device_class.contract_id].append(device_class)
        if needs_ledgers:
            for count in DeviceCount.objects.filter(device_class__contract_id__in=ids).order_by("effective_date", "id"):
                terms.device_counts[count.device_class_id].append(count)
            for record in UsageRecord.objects.filter(contract_id__in=ids).order_by("measured_on", "id"):
                terms.usage[record.contract_id].append(record)
        return terms


def periods_lines(periods: Iterable[ContractPeriod]) -> dict[int, list[PeriodLine]]:
    """``period_lines`` for many periods (with their contracts loaded) in a fixed number of queries."""
    periods = list(periods)
    terms = ContractTerms.load((p.contract_id for p in periods), needs_ledgers=any(not p.snapshot for p in periods))
    return {period.pk: period_lines(period=period, terms=terms) for period in periods}


def _device_segments(period: ContractPeriod, terms: ContractTerms) -> list[dict]:
    """Per device class, the stretches of covered days with one count (the snapshot's shape)."""
    result = []
    for device_class in terms.device_classes[period.contract_id]:
        rows = [r for r in terms.device_counts[device_class.pk] if r.effective_date <= period.covered_end]
        segments: list[dict] = []
        day = period.covered_start
        while day <= period.covered_end:
            in_force = [r for r in rows if r.effective_date <= day]
            count = in_force[-1].count if in_force else 0
            later = [r.effective_date for r in rows if r.effective_date > day]
            until = min(later[0] - _ONE_DAY, period.covered_end) if later else period.covered_end
            if segments and segments[-1]["count"] == count:
                segments[-1]["to"] = until.isoformat()
            else:
                segments.append({"from": day.isoformat(), "to": until.isoformat(), "count": count})
            day = until + _ONE_DAY
        result.append({"class": device_class.name, "unit_price": str(device_class.unit_price.amount), "segments": segments})
    return result


def _usage(period: ContractPeriod, terms: ContractTerms) -> dict | None:
    records = terms.usage[period.contract_id]  # by measured_on, id
    inside = [r for r in records if period.covered_start <= r.measured_on <= period.covered_end]
    before = [r for r in records if r.measured_on < period.covered_start]
    # the highest inside the covered days (earliest measured on a tie), else the latest before them
    record = min(inside, key=lambda r: (-r.quantity, r.measured_on)) if inside else (before[-1] if before else None)
    if record is None:
        return None
    return {"quantity": str(record.quantity), "measured_on": record.measured_on.isoformat()}


def period_snapshot(period: ContractPeriod, terms: ContractTerms | None = None) -> dict:
    """The period's device counts and usage, as frozen or (before freezing) as they stand now."""
    if period.snapshot:
        return period.snapshot
    contract = period.contract
    terms = terms or ContractTerms.load([contract.pk])
    snapshot: dict = {}
    if contract.type == Contract.Type.REMOTE_MONITORING:
        snapshot["devices"] = _device_segments(period, terms)
    if contract.type == Contract.Type.ONLINE_BACKUP:
        snapshot["usage"] = _usage(period, terms)
    return snapshot


@transaction.atomic
def period_snapshot_take(*, period_id: int) -> ContractPeriod:
    """Freeze device counts and usage of an unbilled period (idempotent)."""
    period = ContractPeriod.objects.select_for_update().select_related("contract").get(pk=period_id)
    if not period.snapshot and period.billed_at is None:
        period.snapshot = period_snapshot(period) or {"frozen": True}
        period.save(update_fields=["snapshot"])
    return period


def period_lines(*, period: ContractPeriod, terms: ContractTerms | None = None) -> list[PeriodLine]:
    """The invoice lines one contract period produces (see the module docstring)."""
    contract = period.contract
    terms = terms or ContractTerms.load([contract.pk], needs_ledgers=not period.snapshot)
    currency = contract.currency
    start, end = period.covered_start, period.covered_end
    kind = contract.type

    recurring: list[_RecurringPart] = []
    if kind in (Contract.Type.RETAINER, Contract.Type.REMOTE_MONITORING, Contract.Type.ONLINE_BACKUP) and contract.fee is not None:
        recurring.append(_RecurringPart(kind="fee", description=f"{contract.name} fee", quantity=Decimal(1),
                                        unit_price=contract.fee.amount, start=start, end=end))

    for service in terms.service_lines[contract.pk]:
        s_start = max(start, service.effective_from)
        s_end = min(end, service.effective_to) if service.effective_to else end
        if s_start <= s_end:
            category = (service.product.tax_category_id if service.product_id
                        else service.rate_item.tax_category_id if service.rate_item_id else None)
            recurring.append(_RecurringPart(kind="service", description=service.description, quantity=service.quantity,
                                            unit_price=service.unit_price.amount, start=s_start, end=s_end,
                                            tax_category_id=category))

    snapshot = period_snapshot(period, terms)
    class_categories = {c.name: c.tax_category_id for c in terms.device_classes[contract.pk]}
    for device_class in snapshot.get("devices", []):
        for segment in device_class["segments"]:
            if segment["count"]:
                recurring.append(_RecurringPart(
                    kind="devices", description=f"{device_class['class']}: {segment['count']} devices",
                    quantity=Decimal(segment["count"]), unit_price=Decimal(device_class["unit_price"]),
                    start=dt.date.fromisoformat(segment["from"]), end=dt.date.fromisoformat(segment["to"]),
                    tax_category_id=class_categories.get(device_class["class"]),
                ))
    lines: list[PeriodLine] = _recurring_lines(recurring, period, currency)

    usage = snapshot.get("usage")
    if kind == Contract.Type.ONLINE_BACKUP and usage and contract.unit_price is not None:
        billable = max(Decimal(usage["quantity"]) - contract.included_quantity, Decimal(0))
        if billable:
            unit = contract.usage_unit or "units"
            lines.append(PeriodLine(
                kind="usage", description=f"Backup usage {Decimal(usage['quantity']).normalize():f} {unit} (measured {usage['measured_on']}), {contract.included_quantity.normalize():f} included",
                quantity=billable, unit_price=round_unit_price(contract.unit_price.amount),
                amount=round_money(Fraction(billable) * Fraction(contract.unit_price.amount), currency),
            ))

    if contract.is_block:
        for block in [b for b in terms.blocks[contract.pk] if period.start <= b.purchased_on <= period.end]:
            size = f"{Decimal(block.minutes) / 60:.2f} hours" if block.minutes else f"{block.amount}"
            lines.append(PeriodLine(kind="block", description=f"Block of {size} bought {format_day(block.purchased_on)}",
                                    quantity=Decimal(1), unit_price=block.price.amount, amount=round_money(block.price.amount, currency)))

    if kind == Contract.Type.PROJECT_ONE_TIME_FEE and contract.fee is not None:
        lines.extend(_project_fee_lines(contract, period, currency, terms.milestones[contract.pk]))
    return lines


def _project_fee_lines(contract: Contract, period: ContractPeriod, currency: str, milestones: list[Milestone]) -> list[PeriodLine]:
    fee = contract.fee.amount
    trigger = contract.fee_trigger or Contract.FeeTrigger.ON_START
    if trigger == Contract.FeeTrigger.MILESTONES:
        shares = allocate_exactly(parts=[Fraction(fee) * Fraction(m.percent) / 100 for m in milestones], currency=currency)
        return [
            PeriodLine(kind="milestone", description=f"{contract.name}: milestone {m.name} ({m.percent.normalize():f} %)",
                       quantity=Decimal(1), unit_price=share, amount=share)
            for m, share in zip(milestones, shares)
            if m.completed_on and period.start <= m.completed_on <= period.end
        ]
    day = contract.start_date if trigger == Contract.FeeTrigger.ON_START else contract.end_date
    if day and period.start <= day <= period.end:
        return [PeriodLine(kind="project_fee", description=f"{contract.name}: project fee", quantity=Decimal(1),
                           unit_price=fee, amount=round_money(fee, currency))]
    return []


def lines_as_dicts(lines: list[PeriodLine]) -> list[dict]:
    return [{key: str(value) for key, value in asdict(line).items() if key != "tax_category_id"} for line in lines]
