"""Forms for tickets and time logging. Parsing only; rules live in tickets/services.py."""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django import forms
from django.utils import timezone

from contracts.models import Customer, Product, RateItem, WorkType
from tickets.models import Ticket

DURATION_HELP = "Minutes (90), hours and minutes (1:30), or hours (1.5h)."


def parse_duration(text: str) -> int:
    """Minutes from '90', '1:30', '1.5h', '1h 30m' or '45m'."""
    value = text.strip().lower().replace(" ", "")
    if not value:
        raise forms.ValidationError("Enter the time worked.")
    if match := re.fullmatch(r"(\d+):([0-5]\d)", value):
        return int(match[1]) * 60 + int(match[2])
    if match := re.fullmatch(r"(?:(\d+(?:[.,]\d+)?)h)?(?:(\d+)m)?", value):
        if match[1] or match[2]:
            hours = Decimal(match[1].replace(",", ".")) if match[1] else Decimal(0)
            return int(hours * 60) + int(match[2] or 0)
    if value.isdigit():
        return int(value)
    try:
        Decimal(value)
    except InvalidOperation:
        pass
    raise forms.ValidationError(f"“{text}” is not a duration. {DURATION_HELP}")


class DurationField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", DURATION_HELP)
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "text", "autocomplete": "off", "placeholder": "1:30"})

    def clean(self, value):
        value = super().clean(value)
        return parse_duration(value) if value else None


class TicketForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.filter(is_active=True))
    title = forms.CharField(max_length=200)


class TicketStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Ticket.Status.choices)


AFTER_HOURS_CHOICES = [("auto", "From business hours"), ("yes", "After hours"), ("no", "Business hours")]


class FieldGroup:
    """Some of a form's fields, rendered by ``components/form.html`` like a form of their own.

    The ticket page folds the fields a technician rarely needs into a ``<details>``: the
    first group carries the form's error summary, the others only their fields.
    """

    def __init__(self, form: forms.Form, names, *, with_errors: bool) -> None:
        self.form, self.names, self.with_errors = form, list(names), with_errors

    @property
    def errors(self):
        return self.form.errors if self.with_errors else {}

    @property
    def has_errors(self) -> bool:
        return any(self.form[name].errors for name in self.names)

    def non_field_errors(self):
        return self.form.non_field_errors() if self.with_errors else []

    def hidden_fields(self):
        return self.form.hidden_fields() if self.with_errors else []

    def visible_fields(self):
        return [self.form[name] for name in self.names]


class TimeEntryForm(forms.Form):
    """What a technician fills in on a phone: work type, date, duration; the rest is optional.

    ``FOLDED`` are the fields a technician rarely needs (contract override, rate item, where
    "after hours" comes from): the ticket page shows them under "More options".
    """

    FOLDED = ("after_hours", "chosen_contract", "chosen_rate_item")

    work_type = forms.ModelChoiceField(queryset=WorkType.objects.filter(is_active=True), empty_label="Pick a work type")
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    duration = DurationField(label="Time worked", required=False)
    billable_time = DurationField(
        label="Billable time", required=False,
        help_text="Only when less is billed than worked, such as 45 (minutes) of a 2-hour visit; 0 bills nothing. "
                  "Leave empty to bill the time worked.")
    started_at = forms.DateTimeField(label="Start", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    ended_at = forms.DateTimeField(label="End", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    after_hours = forms.ChoiceField(choices=AFTER_HOURS_CHOICES, initial="auto", label="After hours?")
    billable = forms.BooleanField(required=False, initial=True)
    chosen_contract = forms.ModelChoiceField(
        queryset=None, required=False, label="Contract", empty_label="Route automatically",
        help_text="Leave it to routing unless the customer agreed otherwise.",
    )
    chosen_rate_item = forms.ModelChoiceField(queryset=RateItem.objects.all(), required=False, label="Rate item", empty_label="Resolved rate")

    def __init__(self, *args, contracts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["chosen_contract"].queryset = contracts
        self.fields["date"].initial = timezone.localdate()

    def main_fields(self) -> FieldGroup:
        return FieldGroup(self, [name for name in self.fields if name not in self.FOLDED], with_errors=True)

    def folded_fields(self) -> FieldGroup:
        return FieldGroup(self, self.FOLDED, with_errors=False)

    def clean(self):
        data = super().clean()
        if not data.get("duration") and not (data.get("started_at") and data.get("ended_at")):
            self.add_error("duration", "Enter the time worked, or a start and an end.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "work_type": data["work_type"], "date": data["date"], "minutes": data.get("duration"),
            "billable_minutes": data.get("billable_time"),
            "started_at": data.get("started_at"), "ended_at": data.get("ended_at"), "notes": data.get("notes", ""),
            "billable": data.get("billable"), "after_hours": {"auto": None, "yes": True, "no": False}[data["after_hours"]],
            "chosen_contract": data.get("chosen_contract"), "chosen_rate_item": data.get("chosen_rate_item"),
        }


class ChargeForm(forms.Form):
    """A part or expense. Without ``with_prices`` (technicians) only catalogue products, at their price."""

    product = forms.ModelChoiceField(queryset=Product.objects.filter(is_active=True), required=False, empty_label="Expense (no product)")
    description = forms.CharField(max_length=200, required=False)
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    quantity = forms.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0.001"), initial=1)
    unit_price = forms.DecimalField(max_digits=14, decimal_places=4, min_value=0, required=False, help_text="Leave empty to use the product's price.")

    def __init__(self, *args, with_prices: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date"].initial = timezone.localdate()
        if not with_prices:
            del self.fields["unit_price"]
            self.fields["product"].required = True
            self.fields["product"].empty_label = "Pick a product"


class TimeApprovalForm(forms.Form):
    time_approval_required = forms.BooleanField(
        label="Time needs approval before it is billed", required=False,
        help_text="On: an admin approves each entry (Approve & Post) before a batch bills it. "
                  "Off: time is ready to bill once its ticket is resolved or closed.")
