"""The full proof on the Citus cluster (``-m citus_proof``, ``make citus-proof``).

The demo MSP and a few others on the cluster, until both workers hold MSPs; the demo's
month end billed on the cluster and on one plain PostgreSQL: every invoice equal to the
cent. Then the demo's schema moves to the other worker (``citus_schema_move``) while its
pages are read and a technician logs time: no error, no entry lost, and each MSP still
sees only its own rows.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from tests.scale.citus import BASE_DIR, PORT, billing_run, create_msp, manage, query, schema_nodes

pytestmark = [pytest.mark.citus, pytest.mark.citus_proof]

WORKERS = {PORT + 1, PORT + 2}


@pytest.fixture
def plain_database():
    """A fresh database on the plain PostgreSQL of DATABASE_URL."""
    base = os.environ["DATABASE_URL"]
    name = f"{os.environ.get('TEST_DB_NAME', 'test_msp')}_plain_proof"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _demo(url: str) -> None:
    manage(url, "migrate_schemas", "--shared")
    manage(url, "seed_demo", "--force")


def test_month_end_on_the_cluster_equals_plain_postgresql_and_a_schema_moves_while_in_use(citus_database, plain_database):
    cluster = citus_database
    _demo(cluster)
    for subdomain in ("north", "south", "east"):
        if set(schema_nodes(cluster).values()) == WORKERS:
            break
        create_msp(cluster, subdomain)
    assert set(schema_nodes(cluster).values()) == WORKERS, schema_nodes(cluster)
    _demo(plain_database)

    cutoff = dt.date.today().isoformat()
    on_cluster, on_plain = billing_run(cluster, "demo", cutoff), billing_run(plain_database, "demo", cutoff)
    assert on_cluster["invoices"], "the demo's month end bills something"
    assert on_cluster["invoices"] == on_plain["invoices"]  # every invoice, line and amount, to the cent
    assert on_cluster["totals"] == on_plain["totals"]

    # Move the demo to the other worker while it is in use.
    source = schema_nodes(cluster)["demo"]
    target = (WORKERS - {source}).pop()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="msp_billing.settings.test", DATABASE_URL=cluster)
    traffic = subprocess.Popen([sys.executable, "-m", "tests.scale._cluster_traffic", "20"], cwd=BASE_DIR, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    moved: dict = {}

    def move():
        time.sleep(4)
        began = time.monotonic()
        query(cluster, "SELECT citus_schema_move('demo', '127.0.0.1', %s)", (target,))
        moved["seconds"] = time.monotonic() - began

    mover = threading.Thread(target=move)
    mover.start()
    out, err = traffic.communicate(timeout=300)
    mover.join(timeout=300)
    assert traffic.returncode == 0, err[-4000:]
    report = json.loads(out.strip().splitlines()[-1])
    print(f"\nschema move: {moved.get('seconds', 0):.1f} s; {report['requests']} pages read "
          f"(slowest {report['slowest']:.2f} s), {len(report['logged'])} entries logged meanwhile")
    assert "seconds" in moved
    assert schema_nodes(cluster)["demo"] == target
    assert report["errors"] == [] and set(report["statuses"]) == {"200"}
    assert report["logged"], "time was logged during the move"
    kept = query(cluster, "SELECT id FROM demo.tickets_timeentry WHERE id = ANY(%s)", (report["logged"],))
    assert sorted(row[0] for row in kept) == sorted(report["logged"])  # nothing lost

    # Isolation: the other MSPs see none of the demo's rows, the demo none of theirs.
    for schema in set(schema_nodes(cluster)) - {"demo"}:
        assert query(cluster, f'SELECT count(*) FROM "{schema}".tickets_timeentry') == [(0,)]
        assert query(cluster, f'SELECT email FROM "{schema}".accounts_user') == [(f"owner@{schema}.example",)]
    assert query(cluster, "SELECT count(*) FROM demo.accounts_user WHERE email NOT LIKE '%%@demo.example'") == [(0,)]
