"""Block alerts at the contract's thresholds, and the optional auto-repurchase.

docs/design.md § Contracts: alerts go out at configurable thresholds (75 / 90 / 100 % used)
by e-mail and on the dashboard; an optional auto-repurchase buys the next block.

**Usage** is measured over the contract's *usable* blocks, in the sense of
:mod:`contracts.rules.blocks` (bought by today, not expired unless the contract rolls
balances over, and not used up): used ÷ size, where used is the sum of the blocks'
``BlockLedgerEntry`` minutes (Block Hours) or amounts (Block Money). When every block
that is not expired is used up, usage is 100 %. Blocks used up earlier do not dilute
the figure: after a repurchase the new block starts again at 0 %.

**Each threshold once per block**: the alert is about the newest usable block (the one
that ends the customer's balance), key ``block:<contract>:<block>:<pct>``. A new block
(bought by hand or automatically) starts a new round of alerts.

**Auto-repurchase**: at 100 %, a contract with ``auto_repurchase`` buys one block of the
same size and price as the block that ran out, dated today (expiring after the
contract's ``block_expiry_months`` when set), once per exhausted block (key
``block-repurchased:<contract>:<block>``). Time already routed as overage stays overage.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from fractions import Fraction
from decimal import Decimal

from django.db import transaction

from contracts.models import BlockPurchase, Contract, Notification
from contracts.notifications import notification_send_once
from contracts.periods import term_end
from contracts.selectors_blocks import BlockUsageNow, block_balance
from contracts.services import block_audited
from msp_billing.audit.services import audit_record
from msp_billing.templatetags.formatting import day as format_day, money


def block_usage(*, contract: Contract, today: dt.date) -> BlockUsageNow | None:
    """Usage of the contract's usable blocks on ``today``; ``None`` without any block to speak of.

    The same figure the pages show (``contracts.selectors_blocks.block_balances``)."""
    balance = block_balance(contract=contract, today=today)
    return balance.usage if balance is not None else None


def block_alerts_check(*, contract: Contract, today: dt.date) -> list[Notification]:
    """Send the block thresholds the contract has reached (each once) and auto-repurchase."""
    if not contract.is_block or contract.status != Contract.Status.ACTIVE:
        return []
    with transaction.atomic():
        contract = Contract.objects.select_for_update().select_related("customer").get(pk=contract.pk)
        usage = block_usage(contract=contract, today=today)
        if usage is None:
            return []
        sent = threshold_alerts_send(
            contract=contract, kind=Notification.Kind.BLOCK_THRESHOLD, label="Block", used=usage.used, size=usage.size,
            key=f"block:{contract.pk}:{usage.block.pk}", what="block balance", show=lambda value: _quantity(contract, value),
        )
        if usage.exhausted and contract.auto_repurchase:
            notification = _repurchase(contract=contract, exhausted=usage.block, today=today)
            if notification:
                sent.append(notification)
        return sent


def threshold_alerts_send(*, contract: Contract, kind: str, label: str, what: str, used: int | Decimal,
                          size: int | Decimal, key: str, show: Callable[[int | Decimal], str]) -> list[Notification]:
    """One notification for each of the contract's thresholds that ``used`` of ``size`` has
    reached, each sent once (key ``<key>:<pct>``); thresholds above 100 % count too.

    The block alerts and the budget alerts (``billing.alerts``) both go through here: the
    subject reads "<label> <pct> % used", the message "used <pct> % of its <what>", with
    ``show`` printing the quantities.
    """
    percent = percent_used(used=used, size=size)
    sent = []
    for pct in contract.thresholds():
        if pct <= 0 or percent < pct:
            continue
        notification = notification_send_once(
            kind=kind, key=f"{key}:{pct}", contract=contract, subject=f"{label} {pct} % used: {contract}",
            message=f"{contract} has used {pct} % of its {what} ({show(used)} of {show(size)}).",
        )
        if notification:
            sent.append(notification)
    return sent


def percent_used(*, used: int | Decimal, size: int | Decimal) -> Fraction:
    """``used`` as a percentage of ``size``, exact (a threshold is reached at exactly its percent)."""
    return Fraction(used) * 100 / Fraction(size)


def hours_text(minutes: int) -> str:
    """``12:05 hours``: how an alert prints a number of minutes."""
    hours, rest = divmod(int(minutes), 60)
    return f"{hours}:{rest:02d} hours"


def block_alerts_check_all(*, today: dt.date) -> list[Notification]:
    sent: list[Notification] = []
    blocks = Contract.objects.filter(
        status=Contract.Status.ACTIVE, type__in=(Contract.Type.BLOCK_HOURS, Contract.Type.BLOCK_MONEY)
    ).order_by("pk")
    for contract in blocks:
        sent.extend(block_alerts_check(contract=contract, today=today))
    return sent


def _repurchase(*, contract: Contract, exhausted: BlockPurchase, today: dt.date) -> Notification | None:
    """Buy the next block, once per exhausted block: the notification's key is the guard."""
    size = exhausted.amount.amount if contract.type == Contract.Type.BLOCK_MONEY else exhausted.minutes
    notification = notification_send_once(
        kind=Notification.Kind.BLOCK_REPURCHASED,
        key=f"block-repurchased:{contract.pk}:{exhausted.pk}",
        contract=contract,
        subject=f"New block bought automatically: {contract}",
        message=(
            f"{contract} used up its block, so a new block of {_quantity(contract, size)} "
            f"was bought automatically on {format_day(today)} for {money(exhausted.price.amount, exhausted.price.currency.code)}."
        ),
    )
    if notification is None:
        return None
    # Same transaction as the notification: both happen, or neither.
    block = BlockPurchase.objects.create(
        contract=contract,
        purchased_on=today,
        expires_on=term_end(start=today, months=contract.block_expiry_months) if contract.block_expiry_months else None,
        minutes=exhausted.minutes,
        amount=exhausted.amount,
        price=exhausted.price,
        auto_purchased=True,
    )
    audit_record(actor=None, action="block_purchase_add", obj=contract, after=block_audited(block),
                 message="Bought automatically: the previous block was used up")
    return notification


def _quantity(contract: Contract, value: int | Decimal) -> str:
    if contract.type == Contract.Type.BLOCK_MONEY:
        return money(Decimal(value), contract.currency)
    return hours_text(value)
