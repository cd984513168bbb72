"""The registries behind the hooks (``contracts.hooks``, ``invoices.hooks``,
``msp_billing.tax_owner``): an inner app keeps a list of functions that outer apps add at
start-up (``AppConfig.ready``) and calls them when something happens."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

Hook = TypeVar("Hook", bound=Callable)


def hook_add(hooks: list, hook: Hook) -> Hook:
    """Add ``hook`` once (``ready()`` may run more than once in tests); returns it, so it can decorate."""
    if hook not in hooks:
        hooks.append(hook)
    return hook


def hook_remove(hooks: list, hook: Callable) -> None:
    """Take ``hook`` out again (mainly for tests)."""
    if hook in hooks:
        hooks.remove(hook)
