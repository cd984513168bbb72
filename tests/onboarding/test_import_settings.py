"""Moving in: numbering, invoice defaults and time approval in the JSON import; billable minutes too."""
from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from invoices import services as invoice_services
from invoices.models import AuditEvent, Invoice, InvoiceSettings, NumberSequence
from msp_billing.accounts.models import User
from msp_billing.tenants.models import Msp
from onboarding.importing import ImportRejected, billing_data_import
from tickets.models import TimeEntry

TECH = "technician@alpha.example"
CUTOFF = dt.date(2026, 3, 31)


def moving_in(**settings) -> dict:
    """One customer on Hourly at 100/h, one resolved ticket with a 2-hour visit of which 45 minutes are billable."""
    return {
        "version": 1,
        "settings": {"number_prefix": "RE", "number_padding": 4, "number_yearly_reset": False, "credit_note_prefix": "GS",
                     "next_numbers": [{"series": "invoice", "next_number": 1043},
                                      {"series": "credit_note", "next_number": 88}],
                     "default_payment_terms_days": 14, "terms": "Net 14", **settings},
        "work_types": [{"name": "Onsite Support"}],
        "roles": [{"name": "Engineer", "default_rate": "100.00", "cost_rate": "40.00"}],
        "technicians": [{"email": TECH, "role": "Engineer"}],
        "customers": [{"legal_name": "Visit GmbH", "default_hourly_contract": "visit-hourly"}],
        "contracts": [{"ref": "visit-hourly", "customer": "Visit GmbH", "name": "Hourly 100", "type": "hourly",
                       "start_date": "2026-01-01", "rounding_increment": 15, "rounding_minimum": 60,
                       "rate_lines": [{"rate": "100.00", "effective_from": "2026-01-01"}]}],
        "tickets": [{"ref": "V-1", "customer": "Visit GmbH", "title": "Server room visit", "status": "resolved",
                     "resolved_on": "2026-03-03"}],
        "time_entries": [
            {"ticket": "V-1", "technician": TECH, "work_type": "Onsite Support", "date": "2026-03-03",
             "started_at": "2026-03-03T09:00:00", "ended_at": "2026-03-03T11:00:00", "billable_minutes": 45},
            {"ticket": "V-1", "technician": TECH, "work_type": "Onsite Support", "date": "2026-03-03",
             "minutes": 30, "billable_minutes": 0, "notes": "Warranty check"},
        ],
    }


def problems_of(doc) -> list[str]:
    with pytest.raises(ImportRejected) as caught:
        billing_data_import(document=doc)
    return [str(problem) for problem in caught.value.problems]


def test_numbering_from_the_file_then_billing_run_and_issue_gives_the_expected_number(tenant):
    summary = billing_data_import(document=moving_in())
    assert "invoice settings: 1 updated" in summary.lines() and "next numbers: 2 updated" in summary.lines()
    row = InvoiceSettings.load()
    assert (row.number_prefix, row.number_padding, row.number_yearly_reset, row.credit_note_prefix,
            row.default_payment_terms_days, row.terms) == ("RE", 4, False, "GS", 14, "Net 14")
    entry = TimeEntry.objects.get(billable_minutes=45)
    assert entry.minutes == 120 and "Billable 45 min of a 2 h visit" in entry.routing_explanation

    out = io.StringIO()
    call_command("billing_run", "--tenant", "alpha", "--cutoff", CUTOFF.isoformat(), "--json", stdout=out)
    connection.set_schema("alpha")
    report = json.loads(out.getvalue())
    (invoice_id,) = report["batch"]["invoices"]
    draft = Invoice.objects.get(pk=invoice_id)
    # 45 billable minutes at 100/h = 75.00 (not rounded up to the 60-minute minimum); the 0-minute entry bills 0.00.
    assert sorted(line.amount for line in draft.lines.all()) == [Decimal("0.00"), Decimal("75.00")]
    assert draft.subtotal == Decimal("75.00")
    admin = User.objects.get(email="billing-admin@alpha.example")
    invoice = invoice_services.invoice_issue(invoice_id=draft.pk, acting_user=admin, issue_date=dt.date(2026, 4, 1))
    assert invoice.number == "RE-1043"
    credit = invoice_services.credit_note_create(invoice_id=invoice.pk, reason="Goodwill", acting_user=admin,
                                                 issue_date=dt.date(2026, 4, 2))
    assert credit.number == "GS-0088"
    assert AuditEvent.objects.filter(action="invoice_settings_updated", after__next_number=1043).exists()


