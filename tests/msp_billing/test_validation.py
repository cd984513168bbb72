"""Input checks shared by the services: the messages a user sees for a bad date, number or text."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from djmoney.money import Money

from msp_billing.validation import Errors, check_date, clean_decimal, clean_text

DATE_RANGE = "Enter a date between Jan 1, 1900 and Dec 31, 2999."  # outside any MSP: en_US


def date_messages(value, **options) -> list[str]:
    errors = Errors()
    check_date(errors, "start_date", value, **options)
    return errors.messages.get("start_date", [])


def decimal_result(value, **options) -> tuple[Decimal | None, list[str]]:
    errors = Errors()
    cleaned = clean_decimal(errors, "amount", value, **options)
    return cleaned, errors.messages.get("amount", [])


def test_errors_collects_every_message_and_raises_them_together():
    errors = Errors()
    assert not errors
    errors.raise_if_any()  # nothing recorded: no error

    errors.add("name", "Enter a name.")
    errors.add("name", "Keep the name under 200 characters.")
    errors.add(None, "Choose a customer first.")

    assert errors
    with pytest.raises(ValidationError) as raised:
        errors.raise_if_any()
    assert raised.value.message_dict == {
        "name": ["Enter a name.", "Keep the name under 200 characters."],
        NON_FIELD_ERRORS: ["Choose a customer first."],
    }


@pytest.mark.parametrize("day", [dt.date(1900, 1, 1), dt.date(1999, 12, 31), dt.date(2026, 2, 28), dt.date(2999, 12, 31)])
def test_a_date_within_the_bounds_is_accepted(day):
    assert date_messages(day) == []


@pytest.mark.parametrize("day", [dt.date(1899, 12, 31), dt.date(3000, 1, 1), dt.date(9999, 12, 31)])
def test_a_date_outside_the_bounds_names_them(day):
    assert date_messages(day) == [DATE_RANGE]


@pytest.mark.parametrize("value", ["2026-01-31", dt.datetime(2026, 1, 31, 9, 0), 20260131])
def test_anything_but_a_date_asks_for_a_date(value):
    assert date_messages(value) == ["Enter a date."]


def test_a_missing_date_is_asked_for_only_when_required():
    assert date_messages(None) == ["Enter a date."]
    assert date_messages(None, required=False) == []


def test_a_decimal_comes_back_as_given():
    assert decimal_result(Decimal("12.50")) == (Decimal("12.50"), [])
    assert decimal_result(7) == (Decimal(7), [])
    assert decimal_result(Money("99.95", "EUR"), currency="EUR") == (Decimal("99.95"), [])


def test_money_in_another_currency_names_both():
    assert decimal_result(Money("10", "USD"), currency="EUR") == (None, ["Enter the amount in EUR, not USD."])


@pytest.mark.parametrize("value", [1.5, True, "12.50", Decimal("NaN"), Decimal("Infinity"), [1]])
def test_floats_booleans_text_and_non_finite_values_ask_for_a_number(value):
    assert decimal_result(value) == (None, ["Enter a number."])


def test_text_is_read_as_a_number_only_when_accepted():
    assert decimal_result("12.50", accept_text=True) == (Decimal("12.50"), [])
    assert decimal_result("twelve", accept_text=True) == (None, ["Enter a number."])


def test_a_missing_number_is_asked_for_only_when_required():
    assert decimal_result(None) == (None, ["This field is required."])
    assert decimal_result("") == (None, ["This field is required."])
    assert decimal_result(None, required=False) == (None, [])


def test_bounds_minimum_positive_and_maximum():
    assert decimal_result(Decimal("-0.01")) == (None, ["Enter a value of at least 0."])
    assert decimal_result(Decimal("4"), minimum=Decimal("5")) == (None, ["Enter a value of at least 5."])
    assert decimal_result(Decimal("-40"), minimum=None) == (Decimal("-40"), [])
    assert decimal_result(Decimal("0"), positive=True) == (None, ["Enter an amount greater than zero."])
    assert decimal_result(Decimal("1000"), maximum=Decimal("999")) == (None, ["Enter a smaller number."])
    assert decimal_result(Decimal("-1000"), minimum=None, maximum=Decimal("999")) == (None, ["Enter a smaller number."])


def test_a_label_prefixes_the_message():
    label = "Line 2: amount"
    assert decimal_result("abc", label=label, accept_text=True) == (None, ["Line 2: amount: enter a number."])
    assert decimal_result(Money("5", "USD"), currency="EUR", label=label) == (
        None, ["Line 2: amount: enter the amount in EUR, not USD."])
    assert decimal_result(Decimal("-1"), label=label) == (None, ["Line 2: amount: enter a value of at least 0."])


def test_text_is_stripped_and_anything_else_is_empty():
    assert clean_text("  Acme Ltd \n") == "Acme Ltd"
    assert clean_text(None) == ""
    assert clean_text(42) == ""
