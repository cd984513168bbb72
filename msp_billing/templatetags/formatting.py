"""How pages, PDFs and e-mails write money, quantities and dates.

One place, built on Babel (the CLDR data django-money and py-moneyed use): thousands
separators, the currency's symbol and minor unit, and the order of day, month and year
follow the active locale. CSV files do not use these filters; they keep plain decimals.

    {% load formatting %}
    {{ invoice.total|money:invoice.currency }}   → $1,250.69 / 1.250,69 €
    {{ line.quantity|number }}                    → 1,250.5
    {{ invoice.issue_date|day }}                  → Dec 4, 2026
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from django import template
from django.utils import translation

register = template.Library()


def active_locale() -> str:
    """The Babel locale for the language Django has active (``en-us`` → ``en_US``)."""
    return translation.to_locale(translation.get_language() or "en-us")


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
def number(value) -> str:
    """A quantity or rate without trailing zeros, with thousands separators: ``1,250.5``."""
    amount = _decimal(value)
    if amount is None:
        return ""
    return babel_numbers.format_decimal(amount.normalize() if amount == amount.to_integral() else amount,
                                        locale=active_locale(), decimal_quantization=False)


@register.filter
def day(value, length: str = "medium") -> str:
    """A date in the locale's order: ``Dec 4, 2026`` (``short``: ``12/4/26``)."""
    if not value:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        return str(value)
    return babel_dates.format_date(value, format=length, locale=active_locale())
