from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from msp_billing.accounts.access import open_to_all
from msp_billing.tenants.forms import SignupForm
from msp_billing.tenants.services import MspRequest, msp_create
from msp_billing.tenants.urls import tenant_url


@open_to_all
def signup(request):
    """Public sign-up: a new MSP gets its schema, its sub-domain and its first owner."""
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            msp = msp_create(request=MspRequest(**form.cleaned_data))
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            return redirect(tenant_url(msp, "/accounts/login/?welcome=1"))
    return render(request, "tenants/signup.html", {"form": form}, status=400 if form.errors else 200)


@open_to_all
def landing(request):
    return render(request, "tenants/landing.html")
