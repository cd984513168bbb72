from __future__ import annotations

import datetime as dt

from django import forms

from contracts.models import Contract, Customer, Role

DATE = dict(required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


class RateFilterForm(forms.Form):
    MONTHS = [(3, "Last 3 months"), (6, "Last 6 months"), (12, "Last 12 months"), (24, "Last 24 months")]

    months = forms.TypedChoiceField(label="Periods closed in", choices=MONTHS, coerce=int, required=False, initial=12)
    customer = forms.ModelChoiceField(label="Customer", queryset=Customer.objects.all(), required=False, empty_label="All customers")
    contract_type = forms.ChoiceField(label="Contract type", choices=[("", "All types"), *Contract.Type.choices], required=False)


class RangeForm(forms.Form):
    since = forms.DateField(label="From", **DATE)
    until = forms.DateField(label="To", **DATE)

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise forms.ValidationError("The start date must be on or before the end date.")
        for name in ("since", "until"):
            value = data.get(name)
            if value and not dt.date(1900, 1, 1) <= value <= dt.date(2999, 12, 31):
                self.add_error(name, "Enter a date between 1 Jan 1900 and 31 Dec 2999.")
        return data


class ProfitabilityFilterForm(RangeForm):
    customer = forms.ModelChoiceField(label="Customer", queryset=Customer.objects.all(), required=False, empty_label="All customers")
    contract_type = forms.ChoiceField(label="Contract type", choices=[("", "All types"), *Contract.Type.choices], required=False)


class UtilisationFilterForm(RangeForm):
    technician = forms.ModelChoiceField(label="Technician", queryset=None, required=False, empty_label="All technicians")
    role = forms.ModelChoiceField(label="Role", queryset=Role.objects.all(), required=False, empty_label="All roles")

    def __init__(self, *args, **kwargs):
        from msp_billing.accounts.models import User

        super().__init__(*args, **kwargs)
        self.fields["technician"].queryset = User.objects.filter(time_entries__isnull=False).distinct()


class OptInForm(forms.Form):
    opted_in = forms.BooleanField(
        label="Contribute our figures to the anonymous platform benchmark", required=False,
        help_text="Only aggregates over ten or more MSPs are ever stored or shown; your own figures stay in your account.")


class CostRateForm(forms.Form):
    cost_rate = forms.DecimalField(label="Hourly cost", required=False, min_value=0, max_digits=14, decimal_places=4,
                                   help_text="Empty: the cost rate of the technician's role.")
