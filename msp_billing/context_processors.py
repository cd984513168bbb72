"""The main navigation, filtered by what the signed-in user's role may open."""
from django.urls import reverse

from msp_billing.accounts.roles import Capability

# (label, URL name, capability, namespace or view that marks it active)
NAVIGATION = [
    ("Dashboard", "dashboard", Capability.VIEW_BILLING, "dashboard"),
    ("Billing", "billing:home", Capability.VIEW_BILLING, "billing:home"),
    ("Tickets", "tickets:list", Capability.LOG_TIME, "tickets"),
    ("Contracts", "contracts:list", Capability.VIEW_BILLING, "contracts:list"),
    ("Customers", "contracts:customer_list", Capability.VIEW_BILLING, "contracts:customer_list"),
    ("Invoices", "invoices:list", Capability.VIEW_BILLING, "invoices"),
    ("Reports", "billing:reports", Capability.VIEW_BILLING, "billing:reports"),
    ("Settings", "settings:home", Capability.MANAGE_SETTINGS, "settings"),
]


def navigation(request):
    user = getattr(request, "user", None)
    tenant = getattr(request, "tenant", None)
    if user is None or not user.is_authenticated or tenant is None or tenant.is_public:
        return {"nav_items": []}
    match = request.resolver_match
    here = {match.view_name, match.namespace} if match else set()
    return {
        "nav_items": [
            {"label": label, "url": reverse(name), "active": marker in here}
            for label, name, capability, marker in NAVIGATION
            if user.can(capability)
        ]
    }
