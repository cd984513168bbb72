"""Behind a PgBouncer in transaction mode no query runs in another MSP's schema.

Two MSPs (``alpha`` and ``beta``) are hammered by several threads each through one pool of
``POOL_SIZE`` server connections: autocommit statements, ORM reads, ``.iterator()``,
``executemany``, transactions with a savepoint rolled back. Each query reports the schema it
ran in, the domain of the users it read (each MSP's users are ``…@<msp>.example``) and the
server connection that ran it. With ``msp_billing.pooled_backend`` no query ran in the other's
schema; with plain django-tenants through the same pool queries do — the check can fail.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager

from django.db import DataError, connection, connections, transaction
from django_tenants.utils import schema_context

from msp_billing.pooled_backend import pooled_database
from tests.pooling.conftest import POOL_SIZE
from tests.support import BASE_DIR, committed_msp, email_for

CLIENTS_PER_MSP = 3
ROUNDS = 12
PROBE = ("SELECT current_schema(), (SELECT string_agg(DISTINCT split_part(email, '@', 2), ',') FROM accounts_user), "
         "pg_backend_pid()")


@contextmanager
def pool_alias(port: int, *, pooled: bool, name: str = "through_pool"):
    """A database alias for the test database through the PgBouncer: the pooled backend
    (``DATABASE_POOL_MODE=transaction``) or plain django-tenants — without server-side cursors,
    which fail outright behind the pool, so that what is left is the search_path. Each thread
    gets its own connection."""
    db = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": str(port), "DISABLE_SERVER_SIDE_CURSORS": True}
    connections.settings[name] = pooled_database(db, "transaction") if pooled else db
    try:
        yield name
    finally:
        del connections.settings[name]


def hammer(alias: str, schemas: tuple[str, ...], *, clients: int = CLIENTS_PER_MSP, rounds: int = ROUNDS):
    """Every query's (schema wanted, schema it ran in, domains of the users it read, server pid)."""
    from msp_billing.accounts.models import User

    records: list[tuple] = []
    errors: list[BaseException] = []
    start = threading.Barrier(clients * len(schemas))

    def probe(cursor, schema):
        cursor.execute(PROBE)
        records.append((schema, *cursor.fetchone()))

    def client(schema: str) -> None:
        db = connections[alias]
        try:
            db.set_schema(schema)
            start.wait(timeout=30)
            for _ in range(rounds):
                with db.cursor() as cursor:  # autocommit: each statement may reach another server connection
                    probe(cursor, schema)
                    probe(cursor, schema)
                emails = list(User.objects.using(alias).values_list("email", flat=True))
                records.append((schema, None, ",".join(sorted({e.split("@")[1] for e in emails})) or None, None))
                emails = [u.email for u in User.objects.using(alias).order_by("pk").iterator(chunk_size=2)]
                records.append((schema, None, ",".join(sorted({e.split("@")[1] for e in emails})) or None, None))
                with db.cursor() as cursor:
                    cursor.executemany("UPDATE accounts_user SET full_name = full_name WHERE email = %s",
                                       [(email,) for email in emails])
                    records.append((schema, None, f"{schema}.example" if cursor.rowcount == len(emails) else
                                    f"{cursor.rowcount} of {len(emails)} own users updated", None))
                with transaction.atomic(using=alias), db.cursor() as cursor:
                    probe(cursor, schema)
                    try:
                        with transaction.atomic(using=alias):
                            cursor.execute("SELECT 1 / 0")
                    except DataError:
                        pass
                    probe(cursor, schema)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
            start.abort()
        finally:
            db.close()

    threads = [threading.Thread(target=client, args=(schema,)) for schema in schemas for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return records, errors


def wrong(records) -> list[tuple]:
    return [r for r in records if r[1] not in (None, r[0]) or r[2] != f"{r[0]}.example"]


def test_two_msps_hammering_one_pool_never_read_each_others_schema(bouncer, django_db_blocker):
    with django_db_blocker.unblock(), pool_alias(bouncer, pooled=True) as alias:
        records, errors = hammer(alias, ("alpha", "beta"))
    assert not errors, errors
    per_msp = {schema: sum(1 for r in records if r[0] == schema) for schema in ("alpha", "beta")}
    assert per_msp == {"alpha": CLIENTS_PER_MSP * ROUNDS * 7, "beta": CLIENTS_PER_MSP * ROUNDS * 7}
    assert wrong(records) == []
    # The pool was really shared: 6 clients, at most POOL_SIZE server connections, each serving both MSPs.
    servers = {pid: {r[0] for r in records if r[3] == pid} for pid in {r[3] for r in records if r[3]}}
    assert 1 <= len(servers) <= POOL_SIZE < 2 * CLIENTS_PER_MSP
    assert any(msps == {"alpha", "beta"} for msps in servers.values()), servers


def test_plain_django_tenants_through_the_same_pool_runs_queries_in_the_other_schema(bouncer, django_db_blocker):
    """Without the pooled backend the search_path set once per connection stays on whichever
    server connection ran it: the same hammer sees queries in the other MSP's schema."""
    leaked: list[tuple] = []
    with django_db_blocker.unblock(), pool_alias(bouncer, pooled=False) as alias:
        for _ in range(3):  # almost always the first round; the check must not depend on luck
            records, errors = hammer(alias, ("alpha", "beta"), rounds=6)
            assert not errors, errors
            leaked = [r for r in wrong(records) if r[1] is not None and r[1] != r[0]]
            if leaked:
                break
    assert leaked, "no query ran in another schema: the hammer would not notice a leak"


def test_the_app_through_the_pool_pages_service_writes_and_the_export_lock(bouncer, django_db_blocker, tmp_path):
    """The whole app on the pooled backend (``DATABASE_POOL_MODE=transaction``) in a process of
    its own, while beta is hammered through the same pool by plain django-tenants clients that
    leave beta's search_path on the server connections: customers written through the service
    land in the MSP's schema, its pages show them, the export lock is held and released."""
    subdomain = "pooled"
    with committed_msp(django_db_blocker, name="Pooled Managed IT", subdomain=subdomain,
                       admin_email=email_for(subdomain, "owner")) as msp:
        with django_db_blocker.unblock():
            url = f"postgres://{connection.settings_dict['USER'] or 'postgres'}@127.0.0.1:{bouncer}/{connection.settings_dict['NAME']}"
        env = dict(os.environ, DJANGO_SETTINGS_MODULE="msp_billing.settings.test", DATABASE_URL=url,
                   DATABASE_POOL_MODE="transaction", TEST_DB_NAME=connection.settings_dict["NAME"])
        stop = threading.Event()
        noise_errors: list[BaseException] = []

        def noise():
            with django_db_blocker.unblock(), pool_alias(bouncer, pooled=False, name="plain_noise") as alias:
                while not stop.is_set():
                    _records, errors = hammer(alias, ("beta",), clients=2, rounds=2)
                    noise_errors.extend(errors)

        noisy = threading.Thread(target=noise)
        noisy.start()
        try:
            app = subprocess.run([sys.executable, "-m", "tests.pooling._pooled_app", subdomain], cwd=BASE_DIR, env=env,
                                 capture_output=True, text=True, timeout=300)
        finally:
            stop.set()
            noisy.join(timeout=120)
        assert app.returncode == 0, app.stderr[-4000:]
        report = json.loads(app.stdout.strip().splitlines()[-1])
        assert report["errors"] == []
        assert report["pooled"] is True
        assert report["pages"] and set(report["pages"]) == {"200 with the customer"}
        assert report["lock"] == {"taken": True, "taken_again_elsewhere": False, "free_after_release": True}
        with django_db_blocker.unblock():
            from contracts.models import Customer

            with schema_context(msp.schema_name):
                mine = set(Customer.objects.filter(legal_name__startswith="Pooled customer").values_list("legal_name", flat=True))
            with schema_context("beta"):
                in_beta = Customer.objects.filter(legal_name__startswith="Pooled customer").count()
        assert mine == set(report["customers"]) and len(mine) == report["written"] > 0
        assert in_beta == 0
        assert not noise_errors, noise_errors
