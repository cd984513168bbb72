"""Connection pooling: the same request mix directly on PostgreSQL and through PgBouncer.

In a scratch database (``msp_bench_pooling`` on the server of ``DATABASE_URL``, dropped
first; the embedded PostgreSQL of the local settings when unset) two MSPs with 20 customers
each; BENCH_POOLING_CLIENTS threads (default 4, half on each MSP) repeat a request mix for
BENCH_POOLING_SECONDS (default 20): the ticket list, the customer list, a customer search, the
contract list and a customer written through the service. Each configuration runs in a
process of its own, twice, interleaved (the better run counts):

* **direct, django-tenants** — the baseline (``search_path`` set once per connection);
* **direct, pooled backend** — ``DATABASE_POOL_MODE=transaction`` without a pooler: the cost
  of the search_path sent with every statement;
* **PgBouncer, pooled backend** — a local PgBouncer in transaction mode, 2 server connections
  for the 4 clients (``msp_billing.pooled_backend.pgbouncer``);
* **PgBouncer, django-tenants** — for contrast: pages that showed the other MSP's customers
  (or failed) are counted.

Printed as requests per second and median request time, each as a ratio to the baseline.
Run: ``python -m bench pooling``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench._django import scratch_database
from bench._processes import probe_json

BASE_DIR = Path(__file__).resolve().parents[1]
DATABASE = "msp_bench_pooling"
PROBE = "bench._pooling_probe"
PREFIX = "pool"
MSPS = 2


def _env(url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="msp_billing.settings.local", DATABASE_URL=url, **extra)
    env.setdefault("DATABASE_POOL_MODE", "")
    return env


def _probe(url: str, *args: str, **env: str) -> dict:
    return probe_json(PROBE, *args, env=_env(url, **env))


def main() -> None:
    from msp_billing.pooled_backend.pgbouncer import pgbouncer, pgbouncer_binary
    from msp_billing.settings.urls import database_from_url

    if pgbouncer_binary() is None:
        print("pgbouncer is not installed (Debian: apt-get install pgbouncer): nothing measured")
        return
    clients = int(os.environ.get("BENCH_POOLING_CLIENTS", "4"))
    seconds = os.environ.get("BENCH_POOLING_SECONDS", "20")
    url = scratch_database(DATABASE)
    subprocess.run([sys.executable, "manage.py", "migrate_schemas", "--shared"], cwd=BASE_DIR, env=_env(url),
                   check=True, capture_output=True)
    _probe(url, "setup", PREFIX, str(MSPS))
    db = database_from_url(url)
    with pgbouncer(host=db["HOST"], port=db["PORT"], user=db["USER"] or "postgres", password=db["PASSWORD"],
                   pool_size=2) as port:
        auth = urlsplit(url).netloc.rsplit("@", 1)[0]
        pooled_url = urlunsplit(urlsplit(url)._replace(netloc=f"{auth}@127.0.0.1:{port}"))
        configs = {
            "direct, django-tenants": (url, ""),
            "direct, pooled backend": (url, "transaction"),
            "PgBouncer, pooled backend": (pooled_url, "transaction"),
            "PgBouncer, django-tenants": (pooled_url, ""),
        }
        results: dict[str, dict] = {}
        for _round in range(2):
            for name, (target, mode) in configs.items():
                run = _probe(target, "mix", PREFIX, str(MSPS), str(clients), seconds, DATABASE_POOL_MODE=mode)
                if name not in results or run["per_second"] > results[name]["per_second"]:
                    results[name] = run
    base = results["direct, django-tenants"]
    print(f"{clients} clients on {MSPS} MSPs, {seconds} s a run, the better of 2; PgBouncer with 2 server connections")
    for name, run in results.items():
        if run["wrong"]:  # a page of the other MSP, or a redirect to sign in: fast, and not a figure to compare
            print(f"{name}: {run['wrong']} of {run['requests']} requests wrong or failed, e.g. {run['errors'][0]}")
            continue
        print(f"{name}: {run['per_second']:.1f} requests/s (ratio {run['per_second'] / base['per_second']:.2f}), "
              f"median {run['median_ms']:.1f} ms (ratio {run['median_ms'] / base['median_ms']:.2f}), "
              f"{run['requests']} requests")
    print(f"(scratch database {DATABASE} kept for inspection; dropped by the next run)")
