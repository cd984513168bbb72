"""A new MSP's schema is a copy of the migrated template; migrate_schemas touches only schemas behind."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from msp_billing.tenant_scan import schemas_behind
from msp_billing.tenants.migrating import get_executor
from msp_billing.tenants.services import MspRequest, msp_create

pytestmark = pytest.mark.django_db


def _shape(schema: str) -> dict[str, list]:
    """What a schema's migrations made, with the schema's name taken out."""
    def rows(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql, [schema])
            return sorted(tuple(str(v).replace(schema, "S") for v in row) for row in cursor.fetchall())

    return {
        "columns": rows("SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, ''), "
                        "is_identity FROM information_schema.columns WHERE table_schema = %s"),
        # Constraints by name and kind; CHECK bodies may be written back in another but equal form.
        "constraints": rows("SELECT conrelid::regclass::text, conname, contype, "
                            "CASE WHEN contype = 'c' THEN '' ELSE pg_get_constraintdef(c.oid) END, condeferrable "
                            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = %s"),
        "indexes": rows("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s"),
        "triggers": rows("SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT t.tgisinternal"),
        "options": rows("SELECT c.relname, coalesce(c.reloptions::text, '') FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"),
        "functions": rows("SELECT p.proname, p.prosrc, coalesce(p.proconfig::text, '') FROM pg_proc p "
                          "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s"),
    }


def _create(subdomain: str) -> str:
    msp = msp_create(request=MspRequest(name=subdomain.title(), subdomain=subdomain, region="europe", currency="EUR",
                                        timezone="Europe/Berlin", admin_email=f"owner@{subdomain}.example",
                                        admin_password="template-test-2026"))
    connection.set_schema_to_public()
    return msp.schema_name


def test_a_copied_schema_is_what_the_migrations_make_and_its_triggers_use_its_own_tables():
    copied = _create("copied-msp")
    with override_settings(MSP_CREATE_FROM_TEMPLATE=False):
        migrated = _create("migrated-msp")
    assert _shape(copied) == _shape(migrated)
    assert schemas_behind([copied, migrated]) == []  # every migration recorded in both

    # The lock triggers' functions look up the copy's own tickets (their search_path), not the template's.
    with connection.cursor() as cursor:
        cursor.execute("SELECT p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                       "WHERE n.nspname = %s AND p.proname = 'billing_lock_ticket_children'", [copied])
        assert cursor.fetchone()[0] == ["search_path=copied_msp, public"]
    with schema_context(copied):
        from msp_billing.accounts.models import User

        assert list(User.objects.values_list("email", flat=True)) == ["owner@copied-msp.example"]


def test_only_schemas_behind_are_migrated():
    assert schemas_behind(["alpha", "beta", "demo"]) == []
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM beta.django_migrations WHERE id = (SELECT max(id) FROM beta.django_migrations)")
    assert schemas_behind(["alpha", "beta", "demo"]) == ["beta"]

    executor = get_executor("standard")(args=(), options={"verbosity": 0})
    assert executor._behind(["alpha", "beta", "demo"]) == ["beta"]
    # A run aimed at one migration (or faked, planned, pruned) sees every schema.
    aimed = get_executor("standard")(args=(), options={"verbosity": 0, "app_label": "tickets"})
    assert aimed._behind(["alpha", "beta", "demo"]) == ["alpha", "beta", "demo"]
