"""Pages for customers, the catalogue and contracts: parse with a form, call a service, render.

Everyone with billing access reads these pages; changing anything needs MANAGE_BILLING
(an accountant's POST is 403). A form that does not validate — in the form or in the
service — is shown again with its messages and status 400; nothing is saved.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import yesno
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from contracts import forms, selectors, services
from contracts.models import (
    Contract,
    Customer,
    ExclusionSet,
    Milestone,
    Product,
    RateItem,
    RecurringServiceLine,
    Role,
    TaxCategory,
    TaxRate,
    WorkType,
)
from contracts.period_charges import period_lines
from contracts.periods import periods_generate_through
from contracts.selectors_periods import period_states
from contracts.selectors_priorities import contracts_sharing_priority
from msp_billing import crud
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.audit.selectors import audit_events_for
from msp_billing.audit.services import object_type_of
from msp_billing.templatetags.formatting import day, number, rate, when
from msp_billing.csv_download import CHUNK, chunks, list_csv

billing = requires(Capability.VIEW_BILLING, write=Capability.MANAGE_BILLING)


# --- helpers ------------------------------------------------------------------------------


def _submit(request: HttpRequest, form: forms.ServiceForm, save: Callable[[], Model]) -> Model | None:
    """On a valid POST call ``save``; its ValidationError goes back onto the form."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        return save()
    except ValidationError as error:
        form.add_service_errors(error)
        return None


def _form_page(request: HttpRequest, form, *, title: str, cancel_url: str, submit_label: str = "Save",
               intro: str = "", template: str = "contracts/form_page.html", **context: Any) -> HttpResponse:
    return render(
        request,
        template,
        {"form": form, "title": title, "cancel_url": cancel_url, "submit_label": submit_label, "intro": intro,
         "can_manage": _can_manage(request), **context},
        status=400 if form.errors else 200,
    )


def _can_manage(request: HttpRequest) -> bool:
    return request.user.can(Capability.MANAGE_BILLING)


def _list(request: HttpRequest, template: str, listing: crud.ListPage, **context: Any) -> HttpResponse:
    return render(request, template, {"listing": listing, "can_manage": _can_manage(request), **context},
                  status=listing.status)


def _home_currency(request: HttpRequest) -> str:
    return getattr(request.tenant, "currency", "") or "EUR"


# --- customers ----------------------------------------------------------------------------


def _customers(request: HttpRequest) -> crud.Filtered:
    """The customer list's rows: its page and its CSV read the same search and filters."""
    return crud.filtered(
        request,
        selectors.customer_list(),
        search_fields=["legal_name", "display_name", "billing_email", "region", "tax_id"],
        filters=[
            crud.yes_no_filter("active", "Active", lookup="is_active"),
            crud.model_filter("parent", "Parent", queryset=selectors.customer_parent_choices()),
            crud.choice_filter("currency", "Currency", choices=_currencies_in_use(Customer.objects)),
        ],
    )


@billing
def customer_list(request):
    return _list(request, "contracts/customer_list.html", crud.list_page(request, _customers(request)))


@billing
def customer_list_csv(request):
    header = ["Id", "Customer", "Legal name", "Parent", "Currency", "Region", "Billing e-mail", "Tax id",
              "Payment terms (days)", "Sites", "Contracts", "Active"]
    return list_csv(request, _customers(request), page=customer_list, filename="customers.csv", header=header,
                    lines=lambda customers: (
                        [c.pk, str(c), c.legal_name, c.parent.legal_name if c.parent else "", c.currency, c.region,
                         c.billing_email, c.tax_id, c.payment_terms_days, c.site_count, c.contract_count, c.is_active]
                        for c in customers.iterator(chunk_size=CHUNK)))


def _currencies_in_use(queryset) -> list[tuple[str, str]]:
    codes = queryset.order_by("currency").values_list("currency", flat=True).distinct()
    return [(code, code) for code in codes]


@billing
def customer_create(request):
    form = forms.CustomerForm(request.POST or None, initial={"currency": _home_currency(request)})
    customer = _submit(request, form, lambda: services.customer_create(
        **{k: v for k, v in form.cleaned_data.items() if k != "default_hourly_contract"}, acting_user=request.user))
    if customer:
        messages.success(request, f"Customer “{customer}” created.")
        _warn_expired_exemption(request, customer)
        return redirect("contracts:customer_detail", customer.pk)
    return _form_page(request, form, title="New customer", cancel_url=reverse("contracts:customer_list"),
                      submit_label="Create customer")


def _warn_expired_exemption(request: HttpRequest, customer: Customer) -> None:
    """An expiry date already past is saved (the certificate is on file) but exempts nothing."""
    if customer.tax_exempt and not customer.exemption_in_effect(services.tenant_today()):
        messages.warning(request, f"The exemption certificate expired on {day(customer.tax_exemption_expires)}: "
                                  "taxes are charged until a later expiry date is entered.")


@billing
def customer_detail(request, pk: int):
    customer = selectors.customer_detail(customer_id=pk)
    expired = customer.tax_exempt and not customer.exemption_in_effect(services.tenant_today())
    return render(request, "contracts/customer_detail.html", {"customer": customer, "can_manage": _can_manage(request),
                                                               "exemption_expired": expired})


@billing
def customer_edit(request, pk: int):
    customer = get_object_or_404(Customer, pk=pk)
    form = forms.CustomerForm(request.POST or None, customer=customer, initial=forms.CustomerForm.initial_for(customer))
    saved = _submit(request, form, lambda: services.customer_update(
        customer=customer, data=form.cleaned_data, acting_user=request.user))
    if saved:
        messages.success(request, f"Customer “{saved}” saved.")
        _warn_expired_exemption(request, saved)
        return redirect("contracts:customer_detail", saved.pk)
    return _form_page(request, form, title=f"Edit {customer}",
                      cancel_url=reverse("contracts:customer_detail", args=[customer.pk]))


# --- catalogue ----------------------------------------------------------------------------


@billing
def catalogue(request):
    counts = {
        "work_types": WorkType.objects.count(),
        "roles": Role.objects.count(),
        "rate_items": RateItem.objects.count(),
        "products": Product.objects.count(),
        "tax_rates": TaxRate.objects.values("code").distinct().count(),
        "tax_categories": TaxCategory.objects.count(),
        "exclusion_sets": ExclusionSet.objects.count(),
    }
    return render(request, "contracts/catalogue.html", {"counts": counts, "can_manage": _can_manage(request)})


# Work types, roles, rate items, products and exclusion sets: the same four pages each
# (list, new, detail, edit), described by a CatalogueEntity and served by catalogue_list,
# catalogue_create, catalogue_detail and catalogue_edit (urls.py passes the entity).


@dataclass(frozen=True)
class Column:
    """One value of a catalogue row: a column of the list or a field of the detail page."""

    label: str
    value: Callable[[Model], Any]  # the text (escaped on the page) or safe HTML shown for a row
    num: bool = False  # right-aligned in the list


@dataclass(frozen=True)
class Section:
    """A card of the detail page: ``fields`` as a definition list, or a ``body``; an optional note."""

    fields: tuple[Column, ...] = ()
    heading: str = ""
    anchor: str = ""  # the heading's id, "<anchor>-h"
    body: Callable[[Model], str] | None = None
    note: str = ""

    def shown(self, obj: Model) -> dict[str, Any]:
        return {"heading": self.heading, "anchor": self.anchor, "note": self.note,
                "fields": [(column.label, column.value(obj)) for column in self.fields],
                "body": self.body(obj) if self.body else ""}


@dataclass(frozen=True)
class CatalogueEntity:
    name: str  # URL names contracts:<name>_list/_create/_detail/_edit, and the keyword ``update`` takes the row as
    slug: str  # URL path catalogue/<slug>/
    label: str  # "work type"
    plural: str  # "work types"
    model: type[Model]
    form: type[forms.ServiceForm]
    list_selector: Callable[[], QuerySet]
    create: Callable[..., Model]  # services.<name>_create(**form.cleaned_data, acting_user=…)
    update: Callable[..., Model]  # services.<name>_update(<name>=row, data=…, acting_user=…)
    columns: tuple[Column, ...]  # the first one links to the detail page
    sections: tuple[Section, ...]
    empty_text: str
    search_fields: tuple[str, ...] = ("name",)
    filters: Callable[[], list[crud.Filter]] = lambda: []
    detail_selector: Callable[[int], Model] | None = None  # default: the row by pk, or 404
    title_prefix: str = ""
    edit_intro: Callable[[Model], str] | None = None

    @property
    def urls(self) -> dict[str, str]:
        """URL names by page, for ``{% url entity.urls.detail pk %}``."""
        return {page: f"contracts:{self.name}_{page}" for page in ("list", "create", "detail", "edit")}

    @property
    def new_label(self) -> str:
        return f"New {self.label}"

    @property
    def empty_title(self) -> str:
        return f"No {self.plural} found"


def _field(name: str, default: str | None = None) -> Callable[[Model], Any]:
    """The value as it is; with ``default``, that in place of an empty one."""
    if default is None:
        return lambda obj: getattr(obj, name)
    return lambda obj: getattr(obj, name) or default


def _yes_no(name: str, labels: str = "Yes,No") -> Callable[[Model], str]:
    return lambda obj: yesno(getattr(obj, name), labels)


def _multiplier(name: str) -> Callable[[Model], str]:
    return lambda obj: f"× {number(getattr(obj, name))}"


def _money(name: str) -> Callable[[Model], str]:
    def value(obj: Model) -> str:
        return rate(getattr(obj, name))  # a rate or price: its symbol, four places only where they count
    return value


def _active_badge(obj: Model) -> str:
    if obj.is_active:
        return format_html('<span class="badge badge-ok">{}</span>', "Active")
    return format_html('<span class="badge badge-muted">{}</span>', "Inactive")


def _names(name: str) -> Callable[[Model], str]:
    return lambda obj: ", ".join(str(member) for member in getattr(obj, name).all()) or "—"


def _links(name: str, url_name: str, empty: str) -> Callable[[Model], str]:
    return lambda obj: format_html_join(", ", '<a href="{}">{}</a>', (
        (reverse(url_name, args=[member.pk]), member) for member in getattr(obj, name).all())) or empty


def _date_time(name: str) -> Callable[[Model], str]:
    return lambda obj: when(getattr(obj, name))


def _contracts_using(exclusion_set: ExclusionSet) -> str:
    contracts = exclusion_set.contracts.all()
    if not contracts:
        return format_html("<p>{}</p>", "No contract uses this set yet.")
    return format_html("<ul>{}</ul>", format_html_join("", '<li><a href="{}">{}</a></li>', (
        (reverse("contracts:detail", args=[contract.pk]), contract) for contract in contracts)))


def _exclusion_set_edit_intro(exclusion_set: ExclusionSet) -> str:
    using = exclusion_set.contracts.count()
    return (f"{using} contract{'s' if using != 1 else ''} use{'s' if using == 1 else ''} this set: "
            "a change applies to all of them from today on." if using else "")


_ACTIVE = Column("Status", _active_badge)


def _tax_category(obj: Model) -> str:
    category = getattr(obj, "tax_category", None)
    return str(category) if category is not None else "None — the customer's tax codes"


def _category_taxes(category: TaxCategory) -> str:
    if not category.taxable:
        return "Not taxed"
    return f"Only {category.tax_codes} of the customer's tax codes" if category.tax_codes else "Every tax code of the customer"


_TAX_CATEGORY = Column("Tax category", _tax_category)

CATALOGUE = (
    CatalogueEntity(
        name="work_type", slug="work-types", label="work type", plural="work types", model=WorkType,
        form=forms.WorkTypeForm, list_selector=selectors.work_type_list,
        create=services.work_type_create, update=services.work_type_update,
        filters=lambda: [crud.yes_no_filter("active", "Active", lookup="is_active"),
                         crud.yes_no_filter("after_hours", "Always after hours", lookup="is_after_hours"),
                         crud.yes_no_filter("billable", "Billable")],
        columns=(Column("Work type", _field("name")),
                 Column("After hours", _yes_no("is_after_hours", "Always,When logged after hours")),
                 Column("After-hours multiplier", _multiplier("after_hours_multiplier"), num=True),
                 Column("Billable", _yes_no("billable")), _ACTIVE),
        detail_selector=lambda pk: selectors.work_type_detail(work_type_id=pk),
        sections=(Section(fields=(
            Column("After hours", _yes_no("is_after_hours", "Always after hours,"
                                                             "After hours only when logged outside business hours")),
            Column("After-hours multiplier", _multiplier("after_hours_multiplier")),
            Column("Billable", _yes_no("billable")),
            _TAX_CATEGORY,
            Column("Status", _yes_no("is_active", "Active,Inactive")),
            Column("Excluded by", _links("exclusion_sets", "contracts:exclusion_set_detail", "No exclusion set")),
        )),),
        empty_text="Work types are the billing codes technicians pick: Remote Support, Onsite Support, "
                   "Out-of-Hours Support and so on.",
    ),
    CatalogueEntity(
        name="role", slug="roles", label="role", plural="roles", model=Role, form=forms.RoleForm,
        list_selector=selectors.role_list, create=services.role_create, update=services.role_update,
        columns=(Column("Role", _field("name")), Column("Default rate", _money("default_rate"), num=True),
                 Column("Cost rate", _money("cost_rate"), num=True)),
        sections=(Section(
            fields=(Column("Default rate (per hour)", _money("default_rate")),
                    Column("Cost rate (per hour)", _money("cost_rate"))),
            note="The default rate applies when a contract has no rate of its own for the work; "
                 "the cost rate is used for profitability.",
        ),),
        empty_text="Roles such as Tier 1, Engineer and Architect carry a default rate and an internal cost rate.",
    ),
    CatalogueEntity(
        name="rate_item", slug="rate-items", label="rate item", plural="rate items", model=RateItem,
        form=forms.RateItemForm, list_selector=selectors.rate_item_list,
        create=services.rate_item_create, update=services.rate_item_update,
        search_fields=("name", "accounting_code"),
        columns=(Column("Rate item", _field("name")), Column("Rate", _money("rate"), num=True),
                 Column("Accounting code", _field("accounting_code", default="—"))),
        sections=(Section(fields=(Column("Rate (per hour)", _money("rate")),
                                  Column("Accounting code", _field("accounting_code", default="—")), _TAX_CATEGORY)),),
        empty_text="A rate item is a named, priced labour service that maps to an item in your accounting system.",
    ),
    CatalogueEntity(
        name="product", slug="products", label="product", plural="products", model=Product,
        form=forms.ProductForm, list_selector=selectors.product_list,
        create=services.product_create, update=services.product_update,
        search_fields=("sku", "name", "accounting_code"),
        filters=lambda: [crud.yes_no_filter("active", "Active", lookup="is_active"),
                         crud.yes_no_filter("taxable", "Taxable")],
        columns=(Column("SKU", _field("sku")), Column("Product", _field("name")),
                 Column("Price", _money("price"), num=True), Column("Cost", _money("cost"), num=True),
                 Column("Taxable", _yes_no("taxable")), _ACTIVE),
        sections=(Section(fields=(
            Column("SKU", _field("sku")), Column("Price", _money("price")), Column("Cost", _money("cost")),
            Column("Taxable", _yes_no("taxable")), _TAX_CATEGORY,
            Column("Accounting code", _field("accounting_code", default="—")),
            Column("Status", _yes_no("is_active", "Active,Inactive")),
        )),),
        empty_text="Products are catalogue items with a SKU, price and cost, billed as charges on tickets or "
                   "contracts.",
    ),
    CatalogueEntity(
        name="tax_category", slug="tax-categories", label="tax category", plural="tax categories", model=TaxCategory,
        form=forms.TaxCategoryForm, list_selector=lambda: TaxCategory.objects.all(),
        create=services.tax_category_create, update=services.tax_category_update,
        search_fields=("code", "name"),
        columns=(Column("Tax category", _field("name")), Column("Code", _field("code")),
                 Column("Taxes", _category_taxes)),
        sections=(Section(fields=(Column("Code", _field("code")), Column("Taxes", _category_taxes)),
                          note="Set on work types, rate items and products. A line is taxed with its contract's "
                               "tax codes override, else its customer's tax codes, else the default tax codes; a "
                               "category that is not taxed charges nothing, one with codes keeps only those."),),
        empty_text="Tax categories say how what you sell is taxed: Labour (not taxed in many US states), Parts, "
                   "Software.",
    ),
    CatalogueEntity(
        name="exclusion_set", slug="exclusion-sets", label="exclusion set", plural="exclusion sets",
        model=ExclusionSet, form=forms.ExclusionSetForm, list_selector=selectors.exclusion_set_list,
        create=services.exclusion_set_create, update=services.exclusion_set_update,
        filters=lambda: [crud.model_filter("work_type", "Excludes work type", queryset=WorkType.objects.all(),
                                           lookup="work_types")],
        columns=(Column("Exclusion set", _field("name")), Column("Work types not absorbed", _names("work_types")),
                 Column("Roles not absorbed", _names("roles")),
                 Column("Contracts", _field("contract_count"), num=True)),
        detail_selector=lambda pk: selectors.exclusion_set_detail(exclusion_set_id=pk),
        title_prefix="Exclusion set ",
        sections=(
            Section(heading="Not absorbed", anchor="members", fields=(
                Column("Work types", _links("work_types", "contracts:work_type_detail", "None")),
                Column("Roles", _links("roles", "contracts:role_detail", "None")),
                Column("Last changed", _date_time("changed_at")),
            ), note="Time of these work types or roles passes to the customer's next contract in priority order."),
            Section(heading="Used by", anchor="used", body=_contracts_using),
        ),
        edit_intro=_exclusion_set_edit_intro,
        empty_text="An exclusion set names the work types (and roles) a contract does not absorb — typically one "
                   "per service tier: Bronze, Silver, Gold.",
    ),
)


@billing
def catalogue_list(request, entity: CatalogueEntity):
    listing = crud.list_page(request, entity.list_selector(), search_fields=entity.search_fields,
                             filters=entity.filters())
    rows = [(obj, [(column, column.value(obj)) for column in entity.columns]) for obj in listing.objects]
    return _list(request, "contracts/catalogue_list.html", listing, entity=entity, rows=rows)


@billing
def catalogue_create(request, entity: CatalogueEntity):
    initial = {"currency": _home_currency(request)} if "currency" in entity.form.base_fields else None
    form = entity.form(request.POST or None, initial=initial)
    created = _submit(request, form, lambda: entity.create(**form.cleaned_data, acting_user=request.user))
    if created:
        messages.success(request, f"{capfirst(entity.label)} “{created}” created.")
        return redirect(entity.urls["detail"], created.pk)
    return _form_page(request, form, title=entity.new_label, cancel_url=reverse(entity.urls["list"]),
                      submit_label=f"Create {entity.label}")


@billing
def catalogue_detail(request, pk: int, entity: CatalogueEntity):
    obj = entity.detail_selector(pk) if entity.detail_selector else get_object_or_404(entity.model, pk=pk)
    return render(request, "contracts/catalogue_detail.html", {
        "entity": entity, "object": obj, "sections": [section.shown(obj) for section in entity.sections],
        "can_manage": _can_manage(request),
    })


@billing
def catalogue_edit(request, pk: int, entity: CatalogueEntity):
    obj = get_object_or_404(entity.model, pk=pk)
    form = entity.form(request.POST or None, initial=entity.form.initial_for(obj))
    saved = _submit(request, form, lambda: entity.update(
        **{entity.name: obj}, data=form.cleaned_data, acting_user=request.user))
    if saved:
        messages.success(request, f"{capfirst(entity.label)} “{saved}” saved.")
        return redirect(entity.urls["detail"], saved.pk)
    return _form_page(request, form, title=f"Edit {obj}", cancel_url=reverse(entity.urls["detail"], args=[obj.pk]),
                      intro=entity.edit_intro(obj) if entity.edit_intro else "")


# Tax rates (versioned: "edit" adds a version)


@billing
def tax_rate_list(request):
    listing = crud.list_page(
        request, selectors.tax_rate_list(), search_fields=["code", "name"],
        filters=[crud.yes_no_filter("compound", "Compound")],
    )
    today = services.tenant_today()
    latest = {row["code"]: row["latest"] for row in selectors.tax_rate_latest_dates()}
    in_force = {}
    for tax_rate in TaxRate.objects.filter(effective_from__lte=today).order_by("code", "-effective_from"):
        in_force.setdefault(tax_rate.code, tax_rate.pk)
    rows = [
        {"tax_rate": tax_rate,
         "state": "in force" if in_force.get(tax_rate.code) == tax_rate.pk
         else "scheduled" if tax_rate.effective_from > today else "superseded",
         "is_latest": latest.get(tax_rate.code) == tax_rate.effective_from}
        for tax_rate in listing.objects
    ]
    return _list(request, "contracts/tax_rate_list.html", listing, rows=rows)


