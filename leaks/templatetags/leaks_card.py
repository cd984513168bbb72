"""``{% load leaks_card %}{% leaks_card %}``: the leak finder's card on the dashboard.

The card is drawn where the tag stands with its heading and link, and its figures load
right after the page (``leaks:card``): the finder reads the whole tenant, which the
dashboard's own figures should not wait for. Without JavaScript the link still leads to
the Leaks page.
"""
from django import template

register = template.Library()


@register.inclusion_tag("leaks/_card_loading.html")
def leaks_card():
    return {}
