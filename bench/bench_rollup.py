"""The nightly benchmark over 500 MSPs: each MSP's roll-up in its own schema, then the aggregates.

Measured in one run, on the same schemas:

* **Baseline**: one hand-written SQL aggregate per MSP schema (the closed periods' line
  amounts and minutes worked — what any roll-up must at least read), for every MSP.
* **Nightly**: ``benchmark.rollup.nightly`` — per MSP the effective hourly rate of every
  closed period of the last twelve months, the average invoice, both converted to USD at
  the dated rate, a ``Rollup`` row written in the MSP's schema; then the percentiles of
  every group of ten or more opted-in MSPs stored in the public schema.

Printed: total time, time per MSP and the ratio to the baseline. Each MSP has 10 contracts
(Retainer), 12 closed monthly periods each with an invoice line for the fee and 8 time
entries, and nine in ten MSPs opt in, spread over three regions. The MSP schemas are made
by copying the tables of one migrated MSP (``bench/_schemas.py``) and dropped afterwards.
Run: `make bench` (or `python -m bench rollup`); smaller: BENCH_ROLLUP_TENANTS=20, or
`python -m bench.bench_rollup 20`.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import time
from decimal import Decimal

TENANTS = int(os.environ.get("BENCH_ROLLUP_TENANTS", 500))
CONTRACTS = int(os.environ.get("BENCH_ROLLUP_CONTRACTS", 10))
ENTRIES = int(os.environ.get("BENCH_ROLLUP_ENTRIES", 8))
TEMPLATE = "bench_rollup_template"
PREFIX = "bench_rollup_"
TODAY = dt.date(2026, 12, 5)
REGIONS = ["europe", "north_america", "uk_ireland"]
CURRENCIES = {"europe": "EUR", "north_america": "USD", "uk_ireland": "GBP"}

BASELINE_SQL = """
SELECT (SELECT COALESCE(SUM(l.taxable_amount), 0) FROM invoices_invoiceline l
        JOIN contracts_contractperiod p ON p.id = l.contract_period_id
        WHERE p.covered_end < %(today)s AND p.covered_end >= %(since)s),
       (SELECT COALESCE(SUM(a.minutes), 0) FROM tickets_timeallocation a JOIN tickets_timeentry e ON e.id = a.entry_id
        WHERE e.date >= %(since)s AND e.date < %(today)s)
"""


def _months():
    for back in range(12, 0, -1):
        index = TODAY.year * 12 + TODAY.month - 1 - back
        start = dt.date(index // 12, index % 12 + 1, 1)
        nxt = dt.date((index + 1) // 12, (index + 1) % 12 + 1, 1)
        yield start, nxt - dt.timedelta(days=1)


def _fill(number: int, currency: str, opted_in: bool) -> None:
    """One MSP's rows, written in bulk in its schema (``number`` varies the amounts)."""
    from benchmark.models import BenchmarkSettings
    from contracts.models import Contract, ContractPeriod, Customer, Role, WorkType
    from invoices.models import Invoice, InvoiceLine
    from msp_billing.accounts.models import User
    from tickets.models import Ticket, TimeAllocation, TimeEntry

    tech = User.objects.create_user(f"tech{number}@bench.example", None, role="technician")
    role = Role.objects.create(name="Engineer", default_rate=("100", currency), cost_rate=("40", currency))
    work_type = WorkType.objects.create(name="Remote Support")
    customers = Customer.objects.bulk_create([Customer(legal_name=f"Customer {i}", currency=currency) for i in range(CONTRACTS)])
    contracts = Contract.objects.bulk_create([
        Contract(customer=c, name=f"Managed {i}", type="retainer", currency=currency, start_date=dt.date(2025, 1, 1))
        for i, c in enumerate(customers)])
    months = list(_months())
    periods = ContractPeriod.objects.bulk_create([
        ContractPeriod(contract=k, start=s, end=e, covered_start=s, covered_end=e, bill_date=s) for k in contracts for s, e in months])
    tickets = Ticket.objects.bulk_create([Ticket(customer=c, title="Work") for c in customers])
    ticket_of = {t.customer_id: t for t in tickets}
    customer_of = {k.pk: k.customer_id for k in contracts}
    entries = TimeEntry.objects.bulk_create([
        TimeEntry(ticket=ticket_of[customer_of[p.contract_id]], technician=tech, role=role, work_type=work_type,
                  date=p.covered_start + dt.timedelta(days=j), minutes=30 + 15 * ((number + j) % 5))
        for p in periods for j in range(ENTRIES)])
    period_by_day = {(p.contract_id, p.covered_start): p for p in periods}
    allocations = []
    for index, entry in enumerate(entries):
        period = periods[index // ENTRIES]
        allocations.append(TimeAllocation(entry=entry, contract_id=period.contract_id, bucket="absorbed",
                                          minutes=entry.minutes, billed_minutes=entry.minutes))
    TimeAllocation.objects.bulk_create(allocations)
    invoices = Invoice.objects.bulk_create([
        Invoice(customer=k.customer, currency=currency, status="issued", number=f"INV-{k.pk}-{s:%Y%m}", issue_date=s,
                subtotal=Decimal(500 + number % 300), total=Decimal(500 + number % 300))
        for k in contracts for s, _ in months])
    fee = Decimal(500 + number % 300)
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=inv, description="Fee", fixed_amount=fee, gross_amount=fee, amount=fee, taxable_amount=fee,
                    source_kind="period", contract_period=period_by_day[(k.pk, inv.issue_date)], contract=k)
        for inv, k in zip(invoices, [k for k in contracts for _ in months])])
    BenchmarkSettings.objects.update_or_create(pk=1, defaults={"opted_in": opted_in})


