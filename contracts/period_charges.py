"""What a contract period invoices: fees, service lines, devices, usage, blocks, project fees.

Every amount is computed exactly and rounded once per printed line by ``msp_billing.money``.
Choices (also in docs/periods-and-alerts.md):

* **Fees and recurring service lines** are prorated by day over the days the period covers
  (and, for a service line, the days it was in effect): fee × days ÷ days in the period.
* **Remote Monitoring** bills each device class per stretch of days with the same count:
  a change on the 16th of a 31-day month gives two lines, 15/31 and 16/31 of the period.
  The count in force on a day is the latest ledger row dated on or before it.
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
from dataclasses import asdict, dataclass
from decimal import Decimal
from fractions import Fraction

from django.db import transaction

from contracts.models import Contract, ContractPeriod, DeviceCount, UsageRecord
from msp_billing.money import allocate_exactly, round_money, round_unit_price

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class PeriodLine:
    kind: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


def _days(start: dt.date, end: dt.date) -> int:
    return (end - start).days + 1


def _period_days(period: ContractPeriod) -> int:
    return _days(period.start, period.end)


def _describe_range(start: dt.date, end: dt.date, period: ContractPeriod) -> str:
    if start == period.start and end == period.end:
        return f"{start:%d %b %Y} – {end:%d %b %Y}"
    return f"{start:%d %b} – {end:%d %b %Y} ({_days(start, end)}/{_period_days(period)} days)"


def _prorated_line(*, kind: str, description: str, quantity: Decimal, unit_price: Decimal, start: dt.date, end: dt.date,
                   period: ContractPeriod, currency: str) -> PeriodLine:
    exact = Fraction(quantity) * Fraction(unit_price) * _days(start, end) / _period_days(period)
    return PeriodLine(kind=kind, description=f"{description}, {_describe_range(start, end, period)}", quantity=quantity,
                      unit_price=round_unit_price(unit_price), amount=round_money(exact, currency))


def _device_segments(period: ContractPeriod) -> list[dict]:
    """Per device class, the stretches of covered days with one count (the snapshot's shape)."""
    result = []
    for device_class in period.contract.device_classes.order_by("name"):
        rows = list(DeviceCount.objects.filter(device_class=device_class, effective_date__lte=period.covered_end).order_by("effective_date", "id"))
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


def _usage(period: ContractPeriod) -> dict | None:
    records = UsageRecord.objects.filter(contract=period.contract)
    inside = records.filter(measured_on__range=(period.covered_start, period.covered_end)).order_by("-quantity", "measured_on").first()
    record = inside or records.filter(measured_on__lt=period.covered_start).order_by("-measured_on", "-id").first()
    if record is None:
        return None
    return {"quantity": str(record.quantity), "measured_on": record.measured_on.isoformat()}


def period_snapshot(period: ContractPeriod) -> dict:
    """The period's device counts and usage, as frozen or (before freezing) as they stand now."""
    if period.snapshot:
        return period.snapshot
    contract = period.contract
    snapshot: dict = {}
    if contract.type == Contract.Type.REMOTE_MONITORING:
        snapshot["devices"] = _device_segments(period)
    if contract.type == Contract.Type.ONLINE_BACKUP:
        snapshot["usage"] = _usage(period)
    return snapshot


@transaction.atomic
def period_snapshot_take(*, period_id: int) -> ContractPeriod:
    """Freeze device counts and usage of an unbilled period (idempotent)."""
    period = ContractPeriod.objects.select_for_update().select_related("contract").get(pk=period_id)
    if not period.snapshot and period.billed_at is None:
        period.snapshot = period_snapshot(period) or {"frozen": True}
        period.save(update_fields=["snapshot"])
    return period


def period_lines(*, period: ContractPeriod) -> list[PeriodLine]:
    """The invoice lines one contract period produces (see the module docstring)."""
    contract = period.contract
    currency = contract.currency
    start, end = period.covered_start, period.covered_end
    lines: list[PeriodLine] = []
    kind = contract.type

    if kind in (Contract.Type.RETAINER, Contract.Type.REMOTE_MONITORING, Contract.Type.ONLINE_BACKUP) and contract.fee is not None:
        lines.append(_prorated_line(kind="fee", description=f"{contract.name} fee", quantity=Decimal(1), unit_price=contract.fee.amount,
                                    start=start, end=end, period=period, currency=currency))

    for service in contract.service_lines.all().order_by("id"):
        s_start = max(start, service.effective_from)
        s_end = min(end, service.effective_to) if service.effective_to else end
        if s_start <= s_end:
            lines.append(_prorated_line(kind="service", description=service.description, quantity=service.quantity,
                                        unit_price=service.unit_price.amount, start=s_start, end=s_end, period=period, currency=currency))

    snapshot = period_snapshot(period)
    for device_class in snapshot.get("devices", []):
        for segment in device_class["segments"]:
            if segment["count"]:
                lines.append(_prorated_line(
                    kind="devices", description=f"{device_class['class']}: {segment['count']} devices",
                    quantity=Decimal(segment["count"]), unit_price=Decimal(device_class["unit_price"]),
                    start=dt.date.fromisoformat(segment["from"]), end=dt.date.fromisoformat(segment["to"]),
                    period=period, currency=currency,
                ))

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
        for block in contract.blocks.filter(purchased_on__range=(period.start, period.end)).order_by("purchased_on", "id"):
            size = f"{Decimal(block.minutes) / 60:.2f} hours" if block.minutes else f"{block.amount}"
            lines.append(PeriodLine(kind="block", description=f"Block of {size} bought {block.purchased_on:%d %b %Y}",
                                    quantity=Decimal(1), unit_price=block.price.amount, amount=round_money(block.price.amount, currency)))

    if kind == Contract.Type.PROJECT_ONE_TIME_FEE and contract.fee is not None:
        lines.extend(_project_fee_lines(contract, period, currency))
    return lines


def _project_fee_lines(contract: Contract, period: ContractPeriod, currency: str) -> list[PeriodLine]:
    fee = contract.fee.amount
    trigger = contract.fee_trigger or Contract.FeeTrigger.ON_START
    if trigger == Contract.FeeTrigger.MILESTONES:
        milestones = list(contract.milestones.order_by("due_date", "id"))
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
    return [{key: str(value) for key, value in asdict(line).items()} for line in lines]
