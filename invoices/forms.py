"""Forms for the invoice pages: they parse input; ``invoices.services`` decides.

A form turns posted strings into Python values (Decimals, dates, this MSP's customers
and tax codes); the rules — what may be edited, how much may be paid — are the
services', whose messages come back onto the same form (``ServiceForm.add_service_errors``).
"""
from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django import forms
from django.core.exceptions import ValidationError

from contracts.models import Customer, TaxRate
from invoices.calculation import Adjustment
from invoices.models import AdjustmentKind, Invoice, InvoiceLine, InvoiceSettings, Payment
from invoices.services import LineInput
from msp_billing.forms import ServiceForm
from msp_billing.tax_owner import lock_tax_fields, tax_owner

MAX_LINES = 500
ADJUSTMENT_CHOICES = [("", "None"), (AdjustmentKind.PERCENT, "Percent"), (AdjustmentKind.AMOUNT, "Amount")]


def _date(label: str, *, required: bool = True, help_text: str = "") -> forms.DateField:
    return forms.DateField(label=label, required=required, help_text=help_text,
                           widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


def _decimal(label: str, *, places: int = 2, required: bool = True, minimum: Decimal | None = Decimal("0"),
             help_text: str = "") -> forms.DecimalField:
    return forms.DecimalField(label=label, required=required, help_text=help_text, max_digits=16, decimal_places=places,
                              min_value=minimum)


def tax_code_choices() -> list[tuple[str, str]]:
    """Each tax code once, named as its latest version."""
    latest: dict[str, TaxRate] = {}
    for rate in TaxRate.objects.order_by("code", "effective_from"):
        latest[rate.code] = rate
    return [(code, f"{code} — {rate.name} {rate.percent.normalize()} %{' (compound)' if rate.compound else ''}")
            for code, rate in latest.items()]


class InvoiceCreateForm(ServiceForm):
    customer = forms.ModelChoiceField(queryset=Customer.objects.filter(is_active=True).order_by("legal_name"),
                                      help_text="The invoice is in the customer's currency.")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)


