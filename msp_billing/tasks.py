"""Task bases and platform tasks.

``TenantOnlyTask`` is the base of every task that works on one MSP's data: it runs in the
schema of the tenant that queued it and refuses to run in the public schema, where it
would silently see no data (or the platform's).
"""
from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db import connection
from tenant_schemas_celery.task import TenantTask


class TenantContextMissing(RuntimeError):
    """A tenant task found itself in the public schema."""


class TenantOnlyTask(TenantTask):
    abstract = True

    def __call__(self, *args, **kwargs):
        if connection.schema_name == settings.PUBLIC_SCHEMA_NAME:
            raise TenantContextMissing(
                f"{self.name} must be queued inside a tenant's schema, not the public schema"
            )
        return super().__call__(*args, **kwargs)


def tenant_task(*args, **kwargs):
    """``@tenant_task`` = ``@shared_task(base=TenantOnlyTask)``."""
    kwargs.setdefault("base", TenantOnlyTask)
    return shared_task(*args, **kwargs)


@shared_task(base=TenantTask)
def fan_out_to_tenants(task_name: str, task_kwargs: dict | None = None, due: str | None = None) -> int:
    """Queue ``task_name`` (with ``task_kwargs``) in every MSP's schema (beat runs in the public schema).

    ``due``: the dotted path of a function returning the queryset of work the task would do;
    the task is then queued only in the MSPs where it has a row, found with one query across
    the schemas (``msp_billing.tenant_scan``)."""
    from django.utils.module_loading import import_string
    from django_tenants.utils import schema_context

    from msp_billing.celery import app
    from msp_billing.tenant_scan import schemas_with, tenant_schemas

    schemas = schemas_with(import_string(due)) if due else tenant_schemas()
    for schema_name in schemas:
        with schema_context(schema_name):
            app.send_task(task_name, kwargs=task_kwargs or {})
    return len(schemas)
