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
    locale = forms.ChoiceField(
        label="Number and date format", required=False,
        help_text="How pages, PDFs and e-mails write amounts and dates: 1,250.69 or 1.250,69; Dec 4, 2026 or "
                  "4 Dec 2026. CSV files always use plain numbers.")
    address = forms.CharField(label="Postal address", required=False, max_length=500,
                              widget=forms.Textarea(attrs={"rows": 3}), help_text="Printed on your invoices.")

    def __init__(self, *args, region: str = "", **kwargs):
        from msp_billing.locales import locale_choices, region_locale

        super().__init__(*args, **kwargs)
        default = dict(locale_choices()).get(region_locale(region), region_locale(region))
        self.fields["locale"].choices = [("", f"The region's default: {default}"), *locale_choices()]

    def clean_timezone(self):
        import zoneinfo

        value = self.cleaned_data["timezone"]
        if value not in zoneinfo.available_timezones():
            raise forms.ValidationError(f"Unknown time zone “{value}”; use a name such as Europe/London.")
        return value


__all__ = ["LoginForm", "UserInviteForm", "UserUpdateForm", "TenantPreferencesForm", "User"]
