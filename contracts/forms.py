"""Forms for customers, the catalogue and contracts: they parse input; services decide.

Each form turns the posted strings into Python values (dates, Decimals, model
instances of this MSP); the rules — per contract type, per ledger — live in
``contracts.services``, whose per-field messages are shown back on the same form
(``ServiceForm.add_service_errors``).
"""
from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count

from contracts import services
from contracts.services.contacts import contacts_text
from contracts.models import Contract, Customer, DeviceClass, ExclusionSet, Product, RateItem, Role, TaxCategory, WorkType
from contracts.selectors import customer_parent_choices
from msp_billing.currencies import currency_choices
from msp_billing.forms import ServiceForm as BaseServiceForm
from msp_billing.tax_owner import lock_tax_fields, tax_owner_note


class CurrencyField(forms.ChoiceField):
    """The currencies in use today (``msp_billing.currencies``), the MSP's first: its home
    currency and those its customers bill in, most used first, then the most traded."""

    def __init__(self, *, empty_label: str | None = None, **kwargs):
        self.empty_label = empty_label
        super().__init__(choices=(), **kwargs)

    def offer(self, *, keep=()) -> None:
        """Fill the choices for this MSP; ``keep``: the stored code, offered even if withdrawn."""
        home = getattr(connection.tenant, "currency", "")
        used = (Customer.objects.order_by().values("currency").annotate(customers=Count("id"))
                .order_by("-customers", "currency").values_list("currency", flat=True))
        choices = currency_choices(first=[home, *used], keep=keep)
        self.choices = [("", self.empty_label), *choices] if self.empty_label is not None else choices


def _date(label: str, *, required: bool = True, help_text: str = "") -> forms.DateField:
    return forms.DateField(label=label, required=required, help_text=help_text,
                           widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))


def _rate(label: str, *, required: bool = True, help_text: str = "") -> forms.DecimalField:
    """Rates and unit prices: 4 decimal places (docs/design.md § Money and time)."""
    return forms.DecimalField(label=label, required=required, help_text=help_text, max_digits=14, decimal_places=4,
                              min_value=Decimal("0"))


def _amount(label: str, *, required: bool = True, help_text: str = "") -> forms.DecimalField:
    return forms.DecimalField(label=label, required=required, help_text=help_text, max_digits=14, decimal_places=2,
                              min_value=Decimal("0"))


class HoursField(forms.DecimalField):
    """Hours as people type them (1.5, 0.25); cleaned to whole minutes, as time is stored."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 9)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal("0.01"))
        super().__init__(**kwargs)

    def clean(self, value):
        hours = super().clean(value)
        if hours is None:
            return None
        minutes = hours * 60
        if minutes != minutes.to_integral_value():
            raise ValidationError("Enter hours that make whole minutes, such as 1.5 or 0.25.")
        return int(minutes)


def minutes_as_hours(minutes: int | None) -> Decimal | None:
    if minutes is None:
        return None
    hours = (Decimal(minutes) / 60).quantize(Decimal("0.01"))
    return hours.quantize(Decimal("1")) if hours == hours.to_integral_value() else hours


def _tax_codes_field(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(label=label, max_length=200, required=False, help_text=help_text,
                           widget=forms.TextInput(attrs={"placeholder": "such as GST, PST"}))


def _tax_category_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(queryset=TaxCategory.objects.all(), required=False, label="Tax category",
                                  empty_label="None — taxed with the customer's tax codes",
                                  help_text="How this is taxed, such as Labour (not taxed) or Parts.")


class ServiceForm(BaseServiceForm):
    """A service form whose currency fields offer the MSP's currencies first, keeping the current one."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if isinstance(field, CurrencyField):
                field.offer(keep=[self.initial.get(name) or ""])


# --- customers ----------------------------------------------------------------------------


