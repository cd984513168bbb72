"""The billing dashboard for a large MSP: 1,000,000 unbilled time entries and 200,000 invoices.

Measured in one run, on the same rows:

* **Baseline**: one hand-written SQL aggregate over the unbilled time (amount per currency,
  ticket status and age bucket: what any unbilled-work figure must at least read).
* **Dashboard**: GET /dashboard/ through Django's full request path as the signed-in admin
  (unbilled by state, age, contract type and customer; receivables and overdue over the
  invoices; blocks, renewals, unrouted work, recent batches and invoices, both charts):
  server time, best of three, as a ratio to the baseline. Goal: at most 2×.
* **Query count**: the same page for a tenant one hundredth the size must read the same
  number of SQL queries (it must not grow with the rows).

The time rows are written by ``bench_batch.build`` (resolved tickets, approved, routed:
80 % Hourly charged at the role's rate, 10 % Retainer absorbed, 10 % Block Hours deducted);
the invoices are issued, one line each, over the last 12 months, a third of them overdue.

Run: `make bench` (or `python -m bench dashboard`); smaller: `python -m bench dashboard
--entries=20000 --invoices=4000` (or BENCH_DASHBOARD_ENTRIES / BENCH_DASHBOARD_INVOICES).
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import time

from bench._django import msps_drop, signed_in_client


def _size(name: str, default: int) -> int:
    for argument in sys.argv[1:]:
        if argument.startswith(f"--{name}="):
            return int(argument.split("=", 1)[1].replace("_", "").replace(",", ""))
    return int(os.environ.get(f"BENCH_DASHBOARD_{name.upper()}", default))


SCHEMA = "bench_dashboard"
SMALL_SCHEMA = "bench_dashboard_small"

BASELINE_SQL = """
    SELECT a.amount_currency, t.status, CASE WHEN e.date >= %s THEN 0 WHEN e.date >= %s THEN 1 WHEN e.date >= %s THEN 2 ELSE 3 END,
           sum(a.amount), count(*)
    FROM tickets_timeallocation a
    JOIN tickets_timeentry e ON e.id = a.entry_id
    JOIN tickets_ticket t ON t.id = e.ticket_id
    WHERE a.contract_id IS NOT NULL AND a.superseded_at IS NULL AND a.bucket IN ('charged', 'overage')
      AND e.billed_at IS NULL AND e.billable
    GROUP BY 1, 2, 3
"""


def build(schema: str, *, entries: int, invoices: int):
    """``bench_batch``'s tenant with ``entries`` unbilled entries, plus ``invoices`` issued invoices."""
    from django.db import connection
    from django_tenants.utils import schema_context

    from bench import bench_batch

    msp = bench_batch.build(schema, contracts=max(10, min(5_000, entries // 200)), entries=entries)
    today = dt.date.today()
    with schema_context(msp.schema_name), connection.cursor() as cursor:
        cursor.execute("""
            INSERT INTO invoices_invoice (customer_id, kind, status, currency, number, issue_date, due_date, payment_terms_days,
                customer_name, customer_tax_id, customer_tax_exempt, customer_reverse_charge, discount_kind, discount_value,
                surcharge_kind, surcharge_value, subtotal, discount_total, surcharge_total, tax_total, total, amount_paid,
                amount_credited, exported_to, remote_id, pdf_version, created_at, updated_at, void_reason,
                customer_address, customer_email, tax_snapshot, notes, terms, payment_instructions, footer, reason, remote_url,
                home_currency)
            SELECT c.id, 'invoice', CASE WHEN g %% 3 = 0 THEN 'paid' ELSE 'issued' END, 'EUR', 'B-' || g,
                   %s::date - (g %% 365), %s::date - (g %% 365) + 30, 30, c.legal_name, '', false, false, '', 0, '', 0,
                   100 + g %% 900, 0, 0, 0, 100 + g %% 900, CASE WHEN g %% 3 = 0 THEN 100 + g %% 900 ELSE 0 END, 0,
                   '', '', 0, now() - make_interval(days => g %% 365), now(), '', '', '', '{}', '', '', '', '', '', '', 'EUR'
            FROM generate_series(0, %s - 1) g
            JOIN (SELECT id, legal_name, row_number() OVER (ORDER BY id) - 1 AS rn FROM contracts_customer) c
              ON c.rn = g %% (SELECT count(*) FROM contracts_customer)
        """, [today, today, invoices])
        cursor.execute("""
            INSERT INTO invoices_invoiceline (invoice_id, sort_order, description, quantity, unit_price, gross_amount, discount_kind,
                discount_value, discount_amount, amount, invoice_discount_share, invoice_surcharge_share, taxable_amount, taxable,
                tax_codes, tax_amount, source_kind, contract_id, detail)
            SELECT i.id, 0, 'Support', 1, i.total, i.total, '', 0, 0, i.total, 0, 0, i.total, false, '[]', 0, 'manual',
                   (SELECT min(k.id) FROM contracts_contract k WHERE k.customer_id = i.customer_id), '{}'
            FROM invoices_invoice i
        """)
        for table in ("invoices_invoice", "invoices_invoiceline"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    connection.set_schema_to_public()
    return msp


def _baseline(today: dt.date):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL, [today - dt.timedelta(days=30), today - dt.timedelta(days=60), today - dt.timedelta(days=90)])
        return cursor.fetchall()


def _page(msp) -> tuple[float, int]:
    """Server time (best of 3) and SQL queries of GET /dashboard/, signed in."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in_client(msp)
    client.get("/dashboard/")  # warm: the periods are stored once, caches filled, as on any morning
    connection.set_schema_to_public()
    times, queries = [], 0
    for _ in range(3):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            response = client.get("/dashboard/")
            times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
        queries = len(captured.captured_queries)
        connection.set_schema_to_public()
    return min(times), queries


def main() -> None:
    from bench._django import django_ready

    django_ready()
    from django_tenants.utils import schema_context

    from bench.bench_batch import _best

    entries, invoices = _size("entries", 1_000_000), _size("invoices", 200_000)
    start = time.perf_counter()
    msp = build(SCHEMA, entries=entries, invoices=invoices)
    small = build(SMALL_SCHEMA, entries=max(entries // 100, 100), invoices=max(invoices // 100, 20))
    print(f"  data: {entries:,} unbilled time entries, {invoices:,} invoices written in {time.perf_counter() - start:.0f} s")
    try:
        today = dt.date.today()
        with schema_context(SCHEMA):
            _baseline(today)  # warm the cache for both sides alike
            baseline, groups = _best(lambda: _baseline(today))
        print(f"  baseline (hand-written SQL aggregate of unbilled time, {len(groups)} groups): {baseline:6.3f} s")
        big_time, big_queries = _page(msp)
        small_time, small_queries = _page(small)
        print(f"  dashboard: {big_time:6.3f} s server time  {big_time / baseline:4.1f}× baseline (goal ≤ 2×), "
              f"{big_queries} SQL queries")
        print(f"  dashboard, a hundredth of the rows: {small_time:6.3f} s, {small_queries} SQL queries "
              f"({'the same' if small_queries == big_queries else 'NOT the same'}: must not grow with the rows)")
    finally:
        msps_drop(msp, small)


if __name__ == "__main__":
    main()
