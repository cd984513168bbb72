"""The full fault run only when asked for by name (``-m chaos``, as ``make chaos`` does): another
``-m`` expression (``-m "not browser"``) replaces the default ``not chaos`` and would start it."""
from __future__ import annotations


def pytest_collection_modifyitems(config, items):
    if "chaos" in (config.option.markexpr or ""):
        return
    chosen = [item for item in items if item.get_closest_marker("chaos") is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen
