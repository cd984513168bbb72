"""Setting the next number of a series when moving in from another system: page and service."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from invoices import services
from invoices.models import AuditEvent, InvoiceSettings, NumberSequence
from tests.invoices.builders import admin, issued

INVOICE, CREDIT_NOTE = NumberSequence.Series.INVOICE, NumberSequence.Series.CREDIT_NOTE


@pytest.fixture
def two_issued(tenant):
    return [issued(), issued()]  # INV-2026-00001, INV-2026-00002


def next_in(series, year=2026):
    return NumberSequence.objects.get(series=series, year=year).next_number


def settings_post(**changes) -> dict:
    row = InvoiceSettings.load()
    data = {"number_prefix": row.number_prefix, "number_padding": str(row.number_padding),
            "number_yearly_reset": "on" if row.number_yearly_reset else "", "credit_note_prefix": row.credit_note_prefix,
            "default_discount_percent": "0", "default_surcharge_percent": "0", "default_payment_terms_days": "30",
            "terms": "", "payment_instructions": "", "footer": "",
            "next_invoice_number": str(services.next_number_of(series=INVOICE, year=2026)),
            "next_credit_note_number": str(services.next_number_of(series=CREDIT_NOTE, year=2026)),
            "numbering_year": "2026"}
    data.update(changes)
    return data


def test_the_next_issued_invoice_takes_the_number_set(two_issued):
    assert [i.number for i in two_issued] == ["INV-2026-00001", "INV-2026-00002"]
    services.invoice_numbering_set_next(series=INVOICE, year=2026, next_number=1043, acting_user=admin())
    assert issued().number == "INV-2026-01043"
    assert issued().number == "INV-2026-01044"  # gapless from there
    event = AuditEvent.objects.filter(action="invoice_settings_updated").latest("at")
    assert (event.before, event.after) == ({"series": "invoice", "year": 2026, "next_number": 3},
                                           {"series": "invoice", "year": 2026, "next_number": 1043})
    assert event.actor_label == "billing-admin@alpha.example"
    assert event.message == "Next invoice number in 2026 set to 1043 (INV-2026-01043)."


@pytest.mark.parametrize("number", [1, 2])
def test_a_number_at_or_below_one_issued_is_refused_and_nothing_changes(two_issued, number):
    with pytest.raises(ValidationError) as caught:
        services.invoice_numbering_set_next(series=INVOICE, year=2026, next_number=number, acting_user=admin())
    assert caught.value.message_dict["next_number"] == [
        ("INV-2026-00002 was already issued: the next invoice number in 2026 must be above 2 "
        "(numbers are never given twice). Nothing was changed.")]
    assert next_in(INVOICE) == 3
    assert not AuditEvent.objects.filter(action="invoice_settings_updated").exists()
    assert issued().number == "INV-2026-00003"


def test_the_series_and_years_are_separate(two_issued):
    # Credit notes have their own series: nothing issued there yet, so 1 is still allowed, and 17 too.
    services.invoice_numbering_set_next(series=CREDIT_NOTE, year=2026, next_number=17, acting_user=admin())
    credit = services.credit_note_create(invoice_id=two_issued[0].pk, reason="Returned", acting_user=admin(),
                                         issue_date=dt.date(2026, 3, 11))
    assert credit.number == "CN-2026-00017"
    # Next year's series may start anywhere: 2026's numbers do not limit it.
    services.invoice_numbering_set_next(series=INVOICE, year=2027, next_number=2, acting_user=admin())
    assert issued(on=dt.date(2026, 3, 12)).number == "INV-2026-00003"
    assert issued(on=dt.date(2027, 1, 4)).number == "INV-2027-00002"


def test_without_yearly_reset_there_is_one_series(tenant):
    services.invoice_settings_update(data={"number_yearly_reset": False}, acting_user=admin())
    assert issued().number == "INV-00001"
    with pytest.raises(ValidationError, match="INV-00001 was already issued"):
        services.invoice_numbering_set_next(series=INVOICE, year=2030, next_number=1, acting_user=admin())
    services.invoice_numbering_set_next(series=INVOICE, year=None, next_number=500, acting_user=admin())
    assert issued(on=dt.date(2027, 5, 1)).number == "INV-00500"


@pytest.mark.parametrize("kwargs,field", [
    ({"series": INVOICE, "next_number": 0}, "next_number"),
    ({"series": INVOICE, "next_number": "12"}, "next_number"),
    ({"series": "receipt", "next_number": 12}, "series"),
    ({"series": INVOICE, "next_number": 12, "year": 1999}, "year"),
])
def test_bad_values_are_refused(tenant, kwargs, field):
    with pytest.raises(ValidationError) as caught:
        services.invoice_numbering_set_next(acting_user=admin(), **kwargs)
    assert field in caught.value.message_dict
    assert not NumberSequence.objects.exists()


# --- the settings page ---------------------------------------------------------------------------


def test_the_settings_page_sets_the_next_number(two_issued, client_for):
    client = client_for("alpha", "billing_admin")
    page = client.get(reverse("invoices:settings")).content.decode()
    assert 'name="next_invoice_number"' in page and 'value="3"' in page
    response = client.post(reverse("invoices:settings"), settings_post(next_invoice_number="1043"))
    assert response.status_code == 302
    assert next_in(INVOICE) == 1043
    assert issued().number == "INV-2026-01043"
    assert AuditEvent.objects.filter(action="invoice_settings_updated", after__next_number=1043).exists()


def test_the_settings_page_refuses_a_number_already_issued_and_saves_nothing(two_issued, client_for):
    client = client_for("alpha", "billing_admin")
    response = client.post(reverse("invoices:settings"), settings_post(next_invoice_number="2", number_prefix="RE"))
    assert response.status_code == 400
    assert "INV-2026-00002 was already issued" in response.content.decode()
    assert next_in(INVOICE) == 3
    assert InvoiceSettings.load().number_prefix == "INV"  # the other changes of the same form are not saved either
    assert not AuditEvent.objects.filter(action="invoice_settings_updated").exists()


def test_saving_the_page_unchanged_changes_no_number(two_issued, client_for):
    client = client_for("alpha", "billing_admin")
    assert client.post(reverse("invoices:settings"), settings_post(footer="Thanks")).status_code == 302
    assert next_in(INVOICE) == 3
    assert not NumberSequence.objects.filter(series=CREDIT_NOTE).exists()


def test_the_page_sets_next_years_number(two_issued, client_for):
    client = client_for("alpha", "billing_admin")
    response = client.post(reverse("invoices:settings"), settings_post(next_invoice_number="700", numbering_year="2027"))
    assert response.status_code == 302
    assert next_in(INVOICE, 2027) == 700 and next_in(INVOICE, 2026) == 3


@pytest.mark.parametrize("role", ["technician", "accountant"])
def test_only_settings_admins_set_numbers(two_issued, client_for, role):
    response = client_for("alpha", role).post(reverse("invoices:settings"), settings_post(next_invoice_number="1043"))
    assert response.status_code == 403
    assert next_in(INVOICE) == 3
