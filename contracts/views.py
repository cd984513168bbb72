from django.shortcuts import render

from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def contract_list(request):
    return render(request, "contracts/contract_list.html")


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def customer_list(request):
    return render(request, "contracts/customer_list.html")
