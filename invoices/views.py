from django.shortcuts import render

from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability


@requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)
def invoice_list(request):
    return render(request, "invoices/invoice_list.html")
