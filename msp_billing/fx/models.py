"""Dated exchange rates (public schema), beside django-money's current rates.

django-money's exchange app (``djmoney.contrib.exchange``) keeps one current rate per
currency; each load also keeps that day's rates here, so a conversion can use the rate of
a given date (an invoice's issue date, the night of a benchmark roll-up) and the rate used
can be named. Rates are against ``base`` (USD): ``value`` units of ``currency`` buy one
unit of ``base``; the base itself is stored as 1.
"""
from __future__ import annotations

from django.db import models


class DatedRate(models.Model):
    date = models.DateField(help_text="The day the rates are for, as the source states it.")
    base = models.CharField(max_length=3, default="USD")
    currency = models.CharField(max_length=3)
    value = models.DecimalField(max_digits=20, decimal_places=8, help_text="Units of the currency per one unit of the base.")
    source = models.CharField(max_length=300, blank=True, help_text="The file or address the rate was loaded from.")
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-date", "currency"]
        constraints = [
            models.UniqueConstraint(fields=["date", "base", "currency"], name="fx_dated_rate_once_per_day"),
            models.CheckConstraint(condition=models.Q(value__gt=0), name="fx_dated_rate_positive"),
        ]
        indexes = [models.Index(fields=["currency", "date"], name="fx_dated_rate_lookup")]

    def __str__(self) -> str:
        return f"{self.date}: 1 {self.base} = {self.value} {self.currency}"
