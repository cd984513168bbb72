"""Shared start-up for benchmarks: Django on the local settings, shared schema migrated."""
from __future__ import annotations

import os


def django_ready() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp_billing.settings.local")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate_schemas", "--shared", verbosity=0)
