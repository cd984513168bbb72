"""The benchmark's tables in each MSP's own schema (docs/benchmark.md).

``BenchmarkSettings``: whether this MSP contributes to the platform's anonymous aggregate.
``TechnicianCostRate``: what an hour of a technician costs the MSP, where it differs from
their role's cost rate (profitability). ``Rollup``: the nightly figures of this MSP; they
never leave this schema — only aggregates over ten or more MSPs are stored publicly.
"""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models


class BenchmarkSettings(models.Model):
    SINGLETON_ID = 1

    opted_in = models.BooleanField(
        default=False, help_text="Contribute this MSP's figures, anonymously, to the platform's aggregate.")
    changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "benchmark settings"
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="benchmark_settings_singleton")]

    def __str__(self) -> str:
        return "Benchmark settings"

    @classmethod
    def load(cls) -> BenchmarkSettings:
        instance, _ = cls.objects.get_or_create(pk=cls.SINGLETON_ID)
        return instance


class TechnicianCostRate(models.Model):
    """An hour of this technician costs the MSP ``cost_rate`` (home currency), instead of their role's cost rate."""

    technician = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="benchmark_cost_rate")
    cost_rate = models.DecimalField(max_digits=14, decimal_places=4)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["technician"]
        constraints = [models.CheckConstraint(condition=models.Q(cost_rate__gte=Decimal("0")), name="benchmark_cost_rate_not_negative")]

    def __str__(self) -> str:
        return f"{self.technician}: {self.cost_rate}"


class Rollup(models.Model):
    """One night's figures of this MSP over the closed periods of the last twelve months."""

    computed_on = models.DateField(unique=True)
    window_start = models.DateField()
    window_end = models.DateField()
    home_currency = models.CharField(max_length=3)
    periods = models.PositiveIntegerField(default=0, help_text="Closed contract periods with hours worked.")
    hours = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    net_revenue = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"),
                                      help_text="Home currency, less pass-through products.")
    effective_rate = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, help_text="Home currency.")
    effective_rate_usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    invoices = models.PositiveIntegerField(default=0)
    invoice_average = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True, help_text="Home currency.")
    invoice_average_usd = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    usd_rate = models.DecimalField(max_digits=20, decimal_places=8, null=True, blank=True, help_text="USD per unit of the home currency.")
    usd_rate_date = models.DateField(null=True, blank=True)
    contributed = models.BooleanField(default=False, help_text="Opted in that night (counted in the aggregate).")

    class Meta:
        ordering = ["-computed_on"]

    def __str__(self) -> str:
        return f"Roll-up of {self.computed_on}"
