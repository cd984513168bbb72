"""The audit report's filters."""
from __future__ import annotations

from django import forms

from msp_billing.audit.selectors import action_choices, object_type_choices, object_type_label


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=60, widget=forms.TextInput(attrs={"list": "audit-actions"}),
                             help_text="Such as Batch run or Contract changed.")
    object_type = forms.ChoiceField(label="Object", required=False)
    object_id = forms.CharField(label="Object id", required=False, max_length=64,
                                widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 6}))
    actor = forms.CharField(label="By", required=False, max_length=254)
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = object_type_choices()
        asked = (self.data.get("object_type") or "").lower() if self.is_bound else ""
        if asked and asked not in dict(choices) and object_type_label(asked) != asked:
            # A kind of object with no events yet (a link from its page): an empty report, not an error.
            choices.append((asked, object_type_label(asked)))
        self.fields["object_type"].choices = [("", "Any object"), *choices]
        self.action_suggestions = action_choices()

    def clean_object_id(self):
        value = self.cleaned_data["object_id"].strip()
        if value and not value.isdigit():
            raise forms.ValidationError("Enter the object's number, such as 42.")
        return value

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return data
