"""No customer is ever created twice in the accounting system: the sync wizard and the export against
the fake QuickBooks and the fake Xero, counting the customers there before and after."""
from __future__ import annotations

import pytest
from django.urls import reverse

from integrations import registry, services, wizard
from integrations.models import ExportRun, IntegrationLog, RemoteMapping
from invoices.models import Invoice
from tests.fakes import xero as xero_fakes
from tests.integrations.conftest import URLS
from tests.integrations.test_xero_connector import connector_for_fake
from tests.invoices.builders import admin, customer, issued, line

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]

fake_xero = xero_fakes.fake_xero  # fixture


def export(invoices) -> ExportRun:
    run = services.export_run_create(document_ids=[invoice.pk for invoice in invoices], acting_user=admin())
    services.export_run_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def invoice_for(buyer):
    return issued(buyer, [line("Support", "1", "100", taxes=())])


def mapped_to(buyer) -> str:
    return RemoteMapping.objects.get(local_type="customer", local_id=str(buyer.pk)).remote_id


# --- QuickBooks Online ---------------------------------------------------------------------------


def test_quickbooks_export_links_the_same_name_stops_at_a_close_one_and_creates_only_the_new(connected, qbo):
    same = qbo.add("Customer", {"DisplayName": "ACME  corp"})
    close = qbo.add("Customer", {"DisplayName": "Brown, Nick"})
    acme, nick, zeta = customer("Acme Corp"), customer("Nick Brown"), customer("Zeta Solutions GmbH")
    before = qbo.count("Customer")
    invoices = [invoice_for(buyer) for buyer in (acme, nick, zeta)]
    run = export(invoices)
    assert (run.done, run.failed) == (2, 1)
    assert qbo.count("Customer") == before + 1  # Zeta only: Acme linked, Nick not created
    assert mapped_to(acme) == same["Id"] and not RemoteMapping.objects.filter(local_id=str(nick.pk)).exists()
    [refusal] = IntegrationLog.objects.filter(invoice=invoices[1], outcome="failed")
    assert refusal.error_code == "name_match"
    assert "already has a customer named “Brown, Nick”" in refusal.error and "sync wizard" in refusal.error
    assert {row["CustomerRef"]["value"] for row in qbo.records("Invoice")} == {same["Id"], mapped_to(zeta)}

    # The admin confirms the match in the wizard (pre-selected there) and retries: still no new customer.
    remote = wizard.wizard_fetch(connection=connected)
    proposals = wizard.customer_proposals(system="quickbooks", remote_customers=remote["customers"])
    choices = wizard.initial_choices(proposals, fit=wizard.customer_fit(remote["customers"]))
    assert choices[f"customer:{nick.pk}"] == close["Id"]
    wizard.wizard_complete(connection=connected, remote=remote, item_choices={}, customer_choices=choices, imports=[],
                           acting_user=admin())
    retry = services.failure_retry(log_id=refusal.pk, acting_user=admin())
    services.export_run_execute(run_id=retry.pk)
    assert Invoice.objects.get(pk=invoices[1].pk).exported_to == "quickbooks"
    assert qbo.count("Customer") == before + 1 and mapped_to(nick) == close["Id"]


def test_quickbooks_creates_next_to_a_close_name_only_when_the_admin_chose_create(connected, qbo):
    qbo.add("Customer", {"DisplayName": "Brown, Nick"})
    nick = customer("Nick Brown")
    before = qbo.count("Customer")
    remote = wizard.wizard_fetch(connection=connected)
    wizard.wizard_complete(connection=connected, remote=remote, item_choices={}, imports=[], acting_user=admin(),
                           customer_choices={f"customer:{nick.pk}": wizard.CREATE})
    assert qbo.count("Customer") == before + 1
    run = export([invoice_for(nick)])
    assert (run.done, run.failed) == (1, 0) and qbo.count("Customer") == before + 1


def test_quickbooks_wizard_done_twice_and_export_after_it_make_no_twin(connected, qbo):
    zeta = customer("Zeta Solutions GmbH")
    remote = wizard.wizard_fetch(connection=connected)
    for _ in range(2):
        wizard.wizard_complete(connection=connected, remote=remote, item_choices={}, imports=[], acting_user=admin(),
                               customer_choices={f"customer:{zeta.pk}": wizard.CREATE})
    run = export([invoice_for(zeta), invoice_for(zeta)])
    assert run.done == 2 and qbo.count("Customer", DisplayName="Zeta Solutions GmbH") == 1 == qbo.count("Customer")


# --- Xero -------------------------------------------------------------------------------------------


@pytest.fixture
def xero_connected(tenant, fake_xero):
    registry.register("xero", connector_for_fake(fake_xero))
    tokens = fake_xero.issue_tokens()
    services.connection_store(system="xero", acting_user=admin(), tokens={
        **tokens, "refresh_expires_in": 60 * 24 * 3600, "remote_tenant_id": fake_xero.org.tenant_id,
        "remote_name": fake_xero.org.name, "scopes": tokens["scope"]})
    yield fake_xero
    registry.unregister("xero")


def test_xero_export_links_the_same_name_stops_at_a_close_one_and_creates_only_the_new(xero_connected):
    xero = xero_connected
    same = xero.add_contact("ACME corp")
    xero.add_contact("Brown, Nick")
    acme, nick, zeta = customer("Acme Corp"), customer("Nick Brown"), customer("Zeta Solutions GmbH")
    before = len(xero.org.contacts)
    invoices = [invoice_for(buyer) for buyer in (acme, nick, zeta)]
    run = export(invoices)
    assert (run.done, run.failed) == (2, 1)
    assert len(xero.org.contacts) == before + 1
    assert mapped_to(acme) == same["ContactID"]
    [refusal] = IntegrationLog.objects.filter(invoice=invoices[1], outcome="failed")
    assert refusal.error_code == "name_match" and "Xero already has a customer named “Brown, Nick”" in refusal.error


def test_xero_wizard_offers_no_twin_for_import_and_creates_only_what_was_asked(xero_connected, admin_client):
    xero = xero_connected
    xero.add_contact("Brown, Nick")
    only = xero.add_contact("Only In Xero Ltd")
    nick, zeta = customer("Nick Brown"), customer("Zeta Solutions GmbH")
    before = len(xero.org.contacts)
    admin_client.get(reverse("integrations:wizard", args=["welcome"]))
    admin_client.post(reverse("integrations:wizard", args=["customers"]), {"bulk": "create"})
    page = admin_client.get(reverse("integrations:wizard", args=["import"])).content.decode()
    assert "Only In Xero Ltd" in page and "Brown, Nick" not in page
    admin_client.post(reverse("integrations:wizard", args=["import"]), {"import": [only["ContactID"]]})
    assert admin_client.post(reverse("integrations:wizard", args=["summary"])).status_code == 302
    assert len(xero.org.contacts) == before + 1  # Zeta created; Nick matched to "Brown, Nick"
    assert mapped_to(zeta) != mapped_to(nick)
    run = export([invoice_for(nick), invoice_for(zeta)])
    assert run.done == 2 and len(xero.org.contacts) == before + 1
