"""Small builders for routing tests (schema alpha, currency EUR)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from djmoney.money import Money

from contracts.models import BlockPurchase, Contract, ContractRateLine, Customer, ExclusionSet, Role, WorkType
from msp_billing.accounts.models import User
from tickets.models import TechnicianProfile, Ticket

START = dt.date(2026, 1, 1)


def eur(value: str) -> Money:
    return Money(Decimal(value), "EUR")


def catalogue():
    remote = WorkType.objects.create(name="Remote Support", after_hours_multiplier=Decimal("1.5"))
    onsite = WorkType.objects.create(name="Onsite Support", after_hours_multiplier=Decimal("1.5"))
    ooh = WorkType.objects.create(name="Out-of-Hours Support", is_after_hours=True, after_hours_multiplier=Decimal("1.5"))
    engineer = Role.objects.create(name="Engineer", default_rate=eur("100"), cost_rate=eur("40"))
    return remote, onsite, ooh, engineer


def technician(role: Role, email: str = "technician@alpha.example") -> User:
    user = User.objects.get(email=email)
    TechnicianProfile.objects.update_or_create(user=user, defaults={"role": role})
    return user


def customer(name: str = "Chain GmbH", parent: Customer | None = None) -> Customer:
    return Customer.objects.create(legal_name=name, currency="EUR", parent=parent)


def contract(cust: Customer, type: str, *, priority: int = 10, exclusion: ExclusionSet | None = None, **terms) -> Contract:
    defaults = dict(name=f"{type} {priority}", currency="EUR", start_date=START, rounding_increment=1, rounding_direction="up")
    defaults.update(terms)
    return Contract.objects.create(customer=cust, type=type, priority=priority, exclusion_set=exclusion, **defaults)


def exclusion_set(name: str, *work_types) -> ExclusionSet:
    ex = ExclusionSet.objects.create(name=name)
    ex.work_types.set(work_types)
    return ex


def rate_line(c: Contract, rate: str, *, work_type=None, role=None, effective_from=START) -> ContractRateLine:
    return ContractRateLine.objects.create(contract=c, rate=eur(rate), work_type=work_type, role=role, effective_from=effective_from)


def block(c: Contract, *, minutes: int | None = None, amount: str | None = None, on=START, expires_on=None, price="0") -> BlockPurchase:
    return BlockPurchase.objects.create(
        contract=c, purchased_on=on, expires_on=expires_on, minutes=minutes,
        amount=eur(amount) if amount else None, price=eur(price),
    )


def ticket(cust: Customer, **kwargs) -> Ticket:
    return Ticket.objects.create(customer=cust, title="Printer on fire", **kwargs)


def hourly_default(cust: Customer, rate: str, **terms) -> Contract:
    """An Hourly contract billing ``rate`` per hour, made ``cust``'s default for time no other contract takes."""
    hourly = contract(cust, "hourly", **terms)
    rate_line(hourly, rate)
    cust.default_hourly_contract = hourly
    cust.save()
    return hourly
