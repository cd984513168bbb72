"""Platform-wide benchmark tables, in the public schema (docs/benchmark.md).

``IndustryAggregate`` holds only aggregates over at least ``MIN_CONTRIBUTORS`` MSPs — the
database refuses a smaller group (``benchmark_aggregate_k_anonymous``). No row names an
MSP, and no MSP's own figure is stored here: each MSP's roll-up stays in its own schema.

``WageReference`` is the shipped, editable reference table: every value carries the
survey, its date and the address it was read from.
"""
from __future__ import annotations

from django.db import models

MIN_CONTRIBUTORS = 10


class IndustryAggregate(models.Model):
    class Metric(models.TextChoices):
        EFFECTIVE_RATE = "effective_rate", "Effective hourly rate"
        INVOICE_TOTAL = "invoice_total", "Average invoice total"

    ALL_CURRENCIES = ""

    metric = models.CharField(max_length=20, choices=Metric.choices)
    region = models.CharField(max_length=40)
    currency = models.CharField(max_length=3, blank=True, help_text="The MSPs' home currency; empty: every currency of the region.")
    contributors = models.PositiveIntegerField(help_text="How many MSPs the figures are over.")
    p10 = models.DecimalField(max_digits=14, decimal_places=2)
    p25 = models.DecimalField(max_digits=14, decimal_places=2)
    median = models.DecimalField(max_digits=14, decimal_places=2)
    p75 = models.DecimalField(max_digits=14, decimal_places=2)
    p90 = models.DecimalField(max_digits=14, decimal_places=2)
    unit_currency = models.CharField(max_length=3, default="USD", help_text="Every figure is in this currency.")
    computed_on = models.DateField()
    rates_date = models.DateField(null=True, blank=True, help_text="Latest day of the exchange rates used.")

    class Meta:
        ordering = ["metric", "region", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["metric", "region", "currency"], name="benchmark_aggregate_one_per_group"),
            models.CheckConstraint(condition=models.Q(contributors__gte=MIN_CONTRIBUTORS), name="benchmark_aggregate_k_anonymous"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.region} {self.currency or 'all'}: median {self.median} {self.unit_currency} (n={self.contributors})"


class WageReference(models.Model):
    """One published wage figure, with where it was published."""

    occupation_code = models.CharField(max_length=20, help_text="Such as the SOC code 15-1232.")
    occupation = models.CharField(max_length=200)
    area = models.CharField(max_length=100, help_text="United States, or a state.")
    measure = models.CharField(max_length=60, help_text="Such as hourly median wage.")
    value = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="USD")
    survey = models.CharField(max_length=200, help_text="Such as Occupational Employment and Wage Statistics (OEWS), May 2018.")
    survey_date = models.DateField(help_text="The reference date of the survey.")
    source_url = models.URLField(max_length=500, help_text="The page the value was read from.")
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["area", "occupation_code", "measure"]
        constraints = [
            models.UniqueConstraint(fields=["occupation_code", "area", "measure", "survey_date"], name="benchmark_wage_once"),
            models.CheckConstraint(condition=models.Q(value__gt=0), name="benchmark_wage_positive"),
            models.CheckConstraint(condition=~models.Q(source_url=""), name="benchmark_wage_has_source"),
        ]

    def __str__(self) -> str:
        return f"{self.occupation_code} {self.area} {self.measure}: {self.value} {self.currency}"
