"""Many MSP schemas quickly, for the benchmark roll-up's tests and benchmark.

A real MSP is created by running every migration in its new schema (seconds each). To
have hundreds, ``msp_with_copied_schema`` makes the schema with one statement that creates
every table of an existing MSP's schema again (``CREATE TABLE … (LIKE … INCLUDING ALL)``:
columns, defaults, identity sequences, checks and indexes; not foreign keys or triggers),
then saves the ``Msp`` row — its schema exists, so nothing is migrated.
"""
from __future__ import annotations

from django.db import connection

_COPY = """
DO $copy$
DECLARE t text;
BEGIN
  EXECUTE format('CREATE SCHEMA %%I', %(new)s);
  FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = %(base)s LOOP
    EXECUTE format('CREATE TABLE %%I.%%I (LIKE %%I.%%I INCLUDING ALL)', %(new)s, t, %(base)s, t);
  END LOOP;
END
$copy$;
"""


def schema_copy(base: str, new: str) -> None:
    """Create schema ``new`` with the tables (empty) of schema ``base``."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(_COPY, {"base": base, "new": new})


def msp_with_copied_schema(*, schema: str, base: str = "alpha", region: str = "europe", currency: str = "EUR", name: str = ""):
    from msp_billing.tenants.models import Msp

    schema_copy(base, schema)
    msp = Msp(schema_name=schema, name=name or schema, subdomain=schema.replace("_", "-"), region=region,
              currency=currency, timezone="UTC")
    msp.save()
    return msp
