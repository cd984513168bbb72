"""Month end at scale: a tenant with 5,000 contracts and 1,000,000 unbilled time entries.

Measured in one run, on the same rows:

* **Baseline**: one hand-written SQL aggregate over the due time (amount, minutes and
  entries per contract — what any preview must at least read).
* **Batch preview**: the batch details of the wizard (``billing.due.due_summary``: bills,
  tickets, hours, billable amount, tax and total per currency, plus per-contract
  balances), once for the first view and once for a posted selection of every contract
  with one period and a few entries left out. Goal: at most 3× the baseline.
* **Wizard page**: GET Billing → Create New Batch through Django's full request path as
  the signed-in admin: server time and SQL queries, next to the same page for a tenant
  one hundredth the size (the query count must not grow with the rows).
* **Save As / Run**: ``batch_run`` of everything due, one draft invoice per contract
  (5,000 invoices, a million time lines with their taxes), in a fresh process so its peak
  memory is its own. Goals: at most 60 s, at most 1 GB.

The rows are written with SQL (routing is measured by ``bench_routing``): 2,500 customers
with two contracts each — 80 % Hourly (time charged at the role's rate), 10 % Retainer
(monthly fee, time absorbed), 10 % Block Hours (time deducted) —, 200,000 resolved
tickets, one routed allocation per entry, half the contracts taxable at 19 %.
Run: `make bench` (or `python -m bench batch`); smaller: BENCH_BATCH_ENTRIES=100000
BENCH_BATCH_CONTRACTS=500.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from decimal import Decimal

from bench._django import msps_drop, signed_in_client

ENTRIES = int(os.environ.get("BENCH_BATCH_ENTRIES", 1_000_000))
CONTRACTS = int(os.environ.get("BENCH_BATCH_CONTRACTS", 5_000))
SCHEMA = "bench_batch"
SMALL_SCHEMA = "bench_batch_small"
CUTOFF = dt.date(2026, 10, 31)
PASSWORD = "bench-password-123"

BASELINE_SQL = """
    SELECT a.contract_id, sum(CASE WHEN a.bucket IN ('charged', 'overage') THEN a.amount ELSE 0 END),
           sum(a.billed_minutes), count(*)
    FROM tickets_timeallocation a
    JOIN tickets_timeentry e ON e.id = a.entry_id
    JOIN tickets_ticket t ON t.id = e.ticket_id
    WHERE a.contract_id IS NOT NULL AND e.billed_at IS NULL AND e.billable AND e.date <= %s
      AND t.status IN ('resolved', 'closed')
    GROUP BY a.contract_id
