"""The full fault run only when asked for by name (``-m chaos``, as ``make chaos`` does): another
``-m`` expression (``-m "not browser"``) replaces the default ``not chaos`` and would start it."""
from __future__ import annotations

from tests.support import deselect_unless_asked


def pytest_collection_modifyitems(config, items):
    deselect_unless_asked(config, items, "chaos")