@billing
def tax_rate_create(request):
    form = forms.TaxRateForm(request.POST or None, initial={"effective_from": services.tenant_today()})
    tax_rate = _submit(request, form, lambda: services.tax_rate_create(**form.cleaned_data, acting_user=request.user))
    if tax_rate:
        messages.success(request, f"Tax {tax_rate.code} created.")
        return redirect("contracts:tax_rate_detail", tax_rate.pk)
    return _form_page(request, form, title="New tax rate", cancel_url=reverse("contracts:tax_rate_list"),
                      submit_label="Create tax rate")


@billing
def tax_rate_detail(request, pk: int):
    tax_rate = get_object_or_404(TaxRate, pk=pk)
    versions = selectors.tax_rate_versions(code=tax_rate.code)
    current = selectors.tax_rate_in_force(code=tax_rate.code, on_date=services.tenant_today())
    return render(request, "contracts/tax_rate_detail.html",
                  {"tax_rate": tax_rate, "versions": versions, "current": current,
                   "can_manage": _can_manage(request)})


@billing
def tax_rate_new_version(request, pk: int):
    tax_rate = get_object_or_404(TaxRate, pk=pk)
    latest = selectors.tax_rate_versions(code=tax_rate.code).first()
    form = forms.TaxRateVersionForm(request.POST or None, initial={
        "name": latest.name, "percent": latest.percent, "compound": latest.compound,
    })
    version = _submit(request, form, lambda: services.tax_rate_new_version(
        tax_rate=tax_rate, **form.cleaned_data, acting_user=request.user))
    if version:
        messages.success(request, f"{version.code}: new version from {day(version.effective_from)} saved.")
        return redirect("contracts:tax_rate_detail", version.pk)
    return _form_page(
        request, form, title=f"Change tax {tax_rate.code}",
        cancel_url=reverse("contracts:tax_rate_detail", args=[tax_rate.pk]), submit_label="Save new version",
        intro=f"A change is a new version from its effective date, after {day(latest.effective_from)}. "
              "Earlier versions — and the invoices that used them — never change.",
    )


# --- contracts ----------------------------------------------------------------------------


def _contracts(request: HttpRequest) -> crud.Filtered:
    """The contract list's rows: its page and its CSV read the same search and filters."""
    return crud.filtered(
        request,
        selectors.contract_list(),
        search_fields=["name", "customer__legal_name", "customer__display_name"],
        filters=[
            crud.choice_filter("type", "Type", choices=Contract.Type.choices),
            crud.choice_filter("status", "Status", choices=Contract.Status.choices),
            crud.model_filter("customer", "Customer", queryset=Customer.objects.all()),
        ],
    )


@billing
def contract_list(request):
    listing = crud.list_page(request, _contracts(request))
    _with_block_balances(listing.objects)
    return _list(request, "contracts/contract_list.html", listing)


@billing
def contract_list_csv(request):
    header = ["Id", "Contract", "Customer", "Type", "Currency", "Start", "End", "Priority", "Exclusion set", "Status",
              "Block unit", "Block purchased", "Block used", "Block left", "Block expired"]

    def lines(contracts):
        for chunk in chunks(contracts.iterator(chunk_size=CHUNK)):
            _with_block_balances(chunk)
            for c in chunk:
                b = c.block_balance
                block = ([] if b is None else
                         [c.currency, b.purchased, b.used, b.left, b.expired] if b.money else
                         ["hours", b.purchased_hours, b.used_hours, b.left_hours, b.expired_hours])
                yield [c.pk, c.name, str(c.customer), c.get_type_display(), c.currency, c.start_date, c.end_date,
                       c.priority, c.exclusion_set or "", c.get_status_display(), *block]

    return list_csv(request, _contracts(request), page=contract_list, filename="contracts.csv", header=header,
                    lines=lines)


def _with_block_balances(contracts) -> None:
    """Set ``block_balance`` on each block contract of a page: one query for the whole page."""
    contracts = list(contracts)
    balances = selectors.block_balances(contracts=contracts, today=services.tenant_today())
    for contract in contracts:
        contract.block_balance = balances.get(contract.pk)


@billing
def contract_create(request):
    initial = {"start_date": services.tenant_today()}
    customer_id = request.GET.get("customer", "")
    if customer_id.isdigit():
        initial["customer"] = Customer.objects.filter(pk=int(customer_id), is_active=True).first()
    form = forms.ContractForm(request.POST or None, initial=initial)
    contract = _submit(request, form, lambda: services.contract_create_with_block(
        **form.service_data(), block=form.first_block(), acting_user=request.user))
    if contract:
        messages.success(request, f"Contract “{contract.name}” created.")
        _warn_on_equal_priority(request, contract)
        return redirect("contracts:detail", contract.pk)
    return _form_page(request, form, title="New contract", cancel_url=reverse("contracts:list"),
                      submit_label="Create contract", template="contracts/contract_form.html")