class InvoiceHeaderForm(ServiceForm):
    """Invoice-level discount and surcharge, texts, and terms."""

    discount_kind = forms.ChoiceField(label="Invoice discount", choices=ADJUSTMENT_CHOICES, required=False)
    discount_value = _decimal("Discount (percent or amount)", places=4, required=False,
                              help_text="Spread over the lines before tax.")
    surcharge_kind = forms.ChoiceField(label="Invoice surcharge", choices=ADJUSTMENT_CHOICES, required=False)
    surcharge_value = _decimal("Surcharge (percent or amount)", places=4, required=False)
    payment_terms_days = forms.IntegerField(label="Payment terms (days)", min_value=0, max_value=365)
    due_date = _date("Due date", required=False)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)
    terms = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)
    payment_instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)

    def __init__(self, *args, invoice: Invoice, **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice = invoice
        if invoice.is_draft:
            del self.fields["due_date"]  # set on issue from the payment terms

    @staticmethod
    def initial_for(invoice: Invoice) -> dict:
        return {
            "discount_kind": invoice.discount_kind, "discount_value": invoice.discount_value if invoice.discount_kind else None,
            "surcharge_kind": invoice.surcharge_kind,
            "surcharge_value": invoice.surcharge_value if invoice.surcharge_kind else None,
            "payment_terms_days": invoice.payment_terms_days, "due_date": invoice.due_date, "notes": invoice.notes,
            "terms": invoice.terms, "payment_instructions": invoice.payment_instructions,
        }

    def clean(self):
        data = super().clean()
        for name in ("discount", "surcharge"):
            if data.get(f"{name}_kind") and data.get(f"{name}_value") is None:
                self.add_error(f"{name}_value", f"Enter the {name}, or choose None.")
        return data

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        kwargs = {
            "discount": Adjustment(data["discount_kind"] or "", data["discount_value"] or Decimal("0")),
            "surcharge": Adjustment(data["surcharge_kind"] or "", data["surcharge_value"] or Decimal("0")),
            "notes": data["notes"], "terms": data["terms"], "payment_instructions": data["payment_instructions"],
            "payment_terms_days": data["payment_terms_days"],
        }
        if "due_date" in self.fields and data.get("due_date"):
            kwargs["due_date"] = data["due_date"]
        return kwargs


class LineForm(forms.Form):
    line_id = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 1}), required=False, max_length=2000)
    quantity = _decimal("Quantity", places=4, required=False, minimum=None)
    unit_price = _decimal("Unit price", places=4, required=False, minimum=None)
    discount_kind = forms.ChoiceField(label="Line discount", choices=ADJUSTMENT_CHOICES, required=False)
    discount_value = _decimal("Discount", places=4, required=False)
    taxable = forms.BooleanField(required=False, initial=True)
    # Explained on the page: a taxable line with no tax chosen takes the default taxes.
    tax_codes = forms.MultipleChoiceField(label="Taxes", required=False, choices=(),
                                          widget=forms.SelectMultiple(attrs={"size": 2}))

    def __init__(self, *args, tax_choices=(), taxes_owned_by: str | None = None, kept_tax_codes=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tax_codes"].choices = tax_choices
        # While an accounting system owns taxes the taxes are locked: an existing line keeps its own.
        self.kept_tax_codes = kept_tax_codes or {}
        self.taxes_owned_by = lock_tax_fields(self, ["tax_codes"], owner=taxes_owned_by)

    def clean(self):
        data = super().clean()
        if self.is_blank(data):
            return data
        if not (data.get("description") or "").strip():
            self.add_error("description", "Enter a description.")
        if data.get("quantity") is None:
            self.add_error("quantity", "Enter a quantity.")
        if data.get("unit_price") is None:
            self.add_error("unit_price", "Enter a unit price.")
        if data.get("discount_kind") and data.get("discount_value") is None:
            self.add_error("discount_value", "Enter the discount, or choose None.")
        return data

    @staticmethod
    def is_blank(data: dict) -> bool:
        """An untouched extra row (nothing typed): skipped, not an error."""
        return not data.get("line_id") and not (data.get("description") or "").strip() \
            and data.get("quantity") is None and data.get("unit_price") is None

    def line_input(self) -> LineInput:
        data = self.cleaned_data
        codes = data.get("tax_codes") or []
        tax_rate_codes = tuple(codes) if codes else None
        if self.taxes_owned_by:  # whatever was posted: a kept line keeps its taxes, a new one takes the defaults
            kept = self.kept_tax_codes.get(data.get("line_id"))
            tax_rate_codes = tuple(kept) if kept is not None else None
        return LineInput(
            line_id=data.get("line_id"),
            description=data["description"],
            quantity=data["quantity"],
            unit_price=data["unit_price"],
            taxable=bool(data.get("taxable")),
            tax_rate_codes=tax_rate_codes,
            discount=Adjustment(data.get("discount_kind") or "", data.get("discount_value") or Decimal("0")),
        )

    @staticmethod
    def initial_for(line: InvoiceLine) -> dict:
        return {
            "line_id": line.pk, "description": line.description, "quantity": line.quantity.normalize(),
            "unit_price": line.unit_price, "discount_kind": line.discount_kind,
            "discount_value": line.discount_value if line.discount_kind else None, "taxable": line.taxable,
            "tax_codes": list(line.tax_codes),
        }


def line_form_kwargs(lines) -> dict:
    """What every line form of an invoice's edit page needs (the tax owner is asked once per page)."""
    return {"tax_choices": tax_code_choices(), "taxes_owned_by": tax_owner(),
            "kept_tax_codes": {line.pk: tuple(line.tax_codes) for line in lines}}


class BaseLineFormSet(forms.BaseFormSet):
    def line_inputs(self) -> list[LineInput]:
        result = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if not data or LineForm.is_blank(data) or (self.can_delete and self._should_delete_form(form)):
                continue
            result.append(form.line_input())
        return result


LineFormSet = forms.formset_factory(LineForm, formset=BaseLineFormSet, extra=3, can_delete=True, max_num=MAX_LINES,
                                    validate_max=True, absolute_max=MAX_LINES)


class IssueForm(ServiceForm):
    issue_date = _date("Issue date", required=False, help_text="Today when left empty. The number's year follows it.")


class VoidForm(ServiceForm):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000,
                             help_text="Kept in the audit trail.")


