"""Checks for values a service is given, with the messages a user sees.

Services validate everything they receive (forms and imports are a convenience, not the
guard) and report every problem at once: they collect messages per field in an
``Errors`` and raise one ``ValidationError`` at the end. The helpers here record a
message and return a cleaned value (or None) instead of raising, so a caller can go on
checking the other fields.

The rules, shared by contracts and invoices:

- Dates must lie between ``EARLIEST_DATE`` (1 January 1900) and ``LATEST_DATE``
  (31 December 2999): wide enough for any real contract, invoice or payment (including
  back-dated history imported from an older system), narrow enough to catch a mistyped
  year. Outside it: "Enter a date between 01 Jan 1900 and 31 Dec 2999."
- Numbers are finite ``Decimal`` values (``int`` allowed; ``float`` and ``bool`` never,
  since they would silently lose or invent precision). Money must be in the expected
  currency. Text such as "12.50" is accepted only where a caller asks for it.
- With a ``label`` (say "Line 2: amount") the message is prefixed with it and continues
  in lower case: "Line 2: amount: enter a number."
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from djmoney.money import Money

from msp_billing.templatetags.formatting import day as format_day

EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2999, 12, 31)

__all__ = ["EARLIEST_DATE", "LATEST_DATE", "Errors", "check_date", "clean_decimal", "clean_text", "whole_number_in"]


class Errors:
    """Collects per-field messages so the user sees every problem at once."""

    def __init__(self) -> None:
        self.messages: dict[str, list[str]] = {}

    def add(self, field: str | None, message: str) -> None:
        """Record ``message`` for ``field`` (None: for the form as a whole)."""
        self.messages.setdefault(field or NON_FIELD_ERRORS, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.messages)

    def raise_if_any(self) -> None:
        """Raise one ``ValidationError`` with every message recorded, if there is any."""
        if self.messages:
            raise ValidationError(self.messages)


def whole_number_in(value: Any, low: int, high: int) -> bool:
    """``value`` is a whole number (an int, not a bool) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def clean_text(value: Any) -> str:
    """Text without surrounding white space; anything that is not text becomes ""."""
    return value.strip() if isinstance(value, str) else ""


def check_date(errors: Errors, field: str, value: Any, *, required: bool = True) -> None:
    """Record a message unless ``value`` is a date (not a date-time) within the bounds.

    None is fine when the date is not ``required``."""
    if value is None:
        if required:
            errors.add(field, "Enter a date.")
        return
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        errors.add(field, "Enter a date.")
    elif not EARLIEST_DATE <= value <= LATEST_DATE:
        errors.add(field, f"Enter a date between {format_day(EARLIEST_DATE)} and {format_day(LATEST_DATE)}.")


def clean_decimal(errors: Errors, field: str, value: Any, *, currency: str | None = None, required: bool = True,
                  minimum: Decimal | None = Decimal("0"), positive: bool = False, maximum: Decimal | None = None,
                  accept_text: bool = False, label: str | None = None) -> Decimal | None:
    """A finite Decimal (or Money in ``currency``), or None with a message recorded.

    ``required``: None or "" is a missing value ("This field is required."); otherwise it
    is simply None. ``minimum`` / ``positive`` / ``maximum`` (by absolute value) bound the
    number; ``accept_text`` also takes numbers written as text ("12.50")."""

    def say(message: str) -> None:
        errors.add(field, f"{label}: {message[0].lower()}{message[1:]}" if label else message)

    if value is None or value == "":
        if required:
            say("This field is required.")
        return None
    if isinstance(value, Money):
        if currency is not None and str(value.currency) != currency:
            say(f"Enter the amount in {currency}, not {value.currency}.")
            return None
        value = value.amount
    allowed = (Decimal, int, str) if accept_text else (Decimal, int)
    if isinstance(value, (bool, float)) or not isinstance(value, allowed):
        say("Enter a number.")
        return None
    try:
        value = Decimal(value)
    except InvalidOperation:
        say("Enter a number.")
        return None
    if not value.is_finite():
        say("Enter a number.")
        return None
    if maximum is not None and abs(value) > maximum:
        say("Enter a smaller number.")
        return None
    if positive and value <= 0:
        say("Enter an amount greater than zero.")
        return None
    if minimum is not None and value < minimum:
        say(f"Enter a value of at least {minimum}.")
        return None
    return value