@billing
def contract_detail(request, pk: int):
    contract = selectors.contract_detail(contract_id=pk)
    today = services.tenant_today()
    # Every period billed by today is listed, even before the daily task has stored it.
    periods_generate_through(cutoff=today, today=today, contract_ids=[contract.pk])
    periods = period_states(contract=contract, cutoff=today)
    for period in periods:
        period.amount = sum((line.amount for line in period_lines(period=period)), Decimal(0))
    return render(request, "contracts/contract_detail.html", {
        "contract": contract,
        "periods": periods,
        "can_manage": _can_manage(request),
        "today": today,
        "block_balance": selectors.block_balance(contract=contract, today=today),
        "included_hours": forms.minutes_as_hours(contract.included_minutes),
        "budget_hours": forms.minutes_as_hours(contract.budget_minutes),
        "takes_time": contract.type != Contract.Type.ONLINE_BACKUP,
        "events": audit_events_for(contract)[:AUDIT_EVENTS_SHOWN],
        "audit_report_url": _audit_report_url(contract),
    })


AUDIT_EVENTS_SHOWN = 50


def _audit_report_url(obj: Model) -> str:
    """The audit report filtered to one object (its whole trail, with CSV)."""
    return reverse("billing:audit") + "?" + urlencode({"object_type": object_type_of(obj), "object_id": obj.pk})


@billing
def contract_edit(request, pk: int):
    contract = selectors.contract_for_update(contract_id=pk)
    form = forms.ContractForm(request.POST or None, contract=contract, initial=forms.ContractForm.initial_for(contract))
    saved = _submit(request, form, lambda: services.contract_update(
        contract=contract, data=form.service_data(), effective_date=form.cleaned_data.get("effective_date"),
        acting_user=request.user))
    if saved:
        messages.success(request, f"Contract “{saved.name}” saved.")
        _warn_on_equal_priority(request, saved)
        return redirect("contracts:detail", saved.pk)
    return _form_page(request, form, title=f"Edit {contract.name}", contract=contract,
                      cancel_url=reverse("contracts:detail", args=[contract.pk]),
                      template="contracts/contract_form.html")


def _warn_on_equal_priority(request, contract: Contract) -> None:
    if contract.type == Contract.Type.ONLINE_BACKUP:
        return
    warning = forms.priority_warning(contracts_sharing_priority(
        customer=contract.customer_id, priority=contract.priority, exclude_id=contract.pk))
    if warning:
        messages.warning(request, warning)


# Contract terms: every add page is a small form that returns to the contract.


def _term_page(request, contract: Contract, form, *, title: str, save: Callable[[], Model], done: str,
               intro: str = "") -> HttpResponse:
    created = _submit(request, form, save)
    if created:
        messages.success(request, done)
        return redirect("contracts:detail", contract.pk)
    return _form_page(request, form, title=f"{title} · {contract.name}", intro=intro, contract=contract,
                      cancel_url=reverse("contracts:detail", args=[contract.pk]), submit_label=title)


def _contract_of_type(pk: int, *types: str) -> Contract:
    """The contract, or 404 when it does not exist or the page does not apply to its type."""
    return get_object_or_404(Contract.objects.select_related("customer"), pk=pk, type__in=types)


@billing
def rate_line_add(request, pk: int):
    contract = get_object_or_404(Contract, pk=pk)
    form = forms.RateLineForm(request.POST or None, initial={"effective_from": services.tenant_today()})
    return _term_page(
        request, contract, form, title="Add rate line",
        save=lambda: services.rate_line_add(contract=contract, **form.cleaned_data, acting_user=request.user),
        done="Rate line added.",
        intro=f"Rates are in {contract.currency}. Leave work type and role empty for the contract's default rate.",
    )


@billing
def service_line_add(request, pk: int):
    contract = get_object_or_404(Contract, pk=pk)
    form = forms.ServiceLineForm(request.POST or None, initial={"effective_from": services.tenant_today()})
    return _term_page(
        request, contract, form, title="Add service line",
        save=lambda: services.service_line_add(contract=contract, **form.cleaned_data, acting_user=request.user),
        done="Recurring service line added.",
        intro=f"Billed every period with the contract's fee, in {contract.currency}.",
    )


