"""A new MSP's schema, copied from a migrated template schema instead of running ~100 migrations.

The template (``MSP_TEMPLATE_SCHEMA``, never a tenant: sub-domains cannot contain ``_``) is
migrated like any MSP schema; ``pg_dump --schema-only`` writes its exact DDL — the same
constraint and index names, fill factors, triggers and function settings as the migrations
made (django-tenants' ``TENANT_BASE_SCHEMA`` clone function renames constraints and drops
table options, so it is not used). The DDL, with the template's name replaced by the new
schema's, runs in one transaction, then the template's
``django_migrations`` rows are copied. The DDL is kept in memory per set of migrations.

Used only while the template has every migration the code has; otherwise (a deploy with a
new migration, no ``pg_dump`` on the host, a Citus cluster) the schema is made by migrations.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess

import sqlparse
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction

from msp_billing.tenant_scan import migrations_on_disk, schemas_behind

log = logging.getLogger(__name__)

_ddl_cache: dict[tuple[str, ...], list[str]] = {}
# Dropped from the dump: comments, session settings (the app's connection keeps its own), the schema itself.
_SESSION_LINES = re.compile(r"^(--|SET |SELECT pg_catalog\.set_config|\\|CREATE SCHEMA |ALTER SCHEMA .* OWNER TO )")


def template_schema() -> str:
    return settings.MSP_TEMPLATE_SCHEMA


def _schema_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name])
        return cursor.fetchone() is not None


def _on_citus() -> bool:
    """Citus refuses the dump's ``ALTER TABLE … ADD GENERATED AS IDENTITY`` on distributed tables:
    on a Citus cluster MSP schemas are made by migrations (docs/scaling.md)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'")
        return cursor.fetchone() is not None


def template_ensure() -> bool:
    """Create or migrate the template until it has every migration; False when copying is off or impossible."""
    if not settings.MSP_CREATE_FROM_TEMPLATE or shutil.which("pg_dump") is None or _on_citus():
        return False
    if getattr(connection, "transaction_pooled", False) and not connection.settings_dict.get("DIRECT"):
        return False  # pg_dump's session settings would not survive a transaction pooler (DATABASE_DIRECT_URL)
    name = template_schema()
    connection.set_schema_to_public()
    if not _schema_exists(name):
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE SCHEMA {connection.ops.quote_name(name)}")
    if schemas_behind([name]):
        call_command("migrate_schemas", schema_name=name, tenant=True, interactive=False, verbosity=0)
        connection.set_schema_to_public()
    return not schemas_behind([name])


def _template_ddl() -> list[str]:
    key = tuple(migrations_on_disk())
    if key not in _ddl_cache:
        db = {**connection.settings_dict, **(connection.settings_dict.get("DIRECT") or {})}  # past a pooler
        env = {"PGPASSWORD": db.get("PASSWORD") or "", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        command = ["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "--schema", template_schema(),
                   "-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432), "-U", db.get("USER") or "postgres",
                   db["NAME"]]
        dump = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
        kept = "\n".join(line for line in dump.splitlines() if not _SESSION_LINES.match(line))
        _ddl_cache.clear()
        _ddl_cache[key] = [s for s in (statement.strip() for statement in sqlparse.split(kept)) if s]
    return _ddl_cache[key]


def schema_copy_from_template(schema_name: str) -> bool:
    """Create ``schema_name`` as a copy of the migrated template; False (nothing done) when it cannot."""
    if not template_ensure():
        return False
    try:
        statements = _template_ddl()
    except (OSError, subprocess.CalledProcessError) as error:
        log.warning("MSP template not copied (%s); migrating the new schema instead", error)
        return False
    template = re.escape(template_schema())
    new = connection.ops.quote_name(schema_name)
    # The dump names every object with its schema: "template".x or template.x; the trigger
    # functions' SET search_path names it as a string literal, 'template'.
    statements = [re.sub(rf"'{template}'", f"'{schema_name}'", re.sub(rf'"{template}"\.|\b{template}\.', f"{new}.", statement))
                  for statement in statements]
    with transaction.atomic(), connection.cursor() as cursor:  # one commit, and nothing left on failure
        cursor.execute(f"CREATE SCHEMA {new}")
        cursor.execute(";\n".join(statements))  # one round trip (the simple query protocol)
        cursor.execute(f"INSERT INTO {new}.django_migrations (app, name, applied) "
                       f"SELECT app, name, applied FROM {connection.ops.quote_name(template_schema())}.django_migrations")
    return True
