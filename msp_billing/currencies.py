"""Which currencies the forms offer: the ones in use today, from the CLDR data in Babel.

ISO 4217 keeps withdrawn codes (DEM, HRK, BGN …) and non-money ones (XAU, XTS) that
djmoney's full list also offers. Babel's territory data says which currency each country
uses and since when; a currency counts as *current* when some territory uses it as legal
tender with no end date. Those the money library (py-moneyed) does not know are left out,
so every code offered can be stored and formatted.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import cache

from babel.core import get_global
from babel.numbers import get_currency_name
from moneyed import CURRENCIES as MONEYED_CURRENCIES

# The most traded currencies (BIS Triennial Survey, share of foreign-exchange turnover):
# offered near the top after the MSP's own ones.
MOST_TRADED = ("USD", "EUR", "JPY", "GBP", "CNY", "AUD", "CAD", "CHF")


@cache
def current_currency_codes() -> tuple[str, ...]:
    """ISO 4217 codes in use as legal tender today, alphabetical."""
    today = dt.date.today()
    codes = set()
    for uses in get_global("territory_currencies").values():
        for code, _start, end, tender in uses:
            if tender and (end is None or _as_date(end) > today):
                codes.add(code)
    return tuple(sorted(code for code in codes if code in MONEYED_CURRENCIES))


def _as_date(value) -> dt.date:
    return dt.date(*value[:3]) if isinstance(value, tuple) else value


def currency_label(code: str) -> str:
    """``EUR — Euro``: the code, then its English name."""
    return f"{code} — {get_currency_name(code, locale='en')}"


def currency_choices(*, first: Iterable[str] = (), keep: Iterable[str] = ()) -> list:
    """Grouped choices: the common currencies (``first``, then the most traded), then all
    current ones. ``keep``: codes already stored on the object, offered even if withdrawn."""
    current = current_currency_codes()
    common: list[str] = []
    for code in (*first, *MOST_TRADED):
        code = (code or "").upper()
        if code and code not in common and (code in current or code in MONEYED_CURRENCIES):
            common.append(code)
    rest = sorted({*current, *(code for code in keep if code and code in MONEYED_CURRENCIES)} - set(common))
    return [
        ("Common", [(code, currency_label(code)) for code in common]),
        ("All current currencies", [(code, currency_label(code)) for code in rest]),
    ]
