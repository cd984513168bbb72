"""The contract form says the truth: the chosen type's fields only, which of them are
required, the first block on a Block form, a warning on equal priorities, and the
currencies in use today with the MSP's own first."""
from __future__ import annotations

import re

from django.contrib.messages import get_messages
from django.urls import reverse

from contracts.models import BlockPurchase, Contract
from tests.contracts.test_views import TYPE_TERMS, admin, contract_post, data, eur, make_contract  # noqa: F401


def fieldset(html: str, legend: str) -> str:
    """The opening tag of the fieldset with this legend."""
    match = re.search(r'(<fieldset[^>]*>)\s*<legend>' + re.escape(legend) + '</legend>', html)
    assert match, f"no fieldset {legend}"
    return match.group(1)


def label(html: str, field: str) -> str:
    match = re.search(r'<label for="id_' + field + r'">(.*?)</label>', html, re.DOTALL)
    assert match, f"no label for {field}"
    return match.group(1)


def shown(marks: str) -> str:
    """Which marker of a label shows: "required", "optional" or "" (none)."""
    for when in ("required", "optional"):
        if re.search(r'data-when="' + when + r'"(?! hidden)>', marks):
            return when
    return "required" if "required-mark" in marks and "data-when" not in marks else ("optional" if "(optional)" in marks else "")


def test_a_retainer_is_rendered_with_its_own_fields_only(admin, data):  # noqa: F811
    contract = make_contract(data["customer"], Contract.Type.RETAINER, fee=eur("430"), name="Gold")
    html = admin.get(reverse("contracts:edit", args=[contract.pk])).content.decode()
    assert "hidden" not in fieldset(html, "Fee") and "hidden" not in fieldset(html, "Included hours")
    for other in ("Blocks", "Budget", "Usage", "Alerts"):
        assert "hidden" in fieldset(html, other), other
    assert shown(label(html, "fee")) == "required" and shown(label(html, "name")) == "required"
    assert shown(label(html, "overage_rate")) == "optional"  # a retainer's overage rate is optional …


def test_a_block_hours_form_asks_for_the_block_and_has_no_anchor_day(admin, data):  # noqa: F811
    response = admin.post(reverse("contracts:create"), contract_post(data["customer"], "block_hours"))
    html = response.content.decode()
    assert response.status_code == 400
    assert "hidden" not in fieldset(html, "First block") and "hidden" in fieldset(html, "Fee")
    assert shown(label(html, "overage_rate")) == "required"  # … a Block Hours one is not
    assert shown(label(html, "block_hours")) == "required" and shown(label(html, "block_price")) == "required"
    assert re.search(r'<div class="type-field" data-types="[^"]*" hidden[^>]*>\s*<div class="field[^"]*">\s*<label for="id_anchor_day"', html)
    form = response.context["form"]
    assert "Enter the size of the first block" in form.errors["block_hours"][0]
    assert "invoiced for the block" in form.errors["block_price"][0]
    assert not Contract.objects.filter(name="New block_hours").exists()


def test_a_new_block_contract_buys_its_first_block(admin, data):  # noqa: F811
    post = contract_post(data["customer"], "block_hours", **TYPE_TERMS["block_hours"], block_expiry_months="12")
    assert admin.post(reverse("contracts:create"), post).status_code == 302
    block = BlockPurchase.objects.get(contract__name="New block_hours")
    assert (block.minutes, block.price, str(block.purchased_on), str(block.expires_on)) == (
        600, eur("1250"), "2026-01-01", "2027-01-01")
    post = contract_post(data["customer"], "block_money", **TYPE_TERMS["block_money"])
    assert admin.post(reverse("contracts:create"), post).status_code == 302
    block = BlockPurchase.objects.get(contract__name="New block_money")
    assert (block.minutes, block.amount, block.price) == (None, eur("2000"), eur("1900"))


def test_a_bad_block_saves_neither_contract_nor_block(admin, data):  # noqa: F811
    post = contract_post(data["customer"], "block_hours", **{**TYPE_TERMS["block_hours"], "block_hours": "0.01"})
    response = admin.post(reverse("contracts:create"), post)
    assert response.status_code == 400 and response.context["form"].errors["block_hours"]
    assert not Contract.objects.filter(name="New block_hours").exists() and not BlockPurchase.objects.exists()


def test_other_types_fields_are_kept_on_the_page_but_not_read(admin, data):  # noqa: F811
    """Switching type keeps what was typed: a retainer posted with a half-typed block size
    and budget saves as a retainer; on a refused post the values come back on the page."""
    stray = {"block_hours": "abc", "budget_hours": "-3", "usage_unit": "bogus"}
    refused = admin.post(reverse("contracts:create"),
                         contract_post(data["customer"], "retainer", **stray, name="Kept"))  # no fee
    html = refused.content.decode()
    assert refused.status_code == 400 and set(refused.context["form"].errors) == {"fee"}
    assert 'name="block_hours" value="abc"' in html and 'name="budget_hours" value="-3"' in html
    saved = admin.post(reverse("contracts:create"),
                       contract_post(data["customer"], "retainer", **TYPE_TERMS["retainer"], **stray, name="Kept"))
    assert saved.status_code == 302
    contract = Contract.objects.get(name="Kept")
    assert (contract.type, contract.budget_minutes, contract.usage_unit) == ("retainer", None, "")
    assert not BlockPurchase.objects.filter(contract=contract).exists()


def test_equal_priorities_are_warned_about(admin, data):  # noqa: F811
    make_contract(data["customer"], Contract.Type.RETAINER, fee=eur("430"), name="Gold Remote", priority=7)
    response = admin.post(reverse("contracts:create"),
                          contract_post(data["customer"], "hourly", name="Onsite", priority="7"))
    assert response.status_code == 302
    warnings = [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert warnings and "“Gold Remote” has priority 7 too" in warnings[0]
    # The edit page says so too, until the numbers differ.
    onsite = Contract.objects.get(name="Onsite")
    html = admin.get(reverse("contracts:edit", args=[onsite.pk])).content.decode()
    assert 'id="priority-warning"' in html and "Gold Remote" in html
    response = admin.post(reverse("contracts:edit", args=[onsite.pk]),
                          contract_post(data["customer"], "hourly", name="Onsite", priority="20"))
    assert response.status_code == 302
    assert not [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"]
    assert 'id="priority-warning"' not in admin.get(reverse("contracts:edit", args=[onsite.pk])).content.decode()


def test_currencies_in_use_today_with_the_msps_own_first(admin, data):  # noqa: F811
    html = admin.get(reverse("contracts:customer_create")).content.decode()
    select = html[html.index('name="currency"'):]
    select = select[:select.index("</select>")]
    codes = re.findall(r'<option value="([A-Z]{3})"', select)
    # Common first: the home currency (EUR) and the customers' currencies, then the most traded.
    assert '<optgroup label="Common">' in select and codes[0] == "EUR" and codes[1] == "USD"
    assert {"SEK", "PLN", "INR", "ZAR"} <= set(codes)
    # Withdrawn and non-money codes of ISO 4217 are not offered.
    assert not {"DEM", "HRK", "XAU", "XTS", "VEF"} & set(codes)
    assert len(codes) == len(set(codes))
    assert "EUR — Euro" in select
