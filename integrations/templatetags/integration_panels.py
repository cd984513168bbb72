"""Integration panels other pages include without their views knowing integrations/ (docs/architecture.md).

``{% load integration_panels %}{% failed_syncs_panel %}`` — the billing dashboard's "Failed
syncs": how many calls to the accounting system failed and are not resolved, the latest
few, and a link to the accounting page where they are retried or resolved. Renders
nothing when there are none, outside a tenant, or for a role that cannot see billing.

``{% accounting_export_button %}`` — inside a form of checkboxes named ``invoice`` (the
invoice list's selection): "Export to QuickBooks Online…", which submits the selection to
the export page. Renders nothing unless a system is connected and usable and the user may
change billing.
"""
from __future__ import annotations

from django import template
from django.db import connection as db_connection
from django_tenants.utils import get_public_schema_name

from integrations import registry
from integrations.selectors import failed_syncs_summary
from msp_billing.accounts.roles import Capability

register = template.Library()


@register.inclusion_tag("integrations/_failed_syncs_panel.html", takes_context=True)
def failed_syncs_panel(context, latest: int = 5) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if (user is None or not user.is_authenticated or not user.can(Capability.VIEW_BILLING)
            or db_connection.schema_name == get_public_schema_name()):
        return {"panel": None}
    return {"panel": failed_syncs_summary(latest=latest)}


@register.inclusion_tag("integrations/_export_button.html", takes_context=True)
def accounting_export_button(context) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if (user is None or not user.is_authenticated or not user.can(Capability.MANAGE_BILLING)
            or db_connection.schema_name == get_public_schema_name()):
        return {"system": None}
    connection = registry.active_connection()
    if connection is None or not connection.is_usable:
        return {"system": None}
    return {"system": connection.get_system_display()}
