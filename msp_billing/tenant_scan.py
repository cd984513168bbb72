"""Questions asked of every MSP schema at once: one query per few hundred MSPs, not one per MSP.

Beat used to queue each periodic task once in every MSP (``fan_out_to_tenants``): at 5,000
MSPs the export resume every 5 minutes and the PDF sweep every 2 minutes alone are 5 million
tasks a day, nearly all of which find nothing to do. ``schemas_with`` asks the database which
schemas have due work — the same queryset the task would use, compiled once and run against
each schema's tables in one ``UNION ALL`` — so beat queues the task only where it has work.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cache

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django_tenants.utils import get_tenant_model

CHUNK = 500  # schemas per query: the statement stays a few hundred kB


def tenant_schemas() -> list[str]:
    return list(get_tenant_model().objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
                .order_by("schema_name").values_list("schema_name", flat=True))


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


@cache
def _tenant_table_names() -> re.Pattern:
    """Quoted names of the tables every MSP schema has (the tenant apps' models)."""
    names = set()
    for entry in settings.TENANT_APPS:
        config = next((c for c in apps.get_app_configs() if c.name == entry), None)
        if config is not None:
            names |= {model._meta.db_table for model in config.get_models(include_auto_created=True)}
    return re.compile("|".join(re.escape(_quoted(name)) for name in sorted(names, key=len, reverse=True)))


def schemas_with(queryset: QuerySet | Callable[[], QuerySet], schemas: Iterable[str] | None = None) -> list[str]:
    """The schemas (of ``schemas``, default every MSP) in which ``queryset`` has a row.

    ``queryset`` names tables without a schema, as every tenant query does; its SQL is
    compiled once and each reference to a tenant table (subqueries too) is qualified with
    each schema in turn.
    """
    if callable(queryset):
        queryset = queryset()
    sql, params = queryset.values("pk")[:1].query.sql_with_params()
    tables = _tenant_table_names()
    found: list[str] = []
    schemas = list(tenant_schemas() if schemas is None else schemas)
    for start in range(0, len(schemas), CHUNK):
        parts, all_params = [], []
        for schema in schemas[start:start + CHUNK]:
            prefix = _quoted(schema) + "."
            qualified = tables.sub(lambda match, prefix=prefix: prefix + match.group(0), sql)
            parts.append(f"SELECT %s::text WHERE EXISTS ({qualified})")
            all_params += [schema, *params]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), all_params)
            found += [row[0] for row in cursor.fetchall()]
    return found


def migrations_on_disk() -> list[str]:
    """``app.name`` of every migration the code has: what each MSP schema records once migrated."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    return sorted(f"{app}.{name}" for app, name in loader.disk_migrations)


def schemas_behind(schemas: Iterable[str] | None = None) -> list[str]:
    """The schemas (default every MSP) missing a migration the code has: one query per few hundred
    schemas, comparing each schema's ``django_migrations`` with the migrations on disk."""
    expected = migrations_on_disk()
    schemas = list(tenant_schemas() if schemas is None else schemas)
    with connection.cursor() as cursor:  # a schema not migrated at all has no django_migrations yet
        cursor.execute("SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
                       "WHERE c.relname = 'django_migrations' AND n.nspname = ANY(%s)", [schemas])
        recorded = {row[0] for row in cursor.fetchall()}
    found = [schema for schema in schemas if schema not in recorded]
    schemas = [schema for schema in schemas if schema in recorded]
    for start in range(0, len(schemas), CHUNK):
        parts, params = [], [expected]
        for schema in schemas[start:start + CHUNK]:
            parts.append(f"SELECT %s::text WHERE EXISTS (SELECT 1 FROM expected e WHERE NOT EXISTS ("
                         f"SELECT 1 FROM {_quoted(schema)}.django_migrations m WHERE m.app || '.' || m.name = e.key))")
            params.append(schema)
        with connection.cursor() as cursor:
            cursor.execute("WITH expected(key) AS (SELECT unnest(%s::text[])) " + " UNION ALL ".join(parts), params)
            found += [row[0] for row in cursor.fetchall()]
    return found
