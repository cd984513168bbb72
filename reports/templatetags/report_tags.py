"""``{% load report_tags %}{{ minutes|hours_of }}``: minutes written as hours (90 → 1.5), locale-formatted."""
from decimal import Decimal

from django import template

from msp_billing.templatetags.formatting import number

register = template.Library()


@register.filter
def hours_of(minutes) -> str:
    if minutes in (None, ""):
        return ""
    return number((Decimal(minutes) / 60).quantize(Decimal("0.01")))