def test_reimporting_the_same_settings_changes_nothing(tenant):
    billing_data_import(document=moving_in())
    summary = billing_data_import(document=moving_in())
    assert "invoice settings: 1 unchanged" in summary.lines() and "next numbers: 2 unchanged" in summary.lines()


def test_a_next_number_at_or_below_an_issued_one_is_a_problem_and_nothing_is_imported(tenant):
    billing_data_import(document={"version": 1, "settings": {"number_yearly_reset": False}})
    from tests.invoices.builders import issued

    issued(), issued()  # INV-00001, INV-00002
    doc = moving_in(next_numbers=[{"series": "invoice", "next_number": 2}])
    assert problems_of(doc) == [
        ("$.settings.next_numbers[0].next_number: INV-00002 was already issued: the next invoice number must be above 2 "
        "(numbers are never given twice). Nothing was changed.")]
    assert InvoiceSettings.load().number_prefix == "INV"
    assert NumberSequence.objects.get(series="invoice", year=0).next_number == 3
    assert not TimeEntry.objects.exists()


def test_bad_settings_are_listed_per_value_and_nothing_is_imported(tenant):
    doc = moving_in(number_padding=0, default_payment_terms_days=400, time_approval_required="yes")
    assert problems_of(doc) == [
        "$.settings.default_payment_terms_days: must be at most 365",
        "$.settings.number_padding: must be at least 1",
        "$.settings.time_approval_required: must be a boolean, not \"yes\"",
    ]
    assert problems_of(moving_in(number_prefix="R E")) == ["$.settings.number_prefix: Use letters, digits and - _ / . only."]
    assert problems_of(moving_in(credit_note_prefix="re")) == [
        "$.settings.credit_note_prefix: Credit notes need a prefix of their own, so their numbers never look like invoice numbers."]
    assert not TimeEntry.objects.exists() and InvoiceSettings.load().number_prefix == "INV"


def test_next_numbers_need_a_year_exactly_when_numbering_restarts_each_year(tenant):
    doc = moving_in(number_yearly_reset=True)
    assert problems_of(doc) == [
        "$.settings.next_numbers[0].year: is required: invoice numbers restart each year, so give the year this next number is for",
        "$.settings.next_numbers[1].year: is required: invoice numbers restart each year, so give the year this next number is for",
    ]
    doc = moving_in(next_numbers=[{"series": "invoice", "year": 2026, "next_number": 5}])
    assert problems_of(doc) == [("$.settings.next_numbers[0].year: numbers do not restart each year "
                                "(number_yearly_reset is false): leave the year out")]
    doc = moving_in(number_yearly_reset=True, next_numbers=[{"series": "invoice", "year": 2026, "next_number": 5},
                                                            {"series": "invoice", "year": 2026, "next_number": 6}])
    assert problems_of(doc) == [("$.settings.next_numbers[1]: the next invoice number for 2026 is already in the file "
                                "at $.settings.next_numbers[0]")]
    doc = moving_in(number_yearly_reset=True, next_numbers=[{"series": "invoice", "year": 2026, "next_number": 5}])
    billing_data_import(document=doc)
    assert NumberSequence.objects.get(series="invoice", year=2026).next_number == 5


def test_billable_minutes_above_the_time_worked_are_a_problem(tenant):
    doc = moving_in()
    doc["time_entries"][0]["billable_minutes"] = 150
    assert problems_of(doc) == ["$.time_entries[0].billable_minutes: 150 billable minutes is more than the 120 minutes worked"]
    assert InvoiceSettings.load().number_prefix == "INV"


def test_time_approval_from_the_file_applies_to_its_time_and_is_audited(tenant):
    billing_data_import(document=moving_in(time_approval_required=True))
    assert Msp.objects.get(schema_name="alpha").time_approval_required is True
    assert set(TimeEntry.objects.values_list("approval", flat=True)) == {"pending"}
    event = AuditEvent.objects.get(action="time_approval_switched")
    assert event.after == {"time_approval_required": True} and event.actor_label == "import"


def test_a_rejected_file_leaves_time_approval_as_it_was(tenant):
    doc = moving_in(time_approval_required=True)
    doc["time_entries"][0]["billable_minutes"] = 150
    problems_of(doc)
    assert Msp.objects.get(schema_name="alpha").time_approval_required is False
    assert connection.tenant.time_approval_required is False
    assert not AuditEvent.objects.filter(action="time_approval_switched").exists()
    billing_data_import(document=moving_in(time_approval_required=True), dry_run=True)
    assert connection.tenant.time_approval_required is False
