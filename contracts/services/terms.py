"""Writes for a contract's terms: rate lines, service lines, device classes and counts, usage,
block purchases and milestones."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from djmoney.money import Money

from contracts.models import (
    BlockPurchase,
    Contract,
    ContractRateLine,
    DeviceClass,
    DeviceCount,
    Milestone,
    Product,
    RateItem,
    RecurringServiceLine,
    Role,
    TaxCategory,
    UnmatchedDeviceReport,
    UsageRecord,
    WorkType,
)
from contracts.rules.proration import add_months
from contracts.services._common import (
    _audit,
    _clean,
    _save,
    _snapshot,
    plain,
)
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors, check_date, clean_decimal, clean_text
from msp_billing.templatetags.formatting import day as format_day

# --- contract terms: rate lines, service lines --------------------------------------------


@transaction.atomic
def rate_line_add(*, contract: Contract, work_type: WorkType | None = None, role: Role | None = None,
                  rate: Decimal | Money, effective_from: dt.date, acting_user) -> ContractRateLine:
    """A contract rate for a work type and/or role (neither: the contract's default rate),
    from ``effective_from`` on. A later change is a new line with a later date."""
    errors = Errors()
    amount = clean_decimal(errors, "rate", rate, currency=contract.currency)
    check_date(errors, "effective_from", effective_from)
    errors.raise_if_any()
    exists = ContractRateLine.objects.filter(contract=contract, work_type=work_type, role=role,
                                             effective_from=effective_from).exists()
    if exists:
        errors.add("effective_from", "This contract already has a rate for that work type and role from that date.")
        errors.raise_if_any()
    line = ContractRateLine(contract=contract, work_type=work_type, role=role, rate=Money(amount, contract.currency),
                            effective_from=effective_from)
    _clean(line, errors, exclude=["contract", "work_type", "role"])
    _save(line, conflict_field="effective_from",
          conflict_message="This contract already has a rate for that work type and role from that date.")
    _audit("rate_line_add", line, acting_user, on=contract, after={
        "rate_line": line.pk, "work_type": work_type or "Any", "role": role or "Any",
        **_snapshot(line, ("rate", "effective_from"))})
    return line


@transaction.atomic
def service_line_add(*, contract: Contract, description: str = "", rate_item: RateItem | None = None,
                     product: Product | None = None, quantity: Decimal = Decimal("1"),
                     unit_price: Decimal | Money | None = None, effective_from: dt.date,
                     effective_to: dt.date | None = None, acting_user) -> RecurringServiceLine:
    """A line billed every period with the contract's fee, such as 25 Office 365 licences.
    The unit price defaults to the product's price or the rate item's rate."""
    errors = Errors()
    if rate_item is not None and product is not None:
        errors.add("product", "Choose a product or a rate item, not both.")
    source = product or rate_item
    description = clean_text(description) or (source.name if source is not None else "")
    if not description:
        errors.add("description", "Enter a description, or choose a product or rate item.")
    qty = clean_decimal(errors, "quantity", quantity, positive=True)
    if unit_price in (None, "") and source is not None:
        catalogue_price = product.price if product is not None else rate_item.rate
        if str(catalogue_price.currency) != contract.currency:
            errors.add("unit_price", f"“{source}” is priced in {catalogue_price.currency}; "
                                     f"enter the unit price in {contract.currency}.")
        unit_price = catalogue_price.amount
    price = clean_decimal(errors, "unit_price", unit_price, currency=contract.currency)
    check_date(errors, "effective_from", effective_from)
    check_date(errors, "effective_to", effective_to, required=False)
    errors.raise_if_any()
    if effective_to is not None and effective_to < effective_from:
        errors.add("effective_to", "The line cannot end before it starts.")
    _check_within_contract(errors, contract, "effective_from", effective_from)
    errors.raise_if_any()
    line = RecurringServiceLine(contract=contract, description=description, rate_item=rate_item, product=product,
                                quantity=qty, unit_price=Money(price, contract.currency),
                                effective_from=effective_from, effective_to=effective_to)
    _clean(line, errors, exclude=["contract", "rate_item", "product"])
    line.save()
    _audit("service_line_add", line, acting_user, on=contract,
           after={"service_line": line.pk, **_snapshot(line, SERVICE_LINE_AUDITED)})
    return line


@transaction.atomic
def service_line_end(*, service_line: RecurringServiceLine, effective_to: dt.date, acting_user) -> RecurringServiceLine:
    """Stop billing a service line after ``effective_to`` (a quantity change: end it, add a new one)."""
    line = RecurringServiceLine.objects.select_for_update().get(pk=service_line.pk)
    errors = Errors()
    check_date(errors, "effective_to", effective_to)
    errors.raise_if_any()
    if effective_to < line.effective_from:
        errors.add("effective_to", f"The line starts on {format_day(line.effective_from)}; it cannot end before that.")
    errors.raise_if_any()
    before = {"effective_to": line.effective_to}
    line.effective_to = effective_to
    line.save(update_fields=["effective_to"])
    _audit("service_line_end", line, acting_user, on=line.contract, before=before, after={"effective_to": effective_to},
           message=f"Service line “{line.description}” (#{line.pk})")
    return line


SERVICE_LINE_AUDITED = ("description", "product", "rate_item", "quantity", "unit_price", "effective_from", "effective_to")


def _check_within_contract(errors: Errors, contract: Contract, field: str, day: dt.date) -> None:
    if day < contract.start_date:
        errors.add(field, f"The contract starts on {format_day(contract.start_date)}; enter that date or later.")
    elif contract.end_date is not None and day > contract.end_date:
        errors.add(field, f"The contract ends on {format_day(contract.end_date)}; enter that date or earlier.")


def _require_type(contract: Contract, *types: str, what: str) -> None:
    if contract.type not in types:
        labels = " or ".join(Contract.Type(kind).label for kind in types)
        raise ValidationError(f"{what} belong to {labels} contracts; “{contract.name}” is {contract.get_type_display()}.")


# --- Remote Monitoring: device classes and counts -----------------------------------------


@transaction.atomic
def device_class_add(*, contract: Contract, name: str, unit_price: Decimal | Money,
                     tax_category: TaxCategory | None = None, acting_user) -> DeviceClass:
    _require_type(contract, Contract.Type.REMOTE_MONITORING, what="Device classes")
    errors = Errors()
    name = clean_text(name)
    if not name:
        errors.add("name", "Enter a device class, such as Servers or Workstations.")
    elif contract.device_classes.filter(name__iexact=name).exists():
        errors.add("name", f"This contract already has a device class “{name}”.")
    price = clean_decimal(errors, "unit_price", unit_price, currency=contract.currency)
    if tax_category is not None and not isinstance(tax_category, TaxCategory):
        errors.add("tax_category", "Choose one of the tax categories.")
    errors.raise_if_any()
    device_class = DeviceClass(contract=contract, name=name, unit_price=Money(price, contract.currency),
                               tax_category=tax_category)
    _clean(device_class, errors, exclude=["contract"])
    _save(device_class, conflict_field="name", conflict_message=f"This contract already has a device class “{name}”.")
    _audit("device_class_add", device_class, acting_user, on=contract, after=_snapshot(device_class, ("name", "unit_price", "tax_category")))
    return device_class


@transaction.atomic
def device_count_record(*, device_class: DeviceClass, effective_date: dt.date, count: int, acting_user,
                        source: str = DeviceCount.Source.PAGE) -> DeviceCount:
    """From ``effective_date`` on, ``count`` devices of the class are monitored: a new ledger row,
    never an edit (mid-period changes are prorated by day when billed)."""
    contract = device_class.contract
    _require_type(contract, Contract.Type.REMOTE_MONITORING, what="Device counts")
    errors = Errors()
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
        errors.add("count", "Enter a whole number of devices from 0 to 1,000,000.")
    check_date(errors, "effective_date", effective_date)
    errors.raise_if_any()
    _check_within_contract(errors, contract, "effective_date", effective_date)
    errors.raise_if_any()
    previous = device_class.counts.filter(effective_date__lte=effective_date).order_by("-effective_date", "-id").first()
    if source not in DeviceCount.Source.values:
        raise ValidationError({"source": "Unknown source of a device count."})
    row = DeviceCount.objects.create(device_class=device_class, effective_date=effective_date, count=count, source=source)
    _audit("device_count_record", row, acting_user, on=contract, before={"count": previous.count if previous else None},
           after={"count": count, "from": effective_date, "source": source}, message=f"Device class “{device_class.name}”")
    return row


@transaction.atomic
def device_report_unmatched(*, contract: Contract, device_class_name: str, count: int, acting_user,
                            source: str = DeviceCount.Source.API) -> UnmatchedDeviceReport:
    """A count reported for a device class ``contract`` does not have: kept (never dropped) and
    shown on the dashboard as a possible leak until someone adds the class or ends the feed."""
    errors = Errors()
    name = clean_text(device_class_name)
    if not name or len(name) > 100:
        errors.add("device_class", "Name the device class in at most 100 characters.")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
        errors.add("count", "Enter a whole number of devices from 0 to 1,000,000.")
    if source not in DeviceCount.Source.values:
        errors.add("source", "Unknown source of a device count.")
    errors.raise_if_any()
    row = UnmatchedDeviceReport.objects.create(contract=contract, device_class_name=name, count=count,
                                               reported_on=tenant_today(), source=source)
    _audit("device_report_unmatched", row, acting_user, on=contract, after={"device_class": name, "count": count, "source": source},
           message=f"Device class “{name}” is not on the contract")
    return row


# --- Online Backup: usage -----------------------------------------------------------------


@transaction.atomic
def usage_record(*, contract: Contract, measured_on: dt.date, quantity: Decimal, acting_user) -> UsageRecord:
    """Usage (GB or seats) measured on a date: a new ledger row."""
    _require_type(contract, Contract.Type.ONLINE_BACKUP, what="Usage records")
    errors = Errors()
    value = clean_decimal(errors, "quantity", quantity)
    if value is not None and value != value.quantize(Decimal("0.001")):
        errors.add("quantity", "Enter the quantity with at most 3 decimal places.")
    elif value is not None and value >= Decimal("1e9"):
        errors.add("quantity", "Enter a quantity below 1,000,000,000.")
    check_date(errors, "measured_on", measured_on)
    errors.raise_if_any()
    _check_within_contract(errors, contract, "measured_on", measured_on)
    if measured_on > tenant_today():
        errors.add("measured_on", "Usage cannot be measured in the future.")
    errors.raise_if_any()
    row = UsageRecord.objects.create(contract=contract, measured_on=measured_on, quantity=value)
    _audit("usage_record", row, acting_user, on=contract,
           after={**_snapshot(row, ("measured_on", "quantity")), "unit": contract.usage_unit})
    return row


# --- Block Hours / Block Money: purchases -------------------------------------------------


@transaction.atomic
def block_purchase_add(*, contract: Contract, purchased_on: dt.date, price: Decimal | Money,
                       minutes: int | None = None, amount: Decimal | Money | None = None,
                       expires_on: dt.date | None = None, acting_user) -> BlockPurchase:
    """A block bought on a Block contract: ``minutes`` for Block Hours, ``amount`` for Block
    Money; ``price`` is what the customer is invoiced. Without ``expires_on`` the block
    expires after the contract's block expiry months (if set)."""
    _require_type(contract, Contract.Type.BLOCK_HOURS, Contract.Type.BLOCK_MONEY, what="Block purchases")
    errors = Errors()
    if contract.status in (Contract.Status.ENDED, Contract.Status.CANCELLED):
        errors.add(None, f"The contract is {contract.get_status_display().lower()}; it takes no more blocks.")
    if contract.type == Contract.Type.BLOCK_HOURS:
        if amount not in (None, ""):
            errors.add("amount", "A Block Hours contract buys hours, not an amount.")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= 100_000 * 60:
            errors.add("minutes", "Enter the hours bought: more than zero and at most 100,000.")
        block_amount = None
    else:
        if minutes not in (None, ""):
            errors.add("minutes", "A Block Money contract buys an amount, not hours.")
        block_amount = clean_decimal(errors, "amount", amount, currency=contract.currency, positive=True)
        minutes = None
    block_price = clean_decimal(errors, "price", price, currency=contract.currency)
    check_date(errors, "purchased_on", purchased_on)
    check_date(errors, "expires_on", expires_on, required=False)
    errors.raise_if_any()
    _check_within_contract(errors, contract, "purchased_on", purchased_on)
    if expires_on is None and contract.block_expiry_months:
        expires_on = add_months(purchased_on, contract.block_expiry_months)
    if expires_on is not None and expires_on <= purchased_on:
        errors.add("expires_on", "A block expires after the day it is bought.")
    errors.raise_if_any()
    block = BlockPurchase(
        contract=contract, purchased_on=purchased_on, expires_on=expires_on, minutes=minutes,
        amount=None if block_amount is None else Money(block_amount, contract.currency),
        price=Money(block_price, contract.currency),
    )
    _clean(block, errors, exclude=["contract"])
    block.save()
    _audit("block_purchase_add", block, acting_user, on=contract, after=block_audited(block))
    return block


def block_audited(block: BlockPurchase) -> dict[str, Any]:
    """A block purchase as the audit trail shows it (also used for automatic repurchases)."""
    return {"block": block.pk, **_snapshot(block, ("purchased_on", "minutes", "amount", "price", "expires_on"))}


# --- Project — one-time fee: milestones ---------------------------------------------------


@transaction.atomic
def milestone_add(*, contract: Contract, name: str, percent: Decimal, due_date: dt.date | None = None,
                  acting_user) -> Milestone:
    """A share of the fixed fee, invoiced when the milestone is completed; shares total at most 100 %."""
    _require_type(contract, Contract.Type.PROJECT_ONE_TIME_FEE, what="Milestones")
    contract = Contract.objects.select_for_update().get(pk=contract.pk)
    errors = Errors()
    if contract.fee_trigger != Contract.FeeTrigger.MILESTONES:
        errors.add(None, "This project's fee is not billed by milestones; change “Fee invoiced” to "
                         "“By milestones” on the contract first.")
    name = clean_text(name)
    if not name:
        errors.add("name", "Enter a name, such as Design approved.")
    share = clean_decimal(errors, "percent", percent, positive=True)
    check_date(errors, "due_date", due_date, required=False)
    if share is not None:
        taken = contract.milestones.aggregate(total=Sum("percent"))["total"] or Decimal("0")
        if taken + share > 100:
            errors.add("percent", f"Milestones already take {plain(taken)} % of the fee; "
                                  f"at most {plain(100 - taken)} % is left.")
    errors.raise_if_any()
    milestone = Milestone(contract=contract, name=name, percent=share, due_date=due_date)
    _clean(milestone, errors, exclude=["contract"])
    milestone.save()
    _audit("milestone_add", milestone, acting_user, on=contract,
           after={"milestone": milestone.name, **_snapshot(milestone, ("percent", "due_date"))})
    return milestone


@transaction.atomic
def milestone_complete(*, milestone: Milestone, completed_on: dt.date, acting_user) -> Milestone:
    milestone = Milestone.objects.select_for_update().get(pk=milestone.pk)
    errors = Errors()
    if milestone.completed_on is not None:
        errors.add(None, f"“{milestone.name}” was completed on {format_day(milestone.completed_on)}.")
    check_date(errors, "completed_on", completed_on)
    errors.raise_if_any()
    if completed_on > tenant_today():
        errors.add("completed_on", "A milestone cannot be completed in the future.")
    errors.raise_if_any()
    milestone.completed_on = completed_on
    milestone.save(update_fields=["completed_on"])
    _audit("milestone_complete", milestone, acting_user, on=milestone.contract, before={"completed_on": None},
           after={"completed_on": completed_on}, message=f"Milestone “{milestone.name}”")
    return milestone
