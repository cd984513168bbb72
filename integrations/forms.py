"""Input parsing for the integration pages."""
from __future__ import annotations

from django import forms

from integrations.files import FORMATS

MAX_IDS = 5000
FORMAT_ALIASES = {"xero": "xero_csv", "qbd": "iif"}


class ExportFileForm(forms.Form):
    """``?format=iif&ids=1,2,3`` — the batch page links here."""

    format = forms.CharField()
    ids = forms.CharField()

    def clean_format(self) -> str:
        value = (self.cleaned_data.get("format") or "").strip().lower()
        value = FORMAT_ALIASES.get(value, value)
        if value not in FORMATS:
            raise forms.ValidationError(f"Choose a file format: {', '.join(FORMATS)}.")
        return value

    def clean_ids(self) -> list[int]:
        return parse_ids(self.cleaned_data.get("ids") or "")


def parse_ids(raw: str) -> list[int]:
    """``"1,2, 3"`` → ``[1, 2, 3]`` (order kept, repeats dropped); anything else is refused."""
    ids: list[int] = []
    seen: set[int] = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isascii() or not part.isdigit() or len(part) > 18 or int(part) < 1:
            raise forms.ValidationError("Ids must be whole numbers separated by commas.")
        value = int(part)
        if value not in seen:
            seen.add(value)
            ids.append(value)
    if not ids:
        raise forms.ValidationError("Choose at least one invoice.")
    if len(ids) > MAX_IDS:
        raise forms.ValidationError(f"At most {MAX_IDS} invoices per file.")
    return ids


class ExportForm(forms.Form):
    ids = forms.CharField()

    def clean_ids(self) -> list[int]:
        return parse_ids(self.cleaned_data.get("ids") or "")
