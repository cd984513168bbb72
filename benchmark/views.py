"""The benchmark page, its settings, technicians' cost rates and the profitability and utilisation reports."""
from __future__ import annotations

import csv
import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from benchmark import figures
from benchmark.comparison import comparisons, wage_floor
from benchmark.forms import CostRateForm, OptInForm, ProfitabilityFilterForm, RateFilterForm, UtilisationFilterForm
from benchmark.models import BenchmarkSettings, TechnicianCostRate
from benchmark.public.models import MIN_CONTRIBUTORS, IndustryAggregate
from benchmark.services import benchmark_opt_in_set, technician_cost_rate_set
from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from msp_billing.audit.models import AuditEvent
from msp_billing.fx.rates import rate_on
from msp_billing.tenants.today import tenant_today


def _filters(form_class, request, **extra):
    form = form_class(request.GET or None, **extra)
    if form.is_bound and not form.is_valid():
        return form, None
    return form, (form.cleaned_data if form.is_bound else {})


def _range(data: dict, today: dt.date) -> tuple[dt.date, dt.date]:
    return data.get("since") or figures.months_back(today, 12), data.get("until") or today


@requires(Capability.VIEW_BILLING)
def benchmark_home(request):
    today = tenant_today()
    form, data = _filters(RateFilterForm, request)
    if data is None:
        return render(request, "benchmark/home.html", {"form": form}, status=400)
    months = data.get("months") or 12
    report = figures.period_rates(today=today, since=figures.months_back(today, months),
                                  customer_id=getattr(data.get("customer"), "pk", None),
                                  contract_type=data.get("contract_type") or None)
    tenant = connection.tenant
    # The comparison is always over the MSP's whole last twelve months, as the aggregate is.
    year = report if (months == 12 and not data.get("customer") and not data.get("contract_type")) else \
        figures.period_rates(today=today, since=figures.months_back(today, 12))
    invoices, invoice_avg, _ = figures.invoice_average(since=figures.months_back(today, 12), until=today)
    to_usd = rate_on(tenant.currency, settings.BASE_CURRENCY, today)
    usd = (lambda v: (v * to_usd.value).quantize(figures.Decimal("0.01")) if v is not None and to_usd else None)
    own = {IndustryAggregate.Metric.EFFECTIVE_RATE: usd(year.overall["effective_rate"]),
           IndustryAggregate.Metric.INVOICE_TOTAL: usd(invoice_avg)}
    compared = comparisons(region=tenant.region, currency=tenant.currency, own=own, today=today)
    trend = report.by_month()
    top = max((row["effective_rate"] or 0 for row in trend), default=0)
    return render(request, "benchmark/home.html", {
        "form": form, "report": report, "overall": report.overall, "trend": trend, "trend_top": top,
        "by_type": report.by_type(), "by_customer": report.by_customer(), "by_contract": report.by_contract(),
        "year": year.overall, "invoices": invoices, "invoice_average": invoice_avg, "own_usd": own, "to_usd": to_usd,
        "rate": compared[IndustryAggregate.Metric.EFFECTIVE_RATE], "totals": compared[IndustryAggregate.Metric.INVOICE_TOTAL],
        "wages": wage_floor(), "opted_in": BenchmarkSettings.load().opted_in, "min_contributors": MIN_CONTRIBUTORS,
        "region": tenant.get_region_display(), "home": tenant.currency, "months": months,
        "is_owner": request.user.can(Capability.MANAGE_USERS),
    })


@requires(Capability.MANAGE_USERS)
def benchmark_settings(request):
    """Opt in or out of the anonymous platform benchmark: the owner only; every switch is audited."""
    config = BenchmarkSettings.load()
    form = OptInForm(request.POST if request.method == "POST" else None, initial={"opted_in": config.opted_in})
    if request.method == "POST" and form.is_valid():
        try:
            benchmark_opt_in_set(opted_in=form.cleaned_data["opted_in"], acting_user=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "You take part in the benchmark." if form.cleaned_data["opted_in"]
                             else "You no longer take part in the benchmark.")
            return redirect("benchmark:settings")
    history = AuditEvent.objects.filter(action="benchmark_opt_in_switched").order_by("-at")[:10]
    return render(request, "benchmark/settings.html", {"form": form, "config": config, "history": history,
                                                       "min_contributors": MIN_CONTRIBUTORS},
                  status=400 if form.errors else 200)


