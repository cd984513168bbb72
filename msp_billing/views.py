from django.shortcuts import redirect

from msp_billing.accounts.roles import Capability


def home(request):
    """Each role lands where its work is: billing people on the dashboard, technicians on tickets."""
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    if request.user.can(Capability.VIEW_BILLING):
        return redirect("dashboard")
    if request.user.can(Capability.LOG_TIME):
        return redirect("tickets:list")
    return redirect("accounts:login")


home.required_capability = None

