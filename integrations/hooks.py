"""Tell other parts of the product that a sync with an accounting system failed, without
integrations/ importing them.

An outer app registers a listener at start-up (``AppConfig.ready``)::

    from integrations.hooks import register_sync_failure_listener

    register_sync_failure_listener(lambda *, log_id: ...)

The services call :func:`sync_failed_on_commit` when they record a failure the accounting
page lists (an ``IntegrationLog`` row with outcome ``failed``: a document that did not
export, a payment that could not be recorded). Listeners run after the row is committed,
in the tenant's schema; one that raises is logged and skipped.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from django.db import transaction

from msp_billing.hooks import hook_add, hook_remove

logger = logging.getLogger(__name__)


class SyncFailureListener(Protocol):
    def __call__(self, *, log_id: int) -> None: ...


_listeners: list[SyncFailureListener] = []


def register_sync_failure_listener(listener: SyncFailureListener) -> SyncFailureListener:
    return hook_add(_listeners, listener)


def unregister_sync_failure_listener(listener: SyncFailureListener) -> None:
    hook_remove(_listeners, listener)


def sync_failed(log_id: int) -> None:
    for listener in list(_listeners):
        try:
            listener(log_id=log_id)
        except Exception:  # noqa: BLE001 — the failure is recorded; the other listeners still hear of it
            logger.exception("sync failure listener %r failed for log %s", listener, log_id)


def sync_failed_on_commit(log_id: int) -> None:
    transaction.on_commit(lambda: sync_failed(log_id))


def sync_failure_listeners() -> tuple[Callable[..., None], ...]:
    return tuple(_listeners)
