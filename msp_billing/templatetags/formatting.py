"""How pages, PDFs and e-mails write money, quantities and dates.

One place, built on Babel (the CLDR data django-money and py-moneyed use): thousands
separators, the currency's symbol and minor unit, and the order of day, month and year
follow the MSP's locale (``msp_billing.locales``). CSV files do not use these filters; they keep plain decimals.

    {% load formatting %}
    {{ invoice.total|money:invoice.currency }}   → $1,250.69 / 1.250,69 €
    {{ line.amount|amount:invoice.currency }}    → 1,250.69 (a column of one currency: no symbol)
    {{ rate|rate:contract.currency }}            → $135.00, and $33.3333 only when not whole cents
    {{ line.unit_price|rate }}                   → 135.00 / 33.3333 (no symbol)
    {{ line.quantity|number }}                    → 1,250.5
    {{ invoice.issue_date|day }}                  → Dec 4, 2026

Rates and unit prices are stored with four decimal places (docs/design.md § Money and
time); they are written with the currency's own decimals unless the extra places carry
something: 135.0000 → 135.00, 33.3333 → 33.3333, 0.1500 → 0.15.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from django import template
from django.utils import timezone

from msp_billing.locales import current_locale

register = template.Library()


def active_locale() -> str:
    """The MSP's locale (``msp_billing.locales.current_locale``): ``en_US``, ``de_DE`` …"""
    return current_locale()


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


@register.filter
def money(value, currency: str = "") -> str:
    """An amount in its currency, with the currency's own decimals: ``$1,250.69``."""
    amount = _decimal(getattr(value, "amount", value))
    code = currency or str(getattr(getattr(value, "currency", None), "code", "") or "")
    if amount is None:
        return ""
    if not code:
        return babel_numbers.format_decimal(amount, format="#,##0.00", locale=active_locale())
    return babel_numbers.format_currency(amount, code, locale=active_locale())


@register.filter
def amount(value, currency: str = "") -> str:
    """An amount with its currency's decimals but no symbol, for columns of one currency: ``1,250.69``."""
    figure = _decimal(getattr(value, "amount", value))
    if figure is None:
        return ""
    code = currency or str(getattr(getattr(value, "currency", None), "code", "") or "")
    if not code:
        return babel_numbers.format_decimal(figure, format="#,##0.00", locale=active_locale())
    return babel_numbers.format_currency(figure, code, format="#,##0.00", locale=active_locale())


@register.filter
def rate(value, currency: str = "") -> str:
    """A rate or unit price: the currency's decimals, more (up to the four stored) only where
    they are not zero. With a currency, its symbol: ``$135.00``, ``$33.3333``."""
    figure = _decimal(getattr(value, "amount", value))
    if figure is None:
        return ""
    code = currency or str(getattr(getattr(value, "currency", None), "code", "") or "")
    if not code:
        return babel_numbers.format_decimal(figure, format="#,##0.00", locale=active_locale(),
                                            decimal_quantization=False)
    return babel_numbers.format_currency(figure, code, locale=active_locale(), decimal_quantization=False)


@register.filter
def number(value) -> str:
    """A quantity or percentage without trailing zeros, with thousands separators: ``1,250.5``."""
    figure = _decimal(value)
    if figure is None:
        return ""
    return babel_numbers.format_decimal(figure, locale=active_locale(), decimal_quantization=False)


DATE_LENGTHS = ("short", "medium", "long", "full")


@register.filter
def day(value, length: str = "medium") -> str:
    """A date in the locale's order: ``Dec 4, 2026`` (``short``: ``12/4/26``). Another
    argument is a CLDR skeleton: ``day:"MMMd"`` → ``Dec 4`` (no year)."""
    if not value:
        return ""
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    if not isinstance(value, date):
        return str(value)
    if length in DATE_LENGTHS:
        return babel_dates.format_date(value, format=length, locale=active_locale())
    return babel_dates.format_skeleton(length, value, locale=active_locale())


_SQL_DATE_FIELDS = {"y": "YYYY", "yyyy": "YYYY", "yy": "YY", "MM": "MM", "M": "FMMM", "dd": "DD", "d": "FMDD"}
_SQL_MONTH_NAMES = {"MMM": "abbreviated", "LLL": "abbreviated", "MMMM": "wide", "LLLL": "wide"}


def day_sql(column: str, length: str = "medium") -> tuple[str, list]:
    """A SQL expression writing the date ``column`` as ``day`` does, for text a set-based statement
    writes (``Mar 3, 2026``, ``3 mars 2026``, ``03.03.2026``): the locale's pattern from Babel, the
    numbers with ``to_char`` and the month names as Babel names them. Returns (SQL, parameters)."""
    locale = active_locale()
    pattern = babel_dates.get_date_format(length, locale=locale).pattern
    parts, params = [], []
    for match in re.finditer(r"'([^']*)'|([a-zA-Z])\2*|([^a-zA-Z']+)", pattern):
        quoted, field, other = match.group(1), match.group(0) if match.group(2) else None, match.group(3)
        if field in _SQL_DATE_FIELDS:
            parts.append(f"to_char({column}, '{_SQL_DATE_FIELDS[field]}')")
        elif field in _SQL_MONTH_NAMES:
            context = "stand-alone" if field.startswith("L") else "format"
            names = babel_dates.get_month_names(_SQL_MONTH_NAMES[field], context=context, locale=locale)
            parts.append(f"(%s::text[])[extract(month from {column})::int]")
            params.append([names[month] for month in range(1, 13)])
        elif field is not None:
            raise ValueError(f"no SQL form for the date field {field!r} of {pattern!r}")
        else:
            parts.append("%s")
            params.append(other if quoted is None else (quoted or "'"))
    return "(" + " || ".join(parts) + ")", params


@register.filter
def day_range(start: date, end: date) -> str:
    """Two dates as one range in the locale's order, the shared month and year written once:
    ``Mar 16 – 31, 2026`` (``16.–31.03.2026``); one date when both are the same day."""
    return babel_dates.format_interval(start, end, skeleton="yMMMd", locale=active_locale())


@register.filter
def when(value, length: str = "medium") -> str:
    """A moment in the MSP's time zone, date and time in the locale's order: ``Dec 4, 2026, 3:05 PM``
    (``04.12.2026, 15:05``). Seconds only where they matter: ``when:"seconds"``."""
    if not value:
        return ""
    if not isinstance(value, datetime):
        return day(value)
    moment = timezone.localtime(value) if timezone.is_aware(value) else value
    locale = active_locale()
    clock = babel_dates.format_time(moment, format="medium" if length == "seconds" else "short", locale=locale)
    return f"{babel_dates.format_date(moment.date(), format='medium', locale=locale)}, {clock}"
