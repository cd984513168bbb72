from django import forms
from django.contrib.auth.forms import AuthenticationForm

from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role


class LoginForm(AuthenticationForm):
    username = forms.EmailField(label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))


class UserInviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    full_name = forms.CharField(label="Name", max_length=150, required=False)
    role = forms.ChoiceField(choices=Role.choices)


class UserUpdateForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    is_active = forms.BooleanField(label="Active", required=False)


class TenantPreferencesForm(forms.Form):
    name = forms.CharField(max_length=120)
    timezone = forms.CharField(max_length=64)
    unbilled_attention_days = forms.IntegerField(
        label="Highlight unbilled work older than (days)", min_value=1, max_value=365, required=False,
        help_text="The billing dashboard marks unbilled time and parts older than this.")

    def clean_timezone(self):
        import zoneinfo

        value = self.cleaned_data["timezone"]
        if value not in zoneinfo.available_timezones():
            raise forms.ValidationError(f"Unknown time zone “{value}”; use a name such as Europe/London.")
        return value


class TimeApprovalForm(forms.Form):
    time_approval_required = forms.BooleanField(
        label="Time needs approval before it is billed", required=False,
        help_text="On: an admin approves each entry (Approve & Post) before a batch bills it. "
                  "Off: time is ready to bill once its ticket is resolved or closed.")


__all__ = ["LoginForm", "UserInviteForm", "UserUpdateForm", "TenantPreferencesForm", "TimeApprovalForm", "User"]