"""


def _checkpoint() -> None:
    from django.db import DatabaseError, connection, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:  # needs a superuser or pg_checkpoint; the figures are then noisier
        print("  (no CHECKPOINT before the run: the database user may not issue one)")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _best(function, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def _tenant(schema: str):
    from bench._django import fresh_msp

    return fresh_msp(schema=schema, name=f"Batch benchmark {schema}", password=PASSWORD)


def build(schema: str, *, contracts: int, entries: int):
    """A tenant with ``contracts`` contracts and ``entries`` due time entries (see the module docstring)."""
    from django.db import connection
    from django.utils import timezone
    from django_tenants.utils import schema_context
    from djmoney.money import Money

    from contracts.models import BlockPurchase, Contract, ContractPeriod, Customer, Role, TaxRate, WorkType
    from invoices.models import InvoiceSettings
    from msp_billing.accounts.models import User

    msp = _tenant(schema)
    eur = lambda v: Money(Decimal(v), "EUR")  # noqa: E731
    start = dt.date(2026, 10, 1)
    with schema_context(msp.schema_name):
        TaxRate.objects.create(code="VAT", name="VAT 19 %", percent=Decimal(19), effective_from=dt.date(2020, 1, 1))
        settings = InvoiceSettings.load()
        settings.default_tax_codes = "VAT"
        settings.save()
        work_types = [WorkType.objects.create(name=n) for n in ("Remote Support", "Onsite Support", "Project Work", "Routine Maintenance")]
        roles = [Role.objects.create(name=n, default_rate=eur(r), cost_rate=eur("40")) for n, r in (("Tier 1", "90"), ("Engineer", "120"), ("Architect", "150"))]
        techs = [User.objects.create_user(f"tech{i}@bench.example", None, role="technician", full_name=f"Technician {i}") for i in range(20)]
        customers = Customer.objects.bulk_create([Customer(legal_name=f"Customer {i:05d}", currency="EUR") for i in range(contracts // 2)])
        rows = []
        for i in range(contracts):
            kind = "hourly" if i % 10 < 8 else ("retainer" if i % 10 == 8 else "block_hours")
            rows.append(Contract(customer=customers[i // 2], name=f"{kind.replace('_', ' ').title()} {i}", type=kind, currency="EUR",
                                 start_date=dt.date(2026, 1, 1), priority=1 + i % 2, taxable=i % 4 < 2,
                                 fee=eur("1000") if kind == "retainer" else None))
        created = Contract.objects.bulk_create(rows)
        # A retainer's fee is due; the other contracts' periods are stored and already billed
        # (as after the daily task and an earlier batch): nothing of theirs is due and no
        # period is missing, so the timed reads measure the usual case.
        billed = timezone.now()
        ContractPeriod.objects.bulk_create([
            ContractPeriod(contract=c, start=start, end=CUTOFF, covered_start=start, covered_end=CUTOFF, bill_date=start,
                           billed_at=None if c.type == "retainer" else billed)
            for c in created])
        BlockPurchase.objects.bulk_create([BlockPurchase(contract=c, purchased_on=start, minutes=60000, price=eur("5000"))
                                           for c in created if c.type == "block_hours"])
        with connection.cursor() as cursor:
            cursor.execute("""
                INSERT INTO tickets_ticket (customer_id, title, status, created_at, resolved_at)
                SELECT c.id, 'Ticket ' || g, 'resolved', now(), now()
                FROM generate_series(0, %s - 1) g
                JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS rn FROM contracts_customer) c ON c.rn = g %% %s
            """, [max(entries // 5, 1), len(customers)])
            cursor.execute("""
                CREATE TEMP TABLE bench_tickets AS
                SELECT id, customer_id, row_number() OVER (ORDER BY id) - 1 AS rn FROM tickets_ticket
            """)
            cursor.execute("SELECT count(*) FROM bench_tickets")
            ticket_count = cursor.fetchone()[0]
            cursor.execute("""
                INSERT INTO tickets_timeentry (ticket_id, technician_id, role_id, work_type_id, date, minutes, notes, billable,
                                               after_hours, approval, is_unrouted, routing_explanation, routed_at, created_at)
                SELECT t.id, (%s::bigint[])[1 + g %% 20], (%s::bigint[])[1 + g %% 3], (%s::bigint[])[1 + g %% 4],
                       %s::date + (g %% 31), 15 * (1 + g %% 16), '', true, false, 'approved', false, '', now(), now()
                FROM generate_series(0, %s - 1) g JOIN bench_tickets t ON t.rn = g %% %s
            """, [[u.pk for u in techs], [r.pk for r in roles], [w.pk for w in work_types], start, entries, ticket_count])
            cursor.execute("""
                INSERT INTO tickets_timeallocation (entry_id, contract_id, bucket, minutes, billed_minutes, rate, rate_currency,
                                                    amount, amount_currency, value, value_currency, rate_explanation)
                SELECT e.id, c.id,
                       CASE c.type WHEN 'hourly' THEN 'charged' WHEN 'retainer' THEN 'absorbed' ELSE 'deducted' END,
                       e.minutes, e.minutes, r.default_rate, 'EUR',
                       CASE WHEN c.type = 'hourly' THEN round(r.default_rate * e.minutes / 60, 2) END, 'EUR',
                       CASE WHEN c.type <> 'hourly' THEN round(r.default_rate * e.minutes / 60, 2) END, 'EUR',
                       'Role rate ' || r.name
                FROM tickets_timeentry e
                JOIN tickets_ticket t ON t.id = e.ticket_id
                JOIN contracts_role r ON r.id = e.role_id
                JOIN (SELECT id, customer_id, type, row_number() OVER (PARTITION BY customer_id ORDER BY id) - 1 AS rn
                      FROM contracts_contract) c ON c.customer_id = t.customer_id AND c.rn = e.id % 2
            """)
            cursor.execute("DROP TABLE bench_tickets")
    # A month's entries have long been vacuumed when its batch runs; vacuuming here also keeps
    # autovacuum from working on a million fresh rows while the figures are measured.
    with schema_context(msp.schema_name), connection.cursor() as cursor:
        for table in ("tickets_ticket", "tickets_timeentry", "tickets_timeallocation", "contracts_contract", "contracts_customer"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    connection.set_schema_to_public()
    return msp


def _baseline(cutoff: dt.date):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL, [cutoff])
        return cursor.fetchall()


def build_both(schema: str, small_schema: str, *, contracts: int, entries: int):
    """The benchmark's tenant and one with a hundredth of its rows (whose query count must be the same)."""
    start = time.perf_counter()
    msp = build(schema, contracts=contracts, entries=entries)
    small = build(small_schema, contracts=max(contracts // 100, 10), entries=max(entries // 100, 100))
    print(f"  data: {contracts:,} contracts, {entries:,} due time entries written in {time.perf_counter() - start:.0f} s")
    return msp, small


def _page(msp) -> tuple[float, int, int]:
    """Server time (best of 3), SQL queries and rows of GET Create New Batch, signed in."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in_client(msp)
    url = f"/billing/batches/new/?cutoff={CUTOFF.isoformat()}"
    times, queries, rows = [], 0, 0
    for _ in range(3):
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
        queries = len(captured.captured_queries)
        rows = response.content.decode().count('name="contract"')
        connection.set_schema_to_public()
    return min(times), queries, rows


def run_only() -> None:
    """In a fresh process: Save As / Run of everything due; prints JSON with seconds, memory, counts."""
    from bench._django import django_ready

    django_ready()
    from django.db import connection
    from django_tenants.utils import schema_context

    from billing import services
    from billing.models import BatchItem
    from invoices.models import Invoice, InvoiceLine
    from msp_billing.accounts.models import User

    with schema_context(SCHEMA):
        admin = User.objects.get(email="bench@example.com")
        before = _rss_mb()
        start = time.perf_counter()
        selection = services.selection_everything_due(cutoff=CUTOFF)
        batch = services.batch_run(name="Bench October", cutoff=CUTOFF, selection=selection, consolidated=False, acting_user=admin)
        seconds = time.perf_counter() - start
        peak = _rss_mb()
        invoices = Invoice.objects.filter(batch_link__batch=batch).count()
        lines = InvoiceLine.objects.filter(invoice__batch_link__batch=batch).count()
        items = BatchItem.objects.filter(batch=batch).count() + InvoiceLine.objects.filter(
            invoice__batch_link__batch=batch, time_allocation__isnull=False).count()
        with connection.cursor() as cursor:
            cursor.execute("""SELECT count(*) FROM invoices_invoice i WHERE i.id IN (SELECT invoice_id FROM billing_batchinvoice WHERE batch_id = %s)
                              AND i.total <> (SELECT coalesce(sum(l.amount + l.tax_amount), 0) FROM invoices_invoiceline l WHERE l.invoice_id = i.id)""",
                           [batch.pk])
            mismatched = cursor.fetchone()[0]
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "before_mb": before, "invoices": invoices, "lines": lines,
                      "items": items, "mismatched": mismatched}))


def main() -> None:
    if "--run-only" in sys.argv:
        run_only()
        return
    from bench._django import django_ready

    django_ready()
    from django.db import connection
    from django_tenants.utils import schema_context

    from billing.due import Selection, due_summary
    from billing.readiness import ready_periods, ready_time_allocations
    from billing.services import selection_everything_due

    msp, small = build_both(SCHEMA, SMALL_SCHEMA, contracts=CONTRACTS, entries=ENTRIES)
    try:
        with schema_context(SCHEMA):
            _baseline(CUTOFF)  # warm the cache for both sides alike
            baseline, groups = _best(lambda: _baseline(CUTOFF))
            first, summary = _best(lambda: due_summary(cutoff=CUTOFF))
            everything = selection_everything_due(cutoff=CUTOFF)
            left_out = Selection(
                contract_ids=everything.contract_ids, due_token=summary.token,
                excluded_period_ids=frozenset(ready_periods(cutoff=CUTOFF).values_list("pk", flat=True)[:1]),
                excluded_entry_ids=frozenset(ready_time_allocations(cutoff=CUTOFF).values_list("entry_id", flat=True)[:25]))
            posted, details = _best(lambda: due_summary(cutoff=CUTOFF, selection=left_out).details)
        print(f"  baseline (hand-written SQL aggregate, {len(groups):,} contracts): {baseline:6.2f} s")
        print(f"  batch preview, first view (everything due):  {first:6.2f} s  {first / baseline:4.1f}× baseline (goal ≤ 3×)")
        print(f"  batch preview, posted selection (items left out): {posted:6.2f} s  {posted / baseline:4.1f}× baseline (goal ≤ 3×)")
        eur = summary.details.by_currency.get("EUR", {})
        print(f"    {summary.details.bills:,} bills, {summary.details.tickets:,} tickets, {summary.details.hours:,} hours, "
              f"billable {eur.get('billable')}, tax {eur.get('tax')}, total {eur.get('total')} EUR")
        big_time, big_queries, big_rows = _page(msp)
        small_time, small_queries, small_rows = _page(small)
        print(f"  wizard page: {big_rows:,} contract rows in {big_time:.2f} s server time, {big_queries} SQL queries; "
              f"{small_rows:,} rows: {small_time:.2f} s, {small_queries} queries (must not grow with rows)")
        _checkpoint()  # the run does not pay for writing out the rows built above
        connection.close()
        result = subprocess.run([sys.executable, "-m", "bench.bench_batch", "--run-only"], capture_output=True, text=True,
                                check=False, env={**os.environ, "PYTHONPATH": os.getcwd()})
        if result.returncode:
            print(result.stdout, result.stderr)
            raise SystemExit("the run failed")
        run = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"  Save As / Run: {run['invoices']:,} invoices, {run['lines']:,} lines, {run['items']:,} billed items in "
              f"{run['seconds']:.1f} s (goal ≤ 60 s); peak memory {run['peak_mb']:.0f} MB (goal ≤ 1,024 MB; "
              f"{run['before_mb']:.0f} MB at start); invoices whose total ≠ sum of their lines: {run['mismatched']}")
    finally:
        msps_drop(msp, small)


if __name__ == "__main__":
    main()

