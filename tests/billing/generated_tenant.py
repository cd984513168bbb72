"""A tenant with several customers, currencies, contract types, taxable and not, for batch tests.

Everything is due by ``CUTOFF`` (31 March 2026) unless said otherwise. Only Foxtrot's
entry is split over two contracts: those two are billed together or not at all.

* Acme GmbH (EUR): Retainer "Acme Managed" (800.00 a month in advance, taxable, takes remote
  work) and "Acme T&M" (Hourly 120.00, taxable, default for onsite work and parts), plus
  "Acme Backup" (Online Backup, from April) with nothing due. Ticket 1: remote 45 min (covered),
  onsite 60 min (120.00). Ticket 2: onsite 30 min (60.00) and 2 × 35.50 parts (71.00).
  With VAT 19 %: 952.00 + 298.69 = 1250.69 on two invoices, two tickets, 2.25 hours.
* Bergmann Inc (USD, tax exempt): "Bergmann Hourly" (95.00) with 50 and 25 min, and three
  licences at 12.99 on the contract itself.
* Crane Holdings (GBP) with its site Crane Leeds: the parent's Retainer (500.00, not taxable,
  March due) and the site's "Leeds Hourly" (80.00, taxable) with 40 min.
* Delta AG (EUR): "Delta Block" (Block Hours, not taxable): 120 min bought for 200.00 in
  March; 90 min deducted, then 60 min of which 30 deducted and 30 overage at 150.00 (75.00).
* Echo Ltd (EUR): "Echo Care" (Retainer, its next fee billed 1 April) with 30 min of remote
  work covered: due 0.00.
* Foxtrot SARL (EUR): "Foxtrot Block" (60 min bought and invoiced in January, passes the rest on) and
  "Foxtrot T&M" (Hourly 100.00): one entry of 90 min, 60 deducted from the block (0.00)
  and 30 on the Hourly contract (50.00, with VAT 59.50) — the only entry on two contracts.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone
from djmoney.money import Money

from contracts.models import BlockPurchase, Contract, ContractPeriod, ContractRateLine, Customer, ExclusionSet
from tests.invoices.builders import vat_by_default
from tests.tickets.builders import catalogue, technician
from tickets import services as ticket_services
from tickets.models import Ticket

CUTOFF = dt.date(2026, 3, 31)
DAY = dt.date(2026, 3, 3)
START = dt.date(2026, 1, 1)
MARCH = dict(start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31), covered_start=dt.date(2026, 3, 1),
             covered_end=dt.date(2026, 3, 31), bill_date=dt.date(2026, 3, 1))


def _contract(customer: Customer, type: str, name: str, *, priority: int, exclusion=None, **terms) -> Contract:
    values = dict(currency=customer.currency, start_date=START, rounding_increment=1, rounding_direction="up")
    values.update(terms)
    return Contract.objects.create(customer=customer, type=type, name=name, priority=priority, exclusion_set=exclusion, **values)


def _rate(contract: Contract, rate: str) -> None:
    ContractRateLine.objects.create(contract=contract, rate=Money(Decimal(rate), contract.currency), effective_from=START)


def _billed_months(contract: Contract, *, before: dt.date) -> None:
    """The contract's monthly periods from ``START`` up to ``before``, billed earlier: whatever
    cut-off a page reads with, they are not due again."""
    month = START
    while month < before:
        end = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        ContractPeriod.objects.create(contract=contract, start=month, end=end, covered_start=month, covered_end=end,
                                      bill_date=month, billed_at=timezone.now())
        month = end + dt.timedelta(days=1)


def build_generated_tenant(*, tech_email: str) -> dict:
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer, email=tech_email)
    vat_by_default()
    no_onsite = ExclusionSet.objects.create(name="Remote only")
    no_onsite.work_types.set([onsite, ooh])

    def log(ticket: Ticket, work_type, minutes: int) -> None:
        ticket_services.time_entry_log(ticket=ticket, technician=tech, work_type=work_type, date=DAY, minutes=minutes)

    def resolve(ticket: Ticket) -> None:
        ticket_services.ticket_set_status(ticket_id=ticket.pk, status="resolved")

    # Acme (EUR, taxable)
    acme = Customer.objects.create(legal_name="Acme GmbH", currency="EUR")
    acme_managed = _contract(acme, "retainer", "Acme Managed", priority=1, exclusion=no_onsite, fee=Money(Decimal("800.00"), "EUR"),
                             billing_frequency="monthly", billing_timing="advance")
    acme_tm = _contract(acme, "hourly", "Acme T&M", priority=3)
    _rate(acme_tm, "120")
    # Backups start in April: nothing due by the cut-off.
    _contract(acme, "online_backup", "Acme Backup", priority=9, fee=Money(Decimal("40.00"), "EUR"), start_date=dt.date(2026, 4, 1))
    acme.default_hourly_contract = acme_tm
    acme.save()
    ContractPeriod.objects.create(contract=acme_managed, **MARCH)
    _billed_months(acme_managed, before=MARCH["start"])
    acme_1 = Ticket.objects.create(customer=acme, title="Mail server down")
    log(acme_1, remote, 45)
    log(acme_1, onsite, 60)
    resolve(acme_1)
    acme_2 = Ticket.objects.create(customer=acme, title="New laptop")
    log(acme_2, onsite, 30)
    ticket_services.charge_add(ticket=acme_2, description="USB-C dock", date=DAY, quantity=Decimal("2"), unit_price=Money(Decimal("35.50"), "EUR"))
    resolve(acme_2)

    # Bergmann (USD, tax exempt)
    bergmann = Customer.objects.create(legal_name="Bergmann Inc", currency="USD", tax_exempt=True)
    bergmann_hourly = _contract(bergmann, "hourly", "Bergmann Hourly", priority=3)
    _rate(bergmann_hourly, "95")
    bergmann.default_hourly_contract = bergmann_hourly
    bergmann.save()
    bergmann_1 = Ticket.objects.create(customer=bergmann, title="VPN drops")
    log(bergmann_1, remote, 50)
    log(bergmann_1, onsite, 25)
    resolve(bergmann_1)
    ticket_services.charge_add(contract=bergmann_hourly, description="Licence", date=DAY, quantity=Decimal("3"),
                               unit_price=Money(Decimal("12.99"), "USD"))

    # Crane (GBP): the parent's retainer and the site's hourly contract
    crane = Customer.objects.create(legal_name="Crane Holdings", currency="GBP")
    crane_retainer = _contract(crane, "retainer", "Crane Retainer", priority=5, fee=Money(Decimal("500.00"), "GBP"), taxable=False,
                               billing_frequency="monthly", billing_timing="advance")
    ContractPeriod.objects.create(contract=crane_retainer, **MARCH)
    _billed_months(crane_retainer, before=MARCH["start"])
    leeds = Customer.objects.create(legal_name="Crane Leeds", currency="GBP", parent=crane)
    leeds_hourly = _contract(leeds, "hourly", "Leeds Hourly", priority=1)
    _rate(leeds_hourly, "80")
    leeds.default_hourly_contract = leeds_hourly
    leeds.save()
    leeds_1 = Ticket.objects.create(customer=leeds, title="Printer offline", default_contract=leeds_hourly)
    log(leeds_1, onsite, 40)
    resolve(leeds_1)

    # Delta (EUR): a block of hours, not taxable, with overage on the same contract
    delta = Customer.objects.create(legal_name="Delta AG", currency="EUR")
    delta_block = _contract(delta, "block_hours", "Delta Block", priority=2, taxable=False, overage_rate=Money(Decimal("150"), "EUR"))
    BlockPurchase.objects.create(contract=delta_block, purchased_on=dt.date(2026, 3, 2), minutes=120, price=Money(Decimal("200.00"), "EUR"))
    ContractPeriod.objects.create(contract=delta_block, **MARCH)
    _billed_months(delta_block, before=MARCH["start"])
    delta_1 = Ticket.objects.create(customer=delta, title="Server room move")
    log(delta_1, onsite, 90)
    log(delta_1, onsite, 60)
    resolve(delta_1)

    # Echo (EUR): only covered time due
    echo = Customer.objects.create(legal_name="Echo Ltd", currency="EUR")
    echo_care = _contract(echo, "retainer", "Echo Care", priority=1, fee=Money(Decimal("300.00"), "EUR"),
                          billing_frequency="monthly", billing_timing="advance")
    ContractPeriod.objects.create(contract=echo_care, start=dt.date(2026, 4, 1), end=dt.date(2026, 4, 30), covered_start=dt.date(2026, 4, 1),
                                  covered_end=dt.date(2026, 4, 30), bill_date=dt.date(2026, 4, 1))
    _billed_months(echo_care, before=dt.date(2026, 4, 1))
    echo_1 = Ticket.objects.create(customer=echo, title="Password reset")
    log(echo_1, remote, 30)
    resolve(echo_1)

    # Foxtrot (EUR): a block that runs out into an Hourly contract — one entry on both
    foxtrot = Customer.objects.create(legal_name="Foxtrot SARL", currency="EUR")
    foxtrot_tm = _contract(foxtrot, "hourly", "Foxtrot T&M", priority=3)
    _rate(foxtrot_tm, "100")
    foxtrot.default_hourly_contract = foxtrot_tm
    foxtrot.save()
    foxtrot_block = _contract(foxtrot, "block_hours", "Foxtrot Block", priority=2, cascade=True, overage_rate=Money(Decimal("150"), "EUR"))
    BlockPurchase.objects.create(contract=foxtrot_block, purchased_on=dt.date(2026, 1, 2), minutes=60, price=Money(Decimal("100.00"), "EUR"))
    _billed_months(foxtrot_block, before=dt.date(2026, 2, 1))  # the block was invoiced when bought
    foxtrot_1 = Ticket.objects.create(customer=foxtrot, title="Cabling")
    log(foxtrot_1, onsite, 90)
    resolve(foxtrot_1)

    return {"customers": {c.legal_name: c for c in (acme, bergmann, crane, leeds, delta, echo, foxtrot)},
            "contracts": {c.name: c for c in Contract.objects.all()}, "zero": echo_care}
