"""Reports: each page filterable, each downloadable as CSV with the same filters
(``?format=csv``), charted where a chart reads faster than the table (docs/dashboard.md).

The figures come from the selectors the dashboard uses, so a report and the dashboard
widget that links to it always agree. Read-only for every role with billing access.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render

from billing.dashboard_views import UnbilledFilterForm, unbilled_url
from billing.selectors import age_charts, contract_type_label, revenue_chart_data
from billing.unbilled import AGE_BUCKETS, unbilled_figures, unbilled_list
from contracts.models import Contract, Customer
from contracts.selectors import active_block_balances, contracts_ending
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.charts import bar_chart
from msp_billing.csv_download import csv_download
from msp_billing.tenants.today import current_msp, tenant_today
from reports.registry import REPORTS
from tickets.routing import included_period
from tickets.selectors import retainer_usage

PER_PAGE = 100


def _wants_csv(request) -> bool:
    return request.GET.get("format") == "csv"


@requires(Capability.VIEW_BILLING)
def index(request):
    return render(request, "reports/index.html", {"more_reports": REPORTS})


# --- unbilled work in progress ---------------------------------------------------------------


@requires(Capability.VIEW_BILLING)
def unbilled(request):
    """Every unbilled item, filtered; its total is what the dashboard widget with the same filters shows."""
    today = tenant_today()
    form = UnbilledFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "reports/unbilled.html", {"form": form, "items": [], "today": today}, status=400)
    filters = form.filters() if request.GET else {}
    if _wants_csv(request):
        rows = ([item.date, item.kind_label, item.customer_name, item.contract_name, item.contract_type_label,
                 item.ticket_id, item.technician_email or "", item.description, item.state_label, item.age,
                 Decimal(item.minutes) / 60 if item.kind == "time" else "", item.currency, item.amount]
                for item in unbilled_list(today=today, filters=filters, limit=None))
        return csv_download(f"unbilled-{today}.csv", ["Date", "Kind", "Customer", "Contract", "Contract type", "Ticket",
                                                      "Technician", "Description", "State", "Age (days)", "Hours",
                                                      "Currency", "Amount"], rows)
    attention_days = current_msp().unbilled_attention_days
    figures = unbilled_figures(today=today, attention_days=attention_days, filters=filters)
    totals = figures.total
    paginator = Paginator(range(totals.items), PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    offset = (page.number - 1) * PER_PAGE
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    context = {
        "form": form, "today": today, "totals": totals, "page": page, "querystring": query.urlencode(),
        "items": unbilled_list(today=today, filters=filters, offset=offset, limit=PER_PAGE),
        "attention_days": attention_days,
        "charts": age_charts(figures, links=[unbilled_url(**{**filters, "age": key}) for key, *_ in AGE_BUCKETS])
        if totals.items else [],
        "can_save": request.user.can(Capability.MANAGE_BILLING), "filters": filters,
    }
    return render(request, "reports/unbilled.html", context)


# --- revenue by month by contract type -------------------------------------------------------


class RevenueFilterForm(forms.Form):
    """Customer and contract type: the revenue report's filters, and the start of the others'."""

    customer = forms.ModelChoiceField(label="Customer", required=False, queryset=Customer.objects.order_by("legal_name"),
                                      empty_label="Any customer")
    contract_type = forms.ChoiceField(label="Contract type", required=False, choices=[("", "Any type"), *Contract.Type.choices])


@requires(Capability.VIEW_BILLING)
def revenue(request):
    """Invoiced in each of the last 12 months by contract type (the dashboard chart's figures)."""
    today = tenant_today()
    form = RevenueFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "reports/revenue.html", {"form": form, "tables": []}, status=400)
    data = form.cleaned_data if request.GET else {}
    months, by_currency = revenue_chart_data(today=today, customer=data.get("customer"),
                                             contract_type=data.get("contract_type") or "")
    if _wants_csv(request):
        rows = [(month.strftime("%Y-%m"), contract_type_label(ctype), currency, values[i])
                for currency, by_type in sorted(by_currency.items()) for ctype, values in sorted(by_type.items())
                for i, month in enumerate(months)]
        return csv_download(f"revenue-{months[0]:%Y-%m}-{months[-1]:%Y-%m}.csv", ["Month", "Contract type", "Currency", "Amount"],
                            rows)
    charts = [bar_chart(title="Invoiced per month by contract type", currency=currency,
                        categories=[f"{m:%b %y}" for m in months],
                        series=[(contract_type_label(t), values) for t, values in sorted(by_type.items())])
              for currency, by_type in sorted(by_currency.items())]
    return render(request, "reports/revenue.html", {"form": form, "charts": charts, "months": months})


# --- block and retainer consumption ----------------------------------------------------------


