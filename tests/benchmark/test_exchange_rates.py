"""Exchange rates: loaded from a file into django-money's backend and the dated table,
frozen on each issued invoice, and a refused document changes nothing."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from djmoney.contrib.exchange.models import Rate, convert_money
from djmoney.money import Money

from msp_billing.fx.models import DatedRate
from msp_billing.fx.rates import rate_on, rates_load
from tests.invoices.builders import customer, issued, line


def _rates_file(tmp_path, day: str, rates: dict, base: str = "USD"):
    path = tmp_path / f"rates-{day}.json"
    path.write_text(json.dumps({"base": base, "date": day, "rates": rates}))
    return str(path)


def test_a_loaded_rate_converts_by_day_and_through_django_money(tenant, tmp_path):
    rates_load(_rates_file(tmp_path, "2026-12-01", {"EUR": "0.9", "GBP": "0.8"}))
    rates_load(_rates_file(tmp_path, "2026-12-05", {"EUR": "1.0", "GBP": "0.8"}))
    # 1 GBP = 0.9 / 0.8 EUR on the 1st (the latest day on or before the 4th), 1.0 / 0.8 from the 5th.
    assert rate_on("GBP", "EUR", dt.date(2026, 12, 4)).value == Decimal("1.125")
    assert rate_on("GBP", "EUR", dt.date(2026, 12, 4)).date == dt.date(2026, 12, 1)
    assert rate_on("GBP", "EUR", dt.date(2026, 12, 6)).value == Decimal("1.25")
    assert rate_on("GBP", "EUR", dt.date(2026, 11, 30)).date is None  # before any dated rate: the current one
    assert convert_money(Money("10", "GBP"), "EUR") == Money("12.50", "EUR")  # django-money's current rate
    assert Rate.objects.get(currency="EUR", backend_id="msp_billing").value == Decimal("1.0")


def test_the_rate_is_frozen_when_an_invoice_is_issued_and_later_rates_leave_it(tenant, tmp_path):
    rates_load(_rates_file(tmp_path, "2026-12-01", {"EUR": "0.9", "GBP": "0.8"}))
    pounds = customer("Pound Ltd", currency="GBP")
    invoice = issued(pounds, [line("Support", "1", "100", taxes=())], on=dt.date(2026, 12, 4))
    assert (invoice.exchange_rate, invoice.exchange_rate_date, invoice.home_currency) == \
        (Decimal("1.125"), dt.date(2026, 12, 1), "EUR")
    rates_load(_rates_file(tmp_path, "2026-12-02", {"EUR": "1.2", "GBP": "0.8"}))
    invoice.refresh_from_db()
    assert invoice.exchange_rate == Decimal("1.125")
    euros = issued(customer("Euro GmbH"), [line(taxes=())], on=dt.date(2026, 12, 4))
    assert euros.exchange_rate == Decimal("1") and euros.home_currency == "EUR"


def test_an_invoice_without_any_rate_still_issues_with_no_rate(tenant):
    invoice = issued(customer("Franc SA", currency="CHF"), [line(taxes=())], on=dt.date(2026, 12, 4))
    assert invoice.number and invoice.exchange_rate is None and invoice.exchange_rate_date is None


@pytest.mark.parametrize("document,message", [
    ({"base": "EUR", "date": "2026-12-01", "rates": {"GBP": "0.8"}}, "must be against USD"),
    ({"base": "USD", "date": "1 Dec", "rates": {"GBP": "0.8"}}, "YYYY-MM-DD"),
    ({"base": "USD", "date": "2026-12-01", "rates": {"GBP": "-1", "EUR": "0.9"}}, "GBP: the rate must be above 0"),
    ({"base": "USD", "date": "2026-12-01", "rates": {"XYZ": "2"}}, "XYZ: not an ISO 4217 currency"),
])
def test_a_bad_document_is_refused_with_its_problem_and_nothing_is_written(tenant, tmp_path, document, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValidationError, match=message):
        rates_load(str(path))
    assert not DatedRate.objects.filter(date=dt.date(2026, 12, 1)).exists()
    with pytest.raises(CommandError, match=message):
        call_command("load_exchange_rates", "--file", str(path))


def test_the_command_loads_a_file(tenant, tmp_path, capsys):
    call_command("load_exchange_rates", "--file", _rates_file(tmp_path, "2026-12-03", {"EUR": "0.95"}))
    assert "Loaded 2 rates against USD for 2026-12-03" in capsys.readouterr().out
    assert DatedRate.objects.get(date=dt.date(2026, 12, 3), currency="EUR").value == Decimal("0.95")
    assert DatedRate.objects.get(date=dt.date(2026, 12, 3), currency="USD").value == 1
