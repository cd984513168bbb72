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


def msps_drop(*msps) -> None:
    """Drop the benchmark's MSPs and their schemas (``None`` where one was never made)."""
    from django.db import connection

    connection.set_schema_to_public()
    for msp in msps:
        if msp is not None:
            msp.delete(force_drop=True)


def signed_in_client(msp, email: str = "bench@example.com"):
    """A test client on the MSP's own host name, signed in as ``email``; the connection left on public."""
    from django.db import connection
    from django.test import Client
    from django_tenants.utils import schema_context

    from msp_billing.accounts.models import User

    host = msp.domains.filter(is_primary=True).values_list("domain", flat=True).first()
    client = Client(HTTP_HOST=host)
    with schema_context(msp.schema_name):
        client.force_login(User.objects.get(email=email))
    connection.set_schema_to_public()
    return client


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
