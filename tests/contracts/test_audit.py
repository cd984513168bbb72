"""The audit trail of contracts: recorded by the services, shown on the contract page and
in the filterable report, kept per MSP, and carried over from where it used to live."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import schema_context

from contracts import renewals, services
from contracts.models import Contract
from msp_billing.accounts.models import User
from msp_billing.audit.models import AuditEvent
from msp_billing.locales import use_locale
from msp_billing.templatetags.formatting import when
from msp_billing.audit.selectors import audit_events_for
from tests.contracts.test_views import admin, contract_post, data, eur, make_contract  # noqa: F401  (fixtures)

ADMIN = "billing-admin@alpha.example"


def _edit_gold(admin, data):  # noqa: F811
    """The billing admin raises the fee of retainer “Gold” from 430 to 450 and moves it to priority 5."""
    contract = make_contract(data["customer"], Contract.Type.RETAINER, fee=eur("430"), name="Gold", priority=10)
    post = contract_post(data["customer"], "retainer", fee="450", name="Gold", priority="5")
    response = admin.post(reverse("contracts:edit", args=[contract.pk]), post)
    assert response.status_code == 302, response.content.decode()
    return contract


def test_editing_a_contract_shows_who_when_and_before_after_on_its_page(admin, data):  # noqa: F811
    contract = _edit_gold(admin, data)
    event = AuditEvent.objects.get(action="contract_update", object_type="contracts.contract", object_id=str(contract.pk))
    assert event.actor.email == ADMIN
    # Only what changed is recorded, each side as the admin knows it.
    assert event.before["fee"] == "430.00 EUR" and event.after["fee"] == "450.00 EUR"
    assert (event.before["priority"], event.after["priority"]) == (10, 5)
    assert "name" not in event.after and "type" not in event.after

    page = admin.get(reverse("contracts:detail", args=[contract.pk])).content.decode()
    trail = page[page.index('id="audit-h"'):]
    # In the admin's words, not the stored codes.
    assert ADMIN in trail and "<strong>Contract changed</strong>" in trail and "contract_update" not in trail
    with use_locale("en_IE"), timezone.override(ZoneInfo("Europe/Berlin")):  # alpha: Europe, Berlin
        assert when(event.at) in trail
    assert '<td class="audit-before">430.00 EUR</td>' in trail and '<td class="audit-after">450.00 EUR</td>' in trail
    assert '<td class="audit-before">10</td>' in trail and '<td class="audit-after">5</td>' in trail


def test_an_edit_that_changes_nothing_records_nothing(admin, data):  # noqa: F811
    contract = _edit_gold(admin, data)
    post = contract_post(data["customer"], "retainer", fee="450", name="Gold", priority="5")
    assert admin.post(reverse("contracts:edit", args=[contract.pk]), post).status_code == 302
    assert audit_events_for(contract).filter(action="contract_update").count() == 1


def test_contract_terms_show_on_the_contracts_trail(admin, data):  # noqa: F811
    contract = data["contract"]
    url = reverse("contracts:rate_line_add", args=[contract.pk])
    post = {"work_type": data["work_type"].pk, "role": data["role"].pk, "rate": "150", "effective_from": "2026-01-01"}
    assert admin.post(url, post).status_code == 302
    assert admin.post(url, post).status_code == 400  # refused: nothing recorded
    events = list(audit_events_for(contract))
    assert [e.action for e in events] == ["rate_line_add"]
    assert events[0].after | {"rate_line": None} == {
        "rate_line": None, "work_type": "Remote Support", "role": "Engineer", "rate": "150.0000 EUR", "effective_from": "2026-01-01"}
    page = admin.get(reverse("contracts:detail", args=[contract.pk])).content.decode()
    assert "Rate line added" in page and "150.0000 EUR" in page[page.index('id="audit-h"'):]


def test_the_report_includes_contract_events_and_filters_by_them(client_for, admin, data):  # noqa: F811
    contract = _edit_gold(admin, data)
    other = _edit_gold_like(admin, data, name="Silver")
    accountant = client_for("alpha", "accountant")
    page = accountant.get(reverse("billing:audit"), {"object_type": "contracts.contract", "object_id": contract.pk})
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count("<td>Contract changed</td>") == 1 and "Silver" not in html
    assert f"<td>Contract {data['customer']} — Gold</td>" in html
    assert "contract_update" not in html and "contracts.contract #" not in html
    assert "Fee: 430.00 EUR → 450.00 EUR" in html and ADMIN in html
    # The admin filters by the words the page shows, as well as by the stored code.
    by_words = accountant.get(reverse("billing:audit"), {"action": "contract changed"}).content.decode()
    assert "<td>Contract changed</td>" in by_words
    everything_on_contracts = accountant.get(reverse("billing:audit"), {"object_type": "contracts.contract"}).content.decode()
    assert "Gold" in everything_on_contracts and "Silver" in everything_on_contracts
    assert '<option value="contracts.contract" selected>Contract</option>' in everything_on_contracts
    csv = accountant.get(reverse("billing:audit"), {"object_type": "contracts.contract", "object_id": contract.pk, "format": "csv"})
    rows = csv.content.decode().splitlines()
    assert csv["Content-Type"] == "text/csv" and len(rows) == 2
    assert "contract_update" in rows[1] and '""fee"": ""430.00 EUR""' in rows[1] and '""fee"": ""450.00 EUR""' in rows[1]
    # The contract page links to its part of the report.
    detail = admin.get(reverse("contracts:detail", args=[other.pk])).content.decode()
    assert f"object_type=contracts.contract&amp;object_id={other.pk}" in detail
    # Tampered filters are refused with a message, not a 500.
    for bad in ({"object_type": "contracts.nothing"}, {"object_id": "1 OR 1=1"}, {"start": "2026-05-02", "end": "2026-05-01"}):
        response = accountant.get(reverse("billing:audit"), bad)
        assert response.status_code == 400, bad


def _edit_gold_like(admin, data, *, name):  # noqa: F811
    contract = make_contract(data["customer"], Contract.Type.RETAINER, fee=eur("100"), name=name)
    post = contract_post(data["customer"], "retainer", fee="120", name=name)
    assert admin.post(reverse("contracts:edit", args=[contract.pk]), post).status_code == 302
    return contract


def test_events_stay_with_their_msp(client_for, admin, data):  # noqa: F811
    contract = _edit_gold(admin, data)
    beta = client_for("beta", "billing_admin")
    report = beta.get(reverse("billing:audit"), {"action": "contract_update"}).content.decode()
    assert "No audit events" in report and ADMIN not in report and "Gold" not in report
    assert beta.get(reverse("contracts:detail", args=[contract.pk])).status_code == 404
    with schema_context("beta"):
        assert not AuditEvent.objects.filter(action="contract_update").exists()


def test_services_record_creation_terms_and_the_schedulers_renewal(tenant, data):  # noqa: F811
    user = User.objects.get(email=ADMIN)
    contract = services.contract_create(customer=data["customer"], name="Backup", type=Contract.Type.BLOCK_HOURS,
                                        start_date=dt.date(2026, 1, 1), end_date=dt.date(2026, 12, 31), auto_renew=True,
                                        renewal_term_months=12, overage_rate=Decimal(150), acting_user=user)
    services.block_purchase_add(contract=contract, purchased_on=dt.date(2026, 1, 5), minutes=600, price=Decimal(900),
                                acting_user=user)
    renewals.contract_renewal_process(contract_id=contract.pk, today=dt.date(2026, 12, 31))
    events = {event.action: event for event in audit_events_for(contract)}
    assert set(events) == {"contract_create", "block_purchase_add", "contract_renewed"}
    assert events["contract_create"].after["overage_rate"] == "150.0000 EUR" and events["contract_create"].before is None
    assert events["block_purchase_add"].after["minutes"] == 600 and events["block_purchase_add"].after["price"] == "900.00 EUR"
    renewed = events["contract_renewed"]
    assert renewed.actor is None and renewed.actor_label == "system"
    assert (renewed.before, renewed.after) == ({"end_date": "2026-12-31"}, {"end_date": "2027-12-31"})


def test_a_refused_change_leaves_no_event(tenant, data):  # noqa: F811
    user = User.objects.get(email=ADMIN)
    with pytest.raises(services.ValidationError):
        services.contract_update(contract=data["contract"], data={"name": ""}, acting_user=user)
    assert not audit_events_for(data["contract"]).exists()


def test_migrating_forward_keeps_the_events_recorded_before_the_move(db):
    """On a schema migrated only up to where ``invoices`` held the trail, an event written
    there is read through ``msp_billing.audit`` once the move is applied."""
    from django.db.migrations.executor import MigrationExecutor

    before_move = ("invoices", "0002_pdf_branding_and_documents")
    after_move = [("invoices", "0003_auditevent_moved"), ("audit", "0001_initial")]
    with connection.cursor() as cursor:
        cursor.execute("CREATE SCHEMA audit_move")  # rolled back with the test's transaction
    connection.set_schema("audit_move")
    try:
        executor = MigrationExecutor(connection)
        executor.migrate([before_move])
        old_state = executor.loader.project_state(before_move)
        assert ("audit", "auditevent") not in old_state.models
        OldEvent = old_state.apps.get_model("invoices", "AuditEvent")
        old = OldEvent.objects.create(action="invoice_issued", object_type="invoices.invoice", object_id="7",
                                      actor_label="billing-admin@alpha.example", after={"number": "INV-2026-00007"})

        executor = MigrationExecutor(connection)
        executor.migrate(after_move)
        new_state = executor.loader.project_state(after_move)
        assert ("invoices", "auditevent") not in new_state.models
        assert new_state.apps.get_model("audit", "AuditEvent")._meta.db_table == AuditEvent._meta.db_table

        moved = AuditEvent.objects.get(pk=old.pk)
        assert (moved.action, moved.object_id, moved.after) == ("invoice_issued", "7", {"number": "INV-2026-00007"})
        AuditEvent.objects.create(action="contract_update", object_type="contracts.contract", object_id="1")
        assert AuditEvent.objects.count() == 2
    finally:
        connection.set_schema_to_public()
