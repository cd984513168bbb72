"""Threshold alerts: blocks (contracts/) and project budgets (time from tickets/).

Budgets live here rather than in contracts/ because they are measured on routed time
(``tickets.TimeAllocation``) and contracts/ knows no tickets (docs/architecture.md).

A contract with a budget — in practice a *Project — hourly* contract — is measured by
what it has been allocated so far, billed or not: ``billed_minutes`` against
``budget_minutes``, and ``amount`` (in the budget's currency) against ``budget_amount``.
Each threshold of ``Contract.thresholds()`` is sent once per budget value
(key ``budget:<contract>:<hours|amount>:<budget>:<pct>``): raising the budget starts a
new round of alerts. Thresholds above 100 % are honoured (a project may run over).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum

from contracts.alerts import block_alerts_check_all, hours_text, threshold_alerts_send
from contracts.models import Contract, Notification
from msp_billing.templatetags.formatting import money
from tickets.models import TimeAllocation


def budget_alerts_check(*, contract: Contract) -> list[Notification]:
    """Send the budget thresholds the contract has reached, each once."""
    if contract.status != Contract.Status.ACTIVE:
        return []
    with transaction.atomic():
        contract = Contract.objects.select_for_update().select_related("customer").get(pk=contract.pk)
        budget_currency = contract.budget_amount.currency.code if contract.budget_amount is not None else None
        totals = TimeAllocation.objects.filter(contract=contract).aggregate(
            minutes=Sum("billed_minutes"),
            amount=Sum("amount", filter=Q(amount_currency=budget_currency)),
        )
        measures = []
        if contract.budget_minutes:
            measures.append(("hours", totals["minutes"] or 0, contract.budget_minutes, hours_text))
        if contract.budget_amount is not None and contract.budget_amount.amount > 0:
            measures.append(
                ("amount", totals["amount"] or Decimal("0"), contract.budget_amount.amount,
                 lambda value: money(Decimal(value), budget_currency))
            )
        sent = []
        for measure, used, budget, show in measures:
            sent += threshold_alerts_send(contract=contract, kind=Notification.Kind.BUDGET_THRESHOLD, label="Budget",
                                          what="budget", used=used, size=budget,
                                          key=f"budget:{contract.pk}:{measure}:{budget}", show=show)
        return sent


def budget_alerts_check_all() -> list[Notification]:
    sent: list[Notification] = []
    with_budget = Contract.objects.filter(status=Contract.Status.ACTIVE).filter(
        Q(budget_minutes__gt=0) | Q(budget_amount__gt=0)
    )
    for contract in with_budget.order_by("pk"):
        sent.extend(budget_alerts_check(contract=contract))
    return sent


def alerts_check_all(*, today: dt.date) -> list[Notification]:
    """Every threshold alert of the active MSP: blocks, then budgets."""
    return block_alerts_check_all(today=today) + budget_alerts_check_all()
