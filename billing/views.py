from django.shortcuts import render

from msp_billing.accounts.access import requires
from billing import selectors
from msp_billing.accounts.roles import Capability


@requires(Capability.VIEW_BILLING)
def dashboard(request):
    from msp_billing.tenants.today import tenant_today

    return render(request, "dashboard.html", {"figures": selectors.dashboard_figures(today=tenant_today())})


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def billing_home(request):
    return render(request, "billing/home.html")


@requires(Capability.VIEW_BILLING)
def reports(request):
    return render(request, "billing/reports.html")
