"""Which connector serves which system, and which one this MSP uses.

Connectors are named by dotted path and imported on first use, so the core never imports
them (docs/architecture.md) and a system whose module is absent simply is not offered.
"""
from __future__ import annotations

import logging
from functools import cache

from django.db import connection as db_connection
from django.utils.module_loading import import_string
from django_tenants.utils import get_public_schema_name

from integrations.base import Connector
from integrations.models import AccountingConnection

logger = logging.getLogger(__name__)

CONNECTORS: dict[str, str] = {
    "quickbooks": "integrations.quickbooks.connector.QuickBooksConnector",
    "xero": "integrations.xero.connector.XeroConnector",
}

_overrides: dict[str, type[Connector]] = {}


def register(system: str, connector_class: type[Connector]) -> None:
    """Use ``connector_class`` for ``system`` (tests use it to point a system at a subclass)."""
    _overrides[system] = connector_class


def unregister(system: str) -> None:
    _overrides.pop(system, None)


@cache
def _imported(path: str) -> type[Connector]:
    return import_string(path)


def connector_class(system: str) -> type[Connector]:
    """The connector class of ``system``; ``LookupError`` for an unknown or absent one."""
    if system in _overrides:
        return _overrides[system]
    if system not in CONNECTORS:
        raise LookupError(f"No connector for {system!r}")
    try:
        return _imported(CONNECTORS[system])
    except Exception as error:  # noqa: BLE001 — a broken connector module must not break the other pages
        logger.exception("connector %s could not be imported", system)
        raise LookupError(f"No connector for {system!r}") from error


def available_systems() -> list[str]:
    """Systems whose connector can be imported, in a stable order."""
    found = []
    for system in CONNECTORS:
        try:
            connector_class(system)
        except LookupError:
            continue
        found.append(system)
    return found


def active_connection():
    """This MSP's chosen connection (connected, or expired/revoked awaiting reconnect), or None."""

    return (AccountingConnection.objects.exclude(status=AccountingConnection.Status.DISCONNECTED)
            .order_by("-status_changed_at").first())


def connector_for(connection, *, export_run=None) -> Connector:
    return connector_class(connection.system)(connection, export_run=export_run)


def active_connector(*, export_run=None) -> Connector | None:
    """The connector for this MSP's chosen system, or None when nothing is connected."""
    connection = active_connection()
    return connector_for(connection, export_run=export_run) if connection else None


def owns_taxes() -> bool:
    """True while a system that computes taxes itself (QuickBooks Online) is connected: tax fields are greyed out."""
    return bool(tax_owner())


def tax_owner() -> str:
    """The label of the connected system that computes taxes itself ("QuickBooks Online"), or "".

    Registered with ``msp_billing.tax_owner`` (``IntegrationsConfig.ready``): the core asks
    there. Only a *connected* connection owns taxes; outside a tenant schema nothing does.
    """
    if getattr(db_connection, "schema_name", "public") == get_public_schema_name():
        return ""
    connection = active_connection()
    if connection is None or connection.status != connection.Status.CONNECTED:
        return ""
    try:
        connector = connector_class(connection.system)
    except LookupError:
        return ""
    return connector.label if connector.owns_taxes else ""
