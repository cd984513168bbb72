"""A PgBouncer in transaction mode in front of the test database, with fewer server
connections than the tests have clients (started here, stopped with the module)."""
from __future__ import annotations

import pytest
from django.db import connection

from msp_billing.pooled_backend.pgbouncer import pgbouncer, pgbouncer_binary

POOL_SIZE = 2


@pytest.fixture(scope="module")
def bouncer(django_db_setup, django_db_blocker, tmp_path_factory):
    """The port of a PgBouncer (``pool_mode = transaction``, ``POOL_SIZE`` server connections)."""
    if pgbouncer_binary() is None:
        pytest.skip("pgbouncer is not installed (the Debian package `pgbouncer`; .ci/run installs it)")
    with django_db_blocker.unblock():
        db = dict(connection.settings_dict)
    log = tmp_path_factory.mktemp("pgbouncer") / "pgbouncer.log"
    with pgbouncer(host=db["HOST"], port=db["PORT"], user=db["USER"] or "postgres", password=db["PASSWORD"],
                   pool_size=POOL_SIZE, log=log) as port:
        yield port
