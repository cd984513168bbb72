"""Tell other apps that routing may have changed, without contracts/ importing them.

Contracts know nothing of tickets (docs/architecture.md), yet when a contract's priority,
exclusion set, dates, status or type change — or an exclusion set's members do — the
unbilled time entries of the customer may now belong to another contract. The tickets
app registers a listener here at start-up (``AppConfig.ready``) and re-routes them.

Listeners run synchronously inside the caller's transaction, so the change and the
re-routing commit or roll back together (one transaction per user action). A listener
that wants background work schedules it with ``transaction.on_commit`` itself.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Protocol

from msp_billing.hooks import hook_add, hook_remove


class RoutingListener(Protocol):
    def __call__(self, *, contract_ids: list[int], effective_date: dt.date | None, customer_ids: list[int]) -> None: ...


_listeners: list[RoutingListener] = []


def register_routing_listener(listener: RoutingListener) -> RoutingListener:
    """Call ``listener(contract_ids=..., effective_date=..., customer_ids=...)`` on every routing change."""
    return hook_add(_listeners, listener)


def unregister_routing_listener(listener: RoutingListener) -> None:
    hook_remove(_listeners, listener)


def notify_routing_changed(*, contract_ids: Iterable[int], effective_date: dt.date | None,
                           customer_ids: Iterable[int] = ()) -> None:
    """Routing of entries dated on or after ``effective_date`` (None: every unbilled entry) may
    have changed for the customers of these contracts, for ``customer_ids`` (a customer whose
    parent or default Hourly contract changed, whether or not it has contracts of its own),
    and for the sites of all of them."""
    ids = sorted({int(contract_id) for contract_id in contract_ids})
    customers = sorted({int(customer_id) for customer_id in customer_ids})
    if not ids and not customers:
        return
    for listener in list(_listeners):
        listener(contract_ids=ids, effective_date=effective_date, customer_ids=customers)


def routing_listeners() -> tuple[Callable[..., None], ...]:
    return tuple(_listeners)
