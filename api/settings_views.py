"""Settings → API tokens: each user makes and revokes their own tokens. A token acts with its
user's role, so every role has the page (a technician's token logs time, an accountant's reads)."""
from __future__ import annotations

import datetime as dt
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from api.models import ApiToken
from api.services import MAX_TOKEN_DAYS, token_create, token_revoke
from msp_billing.forms import add_service_errors
from msp_billing.tenants.today import tenant_today


def signed_in(view):
    """Any signed-in user of this MSP (the page shows and changes only their own tokens)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapped.required_capability = None
    return wrapped


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Where the token is used, such as “RMM feed”.")
    expires_on = forms.DateField(label="Expires on", widget=forms.DateInput(attrs={"type": "date"}),
                                 help_text=f"At most {MAX_TOKEN_DAYS} days from today.")


@signed_in
def api_tokens(request):
    form = TokenForm(request.POST or None, initial={"expires_on": tenant_today() + dt.timedelta(days=90)})
    secret = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                token, secret = token_create(user=request.user, **form.cleaned_data)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                form = TokenForm(initial={"expires_on": tenant_today() + dt.timedelta(days=90)})
                status = 201
        if form.errors:
            status = 400
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "api/tokens.html", {"form": form, "secret": secret, "tokens": tokens,
                                               "role": request.user.get_role_display()}, status=status)


@signed_in
@require_POST
def api_token_revoke(request, token_id: int):
    try:
        token = token_revoke(token_id=token_id, user=request.user)
    except ValidationError:
        raise Http404("No such token of yours.") from None
    messages.success(request, f"Token “{token.name}” is revoked.")
    return redirect("settings:api_tokens")
