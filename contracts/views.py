"""Pages for customers, the catalogue and contracts: parse with a form, call a service, render.

Everyone with billing access reads these pages; changing anything needs MANAGE_BILLING
(an accountant's POST is 403). A form that does not validate — in the form or in the
service — is shown again with its messages and status 400; nothing is saved.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

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
    TaxRate,
    WorkType,
)
from msp_billing import crud
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability

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


@billing
def customer_list(request):
    listing = crud.list_page(
        request,
        selectors.customer_list(),
        search_fields=["legal_name", "display_name", "billing_email", "region", "tax_id"],
        filters=[
            crud.yes_no_filter("active", "Active", lookup="is_active"),
            crud.model_filter("parent", "Parent", queryset=selectors.customer_parent_choices()),
            crud.choice_filter("currency", "Currency", choices=_currencies_in_use(Customer.objects)),
        ],
    )
    return _list(request, "contracts/customer_list.html", listing)


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
        return redirect("contracts:customer_detail", customer.pk)
    return _form_page(request, form, title="New customer", cancel_url=reverse("contracts:customer_list"),
                      submit_label="Create customer")


@billing
def customer_detail(request, pk: int):
    customer = selectors.customer_detail(customer_id=pk)
    return render(request, "contracts/customer_detail.html", {"customer": customer, "can_manage": _can_manage(request)})


@billing
def customer_edit(request, pk: int):
    customer = get_object_or_404(Customer, pk=pk)
    form = forms.CustomerForm(request.POST or None, customer=customer, initial=forms.CustomerForm.initial_for(customer))
    saved = _submit(request, form, lambda: services.customer_update(
        customer=customer, data=form.cleaned_data, acting_user=request.user))
    if saved:
        messages.success(request, f"Customer “{saved}” saved.")
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
        "exclusion_sets": ExclusionSet.objects.count(),
    }
    return render(request, "contracts/catalogue.html", {"counts": counts, "can_manage": _can_manage(request)})


# Work types


@billing
def work_type_list(request):
    listing = crud.list_page(
        request, selectors.work_type_list(), search_fields=["name"],
        filters=[
            crud.yes_no_filter("active", "Active", lookup="is_active"),
            crud.yes_no_filter("after_hours", "Always after hours", lookup="is_after_hours"),
            crud.yes_no_filter("billable", "Billable"),
        ],
    )
    return _list(request, "contracts/work_type_list.html", listing)


@billing
def work_type_create(request):
    form = forms.WorkTypeForm(request.POST or None)
    work_type = _submit(request, form, lambda: services.work_type_create(**form.cleaned_data, acting_user=request.user))
    if work_type:
        messages.success(request, f"Work type “{work_type}” created.")
        return redirect("contracts:work_type_detail", work_type.pk)
    return _form_page(request, form, title="New work type", cancel_url=reverse("contracts:work_type_list"),
                      submit_label="Create work type")


@billing
def work_type_detail(request, pk: int):
    work_type = get_object_or_404(WorkType.objects.prefetch_related("exclusion_sets"), pk=pk)
    return render(request, "contracts/work_type_detail.html",
                  {"work_type": work_type, "can_manage": _can_manage(request)})


@billing
def work_type_edit(request, pk: int):
    work_type = get_object_or_404(WorkType, pk=pk)
    form = forms.WorkTypeForm(request.POST or None, initial=forms.WorkTypeForm.initial_for(work_type))
    saved = _submit(request, form, lambda: services.work_type_update(
        work_type=work_type, data=form.cleaned_data, acting_user=request.user))
    if saved:
        messages.success(request, f"Work type “{saved}” saved.")
        return redirect("contracts:work_type_detail", saved.pk)
    return _form_page(request, form, title=f"Edit {work_type}",
                      cancel_url=reverse("contracts:work_type_detail", args=[work_type.pk]))


# Roles


@billing
def role_list(request):
    listing = crud.list_page(request, selectors.role_list(), search_fields=["name"])
    return _list(request, "contracts/role_list.html", listing)


@billing
def role_create(request):
    form = forms.RoleForm(request.POST or None, initial={"currency": _home_currency(request)})
    role = _submit(request, form, lambda: services.role_create(**form.cleaned_data, acting_user=request.user))
    if role:
        messages.success(request, f"Role “{role}” created.")
        return redirect("contracts:role_detail", role.pk)
    return _form_page(request, form, title="New role", cancel_url=reverse("contracts:role_list"),
                      submit_label="Create role")


@billing
def role_detail(request, pk: int):
    role = get_object_or_404(Role, pk=pk)
    return render(request, "contracts/role_detail.html", {"role": role, "can_manage": _can_manage(request)})


@billing
def role_edit(request, pk: int):
    role = get_object_or_404(Role, pk=pk)
    form = forms.RoleForm(request.POST or None, initial=forms.RoleForm.initial_for(role))
    saved = _submit(request, form, lambda: services.role_update(role=role, data=form.cleaned_data,
                                                                 acting_user=request.user))
    if saved:
        messages.success(request, f"Role “{saved}” saved.")
        return redirect("contracts:role_detail", saved.pk)
    return _form_page(request, form, title=f"Edit {role}", cancel_url=reverse("contracts:role_detail", args=[role.pk]))


# Rate items


@billing
def rate_item_list(request):
    listing = crud.list_page(request, selectors.rate_item_list(), search_fields=["name", "accounting_code"])
    return _list(request, "contracts/rate_item_list.html", listing)


@billing
def rate_item_create(request):
    form = forms.RateItemForm(request.POST or None, initial={"currency": _home_currency(request)})
    rate_item = _submit(request, form, lambda: services.rate_item_create(**form.cleaned_data, acting_user=request.user))
    if rate_item:
        messages.success(request, f"Rate item “{rate_item}” created.")
        return redirect("contracts:rate_item_detail", rate_item.pk)
    return _form_page(request, form, title="New rate item", cancel_url=reverse("contracts:rate_item_list"),
                      submit_label="Create rate item")


@billing
def rate_item_detail(request, pk: int):
    rate_item = get_object_or_404(RateItem, pk=pk)
    return render(request, "contracts/rate_item_detail.html",
                  {"rate_item": rate_item, "can_manage": _can_manage(request)})


@billing
def rate_item_edit(request, pk: int):
    rate_item = get_object_or_404(RateItem, pk=pk)
    form = forms.RateItemForm(request.POST or None, initial=forms.RateItemForm.initial_for(rate_item))
    saved = _submit(request, form, lambda: services.rate_item_update(
        rate_item=rate_item, data=form.cleaned_data, acting_user=request.user))
    if saved:
        messages.success(request, f"Rate item “{saved}” saved.")
        return redirect("contracts:rate_item_detail", saved.pk)
    return _form_page(request, form, title=f"Edit {rate_item}",
                      cancel_url=reverse("contracts:rate_item_detail", args=[rate_item.pk]))


# Products


@billing
def product_list(request):
    listing = crud.list_page(
        request, selectors.product_list(), search_fields=["sku", "name", "accounting_code"],
        filters=[crud.yes_no_filter("active", "Active", lookup="is_active"), crud.yes_no_filter("taxable", "Taxable")],
    )
    return _list(request, "contracts/product_list.html", listing)


@billing
def product_create(request):
    form = forms.ProductForm(request.POST or None, initial={"currency": _home_currency(request)})
    product = _submit(request, form, lambda: services.product_create(**form.cleaned_data, acting_user=request.user))
    if product:
        messages.success(request, f"Product “{product}” created.")
        return redirect("contracts:product_detail", product.pk)
    return _form_page(request, form, title="New product", cancel_url=reverse("contracts:product_list"),
                      submit_label="Create product")


@billing
def product_detail(request, pk: int):
    product = get_object_or_404(Product, pk=pk)
    return render(request, "contracts/product_detail.html", {"product": product, "can_manage": _can_manage(request)})


@billing
def product_edit(request, pk: int):
    product = get_object_or_404(Product, pk=pk)
    form = forms.ProductForm(request.POST or None, initial=forms.ProductForm.initial_for(product))
    saved = _submit(request, form, lambda: services.product_update(
        product=product, data=form.cleaned_data, acting_user=request.user))
    if saved:
        messages.success(request, f"Product “{saved}” saved.")
        return redirect("contracts:product_detail", saved.pk)
    return _form_page(request, form, title=f"Edit {product}",
                      cancel_url=reverse("contracts:product_detail", args=[product.pk]))


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
        messages.success(request, f"{version.code}: new version from {version.effective_from:%d %b %Y} saved.")
        return redirect("contracts:tax_rate_detail", version.pk)
    return _form_page(
        request, form, title=f"Change tax {tax_rate.code}",
        cancel_url=reverse("contracts:tax_rate_detail", args=[tax_rate.pk]), submit_label="Save new version",
        intro=f"A change is a new version from its effective date, after {latest.effective_from:%d %b %Y}. "
              "Earlier versions — and the invoices that used them — never change.",
    )


# Exclusion sets


@billing
def exclusion_set_list(request):
    listing = crud.list_page(
        request, selectors.exclusion_set_list(), search_fields=["name"],
        filters=[crud.model_filter("work_type", "Excludes work type", queryset=WorkType.objects.all(),
                                   lookup="work_types")],
    )
    return _list(request, "contracts/exclusion_set_list.html", listing)


@billing
def exclusion_set_create(request):
    form = forms.ExclusionSetForm(request.POST or None)
    exclusion_set = _submit(request, form, lambda: services.exclusion_set_create(
        **form.cleaned_data, acting_user=request.user))
    if exclusion_set:
        messages.success(request, f"Exclusion set “{exclusion_set}” created.")
        return redirect("contracts:exclusion_set_detail", exclusion_set.pk)
    return _form_page(request, form, title="New exclusion set", cancel_url=reverse("contracts:exclusion_set_list"),
                      submit_label="Create exclusion set")


@billing
def exclusion_set_detail(request, pk: int):
    exclusion_set = selectors.exclusion_set_detail(exclusion_set_id=pk)
    return render(request, "contracts/exclusion_set_detail.html",
                  {"exclusion_set": exclusion_set, "can_manage": _can_manage(request)})


@billing
def exclusion_set_edit(request, pk: int):
    exclusion_set = get_object_or_404(ExclusionSet, pk=pk)
    form = forms.ExclusionSetForm(request.POST or None, initial=forms.ExclusionSetForm.initial_for(exclusion_set))
    saved = _submit(request, form, lambda: services.exclusion_set_update(
        exclusion_set=exclusion_set, data=form.cleaned_data, acting_user=request.user))
    if saved:
        messages.success(request, f"Exclusion set “{saved}” saved.")
        return redirect("contracts:exclusion_set_detail", saved.pk)
    using = exclusion_set.contracts.count()
    return _form_page(
        request, form, title=f"Edit {exclusion_set}",
        cancel_url=reverse("contracts:exclusion_set_detail", args=[exclusion_set.pk]),
        intro=f"{using} contract{'s' if using != 1 else ''} use{'s' if using == 1 else ''} this set: "
              "a change applies to all of them from today on." if using else "",
    )


# --- contracts ----------------------------------------------------------------------------


@billing
def contract_list(request):
    listing = crud.list_page(
        request,
        selectors.contract_list(),
        search_fields=["name", "customer__legal_name", "customer__display_name"],
        filters=[
            crud.choice_filter("type", "Type", choices=Contract.Type.choices),
            crud.choice_filter("status", "Status", choices=Contract.Status.choices),
            crud.model_filter("customer", "Customer", queryset=Customer.objects.all()),
        ],
    )
    return _list(request, "contracts/contract_list.html", listing)


@billing
def contract_create(request):
    initial = {"start_date": services.tenant_today()}
    customer_id = request.GET.get("customer", "")
    if customer_id.isdigit():
        initial["customer"] = Customer.objects.filter(pk=int(customer_id), is_active=True).first()
    form = forms.ContractForm(request.POST or None, initial=initial)
    contract = _submit(request, form, lambda: services.contract_create(**form.service_data(), acting_user=request.user))
    if contract:
        messages.success(request, f"Contract “{contract.name}” created.")
        return redirect("contracts:detail", contract.pk)
    return _form_page(request, form, title="New contract", cancel_url=reverse("contracts:list"),
                      submit_label="Create contract", template="contracts/contract_form.html")


@billing
def contract_detail(request, pk: int):
    contract = selectors.contract_detail(contract_id=pk)
    return render(request, "contracts/contract_detail.html", {
        "contract": contract,
        "can_manage": _can_manage(request),
        "today": services.tenant_today(),
        "included_hours": forms.minutes_as_hours(contract.included_minutes),
        "budget_hours": forms.minutes_as_hours(contract.budget_minutes),
        "takes_time": contract.type != Contract.Type.ONLINE_BACKUP,
    })


@billing
def contract_edit(request, pk: int):
    contract = selectors.contract_for_update(contract_id=pk)
    form = forms.ContractForm(request.POST or None, contract=contract, initial=forms.ContractForm.initial_for(contract))
    saved = _submit(request, form, lambda: services.contract_update(
        contract=contract, data=form.service_data(), effective_date=form.cleaned_data.get("effective_date"),
        acting_user=request.user))
    if saved:
        messages.success(request, f"Contract “{saved.name}” saved.")
        return redirect("contracts:detail", saved.pk)
    return _form_page(request, form, title=f"Edit {contract.name}", contract=contract,
                      cancel_url=reverse("contracts:detail", args=[contract.pk]),
                      template="contracts/contract_form.html")


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
        intro=f"“{line.description}”, billed from {line.effective_from:%d %b %Y}. "
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
