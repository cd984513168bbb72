"""Who may do what. Views declare the capability they need; roles grant capabilities."""
from __future__ import annotations

from enum import StrEnum

from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    BILLING_ADMIN = "billing_admin", "Billing admin"
    TECHNICIAN = "technician", "Technician"
    ACCOUNTANT = "accountant", "Accountant"


class Capability(StrEnum):
    LOG_TIME = "log_time"  # tickets and one's own time
    VIEW_BILLING = "view_billing"  # money: dashboard, contracts, customers, invoices, reports
    MANAGE_BILLING = "manage_billing"  # change anything that affects money
    MANAGE_SETTINGS = "manage_settings"  # tenant settings
    MANAGE_USERS = "manage_users"  # invite users, change roles


# Capabilities that only show things, each with the capability needed to post on their pages.
READ_ONLY: dict[Capability, Capability] = {Capability.VIEW_BILLING: Capability.MANAGE_BILLING}

ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    Role.OWNER: frozenset(Capability),
    Role.BILLING_ADMIN: frozenset(
        {Capability.LOG_TIME, Capability.VIEW_BILLING, Capability.MANAGE_BILLING, Capability.MANAGE_SETTINGS}
    ),
    Role.ACCOUNTANT: frozenset({Capability.VIEW_BILLING}),
    Role.TECHNICIAN: frozenset({Capability.LOG_TIME}),
}


def role_has(role: str, capability: Capability) -> bool:
    return capability in ROLE_CAPABILITIES.get(role, frozenset())
