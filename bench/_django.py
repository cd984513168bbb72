"""Shared start-up for benchmarks: Django on the local settings, shared schema migrated."""
from __future__ import annotations

import os


def django_ready() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp_billing.settings.local")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "--shared", verbosity=0)


def fresh_msp(*, schema: str, name: str, password: str = "bench-password-123"):
    """A new MSP for one benchmark in ``schema`` (the one a previous run left is dropped first);
    its owner is bench@example.com."""
    from django.db import connection

    from msp_billing.tenants.models import Msp
    from msp_billing.tenants.services import MspRequest, msp_create

    connection.set_schema_to_public()
    old = Msp.objects.filter(schema_name=schema).first()
    if old:
        old.delete(force_drop=True)
    return msp_create(request=MspRequest(name=name, subdomain=schema.replace("_", "-"), region="europe", currency="EUR",
                                         timezone="Europe/Berlin", admin_email="bench@example.com",
                                         admin_password=password))


def scratch_database(name: str) -> str:
    """A fresh database ``name`` on the server of ``DATABASE_URL`` (dropped first; the embedded
    PostgreSQL of the local settings when unset); its URL."""
    import os
    from urllib.parse import urlsplit, urlunsplit

    base = os.environ.get("DATABASE_URL")
    if not base:
        from msp_billing.embedded import ensure_embedded_services

        ensure_embedded_services()
        base = os.environ["DATABASE_URL"]
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))
