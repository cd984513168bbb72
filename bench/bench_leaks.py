"""The revenue leak finder over a tenant with many time entries.

Prints the finder's time as a ratio to one scan of the time entries in the same run
(``SELECT count(*), sum(minutes)``). Run: `make bench` (or `python -m bench leaks`).
Size: BENCH_LEAK_ENTRIES (default 100,000; 1,000,000 for the full figure).
"""
from __future__ import annotations

import datetime as dt
import os
import random
import time
from decimal import Decimal

ENTRIES = int(os.environ.get("BENCH_LEAK_ENTRIES", 100_000))
CUSTOMERS = 500
SCHEMA = "bench_leaks"


def main() -> None:
    from bench._django import django_ready, fresh_msp

    django_ready()
    from django.db import connection
    from django_tenants.utils import schema_context
    from djmoney.money import Money

    from contracts.models import Contract, ContractRateLine, Customer, Role, WorkType
    from leaks.rules import leaks_all
    from msp_billing.accounts.models import User
    from tickets.models import TechnicianProfile, Ticket, TimeAllocation, TimeEntry

    msp = fresh_msp(schema=SCHEMA, name="Leaks benchmark")
    rng = random.Random(13)
    eur = lambda v: Money(Decimal(v), "EUR")  # noqa: E731
    today = dt.date(2026, 12, 1)
    try:
        with schema_context(msp.schema_name):
            remote = WorkType.objects.create(name="Remote Support")
            role = Role.objects.create(name="Engineer", default_rate=eur("100"), cost_rate=eur("40"))
            user = User.objects.create_user("tech@bench.example", None, role="technician")
            TechnicianProfile.objects.create(user=user, role=role)
            customers = Customer.objects.bulk_create([Customer(legal_name=f"Customer {i:04d}", currency="EUR")
                                                      for i in range(CUSTOMERS)])
            contracts = Contract.objects.bulk_create([Contract(customer=c, name="T&M", type="hourly", currency="EUR",
                                                               start_date=dt.date(2026, 1, 1)) for c in customers])
            ContractRateLine.objects.bulk_create([ContractRateLine(contract=c, rate=eur("120"), effective_from=dt.date(2026, 1, 1))
                                                  for c in contracts])
            tickets = Ticket.objects.bulk_create([Ticket(customer=customers[i % CUSTOMERS], title=f"T{i}", status="resolved")
                                                  for i in range(max(ENTRIES // 20, 1))])
            for start in range(0, ENTRIES, 50_000):
                TimeEntry.objects.bulk_create([
                    TimeEntry(ticket=tickets[i % len(tickets)], technician=user, role=role, work_type=remote,
                              date=today - dt.timedelta(days=rng.randrange(300)), minutes=rng.randrange(5, 240),
                              is_unrouted=i % 1000 == 0)
                    for i in range(start, min(start + 50_000, ENTRIES))], batch_size=10_000)
            with connection.cursor() as cursor:  # every routed entry charged on its customer's contract
                cursor.execute(f"""
                    INSERT INTO {TimeAllocation._meta.db_table} (entry_id, contract_id, bucket, minutes, billed_minutes,
                                                                 rate, rate_currency, amount, amount_currency, rate_explanation)
                    SELECT e.id, c.id, 'charged', e.minutes, e.minutes, 120, 'EUR', round(e.minutes * 2, 2), 'EUR', ''
                    FROM {TimeEntry._meta.db_table} e JOIN {Ticket._meta.db_table} t ON t.id = e.ticket_id
                    JOIN {Contract._meta.db_table} c ON c.customer_id = t.customer_id WHERE NOT e.is_unrouted""")
                cursor.execute("ANALYZE")
                t0 = time.perf_counter()
                cursor.execute(f"SELECT count(*), sum(minutes) FROM {TimeEntry._meta.db_table}")
                cursor.fetchone()
                scan_seconds = time.perf_counter() - t0
            t0 = time.perf_counter()
            found = leaks_all(today=today)
            finder_seconds = time.perf_counter() - t0
        print(f"  tenant: {CUSTOMERS} customers, {ENTRIES} time entries, {len(found)} leaks found")
        print(f"  one scan of the entries (count, sum): {scan_seconds:8.3f} s")
        print(f"  the leak finder:                      {finder_seconds:8.3f} s")
        print(f"  ratio finder / scan:                  {finder_seconds / scan_seconds:8.1f}×")
    finally:
        connection.set_schema_to_public()
        msp.delete(force_drop=True)
