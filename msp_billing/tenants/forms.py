import zoneinfo

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation


def _timezone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class SignupForm(forms.Form):
    name = forms.CharField(label="MSP name", max_length=120)
    subdomain = forms.CharField(
        label="Sub-domain", max_length=40, help_text="Your billing lives at <sub-domain>." + settings.TENANT_BASE_DOMAIN
    )
    region = forms.ChoiceField(choices=settings.TENANT_REGIONS)
    currency = forms.CharField(label="Home currency", max_length=3, initial="USD", help_text="ISO 4217 code, e.g. USD, EUR, GBP.")
    timezone = forms.ChoiceField(label="Time zone", choices=_timezone_choices, initial="UTC")
    admin_name = forms.CharField(label="Your name", max_length=150, required=False)
    admin_email = forms.EmailField(label="Your e-mail")
    admin_password = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)

    def clean_subdomain(self):
        return self.cleaned_data["subdomain"].strip().lower()

    def clean_currency(self):
        return self.cleaned_data["currency"].strip().upper()

    def clean_admin_password(self):
        password = self.cleaned_data["admin_password"]
        password_validation.validate_password(password)
        return password
