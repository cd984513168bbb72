from __future__ import annotations

from django import forms

from msp_billing.forms import ServiceForm
from webhooks.models import EventType
from webhooks.urlguard import UnsafeTarget, parse


class SubscriptionForm(ServiceForm):
    url = forms.CharField(label="Target URL", max_length=500,
                          help_text="HTTPS address that receives a signed POST for each event. Private and internal "
                                    "addresses are refused.",
                          widget=forms.URLInput(attrs={"placeholder": "https://example.com/webhooks/msp-billing"}))
    events = forms.MultipleChoiceField(label="Events", choices=EventType.choices, widget=forms.CheckboxSelectMultiple,
                                       error_messages={"required": "Choose at least one event.",
                                                       "invalid_choice": "Choose events from the list."})
    description = forms.CharField(label="Description", max_length=200, required=False)
    is_active = forms.BooleanField(label="Active", required=False, initial=True,
                                   help_text="Paused subscriptions receive nothing; what was waiting is sent on resuming.")

    def __init__(self, *args, creating: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if creating:
            del self.fields["is_active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            parse(url)  # the form's quick check; the service resolves and checks the addresses
        except UnsafeTarget as refusal:
            raise forms.ValidationError(str(refusal)) from None
        return url
