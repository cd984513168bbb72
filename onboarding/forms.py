from django import forms

from onboarding.importing_csv import MAX_BYTES


class TimeCsvUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text=("Columns: Date, Customer, Ticket, Technician (e-mail), Work Type, Hours or Minutes; optional Notes "
                   f"and Billable. At most {MAX_BYTES // (1024 * 1024)} MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv,text/plain"}),
        error_messages={"required": "Choose a CSV file to upload.", "empty": "The submitted file is empty."},
    )


class TimeCsvConfirmForm(forms.Form):
    fingerprint = forms.CharField(widget=forms.HiddenInput, max_length=64)
