from django.shortcuts import render

from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def billing_home(request):
    return render(request, "billing/home.html")


@requires(Capability.VIEW_BILLING)
def reports(request):
    return render(request, "billing/reports.html")