def _drop_all() -> None:
    from django.db import connection

    from msp_billing.tenants.models import Msp

    connection.set_schema_to_public()
    for msp in Msp.objects.filter(schema_name__startswith=PREFIX):
        msp.delete(force_drop=True)


def main(tenants: int | None = None) -> None:
    from bench._django import django_ready

    django_ready()
    from django.db import connection
    from django_tenants.utils import schema_context, tenant_context

    from bench._schemas import msp_with_copied_schema
    from benchmark.public.models import IndustryAggregate
    from benchmark.rollup import nightly
    from msp_billing.fx.models import DatedRate
    from msp_billing.tenants.services import MspRequest, msp_create

    tenants = tenants or TENANTS
    _drop_all()
    started = time.perf_counter()
    template = msp_create(request=MspRequest(name="Roll-up template", subdomain=TEMPLATE.replace("_", "-"), region="europe",
                                             currency="EUR", timezone="UTC", admin_email="bench@example.com",
                                             admin_password="bench-password-123"))
    DatedRate.objects.bulk_create([DatedRate(date=dt.date(2026, 12, 1), currency=c, value=v)
                                   for c, v in (("USD", Decimal(1)), ("EUR", Decimal("0.86")), ("GBP", Decimal("0.75")))],
                                  ignore_conflicts=True)
    schemas = []
    try:
        for number in range(tenants):
            region = REGIONS[number % len(REGIONS)]
            msp = msp_with_copied_schema(schema=f"{PREFIX}{number:04d}", base=template.schema_name, region=region,
                                         currency=CURRENCIES[region])
            with tenant_context(msp):
                _fill(number, msp.currency, opted_in=number % 10 != 9)
            schemas.append(msp.schema_name)
        print(f"   {tenants} MSPs made in {time.perf_counter() - started:.1f} s "
              f"({CONTRACTS} contracts × 12 closed periods × {ENTRIES} entries each)", flush=True)

        connection.set_schema_to_public()
        t0 = time.perf_counter()
        for schema in schemas:
            with schema_context(schema), connection.cursor() as cursor:
                cursor.execute(BASELINE_SQL, {"today": TODAY, "since": dt.date(2025, 12, 1)})
                cursor.fetchone()
        baseline = time.perf_counter() - t0

        t0 = time.perf_counter()
        result = nightly(today=TODAY, schemas=schemas)
        elapsed = time.perf_counter() - t0
        groups = IndustryAggregate.objects.count()
        print(f"   baseline (one SQL aggregate per MSP): {baseline:.2f} s ({baseline / tenants * 1000:.1f} ms per MSP)")
        print(f"   nightly roll-up: {elapsed:.2f} s for {result['tenants']} MSPs = {elapsed / tenants * 1000:.1f} ms per MSP; "
              f"{result['contributors']} contribute, {groups} aggregate groups stored; "
              f"{elapsed / baseline:.1f}× the baseline", flush=True)
    finally:
        _drop_all()
        connection.set_schema_to_public()
        template.delete(force_drop=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else None)
