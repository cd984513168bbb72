"""The active MSP, and 'today' for it: period boundaries and due dates are in the MSP's own time zone."""
from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from msp_billing.tasks import TenantContextMissing


def tenant_today() -> dt.date:
    """Today in the time zone of the MSP whose schema is active.

    Works under ``schema_context`` too, where the connection only knows the schema name.
    """
    schema = getattr(connection, "schema_name", None)
    if not schema or schema == settings.PUBLIC_SCHEMA_NAME:
        raise TenantContextMissing("'today' is the MSP's local date: activate an MSP's schema first")
    name = getattr(getattr(connection, "tenant", None), "timezone", None)
    if not name:
        from msp_billing.tenants.models import Msp

        name = Msp.objects.filter(schema_name=schema).values_list("timezone", flat=True).first() or "UTC"
    return timezone.now().astimezone(zoneinfo.ZoneInfo(name)).date()


def current_msp():
    """The MSP whose schema is active — also under ``schema_context``, where the connection
    only carries a stand-in with the schema name."""
    from msp_billing.tenants.models import Msp

    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Msp) and tenant.schema_name == connection.schema_name:
        return tenant
    if connection.schema_name == settings.PUBLIC_SCHEMA_NAME:
        raise TenantContextMissing("no MSP is active: activate an MSP's schema first")
    return Msp.objects.get(schema_name=connection.schema_name)
