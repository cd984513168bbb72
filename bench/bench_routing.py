"""Route and rate 100,000 time entries for a tenant with 2,000 contracts.

Prints entries per second and peak memory, next to the same run's cost of inserting
those rows with one bulk insert (the floor). Run: `make bench` (or `python -m bench routing`).
Sizes can be lowered for a quick look: BENCH_ENTRIES=20000 BENCH_CONTRACTS=400.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import resource
import time
from decimal import Decimal

from bench._django import msps_drop

ENTRIES = int(os.environ.get("BENCH_ENTRIES", 100_000))
CONTRACTS = int(os.environ.get("BENCH_CONTRACTS", 2_000))
SCHEMA = "bench_routing"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from bench._django import django_ready, fresh_msp

    django_ready()
    from django_tenants.utils import schema_context
    from djmoney.money import Money

    from contracts.models import BlockPurchase, Contract, ContractRateLine, Customer, ExclusionSet, Role, WorkType
    from msp_billing.accounts.models import User
    from tickets.models import TechnicianProfile, Ticket, TimeAllocation, TimeEntry
    from tickets.services import entries_route

    msp = fresh_msp(schema=SCHEMA, name="Routing benchmark")
    rng = random.Random(7)
    eur = lambda v: Money(Decimal(v), "EUR")  # noqa: E731
    try:
        with schema_context(msp.schema_name):
            work_types = [WorkType.objects.create(name=n, is_after_hours=n == "Out-of-Hours Support")
                          for n in ("Remote Support", "Onsite Support", "Out-of-Hours Support", "Project Work", "Routine Maintenance")]
            roles = [Role.objects.create(name=n, default_rate=eur(r), cost_rate=eur("40")) for n, r in (("Tier 1", "90"), ("Engineer", "120"), ("Architect", "160"))]
            gold = ExclusionSet.objects.create(name="Gold")
            gold.work_types.set(work_types[1:3])
            silver = ExclusionSet.objects.create(name="Silver")
            silver.work_types.set(work_types[2:3])
            techs = []
            for i in range(20):
                user = User.objects.create_user(f"tech{i}@bench.example", None, role="technician")
                TechnicianProfile.objects.create(user=user, role=roles[i % 3])
                techs.append(user)
            customers = Customer.objects.bulk_create([Customer(legal_name=f"Customer {i:04d}", currency="EUR") for i in range(CONTRACTS // 2)])
            start = dt.date(2026, 1, 1)
            contracts = []
            kinds = [("retainer", gold), ("block_hours", silver), ("hourly", None), ("remote_monitoring", None), ("project_hourly", None)]
            for i in range(CONTRACTS):
                kind, exclusion = kinds[i % len(kinds)] if i % 2 == 0 else kinds[(i // 2) % len(kinds)]
                contracts.append(Contract(customer=customers[i // 2], name=f"C{i}", type=kind, currency="EUR", start_date=start,
                                          priority=(i % 2) + 1, exclusion_set=exclusion, fee=eur("500") if kind == "retainer" else None,
                                          overage_rate=eur("150") if kind == "block_hours" else None,
                                          included_minutes=600 if kind == "retainer" and i % 4 == 0 else None))
            contracts = Contract.objects.bulk_create(contracts)
            ContractRateLine.objects.bulk_create([ContractRateLine(contract=c, rate=eur("110"), effective_from=start) for c in contracts if c.type in ("hourly", "project_hourly")])
            BlockPurchase.objects.bulk_create([BlockPurchase(contract=c, purchased_on=start, minutes=6000, price=eur("1000")) for c in contracts if c.type == "block_hours"])
            hourly_by_customer = {c.customer_id: c for c in contracts if c.type == "hourly"}
            for cust in customers:
                if cust.pk in hourly_by_customer:
                    cust.default_hourly_contract = hourly_by_customer[cust.pk]
            Customer.objects.bulk_update(customers, ["default_hourly_contract"])
            tickets = Ticket.objects.bulk_create([Ticket(customer=customers[i % len(customers)], title=f"T{i}") for i in range(ENTRIES // 50)])
            rows = [
                TimeEntry(ticket=tickets[i % len(tickets)], technician=techs[i % 20], role=roles[i % 3],
                          work_type=work_types[rng.randrange(5)], date=start + dt.timedelta(days=rng.randrange(270)),
                          minutes=rng.randrange(5, 240), after_hours=rng.random() < 0.1)
                for i in range(ENTRIES)
            ]
            before_rss = _rss_mb()
            t0 = time.perf_counter()
            TimeEntry.objects.bulk_create(rows, batch_size=5000)
            insert_seconds = time.perf_counter() - t0
            del rows

            t0 = time.perf_counter()
            routed = entries_route(TimeEntry.objects.select_related(
                "ticket__customer__parent", "ticket__default_contract", "work_type", "role", "chosen_contract", "chosen_rate_item"))
            route_seconds = time.perf_counter() - t0
            peak_rss = _rss_mb()
            allocations = TimeAllocation.objects.count()
            unrouted = TimeEntry.objects.filter(is_unrouted=True).count()
        print(f"  tenant: {CONTRACTS} contracts, {len(customers)} customers, {routed} time entries routed into {allocations} allocations ({unrouted} unrouted)")
        print(f"  floor  (bulk insert of the entries): {insert_seconds:8.2f} s  {ENTRIES / insert_seconds:10.0f} entries/s")
        print(f"  route and rate:                     {route_seconds:8.2f} s  {routed / route_seconds:10.0f} entries/s")
        print(f"  ratio route+rate / floor:           {route_seconds / insert_seconds:8.1f}×")
        print(f"  peak memory (process max RSS): {peak_rss:.0f} MB (before the insert: {before_rss:.0f} MB)")
    finally:
        msps_drop(msp)
