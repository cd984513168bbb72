"""The nightly benchmark: each MSP's roll-up in its own schema, then the platform's aggregates.

Privacy rule (docs/benchmark.md § Privacy): an MSP's own figures are written only to its
own schema (``benchmark.Rollup``). The aggregation reads them, in memory, from the MSPs
that opted in, and stores in the public schema only percentiles over groups of at least
``MIN_CONTRIBUTORS`` MSPs (the table's check constraint refuses smaller groups). A group
with fewer MSPs is not stored at all, so the page says "not enough MSPs in your region yet".
"""
from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django_tenants.utils import get_tenant_model, tenant_context

from benchmark.figures import invoice_average, months_back, period_rates
from benchmark.models import BenchmarkSettings, Rollup
from benchmark.public.models import MIN_CONTRIBUTORS, IndustryAggregate
from msp_billing.fx.models import DatedRate
from msp_billing.fx.rates import rate_on

CENT = Decimal("0.01")
WINDOW_MONTHS = 12


@dataclass(frozen=True)
class Contribution:
    region: str
    currency: str
    effective_rate_usd: Decimal | None
    invoice_average_usd: Decimal | None


def tenant_rollup(*, today: dt.date) -> Rollup:
    """This MSP's figures over the closed periods and issued invoices of the last twelve
    months, in the home currency and in US dollars; one row per night (a re-run replaces it)."""
    since = months_back(today, WINDOW_MONTHS)
    until = today - dt.timedelta(days=1)
    rates = period_rates(today=today, since=since, until=until)
    overall = rates.overall
    home = rates.home_currency
    invoices, average, _ = invoice_average(since=since, until=until)
    usd = rate_on(home, settings.BASE_CURRENCY, today)
    to_usd = (lambda v: (v * usd.value).quantize(CENT) if v is not None else None) if usd else (lambda v: None)
    opted_in = BenchmarkSettings.load().opted_in
    values = dict(
        window_start=since, window_end=until, home_currency=home, periods=overall["periods"],
        hours=overall["hours"].quantize(CENT), net_revenue=overall["net_revenue"], effective_rate=overall["effective_rate"],
        effective_rate_usd=to_usd(overall["effective_rate"]), invoices=invoices, invoice_average=average,
        invoice_average_usd=to_usd(average), usd_rate=usd.value if usd else None, usd_rate_date=usd.date if usd else None,
        contributed=opted_in,
    )
    rollup, _ = Rollup.objects.update_or_create(computed_on=today, defaults=values)
    return rollup


def _percentiles(values: list[Decimal]) -> dict[str, Decimal]:
    cuts = statistics.quantiles(values, n=20, method="inclusive")  # every 5 %: index 1 = 10 %, 4 = 25 %, 14 = 75 %, 17 = 90 %
    return {"p10": cuts[1], "p25": cuts[4], "median": statistics.median(values), "p75": cuts[14], "p90": cuts[17]}


def aggregates_replace(contributions: list[Contribution], *, today: dt.date) -> list[IndustryAggregate]:
    """Store the percentiles of every (metric, region) and (metric, region, currency) group
    of at least ``MIN_CONTRIBUTORS`` MSPs, replacing last night's; smaller groups are dropped."""
    groups: dict[tuple[str, str, str], list[Decimal]] = defaultdict(list)
    for item in contributions:
        for metric, value in ((IndustryAggregate.Metric.EFFECTIVE_RATE, item.effective_rate_usd),
                              (IndustryAggregate.Metric.INVOICE_TOTAL, item.invoice_average_usd)):
            if value is None:
                continue
            groups[(metric, item.region, IndustryAggregate.ALL_CURRENCIES)].append(value)
            groups[(metric, item.region, item.currency)].append(value)
    rates_date = DatedRate.objects.filter(date__lte=today).order_by("-date").values_list("date", flat=True).first()
    rows = [
        IndustryAggregate(metric=metric, region=region, currency=currency, contributors=len(values),
                          computed_on=today, rates_date=rates_date,
                          **{k: Decimal(v).quantize(CENT) for k, v in _percentiles(sorted(values)).items()})
        for (metric, region, currency), values in sorted(groups.items()) if len(values) >= MIN_CONTRIBUTORS
    ]
    with transaction.atomic():
        IndustryAggregate.objects.all().delete()
        IndustryAggregate.objects.bulk_create(rows)
    return rows


def nightly(*, today: dt.date | None = None, schemas: list[str] | None = None) -> dict:
    """Roll up every MSP (or the given schemas) in its own schema, then store the aggregates."""
    connection.set_schema_to_public()
    today = today or dt.date.today()
    tenants = get_tenant_model().objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
    if schemas is not None:
        tenants = tenants.filter(schema_name__in=schemas)
    contributions = []
    rolled = 0
    for tenant in tenants.order_by("schema_name"):
        with tenant_context(tenant):
            rollup = tenant_rollup(today=today)
            rolled += 1
            if rollup.contributed:
                contributions.append(Contribution(region=tenant.region, currency=tenant.currency,
                                                  effective_rate_usd=rollup.effective_rate_usd,
                                                  invoice_average_usd=rollup.invoice_average_usd))
    connection.set_schema_to_public()
    stored = aggregates_replace(contributions, today=today)
    return {"tenants": rolled, "contributors": len(contributions), "groups": len(stored)}