@requires(Capability.VIEW_BILLING)
def cost_rates(request):
    from tickets.models import TechnicianProfile

    profiles = TechnicianProfile.objects.select_related("user", "role").order_by("user__email")
    own = dict(TechnicianCostRate.objects.values_list("technician_id", "cost_rate"))
    rows = [{"profile": p, "cost_rate": own.get(p.user_id), "role_cost": p.role.cost_rate} for p in profiles]
    return render(request, "benchmark/cost_rates.html", {"rows": rows, "home": connection.tenant.currency,
                                                         "can_edit": request.user.can(Capability.MANAGE_BILLING)})


@requires(Capability.MANAGE_BILLING)
def cost_rate_edit(request, user_id: int):
    from tickets.models import TechnicianProfile

    profile = get_object_or_404(TechnicianProfile.objects.select_related("user", "role"), user_id=user_id)
    current = TechnicianCostRate.objects.filter(technician_id=user_id).values_list("cost_rate", flat=True).first()
    form = CostRateForm(request.POST if request.method == "POST" else None, initial={"cost_rate": current})
    if request.method == "POST" and form.is_valid():
        try:
            technician_cost_rate_set(technician=profile.user, cost_rate=form.cleaned_data["cost_rate"], acting_user=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Cost rate of {profile.user} saved.")
            return redirect("benchmark:cost_rates")
    return render(request, "benchmark/cost_rate_edit.html", {"form": form, "profile": profile, "home": connection.tenant.currency},
                  status=400 if form.errors else 200)


def _csv(filename: str, header: list[str], rows: list[list]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return response


@requires(Capability.VIEW_BILLING)
def profitability(request):
    today = tenant_today()
    form, data = _filters(ProfitabilityFilterForm, request)
    if data is None:
        return render(request, "benchmark/profitability.html", {"form": form}, status=400)
    since, until = _range(data, today)
    report = figures.profitability(since=since, until=until, customer_id=getattr(data.get("customer"), "pk", None),
                                   contract_type=data.get("contract_type") or None)
    if request.GET.get("format") == "csv":
        names = ["customer", "contract", "contract_type", "revenue", "product_revenue", "product_cost", "labour_cost",
                 "margin", "margin_percent", "hours", "effective_rate"]
        rows = [[*row[:9], row[9].quantize(figures.Decimal("0.01")), row[10]] for row in figures.as_rows(report.rows, names)]
        return _csv(f"profitability-{since}-{until}.csv", [*names[:3], *(f"{n} ({report.home_currency})" if n not in
                    ("margin_percent", "hours") else n for n in names[3:])], rows)
    return render(request, "benchmark/profitability.html", {"form": form, "report": report, "since": since, "until": until,
                                                             "query": request.GET.urlencode()})


@requires(Capability.VIEW_BILLING)
def utilisation(request):
    today = tenant_today()
    form, data = _filters(UtilisationFilterForm, request)
    if data is None:
        return render(request, "benchmark/utilisation.html", {"form": form}, status=400)
    since, until = _range(data, today)
    rows = figures.utilisation(since=since, until=until, technician_id=getattr(data.get("technician"), "pk", None),
                               role_id=getattr(data.get("role"), "pk", None))
    if request.GET.get("format") == "csv":
        names = ["technician", "role", "billable_hours", "non_billable_hours", "total_hours", "utilisation_percent"]
        out = [[r.technician, r.role, *(v.quantize(figures.Decimal("0.01")) for v in (r.billable_hours, r.non_billable_hours, r.total_hours)),
                r.utilisation_percent] for r in rows]
        return _csv(f"utilisation-{since}-{until}.csv", names, out)
    top = max((r.total_hours for r in rows), default=0)
    return render(request, "benchmark/utilisation.html", {"form": form, "rows": rows, "since": since, "until": until,
                                                           "top": top, "query": request.GET.urlencode()})
