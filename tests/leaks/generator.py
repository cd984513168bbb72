"""Plants known revenue leaks of every kind among normal data, in the active MSP (alpha, EUR).

Everything is made through the owning apps' services, dated from the MSP's today. Returns
the planted set {(kind, key)}, which the finder should find exactly.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from billing.due import Selection
from billing.run import batch_run
from contracts.models import ContractPeriod, Product
from contracts.services import (
    block_purchase_add,
    contract_create,
    customer_create,
    customer_update,
    device_class_add,
    device_report_unmatched,
    rate_line_add,
    usage_record,
)
from leaks.rules import Kind
from msp_billing.accounts.models import User
from msp_billing.tenants.today import tenant_today
from tests.support import email_for
from tests.tickets.builders import catalogue, eur, exclusion_set, technician
from tickets.services import (
    charge_add,
    charge_log,
    entry_fingerprint,
    ticket_create,
    ticket_set_status,
    time_approval_switch,
    time_entry_approve,
    time_entry_log,
)


@dataclass
class Planted:
    today: dt.date
    admin: User
    leaks: set[tuple[str, str]] = field(default_factory=set)
    objects: dict = field(default_factory=dict)

    def add(self, kind: str, key: str, **objects) -> None:
        self.leaks.add((kind, key))
        self.objects.update(objects)


def _customer(name: str, admin):
    return customer_create(legal_name=name, currency="EUR", acting_user=admin)


def _done_ticket(customer, title="Printer on fire"):
    return ticket_create(customer=customer, title=title)


def _resolve(ticket):
    return ticket_set_status(ticket_id=ticket.pk, status="resolved")


def plant(*, subdomain: str = "alpha") -> Planted:
    today = tenant_today()
    admin = User.objects.get(email=email_for(subdomain, "billing_admin"))
    remote, onsite, ooh, engineer = catalogue()  # Engineer: 100.00 an hour in the catalogue
    tech = technician(engineer, email=email_for(subdomain, "technician"))
    planted = Planted(today=today, admin=admin)
    days = lambda n: today - dt.timedelta(days=n)  # noqa: E731
    part = Product.objects.create(sku="SSD-1TB", name="SSD 1 TB", price=eur("50"), cost=eur("30"))

    def log(ticket, minutes, *, on, work_type=remote, **kwargs):
        return time_entry_log(ticket=ticket, technician=tech, work_type=work_type, date=on, minutes=minutes, **kwargs)

    # --- normal data: none of it is a leak --------------------------------------------------
    acme = _customer("Acme Normal GmbH", admin)
    acme_hourly = contract_create(customer=acme, name="Acme T&M", type="hourly", start_date=days(400), acting_user=admin,
                                  rounding_increment=1)
    rate_line_add(contract=acme_hourly, rate=Decimal("120"), effective_from=days(400), acting_user=admin)
    acme = customer_update(customer=acme, data={"default_hourly_contract": acme_hourly}, acting_user=admin)
    gold = exclusion_set("Gold (leaks)", onsite, ooh)
    contract_create(customer=acme, name="Acme Care", type="retainer", start_date=days(20), acting_user=admin,
                    priority=1, exclusion_set=gold, fee=Decimal("500"), rounding_increment=1)
    billed = _done_ticket(acme, "Normal work")
    log(billed, 90, on=days(10), work_type=onsite)
    log(billed, 30, on=days(10))
    charge_log(ticket=billed, product=part, date=days(10), quantity=Decimal("2"))
    _resolve(billed)
    warranty = _done_ticket(acme, "Warranty rework")
    log(warranty, 60, on=days(9), work_type=onsite, billable=False, notes="Warranty rework: not billed.")
    _resolve(warranty)
    _done_ticket(acme, "Still open, nothing logged yet")

    # --- the leaks -----------------------------------------------------------------------------
    # 1. A resolved ticket without time or parts.
    empty = _done_ticket(acme, "Fixed on the phone, nothing logged")
    _resolve(empty)
    planted.add(Kind.TICKET_NO_TIME, f"ticket:{empty.pk}", empty_ticket=empty)

    # 2. A resolved ticket whose only time is marked not billable, with no reason given.
    free = _done_ticket(acme, "Onsite visit")
    free_entry = log(free, 60, on=days(8), work_type=onsite, billable=False)
    _resolve(free)
    planted.add(Kind.TIME_NOT_BILLABLE, f"ticket:{free.pk}", not_billable_entry=free_entry)

    # 3. Time (and 5. a part) after the customer's only contract ended.
    lapsed = _customer("Lapsed Contract AG", admin)
    lapsed_hourly = contract_create(customer=lapsed, name="Lapsed T&M", type="hourly", start_date=days(400),
                                    end_date=days(100), acting_user=admin, rounding_increment=1)
    rate_line_add(contract=lapsed_hourly, rate=Decimal("110"), effective_from=days(400), acting_user=admin)
    customer_update(customer=lapsed, data={"default_hourly_contract": lapsed_hourly}, acting_user=admin)
    late = _done_ticket(lapsed, "After the end")
    late_entry = log(late, 45, on=days(50))
    late_part = charge_log(ticket=late, product=part, date=days(50), quantity=Decimal("1"))
    _resolve(late)
    planted.add(Kind.TIME_INACTIVE_CONTRACT, f"entry:{late_entry.pk}", inactive_entry=late_entry)
    planted.add(Kind.PARTS_UNROUTED, f"charge:{late_part.pk}", unrouted_charge=late_part)

    # 4. Onsite work for a customer whose only contract excludes it, with no default Hourly.
    excluded = _customer("Excluded Work KG", admin)
    excluded_care = contract_create(customer=excluded, name="Remote Care", type="retainer", start_date=days(20),
                                    acting_user=admin, exclusion_set=gold, fee=Decimal("300"), rounding_increment=1)
    visit = _done_ticket(excluded, "Onsite visit")
    visit_entry = log(visit, 120, on=days(10), work_type=onsite)
    planted.add(Kind.TIME_UNROUTED, f"entry:{visit_entry.pk}", unrouted_entry=visit_entry, excluded_care=excluded_care)

    # 6. A block used up: overage on done tickets unbilled for more than 30 days.
    blocky = _customer("Block Used Up GmbH", admin)
    block = contract_create(customer=blocky, name="Support Block", type="block_hours", start_date=days(90),
                            acting_user=admin, overage_rate=Decimal("150"), rounding_increment=1)
    block_purchase_add(contract=block, purchased_on=days(90), price=Decimal("0"), minutes=60, acting_user=admin)
    over = _done_ticket(blocky, "Server rebuild")
    log(over, 120, on=days(60))
    _resolve(over)
    planted.add(Kind.BLOCK_OVERAGE_UNBILLED, f"contract:{block.pk}", block_contract=block)

    # 7. A retainer without included hours whose first period's work is worth more than its fee.
    heavy = _customer("Heavy User SE", admin)
    heavy_care = contract_create(customer=heavy, name="All You Can Eat", type="retainer", start_date=days(40),
                                 acting_user=admin, fee=Decimal("100"), rounding_increment=1)
    busy = _done_ticket(heavy, "Everything at once")
    log(busy, 180, on=days(40))
    period = ContractPeriod.objects.get(contract=heavy_care, covered_start=days(40))
    planted.add(Kind.RETAINER_OVER, f"period:{period.pk}", heavy_contract=heavy_care)

    # 8. Devices reported for a class the monitoring contract lacks; 9. usage with no price.
    monitor = _customer("Monitored Devices Ltd", admin)
    rmm = contract_create(customer=monitor, name="RMM", type="remote_monitoring", start_date=days(20), acting_user=admin)
    device_class_add(contract=rmm, name="Workstations", unit_price=Decimal("10"), acting_user=admin)
    device_report_unmatched(contract=rmm, device_class_name="Servers", count=5, acting_user=admin)
    planted.add(Kind.DEVICES_UNBILLED, f"devices:{rmm.pk}:servers", rmm_contract=rmm)
    backup = contract_create(customer=monitor, name="Backup", type="online_backup", start_date=days(20), acting_user=admin,
                             included_quantity=Decimal("100"), usage_unit="GB", unit_price=Decimal("0"))
    usage_record(contract=backup, measured_on=days(2), quantity=Decimal("150"), acting_user=admin)
    planted.add(Kind.USAGE_UNPRICED, f"usage:{backup.pk}", backup_contract=backup)

    # 10. A period left out of a batch (which billed the others) and never billed since.
    skipper = _customer("Skipped Period Inc", admin)
    skipped = contract_create(customer=skipper, name="Managed Basic", type="retainer", start_date=days(120),
                              acting_user=admin, fee=Decimal("400"), rounding_increment=1)
    first = ContractPeriod.objects.filter(contract=skipped).order_by("start").first()
    batch_run(name="Leaks batch", cutoff=days(45), consolidated=False, acting_user=admin,
              selection=Selection(contract_ids=frozenset({skipped.pk}), excluded_period_ids=frozenset({first.pk})))
    planted.add(Kind.PERIOD_SKIPPED, f"period:{first.pk}", skipped_contract=skipped, skipped_period=first)

    # 11. A part sold below its cost; 12. a part sold below its catalogue price (above cost).
    parts = _done_ticket(acme, "Parts")
    cheap = charge_add(ticket=parts, product=part, description="SSD", date=days(5), quantity=Decimal("2"),
                       unit_price=eur("25"), unit_cost=eur("30"))
    discounted = charge_add(ticket=parts, product=part, description="SSD", date=days(5), quantity=Decimal("1"),
                            unit_price=eur("40"), unit_cost=eur("30"))
    planted.add(Kind.PART_BELOW_COST, f"charge:{cheap.pk}")
    planted.add(Kind.PART_BELOW_CATALOGUE, f"charge:{discounted.pk}")

    # 13. A contract rate unchanged for two years and below the catalogue's 100.00.
    oldie = _customer("Old Rates Ltd", admin)
    old_hourly = contract_create(customer=oldie, name="Legacy T&M", type="hourly", start_date=days(800), acting_user=admin,
                                 rounding_increment=1)
    stale = rate_line_add(contract=old_hourly, rate=Decimal("80"), effective_from=days(700), acting_user=admin)
    customer_update(customer=oldie, data={"default_hourly_contract": old_hourly}, acting_user=admin)
    legacy = _done_ticket(oldie, "Legacy work")
    log(legacy, 60, on=days(30))
    _resolve(legacy)
    planted.add(Kind.RATE_STALE, f"rate:{stale.pk}", stale_contract=old_hourly, stale_line=stale)

    # 14. Time approved at fewer minutes than logged.
    time_approval_switch(required=True, acting_user=admin)
    cut = _done_ticket(acme, "Cut on approval")
    cut_entry = log(cut, 120, on=days(3), work_type=onsite)
    _resolve(cut)
    time_entry_approve(entry_id=cut_entry.pk, seen=entry_fingerprint(cut_entry), acting_user=admin, minutes=60)
    time_approval_switch(required=False, acting_user=admin)
    planted.add(Kind.APPROVED_LOWER, f"technician:{tech.pk}:customer:{acme.pk}")
    return planted
