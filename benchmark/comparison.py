"""The industry side of the benchmark page: the platform aggregate for the MSP's region and
the wage reference, with where the MSP's own figure falls."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from benchmark.public.models import MIN_CONTRIBUTORS, IndustryAggregate, WageReference
from msp_billing.fx.rates import FoundRate, rate_on

CENT = Decimal("0.01")
STEPS = [("p10", 10), ("p25", 25), ("median", 50), ("p75", 75), ("p90", 90)]


def placement(value: Decimal | None, aggregate: IndustryAggregate | None) -> str:
    """Where ``value`` (USD) falls among the aggregate's percentiles, in words."""
    if value is None or aggregate is None:
        return ""
    below = [pct for name, pct in STEPS if value >= getattr(aggregate, name)]
    if not below:
        return "below the 10th percentile"
    if below[-1] == 90:
        return "at or above the 90th percentile"
    nxt = next(pct for name, pct in STEPS if value < getattr(aggregate, name))
    return f"between the {_ordinal(below[-1])} and the {_ordinal(nxt)} percentile"


def _ordinal(pct: int) -> str:
    return "median" if pct == 50 else f"{pct}th"


@dataclass
class Comparison:
    metric: str
    region: str
    aggregate: IndustryAggregate | None  # None: fewer than MIN_CONTRIBUTORS MSPs
    currency_aggregate: IndustryAggregate | None
    own_usd: Decimal | None
    usd_to_home: FoundRate | None

    @property
    def enough(self) -> bool:
        return self.aggregate is not None

    @property
    def position(self) -> str:
        return placement(self.own_usd, self.aggregate)

    def in_home(self, usd: Decimal | None) -> Decimal | None:
        if usd is None or self.usd_to_home is None:
            return None
        return (usd * self.usd_to_home.value).quantize(CENT)

    @property
    def median_home(self) -> Decimal | None:
        return self.in_home(self.aggregate.median) if self.aggregate else None


def comparisons(*, region: str, currency: str, own: dict[str, Decimal | None], today: dt.date) -> dict[str, Comparison]:
    """One ``Comparison`` per metric for ``region``; ``own`` gives the MSP's figures in USD."""
    found = {(a.metric, a.currency): a for a in IndustryAggregate.objects.filter(region=region, contributors__gte=MIN_CONTRIBUTORS)}
    usd_to_home = rate_on(settings.BASE_CURRENCY, currency, today)
    return {
        metric: Comparison(metric=metric, region=region, aggregate=found.get((metric, IndustryAggregate.ALL_CURRENCIES)),
                           currency_aggregate=found.get((metric, currency)), own_usd=own.get(metric), usd_to_home=usd_to_home)
        for metric in IndustryAggregate.Metric.values
    }


def wage_floor() -> list[WageReference]:
    return list(WageReference.objects.all())
