"""Tell other parts of the product that a billing run saved a batch, without billing/ importing them.

An outer app registers a listener at start-up (``AppConfig.ready``)::

    from billing.hooks import register_batch_run_listener

    register_batch_run_listener(lambda *, batch_id: ...)

``billing.run.batch_run`` calls :func:`batch_ran` through ``transaction.on_commit``: after the
batch and its drafts are committed, never for a run that rolled back. The tenant's schema is
still active when listeners run. A listener that raises is logged and skipped.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from django.db import transaction

from msp_billing.hooks import hook_add, hook_remove

logger = logging.getLogger(__name__)


class BatchRunListener(Protocol):
    def __call__(self, *, batch_id: int) -> None: ...


_listeners: list[BatchRunListener] = []


def register_batch_run_listener(listener: BatchRunListener) -> BatchRunListener:
    """Call ``listener(batch_id=...)`` after every committed billing run (once, however often registered)."""
    return hook_add(_listeners, listener)


def unregister_batch_run_listener(listener: BatchRunListener) -> None:
    hook_remove(_listeners, listener)


def batch_ran(batch_id: int) -> None:
    """Run every listener for one committed batch."""
    for listener in list(_listeners):
        try:
            listener(batch_id=batch_id)
        except Exception:  # noqa: BLE001 — the run is committed; the other listeners still hear of it
            logger.exception("batch run listener %r failed for batch %s", listener, batch_id)


def batch_ran_on_commit(batch_id: int) -> None:
    transaction.on_commit(lambda: batch_ran(batch_id))


def batch_run_listeners() -> tuple[Callable[..., None], ...]:
    return tuple(_listeners)
