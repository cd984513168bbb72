"""The demo MSP's billing data: customers, contracts and three months of work (demo_data/demo.json).

``demo_data_load()`` runs after ``msp_billing.tenants.demo.demo_ensure()`` when `make run`
seeds the demo (the ``seed_demo`` command). It is safe to run again: the import upserts by
natural key, so a second run changes nothing (and a newer demo.json only adds or updates what differs).
"""
from __future__ import annotations

from pathlib import Path

from django.db import connection
from django_tenants.utils import tenant_context

from msp_billing.accounts.models import User
from msp_billing.accounts.services import user_password_set
from msp_billing.tenants.demo import DEMO_PASSWORD, DEMO_SUBDOMAIN
from msp_billing.tenants.models import Msp
from onboarding.importing import ImportSummary, billing_data_import_file

DEMO_DATA = Path(__file__).resolve().parent / "demo_data" / "demo.json"
DEMO_OWNER = "owner@demo.example"


def demo_data_load(*, schema_name: str | None = None) -> ImportSummary:
    """Import demo.json into the demo MSP's schema (created by ``demo_ensure`` beforehand)."""
    connection.set_schema_to_public()
    msp = Msp.objects.get(**({"schema_name": schema_name} if schema_name else {"subdomain": DEMO_SUBDOMAIN}))
    with tenant_context(msp):
        acting_user = User.objects.filter(email=DEMO_OWNER).first()
        summary = billing_data_import_file(path=DEMO_DATA, acting_user=acting_user)
        # Technicians the import created have no password yet; in the demo they sign in like tech1.
        for user in User.objects.filter(email__endswith="@demo.example", technician_profile__isnull=False):
            if not user.has_usable_password():
                user_password_set(user=user, password=DEMO_PASSWORD)
    return summary
