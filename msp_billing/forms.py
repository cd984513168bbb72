"""What every form page shares: a service's ``ValidationError`` shown on the form that sent the input."""
from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.core.exceptions import ValidationError


def add_service_errors(form: forms.BaseForm, error: ValidationError, *, aliases: Mapping[str, str] | None = None) -> None:
    """Each field's messages at that field of ``form`` (``aliases``: service field → form field,
    where they differ, such as minutes vs. hours); the others above the form."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        field = (aliases or {}).get(field, field)
        form.add_error(field if field in form.fields else None, errors)


class ServiceForm(forms.Form):
    """A form whose cleaned data goes to a service; the service's messages come back here."""

    # service field name → form field name, where they differ (minutes vs. hours)
    field_aliases: dict[str, str] = {}

    def add_service_errors(self, error: ValidationError) -> None:
        add_service_errors(self, error, aliases=self.field_aliases)
