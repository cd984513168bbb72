from decimal import Decimal

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy

from msp_billing.accounts import services
from msp_billing.accounts.access import open_to_all, requires
from msp_billing.accounts.forms import LoginForm, TenantPreferencesForm, UserInviteForm, UserUpdateForm
from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Capability
from msp_billing.accounts.tasks import send_invitation
from msp_billing.forms import add_service_errors
from msp_billing.tenants.services import msp_update_preferences
from msp_billing.tenants.today import tenant_today

login = open_to_all(auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True))
logout = open_to_all(auth_views.LogoutView.as_view())
password_reset = open_to_all(
    auth_views.PasswordResetView.as_view(success_url=reverse_lazy("accounts:password_reset_done"))
)
password_reset_done = open_to_all(auth_views.PasswordResetDoneView.as_view())
password_reset_confirm = open_to_all(
    auth_views.PasswordResetConfirmView.as_view(success_url=reverse_lazy("accounts:password_reset_complete"))
)
password_reset_complete = open_to_all(auth_views.PasswordResetCompleteView.as_view())


@requires(Capability.MANAGE_SETTINGS)
def settings_home(request):
    tenant = connection.tenant
    form = TenantPreferencesForm(request.POST or None, region=tenant.region, initial={
        "name": tenant.name, "timezone": tenant.timezone, "locale": tenant.locale, "address": tenant.address,
        "unbilled_attention_days": tenant.unbilled_attention_days})
    if request.method == "POST" and form.is_valid():
        try:
            msp_update_preferences(msp_id=tenant.pk, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Settings saved.")
            return redirect("settings:home")
    return render(
        request,
        "settings/home.html",
        {"form": form, "msp": tenant, "can_manage_users": request.user.can(Capability.MANAGE_USERS),
         "example_amount": Decimal("1250.69"), "example_day": tenant_today()},
        status=400 if form.errors else 200,
    )


@requires(Capability.MANAGE_USERS)
def user_list(request):
    form = UserInviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                user = services.user_create(**form.cleaned_data)
                transaction.on_commit(lambda: send_invitation.delay(user.pk))
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"Invitation sent to {user.email}.")
            return redirect("settings:users")
    return render(
        request,
        "settings/users.html",
        {"form": form, "users": User.objects.order_by("email")},
        status=400 if form.errors else 200,
    )


@requires(Capability.MANAGE_USERS)
def user_edit(request, user_id: int):
    member = get_object_or_404(User, pk=user_id)
    form = UserUpdateForm(request.POST or None, initial={"role": member.role, "is_active": member.is_active})
    if request.method == "POST" and form.is_valid():
        try:
            services.user_update(user_id=member.pk, acting_user=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{member.email} updated.")
            return redirect("settings:users")
    return render(request, "settings/user_edit.html", {"form": form, "member": member}, status=400 if form.errors else 200)
