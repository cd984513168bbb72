"""The demo MSP that `make run` creates or refreshes: the MSP and its users.

Its customers, contracts and work are imported afterwards by the onboarding app's ``demo_data_load``
(the ``seed_demo`` command does both)."""
from __future__ import annotations

from django.db import connection
from django_tenants.utils import schema_context

from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role
from msp_billing.tenants.models import Msp
from msp_billing.tenants.services import MspRequest, msp_create

DEMO_SUBDOMAIN = "demo"
DEMO_PASSWORD = "demo-billing-2026"
DEMO_USERS = [
    ("owner@demo.example", "Olivia Owner", Role.OWNER),
    ("billing@demo.example", "Bill Admin", Role.BILLING_ADMIN),
    ("accountant@demo.example", "Ada Accountant", Role.ACCOUNTANT),
    ("tech1@demo.example", "Tom Technician", Role.TECHNICIAN),
    ("tech2@demo.example", "Tess Technician", Role.TECHNICIAN),
    ("tech3@demo.example", "Theo Technician", Role.TECHNICIAN),
    ("tech4@demo.example", "Tara Technician", Role.TECHNICIAN),
    ("tech5@demo.example", "Tim Technician", Role.TECHNICIAN),
]


def demo_ensure() -> Msp:
    """Create the demo MSP, or bring its users back to the documented logins (idempotent)."""
    connection.set_schema_to_public()
    msp = Msp.objects.filter(subdomain=DEMO_SUBDOMAIN).first()
    if msp is None:
        email, name, _ = DEMO_USERS[0]
        msp = msp_create(
            request=MspRequest(
                name="Demo IT Services",
                subdomain=DEMO_SUBDOMAIN,
                region="north_america",
                currency="USD",
                timezone="America/New_York",
                admin_email=email,
                admin_password=DEMO_PASSWORD,
                admin_name=name,
            )
        )
    with schema_context(msp.schema_name):
        for email, name, role in DEMO_USERS:
            user, _ = User.objects.get_or_create(email=email, defaults={"full_name": name, "role": role})
            user.full_name, user.role, user.is_active = name, role, True
            if not user.check_password(DEMO_PASSWORD):
                # Only when it differs: a new hash would sign out everyone signed in as the user.
                user.set_password(DEMO_PASSWORD)
            user.save()
    return msp