class CustomerForm(ServiceForm):
    legal_name = forms.CharField(max_length=200, help_text="The name accounting systems match on.")
    display_name = forms.CharField(max_length=200, required=False)
    parent = forms.ModelChoiceField(
        queryset=Customer.objects.none(), required=False, empty_label="None — a top-level customer",
        label="Parent customer", help_text="Sites and sub-accounts are billed to their parent when consolidated.",
    )
    billing_email = forms.EmailField(label="Billing e-mail", required=False, max_length=254)
    billing_contacts = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Billing contacts",
        help_text="Who else receives the invoices, one per line: “Dana Reyes <dana@example.com>”; "
                  "start a line with “cc:” to send a copy.")
    address = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    currency = CurrencyField()
    tax_exempt = forms.BooleanField(required=False, help_text="With a certificate: no tax until it expires.")
    tax_id = forms.CharField(label="Tax id / VAT number", max_length=60, required=False)
    tax_codes = _tax_codes_field("Tax codes", "The taxes of the customer's jurisdiction, comma-separated (such as "
                                              "TX, or GST, PST). Empty: the default tax codes of the invoice settings.")
    tax_exemption_reason = forms.CharField(label="Exemption reason", max_length=200, required=False,
                                           help_text="Such as Resale or Non-profit.")
    tax_exemption_certificate = forms.CharField(label="Exemption certificate number", max_length=60, required=False)
    tax_exemption_expires = _date("Exemption expires", required=False,
                                  help_text="After this date taxes are charged again. A date already past is kept "
                                            "on file but exempts nothing.")
    reverse_charge = forms.BooleanField(
        label="Reverse charge", required=False,
        help_text="EU business customer in another member state: no VAT; the invoice carries the reverse-charge "
                  "note and their VAT number.")
    payment_terms_days = forms.IntegerField(label="Payment terms (days)", min_value=0,
                                            max_value=services.MAX_PAYMENT_TERMS_DAYS, initial=30)
    region = forms.CharField(max_length=60, required=False)
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    default_hourly_contract = forms.ModelChoiceField(
        queryset=Contract.objects.none(), required=False, label="Default Hourly contract",
        help_text="Takes the time no other contract takes.",
    )

    def __init__(self, *args, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = customer_parent_choices(exclude_id=customer.pk if customer else None)
        if customer is None:
            del self.fields["default_hourly_contract"]
        else:
            self.fields["default_hourly_contract"].queryset = Contract.objects.filter(
                customer=customer, type=Contract.Type.HOURLY
            )
        lock_tax_fields(self, services.CUSTOMER_TAX_FIELDS)  # while an accounting system owns taxes

    @staticmethod
    def initial_for(customer: Customer) -> dict:
        initial = {name: getattr(customer, name) for name in services.CUSTOMER_FIELDS if name != "billing_contacts"}
        initial["billing_contacts"] = contacts_text(customer)
        initial["default_hourly_contract"] = customer.default_hourly_contract_id
        initial["parent"] = customer.parent_id
        return initial


# --- catalogue ----------------------------------------------------------------------------


class WorkTypeForm(ServiceForm):
    name = forms.CharField(max_length=100, help_text="What a technician picks, such as Remote Support.")
    is_after_hours = forms.BooleanField(label="Always after hours", required=False)
    after_hours_multiplier = forms.DecimalField(max_digits=6, decimal_places=4, min_value=Decimal("1"),
                                                max_value=services.MAX_AFTER_HOURS_MULTIPLIER, initial=Decimal("1.5"),
                                                help_text="After-hours work is billed at the rate times this.")
    billable = forms.BooleanField(required=False, initial=True)
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    tax_category = _tax_category_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lock_tax_fields(self, ["tax_category"])

    @staticmethod
    def initial_for(work_type: WorkType) -> dict:
        return {name: getattr(work_type, name) for name in
                ("name", "is_after_hours", "after_hours_multiplier", "billable", "is_active")} | {
            "tax_category": work_type.tax_category_id}


class RoleForm(ServiceForm):
    name = forms.CharField(max_length=100, help_text="Such as Tier 1, Engineer, Architect.")
    default_rate = _rate("Default rate (per hour)")
    cost_rate = _rate("Cost rate (per hour)", help_text="Internal cost, for profitability.")
    currency = CurrencyField()

    @staticmethod
    def initial_for(role: Role) -> dict:
        return {"name": role.name, "default_rate": role.default_rate.amount, "cost_rate": role.cost_rate.amount,
                "currency": str(role.default_rate.currency)}


class RateItemForm(ServiceForm):
    name = forms.CharField(max_length=120)
    rate = _rate("Rate (per hour)")
    currency = CurrencyField()
    accounting_code = forms.CharField(max_length=60, required=False, help_text="The item in the accounting system.")
    tax_category = _tax_category_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lock_tax_fields(self, ["tax_category"])

    @staticmethod
    def initial_for(rate_item: RateItem) -> dict:
        return {"name": rate_item.name, "rate": rate_item.rate.amount, "currency": str(rate_item.rate.currency),
                "accounting_code": rate_item.accounting_code, "tax_category": rate_item.tax_category_id}


class ProductForm(ServiceForm):
    sku = forms.CharField(label="SKU", max_length=60)
    name = forms.CharField(max_length=200)
    price = _rate("Price")
    cost = _rate("Cost")
    currency = CurrencyField()
    taxable = forms.BooleanField(required=False, initial=True)
    accounting_code = forms.CharField(max_length=60, required=False, help_text="The item in the accounting system.")
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    tax_category = _tax_category_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lock_tax_fields(self, ["taxable", "tax_category"])

    @staticmethod
    def initial_for(product: Product) -> dict:
        return {"sku": product.sku, "name": product.name, "price": product.price.amount, "cost": product.cost.amount,
                "currency": str(product.price.currency), "taxable": product.taxable,
                "accounting_code": product.accounting_code, "is_active": product.is_active,
                "tax_category": product.tax_category_id}


class TaxesOwnedForm(ServiceForm):
    """A form whose every field is a tax field: locked, and its save refused, while an
    accounting system owns taxes."""

    owned_label = "Tax rates"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # While an accounting system owns taxes every field is locked and a save is refused.
        self.taxes_owned_by = lock_tax_fields(self, list(self.fields), note_on=[next(iter(self.fields))])
        self.taxes_note = tax_owner_note(self.taxes_owned_by) if self.taxes_owned_by else ""

    def full_clean(self):
        if self.is_bound and self.taxes_owned_by:  # refused as a whole, before any field is looked at
            self._errors, self.cleaned_data = forms.utils.ErrorDict(), {}
            self.add_error(None, ValidationError(f"{self.taxes_note} {self.owned_label} cannot be changed here until "
                                                 f"it is disconnected.", code="taxes_owned"))
            return
        super().full_clean()


class TaxRateVersionForm(TaxesOwnedForm):
    name = forms.CharField(max_length=100, help_text="Printed on invoices, such as VAT.")
    percent = forms.DecimalField(max_digits=7, decimal_places=4, min_value=Decimal("0"), max_value=Decimal("100"))
    compound = forms.BooleanField(required=False, help_text="Charged on the amount plus the other taxes.")
    effective_from = _date("Effective from")


class TaxRateForm(TaxRateVersionForm):
    code = forms.CharField(max_length=40, help_text="Groups the versions of one tax, such as VAT20.")
    field_order = ["code", "name", "percent", "compound", "effective_from"]


class TaxCategoryForm(TaxesOwnedForm):
    owned_label = "Tax categories"

    code = forms.CharField(max_length=40, help_text="Such as LABOUR or PARTS.")
    name = forms.CharField(max_length=100)
    taxable = forms.BooleanField(required=False, initial=True,
                                 help_text="Untick when things of this category are not taxed (labour in many US states).")
    tax_codes = _tax_codes_field("Only these tax codes", "Empty: every tax code of the customer applies. Otherwise only "
                                                          "those of the customer's codes listed here (such as GST for "
                                                          "goods exempt from the provincial tax).")

    @staticmethod
    def initial_for(category: TaxCategory) -> dict:
        return {"code": category.code, "name": category.name, "taxable": category.taxable,
                "tax_codes": category.tax_codes}


class ExclusionSetForm(ServiceForm):
    name = forms.CharField(max_length=100, help_text="Typically one per service tier: Bronze, Silver, Gold.")
    work_types = forms.ModelMultipleChoiceField(
        queryset=WorkType.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Contracts using this set do not take time of these work types.",
    )
    roles = forms.ModelMultipleChoiceField(
        queryset=Role.objects.all(), required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Optional: nor time logged by these roles.",
    )

    @staticmethod
    def initial_for(exclusion_set: ExclusionSet) -> dict:
        return {"name": exclusion_set.name, "work_types": list(exclusion_set.work_types.all()),
                "roles": list(exclusion_set.roles.all())}


# --- contracts ----------------------------------------------------------------------------

T = Contract.Type
ALL_TYPES = tuple(T.values)
TIME_TYPES = tuple(kind for kind in ALL_TYPES if kind != T.ONLINE_BACKUP)


class ContractForm(ServiceForm):
    """One form for every type. The server knows the chosen type (posted, or the contract's):
    it renders the other types' fieldsets hidden, reads only the fields of the chosen type,
    and labels what that type requires. The page's script switches the fieldsets as the
    type changes; every value typed stays in the page (and is posted back) in the meantime."""

    field_aliases = {"included_minutes": "included_hours", "budget_minutes": "budget_hours",
                     "minutes": "block_hours", "amount": "block_amount", "price": "block_price",
                     "purchased_on": "start_date"}

    customer = forms.ModelChoiceField(queryset=Customer.objects.filter(is_active=True))
    name = forms.CharField(max_length=200)
    type = forms.ChoiceField(choices=[("", "Choose a type"), *T.choices])
    currency = CurrencyField(empty_label="The customer's currency", required=False,
                             help_text="A contract always bills in its customer's currency.")
    status = forms.ChoiceField(choices=Contract.Status.choices, initial=Contract.Status.ACTIVE)
    start_date = _date("Start date")
    end_date = _date("End date", required=False, help_text="At most 20 years after the start; empty: open-ended.")
    billing_frequency = forms.ChoiceField(choices=Contract.Frequency.choices, initial=Contract.Frequency.MONTHLY)
    billing_timing = forms.ChoiceField(label="Billed", choices=Contract.Timing.choices, initial=Contract.Timing.ADVANCE)
    anchor_day = forms.IntegerField(label="Billing anchor day", min_value=1, max_value=31, initial=1,
                                    help_text="The day of the month periods start on.")
    taxable = forms.BooleanField(required=False, initial=True)
    tax_codes = _tax_codes_field("Tax codes override", "Only when this contract is taxed differently from its customer "
                                                       "(such as work for a branch in another state); empty: the "
                                                       "customer's tax codes.")
    # Fields some types do without are optional to the form; REQUIRED_FOR says which types need them.
    priority = forms.IntegerField(min_value=0, max_value=1000, initial=10, required=False,
                                  help_text="Lower numbers take time first.")
    exclusion_set = forms.ModelChoiceField(queryset=ExclusionSet.objects.all(), required=False,
                                           empty_label="None — takes every work type")
    rounding_increment = forms.IntegerField(label="Round time to (minutes)", min_value=1, max_value=1440, initial=15,
                                            required=False)
    rounding_direction = forms.ChoiceField(choices=Contract.Rounding.choices, initial=Contract.Rounding.UP,
                                           required=False)
    rounding_minimum = forms.IntegerField(label="Minimum per entry (minutes)", min_value=0, max_value=1440, initial=0,
                                          required=False)
    auto_renew = forms.BooleanField(label="Renew automatically", required=False)
    renewal_notice_days = forms.IntegerField(label="Notify days before the end", min_value=0, max_value=3650, initial=90)
    renewal_term_months = forms.IntegerField(label="Extend by (months)", min_value=1, max_value=240, initial=12)
    # Type-specific
    fee = _amount("Fee", required=False, help_text="Retainer: the fee each period. Project: the one-time fee.")
    fee_trigger = forms.ChoiceField(label="Fee invoiced", choices=[("", "—"), *Contract.FeeTrigger.choices],
                                    required=False)
    included_hours = HoursField(label="Included hours per period", required=False,
                                help_text="Optional cap; time beyond it is overage.")
    overage_rate = _rate("Overage rate (per hour)", required=False)
    block_hours = HoursField(label="Block size (hours)", required=False,
                             help_text="The hours the customer buys; bought on the start date and invoiced in the next batch.")
    block_amount = _amount("Block size (prepaid amount)", required=False,
                           help_text="The amount the customer prepays; bought on the start date.")
    block_price = _amount("Block price", required=False, help_text="What the customer is invoiced for the block.")
    cascade = forms.BooleanField(required=False, help_text="When the block is used up, pass time to the next contract.")
    rollover = forms.BooleanField(required=False, initial=True, help_text="Unused balance carries over.")
    block_expiry_months = forms.IntegerField(label="Blocks expire after (months)", min_value=1, max_value=240,
                                             required=False)
    auto_repurchase = forms.BooleanField(required=False, help_text="Buy the next block when one is used up.")
    alert_thresholds = forms.CharField(max_length=60, required=False, initial=services.DEFAULT_ALERT_THRESHOLDS,
                                       help_text="Percent used that triggers an alert, such as 75,90,100.")
    budget_hours = HoursField(label="Budget (hours)", required=False, help_text="Hours, money or both.")
    budget_amount = _amount("Budget (amount)", required=False)
    unit_price = _rate("Unit price (per GB or seat)", required=False)
    included_quantity = forms.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0"), required=False,
                                           initial=Decimal("0"))
    usage_unit = forms.ChoiceField(choices=[("", "—"), ("GB", "GB"), ("seats", "Seats")], required=False)
    effective_date = _date("Changes apply from", required=False,
                           help_text="Unbilled time from this date is re-routed when priority, exclusion set, "
                                     "status or type change. Empty: today.")

    FIELDSETS = [
        ("Contract", ("customer", "name", "type", "currency", "status"), ALL_TYPES),
        ("Dates and billing", ("start_date", "end_date", "billing_frequency", "billing_timing", "anchor_day", "taxable",
                               "tax_codes"), ALL_TYPES),
        ("Fee", ("fee", "fee_trigger"), (T.RETAINER, T.PROJECT_ONE_TIME_FEE)),
        ("Included hours", ("included_hours",), (T.RETAINER,)),
        ("First block", ("block_hours", "block_amount", "block_price"), (T.BLOCK_HOURS, T.BLOCK_MONEY)),
        ("Overage", ("overage_rate",), (T.RETAINER, T.BLOCK_HOURS)),
        ("Blocks", ("cascade", "rollover", "block_expiry_months", "auto_repurchase"), (T.BLOCK_HOURS, T.BLOCK_MONEY)),
        ("Budget", ("budget_hours", "budget_amount"), (T.PROJECT_HOURLY,)),
        ("Alerts", ("alert_thresholds",), (T.BLOCK_HOURS, T.BLOCK_MONEY, T.PROJECT_HOURLY)),
        ("Usage", ("unit_price", "included_quantity", "usage_unit"), (T.ONLINE_BACKUP,)),
        ("Routing", ("priority", "exclusion_set"), TIME_TYPES),
        ("Time rounding", ("rounding_increment", "rounding_direction", "rounding_minimum"), TIME_TYPES),
        ("Renewal", ("auto_renew", "renewal_notice_days", "renewal_term_months"), ALL_TYPES),
        ("Changes", ("effective_date",), ALL_TYPES),
    ]
    # Fields that apply to fewer types than their fieldset.
    FIELD_TYPES = {
        "block_hours": (T.BLOCK_HOURS,), "block_amount": (T.BLOCK_MONEY,), "fee_trigger": (T.PROJECT_ONE_TIME_FEE,),
        # A one-time fee is invoiced once: no anchor day for its periods, nor for a block's purchases.
        "anchor_day": tuple(kind for kind in ALL_TYPES if kind not in (T.PROJECT_ONE_TIME_FEE, T.BLOCK_HOURS,
                                                                         T.BLOCK_MONEY)),
    }
    # Fields a type needs (the services refuse the contract without them); the labels say so.
    REQUIRED_FOR = {
        "fee": (T.RETAINER, T.PROJECT_ONE_TIME_FEE), "fee_trigger": (T.PROJECT_ONE_TIME_FEE,),
        "overage_rate": (T.BLOCK_HOURS,), "unit_price": (T.ONLINE_BACKUP,), "usage_unit": (T.ONLINE_BACKUP,),
        "block_hours": (T.BLOCK_HOURS,), "block_amount": (T.BLOCK_MONEY,), "block_price": (T.BLOCK_HOURS, T.BLOCK_MONEY),
        "priority": TIME_TYPES, "rounding_increment": TIME_TYPES, "rounding_direction": TIME_TYPES,
        "rounding_minimum": TIME_TYPES,
    }

    def __init__(self, *args, contract: Contract | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.contract = contract
        lock_tax_fields(self, ["taxable", "tax_codes"])  # while an accounting system owns taxes
        if contract is None:
            del self.fields["effective_date"]
        else:
            # A contract's customer and currency never change; its blocks are bought on its page.
            for name in ("customer", "currency", "block_hours", "block_amount", "block_price"):
                del self.fields[name]
        chosen = self.data.get("type") if self.is_bound else (self.initial.get("type") or getattr(contract, "type", ""))
        self.chosen_type = chosen if chosen in ALL_TYPES else ""

    # --- which fields apply -------------------------------------------------------------------

    def types_of(self, name: str) -> tuple[str, ...]:
        own = self.FIELD_TYPES.get(name)
        if own is not None:
            return own
        return next((types for _legend, names, types in self.FIELDSETS if name in names), ALL_TYPES)

    def applies(self, name: str) -> bool:
        """Does the field belong to the chosen type? Before a type is chosen, only the common ones."""
        types = self.types_of(name)
        return types == ALL_TYPES or self.chosen_type in types

    def required_types(self, name: str) -> tuple[str, ...]:
        if name in self.REQUIRED_FOR:
            return self.REQUIRED_FOR[name]
        field = self.fields[name]
        return self.types_of(name) if field.required and not isinstance(field, forms.BooleanField) else ()

    def add_error(self, field, error):
        # Other types' fields are not read: what was typed there stays on the page, unchecked.
        if field is not None and field in self.fields and not self.applies(field):
            return
        super().add_error(field, error)

    def clean(self):
        data = super().clean()
        for name in [name for name in list(data) if not self.applies(name)]:
            data.pop(name)
        if self.contract is None and self.chosen_type in (T.BLOCK_HOURS, T.BLOCK_MONEY):
            size = "block_hours" if self.chosen_type == T.BLOCK_HOURS else "block_amount"
            if data.get(size) is None and size not in self.errors:
                self.add_error(size, "Enter the size of the first block the customer buys." if size == "block_hours"
                               else "Enter the amount the customer prepays for the first block.")
            if data.get("block_price") is None and "block_price" not in self.errors:
                self.add_error("block_price", "Enter what the customer is invoiced for the block.")
        return data

    def fieldsets(self):
        """For the template: legend, the types it applies to, whether it shows for the chosen
        type, and each field with the types it applies to and the types that require it."""
        result = []
        for legend, names, types in self.FIELDSETS:
            fields = [{"field": self[name],
                       "types": " ".join(self.types_of(name)) if name in self.FIELD_TYPES else "",
                       "shown": self.applies(name),
                       # "*": required whatever the type
                       "required_types": ("*" if self.required_types(name) == ALL_TYPES
                                          else " ".join(self.required_types(name))),
                       "required": self.chosen_type in self.required_types(name) or self.required_types(name) == ALL_TYPES}
                      for name in names if name in self.fields]
            if fields:
                result.append({"legend": legend, "fields": fields, "types": " ".join(types),
                               "for_all": tuple(types) == ALL_TYPES,
                               "shown": tuple(types) == ALL_TYPES or self.chosen_type in types})
        return result

    def priority_warning(self) -> str:
        """A warning when another of the customer's contracts has the same priority."""
        from contracts.selectors_priorities import contracts_sharing_priority

        if self.chosen_type not in TIME_TYPES:
            return ""
        customer = self.contract.customer_id if self.contract else self._value("customer")
        priority = self._value("priority")
        if not str(customer or "").isdigit() or not str(priority if priority is not None else "").isdigit():
            return ""
        return priority_warning(contracts_sharing_priority(customer=int(customer), priority=int(priority),
                                                           exclude_id=self.contract.pk if self.contract else None))

    def _value(self, name: str):
        if name not in self.fields:
            return None
        value = self[name].value()
        return getattr(value, "pk", value)

    def service_data(self) -> dict:
        """``cleaned_data`` in the services' terms (minutes, not hours), without the first block."""
        data = dict(self.cleaned_data)
        data["included_minutes"] = data.pop("included_hours", None)
        data["budget_minutes"] = data.pop("budget_hours", None)
        data.pop("effective_date", None)
        for name in ("block_hours", "block_amount", "block_price"):
            data.pop(name, None)
        if data.get("included_quantity") is None:
            data["included_quantity"] = Decimal("0")
        for name in ("priority", "rounding_increment", "rounding_direction", "rounding_minimum"):
            # Not read for types that take no time: keep the current value (or the default).
            if data.get(name) in (None, ""):
                data.pop(name, None)
        return data

    def first_block(self) -> dict | None:
        """The block bought with a new Block contract, in ``block_purchase_add``'s terms."""
        data = self.cleaned_data
        if self.contract is not None or self.chosen_type not in (T.BLOCK_HOURS, T.BLOCK_MONEY):
            return None
        return {"minutes": data.get("block_hours"), "amount": data.get("block_amount"), "price": data.get("block_price")}

    @staticmethod
    def initial_for(contract: Contract) -> dict:
        initial = {name: getattr(contract, name) for name in services.CONTRACT_COMMON_FIELDS}
        initial["exclusion_set"] = contract.exclusion_set_id
        initial["type"] = contract.type
        for name in ("fee", "overage_rate", "budget_amount", "unit_price"):
            money = getattr(contract, name)
            initial[name] = money.amount if money is not None else None
        for name in ("fee_trigger", "cascade", "rollover", "block_expiry_months", "auto_repurchase",
                     "alert_thresholds", "included_quantity", "usage_unit"):
            initial[name] = getattr(contract, name)
        initial["included_hours"] = minutes_as_hours(contract.included_minutes)
        initial["budget_hours"] = minutes_as_hours(contract.budget_minutes)
        return initial


def priority_warning(sharing: list[Contract]) -> str:
    """“Gold Remote” has priority 10 too: …; empty when no other contract shares it."""
    if not sharing:
        return ""
    names = ", ".join(f"“{contract.name}”" for contract in sharing)
    return (f"{names} {'has' if len(sharing) == 1 else 'have'} priority {sharing[0].priority} too. With equal "
            f"priorities the older contract takes time first; give each contract its own number to decide.")


# --- contract terms -----------------------------------------------------------------------


class RateLineForm(ServiceForm):
    work_type = forms.ModelChoiceField(queryset=WorkType.objects.all(), required=False, empty_label="Any work type")
    role = forms.ModelChoiceField(queryset=Role.objects.all(), required=False, empty_label="Any role")
    rate = _rate("Rate (per hour)")
    effective_from = _date("Effective from", help_text="Applies to time dated on or after this day.")


class ServiceLineForm(ServiceForm):
    description = forms.CharField(max_length=200, required=False,
                                  help_text="Empty: the product's or rate item's name.")
    product = forms.ModelChoiceField(queryset=Product.objects.filter(is_active=True), required=False)
    rate_item = forms.ModelChoiceField(queryset=RateItem.objects.all(), required=False)
    quantity = forms.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0.001"), initial=Decimal("1"))
    unit_price = _rate("Unit price", required=False, help_text="Empty: the product's price or the rate item's rate.")
    effective_from = _date("From")
    effective_to = _date("Until", required=False)


class ServiceLineEndForm(ServiceForm):
    effective_to = _date("Last day billed")


class DeviceClassForm(ServiceForm):
    name = forms.CharField(max_length=100, help_text="Such as Servers, Workstations, Firewalls.")
    unit_price = _rate("Price per device per period")
    tax_category = _tax_category_field()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        lock_tax_fields(self, ["tax_category"])


class DeviceCountForm(ServiceForm):
    device_class = forms.ModelChoiceField(queryset=DeviceClass.objects.none())
    effective_date = _date("From")
    count = forms.IntegerField(label="Devices", min_value=0, max_value=1_000_000)

    def __init__(self, *args, contract: Contract, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["device_class"].queryset = DeviceClass.objects.filter(contract=contract)


class UsageRecordForm(ServiceForm):
    measured_on = _date("Measured on")
    quantity = forms.DecimalField(max_digits=12, decimal_places=3, min_value=Decimal("0"))


class BlockPurchaseForm(ServiceForm):
    field_aliases = {"minutes": "hours"}

    purchased_on = _date("Bought on")
    hours = HoursField(label="Hours", required=False)
    amount = _amount("Prepaid amount", required=False)
    price = _amount("Price invoiced")
    expires_on = _date("Expires on", required=False, help_text="Empty: after the contract's block expiry months, if set.")

    def __init__(self, *args, contract: Contract, **kwargs):
        super().__init__(*args, **kwargs)
        if contract.type == Contract.Type.BLOCK_HOURS:
            del self.fields["amount"]
            self.fields["hours"].required = True
        else:
            del self.fields["hours"]
            self.fields["amount"].required = True

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        if "hours" in data:
            data["minutes"] = data.pop("hours")
        return data


class MilestoneForm(ServiceForm):
    name = forms.CharField(max_length=120)
    percent = forms.DecimalField(label="Share of the fee (%)", max_digits=6, decimal_places=3,
                                 min_value=Decimal("0.001"), max_value=Decimal("100"))
    due_date = _date("Due", required=False)


class MilestoneCompleteForm(ServiceForm):
    completed_on = _date("Completed on")
