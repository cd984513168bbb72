"""Create New Batch for many contracts: the page's server time against the bare SQL that lists them.

One tenant built as ``bench_batch`` builds it (``BENCH_NEWBATCH_CONTRACTS`` contracts, default
5,000; ``BENCH_NEWBATCH_ENTRIES`` due time entries, default 100,000), measured in one run:

* **Baseline**: the hand-written SQL that lists the active contracts with their customers, in
  the page's order (what any list of them must at least read).
* **Page**: GET Billing → Create New Batch through Django's full request path as the signed-in
  admin (best of 3): server time, as a ratio of the baseline, and SQL queries — next to the
  same page for a tenant one hundredth the size (the query count must not grow with the rows).
  The batch details for the whole selection come in a second request after the page
  (``bench_batch`` measures them).

Run: `python -m bench newbatch`.
"""
from __future__ import annotations

import os

from bench.bench_batch import _best, _page, build_both

CONTRACTS = int(os.environ.get("BENCH_NEWBATCH_CONTRACTS", 5_000))
ENTRIES = int(os.environ.get("BENCH_NEWBATCH_ENTRIES", 100_000))
SCHEMA, SMALL_SCHEMA = "bench_newbatch", "bench_newbatch_small"

BASELINE_SQL = """
    SELECT c.id, c.name, c.type, cu.legal_name FROM contracts_contract c JOIN contracts_customer cu ON cu.id = c.customer_id
    WHERE c.status = 'active' ORDER BY cu.legal_name, c.priority, c.id
"""


def _baseline():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(BASELINE_SQL)
        return cursor.fetchall()


def main() -> None:
    from bench._django import django_ready

    django_ready()
    from django.db import connection
    from django_tenants.utils import schema_context

    msp, small = build_both(SCHEMA, SMALL_SCHEMA, contracts=CONTRACTS, entries=ENTRIES)
    try:
        with schema_context(SCHEMA):
            _baseline()
            baseline, listed = _best(_baseline)
        connection.set_schema_to_public()
        big_time, big_queries, big_rows = _page(msp)
        small_time, small_queries, small_rows = _page(small)
        print(f"  baseline (SQL listing {len(listed):,} contracts): {baseline * 1000:7.1f} ms")
        print(f"  Create New Batch, {CONTRACTS:,} contracts: {big_time * 1000:7.1f} ms server time = "
              f"{big_time / baseline:5.1f}× baseline (goal ≤ 500 ms), {big_queries} SQL queries, {big_rows} rows on the page")
        print(f"  Create New Batch, {max(CONTRACTS // 100, 10):,} contracts: {small_time * 1000:7.1f} ms, {small_queries} SQL queries "
              f"(must equal the above), {small_rows} rows")
    finally:
        connection.set_schema_to_public()
        msp.delete(force_drop=True)
        small.delete(force_drop=True)


if __name__ == "__main__":
    main()
