"""E-mail to users: invitations to set a password."""
from __future__ import annotations

from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from msp_billing.accounts.models import User
from msp_billing.tenants.models import Msp
from msp_billing.tenants.urls import tenant_url


def invitation_send(*, user_id: int) -> str:
    """Send the invitation and return the address it went to."""
    user = User.objects.get(pk=user_id)
    tenant = Msp.objects.get(schema_name=connection.schema_name)
    path = reverse(
        "accounts:password_reset_confirm",
        kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": default_token_generator.make_token(user)},
    )
    context = {"user": user, "msp": tenant, "link": tenant_url(tenant, path)}
    send_mail(
        subject=f"You have been invited to {tenant.name} billing",
        message=render_to_string("registration/invitation_email.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )
    return user.email