@billing
def service_line_end(request, pk: int, line_pk: int):
    contract = get_object_or_404(Contract, pk=pk)
    line = get_object_or_404(RecurringServiceLine, pk=line_pk, contract=contract)
    form = forms.ServiceLineEndForm(request.POST or None, initial={"effective_to": line.effective_to or services.tenant_today()})
    return _term_page(
        request, contract, form, title="End service line",
        save=lambda: services.service_line_end(service_line=line, **form.cleaned_data, acting_user=request.user),
        done=f"“{line.description}” ends on the chosen date.",
        intro=f"“{line.description}”, billed from {day(line.effective_from)}. "
              "To change the quantity, end this line and add a new one.",
    )


@billing
def device_class_add(request, pk: int):
    contract = _contract_of_type(pk, Contract.Type.REMOTE_MONITORING)
    form = forms.DeviceClassForm(request.POST or None)
    return _term_page(
        request, contract, form, title="Add device class",
        save=lambda: services.device_class_add(contract=contract, **form.cleaned_data, acting_user=request.user),
        done="Device class added. Record its device count next.",
        intro=f"Price per device per billing period, in {contract.currency}.",
    )


@billing
def device_count_record(request, pk: int):
    contract = _contract_of_type(pk, Contract.Type.REMOTE_MONITORING)
    form = forms.DeviceCountForm(request.POST or None, contract=contract,
                                 initial={"effective_date": services.tenant_today(),
                                          "device_class": request.GET.get("device_class")})
    return _term_page(
        request, contract, form, title="Record device count",
        save=lambda: services.device_count_record(**form.cleaned_data, acting_user=request.user),
        done="Device count recorded.",
        intro="A new count applies from its date on; earlier counts stay as they were. "
              "A change in the middle of a period is prorated by day.",
    )


@billing
def usage_record(request, pk: int):
    contract = _contract_of_type(pk, Contract.Type.ONLINE_BACKUP)
    form = forms.UsageRecordForm(request.POST or None, initial={"measured_on": services.tenant_today()})
    return _term_page(
        request, contract, form, title="Record usage",
        save=lambda: services.usage_record(contract=contract, **form.cleaned_data, acting_user=request.user),
        done="Usage recorded.",
        intro=f"Usage in {contract.usage_unit or 'units'}; {services.plain(contract.included_quantity)} included.",
    )


@billing
def block_purchase_add(request, pk: int):
    contract = _contract_of_type(pk, Contract.Type.BLOCK_HOURS, Contract.Type.BLOCK_MONEY)
    form = forms.BlockPurchaseForm(request.POST or None, contract=contract,
                                   initial={"purchased_on": services.tenant_today()})
    return _term_page(
        request, contract, form, title="Add block purchase",
        save=lambda: services.block_purchase_add(contract=contract, **form.service_data(), acting_user=request.user),
        done="Block purchase added; it is invoiced in the next batch.",
        intro=f"Amounts in {contract.currency}.",
    )


@billing
def milestone_add(request, pk: int):
    contract = _contract_of_type(pk, Contract.Type.PROJECT_ONE_TIME_FEE)
    form = forms.MilestoneForm(request.POST or None)
    return _term_page(
        request, contract, form, title="Add milestone",
        save=lambda: services.milestone_add(contract=contract, **form.cleaned_data, acting_user=request.user),
        done="Milestone added.",
        intro="Each milestone invoices its share of the fixed fee when it is completed.",
    )


@billing
def milestone_complete(request, pk: int, milestone_pk: int):
    contract = _contract_of_type(pk, Contract.Type.PROJECT_ONE_TIME_FEE)
    milestone = get_object_or_404(Milestone, pk=milestone_pk, contract=contract)
    form = forms.MilestoneCompleteForm(request.POST or None, initial={"completed_on": services.tenant_today()})
    return _term_page(
        request, contract, form, title="Complete milestone",
        save=lambda: services.milestone_complete(milestone=milestone, **form.cleaned_data, acting_user=request.user),
        done=f"Milestone “{milestone.name}” completed; its share is invoiced in the next batch.",
        intro=f"“{milestone.name}”: {services.plain(milestone.percent)} % of the fee.",
    )
