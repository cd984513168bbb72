"""The Citus tests need the local cluster; it is built (once, cached under var/) and started here.

The short form (marked ``citus``) runs with the suite. The full proof (``citus_proof``: the
demo's month end compared with plain PostgreSQL, a schema moved while in use) runs only when
asked for by name, ``-m citus_proof``, as ``make citus-proof`` does.
"""
from __future__ import annotations

import pytest

from tests.scale import citus
from tests.support import deselect_unless_asked


def pytest_collection_modifyitems(config, items):
    deselect_unless_asked(config, items, "citus_proof")


@pytest.fixture(scope="session")
def citus_cluster():
    """The running cluster; skips only when Citus cannot be built on this machine."""
    try:
        citus.build()
    except citus.ClusterUnavailable as reason:
        pytest.skip(f"Citus cannot be built here: {reason}")
    started = not citus.running()
    if started:
        citus.script("start", timeout=300)
    yield citus
    if started:
        citus.script("stop", timeout=120)


@pytest.fixture
def citus_database(citus_cluster, request):
    """A fresh distributed database on the cluster, dropped afterwards."""
    import os

    name = f"{os.environ.get('TEST_DB_NAME', 'test_msp')}_citus_{request.node.name[:20].lower()}"
    url = citus_cluster.database(name)
    yield url
    citus_cluster.script("dropdb", name)
