"""How invoice figures are printed: no rounding here, only trailing zeros.

``{% load invoice_format %}``: ``{{ line.unit_price|unit_price }}`` prints 200.0000 as
200.00 and 33.3333 as 33.3333 (at least two places, at most the four stored);
``{{ line.quantity|quantity }}`` prints 3.0000 as 3 and 1.5000 as 1.5.
"""
from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def unit_price(value):
    if not isinstance(value, Decimal):
        return value
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


@register.filter
def quantity(value):
    if not isinstance(value, Decimal):
        return value
    return format(value.normalize(), "f")
