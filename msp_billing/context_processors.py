"""The main navigation, filtered by what the signed-in user's role may open, and ``can``:
what the role may do, so that templates show no button the user cannot use
(``{% if can.manage_billing %}<form method="post" …>{% endif %}``)."""
from django.urls import reverse

from msp_billing.accounts.roles import Capability

# (label, URL name, capability)
NAVIGATION = [
    ("Dashboard", "dashboard", Capability.VIEW_BILLING),
    ("Billing", "billing:home", Capability.VIEW_BILLING),
    ("Tickets", "tickets:list", Capability.LOG_TIME),
    ("Contracts", "contracts:list", Capability.VIEW_BILLING),
    ("Customers", "contracts:customer_list", Capability.VIEW_BILLING),
    ("Invoices", "invoices:list", Capability.VIEW_BILLING),
    ("Reports", "reports:index", Capability.VIEW_BILLING),
    ("Settings", "settings:home", Capability.MANAGE_SETTINGS),
]

# Which section a page belongs to, by the start of its view name; the first match wins.
SECTIONS = [
    ("tickets:technician_roles", "Settings"),
    ("invoices:settings", "Settings"),
    ("billing:schedule", "Settings"),
    ("integrations:", "Settings"),
    ("settings:", "Settings"),
    ("contracts:customer_", "Customers"),
    ("contracts:", "Contracts"),
    ("tickets:", "Tickets"),
    ("invoices:", "Invoices"),
    ("billing:reports", "Reports"),
    ("reports:", "Reports"),
    ("billing:", "Billing"),
    ("dashboard", "Dashboard"),
]


def _active_label(view_name: str) -> str | None:
    return next((label for prefix, label in SECTIONS if view_name.startswith(prefix)), None)


def navigation(request):
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or not user.is_authenticated or tenant is None or tenant.is_public:
        return {"nav_items": [], "can": {}}
    match = request.resolver_match
    active = _active_label(match.view_name) if match else None
    return {
        "nav_items": [
            {"label": label, "url": reverse(name), "active": label == active}
            for label, name, capability in NAVIGATION
            if user.can(capability)
        ],
        "can": {capability.value: user.can(capability) for capability in Capability},
    }
