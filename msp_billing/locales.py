"""The locale money, quantities and dates are written in: the MSP's own (``Msp.locale``).

Each MSP has a locale (``en_US``, ``de_DE`` …); empty means the default of its region. The
formatting filters (``msp_billing/templatetags/formatting.py``) ask ``current_locale()``,
which is, in order: a locale set for a block of code (``use_locale``: the settings page's
preview, tests), the locale of the MSP whose schema is active — in a request, and equally
in a Celery task that renders a PDF or an e-mail, since the task runs in its MSP's schema —
and otherwise the locale of the language Django has active. The words of the pages stay
English; only numbers and dates follow the locale.
"""
from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from babel import Locale, UnknownLocaleError
from babel.localedata import locale_identifiers
from django.conf import settings
from django.db import connection
from django.utils import translation
from django_tenants.utils import get_tenant_model

# The region's default when the MSP has not chosen a locale.
REGION_LOCALES = {
    "north_america": "en_US",
    "uk_ireland": "en_GB",
    "europe": "en_IE",
    "australia_nz": "en_AU",
    "asia_pacific": "en_SG",
    "latin_america": "es_MX",
    "middle_east_africa": "en_AE",
}
FALLBACK_LOCALE = "en_US"

_chosen: contextvars.ContextVar[str | None] = contextvars.ContextVar("formatting_locale", default=None)


def region_locale(region: str) -> str:
    return REGION_LOCALES.get(region, FALLBACK_LOCALE)


def msp_locale(msp) -> str:
    """The MSP's locale, or its region's when it chose none."""
    return getattr(msp, "locale", "") or region_locale(getattr(msp, "region", ""))


def current_locale() -> str:
    chosen = _chosen.get()
    if chosen:
        return chosen
    tenant = getattr(connection, "tenant", None)
    if tenant is not None and hasattr(tenant, "region"):
        if not tenant.is_public:
            return msp_locale(tenant)
    elif getattr(connection, "schema_name", settings.PUBLIC_SCHEMA_NAME) != settings.PUBLIC_SCHEMA_NAME:
        # Under schema_context the connection knows only the schema's name.
        return _schema_locale(connection.schema_name)
    return translation.to_locale(translation.get_language() or "en-us")


_SCHEMA_LOCALE_SECONDS = 10
_schema_locales: dict[str, tuple[float, str]] = {}


def forget_schema_locale(schema: str) -> None:
    """After a change of an MSP's locale: this process looks it up again."""
    _schema_locales.pop(schema, None)


def _schema_locale(schema: str) -> str:
    """The locale of the MSP of ``schema``, looked up at most every few seconds."""
    now = time.monotonic()
    known = _schema_locales.get(schema)
    if known is None or now - known[0] > _SCHEMA_LOCALE_SECONDS:
        row = get_tenant_model().objects.filter(schema_name=schema).values("locale", "region").first() or {}
        known = (now, row.get("locale") or region_locale(row.get("region", "")))
        _schema_locales[schema] = known
    return known[1]


@contextmanager
def use_locale(code: str) -> Iterator[None]:
    """Format in ``code`` inside the block, whatever the MSP's locale."""
    token = _chosen.set(code)
    try:
        yield
    finally:
        _chosen.reset(token)


def is_known(code: str) -> bool:
    return code in _known()


@cache
def _known() -> frozenset[str]:
    return frozenset(code for code, _ in locale_choices())


@cache
def locale_choices() -> tuple[tuple[str, str], ...]:
    """(``de_DE``, "German (Germany)") for every locale of a language in a country, by name."""
    choices = []
    for code in locale_identifiers():
        parts = code.split("_")
        if len(parts) != 2 or not parts[1].isalpha() or not parts[1].isupper():
            continue  # a language alone, a script variant, or a region such as 001 (world)
        try:
            name = Locale.parse(code).get_display_name("en")
        except (UnknownLocaleError, ValueError):
            continue
        if name:
            choices.append((code, name))
    return tuple(sorted(choices, key=lambda choice: choice[1].lower()))