class ConsumptionFilterForm(forms.Form):
    customer = forms.ModelChoiceField(label="Customer", required=False, queryset=Customer.objects.order_by("legal_name"),
                                      empty_label="Any customer")
    below = forms.BooleanField(label="Only blocks below their threshold", required=False)
    month = forms.DateField(label="Retainers: month of", required=False, widget=forms.DateInput(attrs={"type": "date"}))


def retainer_consumption(*, month: dt.date, customer: Customer | None = None) -> list[dict]:
    """Retainers with included hours, each over its own billing period holding ``month`` (a quarterly
    retainer's quarter, a monthly one anchored on the 15th from the 15th): the minutes it absorbed
    against the minutes it includes — as routing counts them — and the overage billed on top."""
    contracts = Contract.objects.filter(type=Contract.Type.RETAINER, status=Contract.Status.ACTIVE, included_minutes__isnull=False)
    if customer is not None:
        contracts = contracts.filter(customer=customer)
    contracts = list(contracts.select_related("customer").order_by("customer__legal_name", "name"))
    spans = {c.pk: span for c in contracts if (span := included_period(c, month)) is not None}
    usage = retainer_usage(spans)
    rows = []
    for contract in contracts:
        if contract.pk not in spans:
            continue
        used, included = usage[contract.pk]["absorbed"], contract.included_minutes or 0
        rows.append({"contract": contract, "period": spans[contract.pk], "included": included, "used": used,
                     "left": included - used, "overage": usage[contract.pk]["overage"],
                     "percent": (Decimal(used) * 100 / included).quantize(Decimal("0.1")) if included else Decimal(0)})
    return rows


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"))


@requires(Capability.VIEW_BILLING)
def blocks(request):
    today = tenant_today()
    form = ConsumptionFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "reports/blocks.html", {"form": form, "balances": [], "retainers": []}, status=400)
    data = form.cleaned_data if request.GET else {}
    balances = active_block_balances(today=today, customer=data.get("customer"))
    if data.get("below"):
        balances = [b for b in balances if b.below_threshold]
    month = data.get("month") or today
    retainers = retainer_consumption(month=month, customer=data.get("customer"))
    if _wants_csv(request):
        rows = [("Block", b.contract.customer.legal_name, b.contract.name, b.contract.get_type_display(),
                 "money" if b.is_money else "hours",
                 b.size if b.is_money else _hours(b.size), b.used if b.is_money else _hours(b.used),
                 b.remaining if b.is_money else _hours(b.remaining), b.percent_used, b.threshold or "")
                for b in balances]
        rows = [(*row, "", "", "") for row in rows]
        rows += [("Retainer", r["contract"].customer.legal_name, r["contract"].name, r["contract"].get_type_display(), "hours",
                  _hours(r["included"]), _hours(r["used"]), _hours(r["left"]), r["percent"], "",
                  r["period"][0].isoformat(), r["period"][1].isoformat(), _hours(r["overage"])) for r in retainers]
        return csv_download(f"consumption-{today}.csv", ["Kind", "Customer", "Contract", "Contract type", "Unit", "Size",
                                                         "Used", "Left", "Percent used", "Alert threshold",
                                                         "Period from", "Period to", "Overage"], rows)
    return render(request, "reports/blocks.html", {"form": form, "balances": balances, "retainers": retainers, "month": month,
                                                   "today": today})


# --- upcoming renewals -----------------------------------------------------------------------


class RenewalFilterForm(RevenueFilterForm):
    within = forms.IntegerField(label="Ending within (days)", required=False, min_value=1, max_value=3650, initial=90)


@requires(Capability.VIEW_BILLING)
def renewals(request):
    today = tenant_today()
    form = RenewalFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "reports/renewals.html", {"form": form, "contracts": []}, status=400)
    data = form.cleaned_data if request.GET else {}
    contracts = list(contracts_ending(today=today, within_days=data.get("within") or 90, customer=data.get("customer"),
                                      contract_type=data.get("contract_type") or ""))
    for contract in contracts:
        contract.days_left = (contract.end_date - today).days
    if _wants_csv(request):
        rows = [(c.customer.legal_name, c.name, c.get_type_display(), c.end_date, c.days_left,
                 "yes" if c.auto_renew else "no", c.renewal_term_months if c.auto_renew else "", c.currency,
                 c.fee.amount if c.fee is not None else "") for c in contracts]
        return csv_download(f"renewals-{today}.csv", ["Customer", "Contract", "Contract type", "End date", "Days left",
                                                      "Renews automatically", "Renewal term (months)", "Currency", "Fee"], rows)
    return render(request, "reports/renewals.html", {"form": form, "contracts": contracts, "today": today,
                                                     "within": data.get("within") or 90})
