from django.shortcuts import render

from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability


@requires(Capability.LOG_TIME)
def ticket_list(request):
    return render(request, "tickets/ticket_list.html")
