"""Thousands of MSPs: what grows with the number of tenants, measured on one PostgreSQL.

In a scratch database (``msp_bench_tenants`` on the server of ``DATABASE_URL``, dropped
first; the embedded PostgreSQL of the local settings when unset), BENCH_TENANTS MSPs
(default 1,000) are created, and at 10 MSPs and at BENCH_TENANTS this is measured:

* **create one MSP** (``msp_create``: schema, domain, owner): copied from the migrated
  template schema vs run through every migration (``MSP_CREATE_FROM_TEMPLATE=0``) — ratio;
* **migrate_schemas with nothing to apply** (the command as an operator runs it, a process
  of its own): the one-query check of ``msp_billing/tenants/migrating.py`` at 10 and at N
  MSPs, against django-tenants' own executor (every schema migrated in turn) at 10 MSPs,
  and that per-schema cost times N (running it at 1,000 MSPs takes a quarter of an hour);
* **beat's periodic work**: tasks queued per day by the per-MSP fan-out against those
  queued when one query across the schemas finds the MSPs with due work (1 % have some),
  and that query's time;
* **a request's overhead**: a tenant page (the sign-in page, through the whole middleware
  stack and django-tenants' host lookup) at N MSPs as a ratio to the same at 10.

Run: ``python -m bench tenants`` (BENCH_TENANTS=200 for a quick look; about one second
per MSP on two cores).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._django import scratch_database
from bench._processes import probe_json

BASE_DIR = Path(__file__).resolve().parents[1]
DATABASE = "msp_bench_tenants"
# Beat entries that fan out to every MSP, and how often each runs (settings.CELERY_BEAT_SCHEDULE).
PROBE = "bench._tenants_probe"


def _env(url: str, **extra: str) -> dict[str, str]:
    return dict(os.environ, DJANGO_SETTINGS_MODULE="msp_billing.settings.local", DATABASE_URL=url, **extra)


def _probe(url: str, *args: str, **env: str) -> dict:
    return probe_json(PROBE, *args, env=_env(url, **env))


def _migrate_seconds(url: str, **env: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate_schemas", "--tenant"], cwd=BASE_DIR, env=_env(url, **env),
                   check=True, capture_output=True)
    return time.perf_counter() - started


def _scratch_database() -> str:
    return scratch_database(DATABASE)


def main() -> None:
    total = int(os.environ.get("BENCH_TENANTS", "1000"))
    url = _scratch_database()
    subprocess.run([sys.executable, "manage.py", "migrate_schemas", "--shared"], cwd=BASE_DIR, env=_env(url),
                   check=True, capture_output=True)
    migrated = _probe(url, "create", "2", "migrated", MSP_CREATE_FROM_TEMPLATE="0")
    copied = _probe(url, "create", "8", "copied")
    made = 10
    at_10 = {"migrate": _migrate_seconds(url), "stock": _migrate_seconds(
        url, MIGRATE_EXECUTOR_FUNCTION="django_tenants.migration_executors.get_executor"), **_probe(url, "measure")}
    started = time.perf_counter()
    _probe(url, "create", str(total - made), "msp")
    populate = time.perf_counter() - started
    at_n = {"migrate": _migrate_seconds(url), **_probe(url, "measure")}

    per_schema = at_10["stock"] / 10
    print(f"MSPs: {total} (populated at {populate / (total - made):.2f} s each)")
    print(f"create one MSP: copied from the template {statistics.median(copied['seconds']):.2f} s (median of "
          f"{len(copied['seconds'])}), through every migration {statistics.median(migrated['seconds']):.2f} s — "
          f"ratio {statistics.median(migrated['seconds']) / statistics.median(copied['seconds']):.1f}x faster")
    print(f"migrate_schemas, nothing to apply: {at_10['migrate']:.1f} s at 10 MSPs, {at_n['migrate']:.1f} s at {total} "
          f"(goal < 60 s at 1,000); django-tenants' executor {at_10['stock']:.1f} s at 10 MSPs = {per_schema:.2f} s "
          f"per schema, ≈ {per_schema * total:.0f} s at {total} — ratio {per_schema * total / at_n['migrate']:.0f}x")
    print(f"beat: {at_n['fan_out_tasks_per_day']:,} tasks a day queued per MSP at {total} MSPs; "
          f"{at_n['due_tasks_per_day']:,} when only MSPs with due work get one ({at_n['due_msps']} of {total}) — "
          f"ratio {at_n['fan_out_tasks_per_day'] / max(1, at_n['due_tasks_per_day']):.0f}x fewer; "
          f"the query across {total} schemas takes {at_n['due_query_seconds'] * 1000:.0f} ms "
          f"(at 10: {at_10['due_query_seconds'] * 1000:.0f} ms)")
    print(f"a tenant page: {at_10['request_ms']:.1f} ms at 10 MSPs, {at_n['request_ms']:.1f} ms at {total} — "
          f"ratio {at_n['request_ms'] / at_10['request_ms']:.2f}")
    print(f"(scratch database {DATABASE} kept for inspection; dropped by the next run)")