class PaymentForm(ServiceForm):
    amount = _decimal("Amount")
    date = _date("Date paid")
    method = forms.ChoiceField(choices=[(v, l) for v, l in Payment.Method.choices if v != Payment.Method.ACCOUNTING_SYNC])
    reference = forms.CharField(max_length=200, required=False, help_text="Bank reference, cheque number …")


class CreditNoteForm(ServiceForm):
    """Credit everything left, or chosen amounts per line (one optional field per line)."""

    WHOLE = "whole"
    CHOSEN = "chosen"

    what = forms.ChoiceField(label="Credit", choices=[(WHOLE, "Everything still on the invoice"),
                                                      (CHOSEN, "Chosen amounts (before tax) per line")],
                             widget=forms.RadioSelect, initial=WHOLE)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=2000,
                             help_text="Printed on the credit note.")
    issue_date = _date("Credit note date", required=False, help_text="Today when left empty.")

    def __init__(self, *args, creditable=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.creditable = list(creditable)
        for item in self.creditable:
            self.fields[self.field_name(item.line.pk)] = _decimal(  # what is left is shown beside it
                f"Amount to credit of “{item.line.description[:60]}”", required=False)

    @staticmethod
    def field_name(line_id: int) -> str:
        return f"line_{line_id}"

    def rows(self):
        return [(item, self[self.field_name(item.line.pk)]) for item in self.creditable]

    def clean(self):
        data = super().clean()
        if data.get("what") == self.CHOSEN and not any(data.get(self.field_name(i.line.pk)) for i in self.creditable):
            raise ValidationError("Enter an amount for at least one line, or credit everything.")
        return data

    def credit_lines(self):
        from invoices.services import CreditLineInput

        if self.cleaned_data["what"] == self.WHOLE:
            return None
        return [CreditLineInput(invoice_line_id=item.line.pk, amount=self.cleaned_data[self.field_name(item.line.pk)])
                for item in self.creditable if self.cleaned_data.get(self.field_name(item.line.pk))]


class InvoiceSettingsForm(ServiceForm):
    number_prefix = forms.CharField(max_length=12, required=False, help_text="Such as INV.")
    number_padding = forms.IntegerField(label="Digits in the number", min_value=1, max_value=10,
                                        help_text="5 gives INV-2026-00042.")
    number_yearly_reset = forms.BooleanField(label="Restart numbering each year", required=False)
    credit_note_prefix = forms.CharField(max_length=12, required=False, help_text="Such as CN.")
    default_discount_percent = _decimal("Default invoice discount (%)", places=4)
    default_surcharge_percent = _decimal("Default invoice surcharge (%)", places=4)
    default_payment_terms_days = forms.IntegerField(label="Default payment terms (days)", min_value=0, max_value=365)
    default_tax_codes = forms.MultipleChoiceField(label="Default taxes", required=False, choices=(),
                                                  widget=forms.CheckboxSelectMultiple,
                                                  help_text="The fallback: charged on taxable lines when neither the contract nor the "
                                                            "customer names tax codes.")
    terms = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)
    payment_instructions = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=5000)
    footer = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=5000)
    issue_zero_invoices = forms.BooleanField(
        label="Issue zero invoices", required=False,
        help_text="Off (the default): a contract with only covered or deducted time due (0.00) is not ticked in "
                  "Create New Batch and scheduled or command-line runs leave it out; its time goes on the contract's "
                  "next invoice with something to charge. On: such contracts get a numbered 0.00 invoice every run.")
    next_invoice_number = forms.IntegerField(
        label="Next invoice number", required=False, min_value=1, max_value=2_147_483_647,
        help_text="The number the next issued invoice takes, such as the one after the last invoice of the system "
                  "you move from. It must be above every invoice number already issued.")
    next_credit_note_number = forms.IntegerField(
        label="Next credit note number", required=False, min_value=1, max_value=2_147_483_647,
        help_text="The same for credit notes, which have a series of their own.")
    numbering_year = forms.IntegerField(
        label="Year of these next numbers", required=False, min_value=2000, max_value=2999,
        help_text="When numbering restarts each year: the year the next numbers above are for (this year when empty).")

    NEXT_NUMBER_FIELDS: ClassVar[dict[str, str]] = {"next_invoice_number": "invoice", "next_credit_note_number": "credit_note"}
    field_order: ClassVar[list[str]] = ["number_prefix", "number_padding", "number_yearly_reset", "credit_note_prefix", "next_invoice_number",
                   "next_credit_note_number", "numbering_year"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["default_tax_codes"].choices = tax_code_choices()
        lock_tax_fields(self, ["default_tax_codes"])  # while an accounting system owns taxes

    @staticmethod
    def initial_for(row: InvoiceSettings) -> dict:
        from invoices.services import SETTINGS_FIELDS, next_number_of, numbering_year

        initial = {name: getattr(row, name) for name in SETTINGS_FIELDS}
        initial["default_tax_codes"] = row.tax_codes()
        for field, series in InvoiceSettingsForm.NEXT_NUMBER_FIELDS.items():
            initial[field] = next_number_of(series=series)
        initial["numbering_year"] = numbering_year(config=row) or None
        return initial

    def service_data(self) -> dict:
        data = {name: value for name, value in self.cleaned_data.items()
                if name not in self.NEXT_NUMBER_FIELDS and name != "numbering_year"}
        data["default_tax_codes"] = ", ".join(data.get("default_tax_codes") or [])
        return data

    def next_numbers(self) -> dict[str, tuple[str, int]]:
        """Field → (series, next number) for the next numbers the admin changed (or set for another year)."""
        year_changed = "numbering_year" in self.changed_data
        return {field: (series, self.cleaned_data[field]) for field, series in self.NEXT_NUMBER_FIELDS.items()
                if self.cleaned_data.get(field) is not None and (field in self.changed_data or year_changed)}


class BrandingForm(ServiceForm):
    """Logo, brand colour and template of the PDF (``invoices.branding`` checks the logo's content)."""

    logo = forms.FileField(required=False, label="Logo",
                           help_text="PNG, JPEG or SVG, at most 1 MB. Leave empty to keep the current logo.",
                           widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/svg+xml"}))
    remove_logo = forms.BooleanField(required=False, label="Remove the current logo")
    brand_colour = forms.CharField(label="Brand colour", max_length=7,
                                   help_text="Headings, rules and the modern template's band, as #RRGGBB.",
                                   widget=forms.TextInput(attrs={"type": "color"}))
    pdf_template = forms.ChoiceField(label="Template", choices=InvoiceSettings.PdfTemplate.choices,
                                     widget=forms.RadioSelect,
                                     help_text="Classic: logo left, serif title. Modern: a band in the brand colour.")

    def clean_logo(self) -> bytes | None:
        from invoices.branding import MAX_LOGO_BYTES, logo_kind

        upload = self.cleaned_data.get("logo")
        if not upload:
            return None
        if upload.size > MAX_LOGO_BYTES:
            raise ValidationError(f"The logo is {upload.size / 1024 / 1024:.1f} MB; it may be at most 1 MB.")
        content = upload.read()
        logo_kind(content)
        return content

    def clean_brand_colour(self) -> str:
        from invoices.branding import validate_brand_colour

        return validate_brand_colour(self.cleaned_data.get("brand_colour", ""))


class EmailTemplateForm(ServiceForm):
    """The subject and text of every invoice e-mail (``invoices.mail`` checks the placeholders)."""

    email_subject = forms.CharField(label="Subject", max_length=200)
    email_body = forms.CharField(label="Text", max_length=10000, widget=forms.Textarea(attrs={"rows": 10}))
