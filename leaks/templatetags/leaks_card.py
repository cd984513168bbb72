"""``{% load leaks_card %}{% leaks_card %}``: the leak finder's card on the dashboard."""
from django import template

from leaks.services import leaks_open
from leaks.views import totals_by_currency
from msp_billing.tenants.today import tenant_today

register = template.Library()
TOP = 3


@register.inclusion_tag("leaks/_card.html")
def leaks_card():
    leaks = leaks_open(today=tenant_today())
    return {"count": len(leaks), "totals": totals_by_currency(leaks), "top": leaks[:TOP]}
