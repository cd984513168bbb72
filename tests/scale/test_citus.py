"""The app on a Citus cluster: every migration runs there and every MSP is distributed.

Short form (runs with the suite when Citus can be built): a fresh database on the
coordinator is migrated with ``migrate_schemas`` and MSPs are created through the sign-up
command until both workers hold one. Any migration Citus refuses fails this test.
"""
from __future__ import annotations

import pytest

from tests.scale.citus import PORT, create_msp, manage, query, schema_nodes

pytestmark = pytest.mark.citus

WORKERS = {PORT + 1, PORT + 2}


def test_fresh_database_migrates_and_each_msp_lands_on_a_worker(citus_database):
    url = citus_database
    manage(url, "migrate_schemas", "--shared")

    created = []
    for subdomain in ("north", "south", "east", "west"):
        create_msp(url, subdomain)
        created.append(subdomain)
        if set(schema_nodes(url).values()) == WORKERS:
            break
    nodes = schema_nodes(url)
    assert set(nodes) == set(created), "every MSP schema is a distributed schema"
    assert set(nodes.values()) == WORKERS, f"both workers hold MSPs: {nodes}"

    # Every table of an MSP lives on its worker; none stayed a local table on the coordinator.
    local = query(url, """
        SELECT t.schemaname || '.' || t.tablename FROM pg_tables t
        WHERE t.schemaname = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM citus_tables c
                          WHERE c.table_name = format('%%I.%%I', t.schemaname, t.tablename)::regclass)""",
                  (created,))
    assert local == []
    # The platform's own tables (MSPs, domains) stay plain tables on the coordinator.
    assert query(url, "SELECT count(*) FROM citus_tables WHERE table_name::text LIKE 'tenants_%%'") == [(0,)]

    # Each MSP recorded every tenant migration, the same list in every schema.
    applied = {s: query(url, f'SELECT app, name FROM "{s}".django_migrations ORDER BY app, name') for s in created}
    assert len({tuple(rows) for rows in applied.values()}) == 1
    assert len(applied[created[0]]) > 30

    # Each MSP sees its own owner only, on whichever worker it lives.
    for subdomain in created:
        assert query(url, f'SELECT email FROM "{subdomain}".accounts_user') == [(f"owner@{subdomain}.example",)]

    # A second migrate has nothing to apply and touches nothing.
    out = manage(url, "migrate_schemas")
    assert "Applying" not in out
