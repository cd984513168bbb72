"""``{% load benchmark_card %}{% benchmark_card %}``: the benchmark's card on the dashboard.

It reads last night's roll-up (one row) and the region's aggregate, so the dashboard pays
nothing for the benchmark's arithmetic; the page it links to works the figures out live.
"""
from django import template
from django.db import connection

from benchmark.models import Rollup
from benchmark.public.models import IndustryAggregate

register = template.Library()


@register.inclusion_tag("benchmark/_card.html", takes_context=True)
def benchmark_card(context):
    tenant = connection.tenant
    rollup = Rollup.objects.order_by("-computed_on").first()
    aggregate = IndustryAggregate.objects.filter(metric=IndustryAggregate.Metric.EFFECTIVE_RATE, region=tenant.region,
                                                 currency=IndustryAggregate.ALL_CURRENCIES).first()
    return {"rollup": rollup, "aggregate": aggregate, "region": tenant.get_region_display(), "home": tenant.currency,
            "request": context.get("request")}
