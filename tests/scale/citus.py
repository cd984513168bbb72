"""The local Citus cluster (scripts/citus-cluster) as the tests use it.

Everything runs as the real commands an operator runs: the cluster script, then
``manage.py`` in a subprocess with ``DATABASE_URL`` pointing at a database on the
coordinator, so the test process keeps its own plain-PostgreSQL test database.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

BASE_DIR = Path(__file__).resolve().parents[2]
SCRIPT = BASE_DIR / "scripts" / "citus-cluster"
PORT = int(os.environ.get("CITUS_PORT", "55432"))


class ClusterUnavailable(Exception):
    """Citus cannot be built on this machine (no PostgreSQL headers, no tarball, no compiler)."""


def script(*args: str, timeout: float = 900) -> str:
    result = subprocess.run([str(SCRIPT), *args], cwd=BASE_DIR, capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"scripts/citus-cluster {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


def build() -> None:
    result = subprocess.run([str(SCRIPT), "build"], cwd=BASE_DIR, capture_output=True, text=True, timeout=1800)
    if result.returncode:
        raise ClusterUnavailable((result.stderr or result.stdout).strip().splitlines()[-1])


def running() -> bool:
    return subprocess.run([str(SCRIPT), "status"], cwd=BASE_DIR, capture_output=True).returncode == 0


def database(name: str) -> str:
    """A fresh distributed database ``name`` (dropped first); its URL."""
    script("dropdb", name)
    return script("createdb", name).splitlines()[-1]


def node_url(database: str, port: int = PORT) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def query(url: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def manage(url: str, *args: str, timeout: float = 900) -> str:
    """``manage.py`` against the database at ``url``; its output (raises with it on failure)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="msp_billing.settings.test", DATABASE_URL=url)
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-6000:]}")
    return result.stdout


def create_msp(url: str, subdomain: str, *, currency: str = "EUR") -> None:
    manage(url, "create_msp", "--name", f"{subdomain.title()} IT", "--subdomain", subdomain, "--region", "europe",
           "--currency", currency, "--timezone", "Europe/Berlin", "--admin-email", f"owner@{subdomain}.example",
           "--admin-password", "citus-proof-2026")


def billing_run(url: str, tenant: str, cutoff: str) -> dict:
    return json.loads(manage(url, "billing_run", "--tenant", tenant, "--cutoff", cutoff, "--json"))


def schema_nodes(url: str) -> dict[str, int]:
    """Each distributed tenant schema and the port of the worker that holds it."""
    rows = query(url, """
        SELECT s.schema_name::text, min(sh.nodeport)
        FROM citus_schemas s JOIN citus_shards sh ON sh.colocation_id = s.colocation_id
        GROUP BY 1""")
    return dict(rows)
