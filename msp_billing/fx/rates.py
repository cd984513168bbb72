"""Loading exchange rates and converting with them (docs/benchmark.md § Exchange rates).

The rates come from a JSON document, from a file or an address set in the settings
(``EXCHANGE_RATES_URL`` / ``EXCHANGE_RATES_FILE``)::

    {"base": "USD", "date": "2026-12-04", "rates": {"EUR": 0.9412, "GBP": 0.7861}}

which is the shape the ECB-based Frankfurter service answers with
(``https://api.frankfurter.app/latest?from=USD``). A load writes django-money's current
rates (``djmoney.contrib.exchange``: ``Rate`` rows of this backend) and the day's rows of
``DatedRate``, in one transaction; a bad document changes nothing.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from djmoney.contrib.exchange.backends.base import BaseExchangeBackend
from djmoney.contrib.exchange.exceptions import MissingRate
from djmoney.contrib.exchange.models import get_rate
from moneyed import CURRENCIES

from msp_billing.fx.models import DatedRate

RATE_PLACES = Decimal("0.00000001")


@dataclass(frozen=True)
class RatesDocument:
    base: str
    date: dt.date
    rates: dict[str, Decimal]
    source: str


@dataclass(frozen=True)
class FoundRate:
    value: Decimal  # units of the target per one unit of the source
    date: dt.date | None  # the day of the rates used; None: django-money's current rate


class RatesBackend(BaseExchangeBackend):
    """django-money's exchange backend over a rates document (a file or an address)."""

    name = "msp_billing"

    def __init__(self, source: str | None = None):
        self.source = source or settings.EXCHANGE_RATES_URL or settings.EXCHANGE_RATES_FILE
        self.url = self.source
        self._document: RatesDocument | None = None

    @property
    def document(self) -> RatesDocument:
        if self._document is None:
            if not self.source:
                raise ValidationError("No exchange-rate source: set EXCHANGE_RATES_URL or EXCHANGE_RATES_FILE, or give a file.")
            if self.source.startswith(("http://", "https://")):
                raw = self.get_response()
            else:
                path = Path(self.source)
                if not path.is_file():
                    raise ValidationError(f"The exchange-rate file {self.source} does not exist.")
                raw = path.read_bytes()
            self._document = rates_document_parse(raw, source=self.source)
        return self._document

    def get_rates(self, **params) -> dict[str, Decimal]:
        return dict(self.document.rates)


def rates_document_parse(raw: bytes | str, *, source: str = "") -> RatesDocument:
    """Read and check a rates document; every problem is a ``ValidationError`` naming it."""
    try:
        data = json.loads(raw, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationError(f"The exchange-rate document is not JSON: {error}.") from error
    if not isinstance(data, dict):
        raise ValidationError("The exchange-rate document must be an object with base, date and rates.")
    base = str(data.get("base", "")).upper()
    if base != settings.BASE_CURRENCY:
        raise ValidationError(f"The rates must be against {settings.BASE_CURRENCY} (the document says {base or 'nothing'}).")
    try:
        day = dt.date.fromisoformat(str(data.get("date", "")))
    except ValueError as error:
        raise ValidationError("The exchange-rate document needs its date as YYYY-MM-DD.") from error
    rates = data.get("rates")
    if not isinstance(rates, dict) or not rates:
        raise ValidationError("The exchange-rate document has no rates.")
    checked: dict[str, Decimal] = {}
    problems = []
    for code, value in rates.items():
        code = str(code).upper()
        if code not in CURRENCIES or len(code) != 3:
            problems.append(f"{code}: not an ISO 4217 currency")
            continue
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            problems.append(f"{code}: {value!r} is not a number")
            continue
        if not number.is_finite() or number <= 0:
            problems.append(f"{code}: the rate must be above 0")
            continue
        checked[code] = number.quantize(RATE_PLACES)
    if problems:
        raise ValidationError("Exchange rates refused: " + "; ".join(problems) + ".")
    checked[base] = Decimal(1).quantize(RATE_PLACES)
    return RatesDocument(base=base, date=day, rates=checked, source=source)


@transaction.atomic
def rates_load(source: str | None = None) -> RatesDocument:
    """Load the rates of ``source`` (default: the configured address or file) into both tables."""
    backend = RatesBackend(source)
    document = backend.document
    backend.update_rates(base_currency=document.base)
    DatedRate.objects.bulk_create(
        [DatedRate(date=document.date, base=document.base, currency=code, value=value, source=document.source[:300])
         for code, value in document.rates.items()],
        update_conflicts=True, unique_fields=["date", "base", "currency"], update_fields=["value", "source", "loaded_at"],
    )
    return document


def rate_on(source: str, target: str, on: dt.date) -> FoundRate | None:
    """The rate from ``source`` to ``target`` of the latest stored day on or before ``on``.

    Falls back to django-money's current rate when no dated rate reaches back that far;
    None when there is no rate at all.
    """
    if source == target:
        return FoundRate(value=Decimal(1), date=on)
    latest = {}
    for currency in (source, target):
        row = (DatedRate.objects.filter(base=settings.BASE_CURRENCY, currency=currency, date__lte=on)
               .order_by("-date").values("value", "date").first())
        if row is None:
            break
        latest[currency] = row
    if len(latest) == 2:
        value = (latest[target]["value"] / latest[source]["value"]).quantize(RATE_PLACES)
        return FoundRate(value=value, date=min(latest[source]["date"], latest[target]["date"]))
    try:
        return FoundRate(value=Decimal(get_rate(source, target)).quantize(RATE_PLACES), date=None)
    except MissingRate:
        return None


class RateCache:
    """``rate_on`` remembered per (source, target, day) for one report or one roll-up."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str, dt.date], FoundRate | None] = {}

    def get(self, source: str, target: str, on: dt.date) -> FoundRate | None:
        key = (source, target, on)
        if key not in self._found:
            self._found[key] = rate_on(source, target, on)
        return self._found[key]
