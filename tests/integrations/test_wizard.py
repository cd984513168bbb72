"""The sync wizard: matching (pure), the services, and the pages step by step."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from contracts.models import Customer, Product, RateItem
from integrations import matching, wizard
from integrations.base import IntegrationError
from integrations.models import AccountingConnection, RemoteMapping
from tests.integrations.conftest import URLS
from tests.invoices.builders import admin, customer, d

pytestmark = [pytest.mark.urls(URLS)]


# --- matching (no database) -------------------------------------------------------------------


@pytest.mark.parametrize("ours, theirs", [
    ("Nick Brown", "Brown, Nick"),
    ("Müller & Söhne GmbH", "Mueller and Soehne"),
    ("A.B.C. Ltd", "ABC Limited"),
    ("Acme  Corp", "ACME Corp."),
    ("O'Neil Consulting", "ONeil Consulting"),
])
def test_normalised_names_suggest(ours, theirs):
    remote = [matching.Candidate("1", theirs), matching.Candidate("2", "Something Else Entirely")]
    [proposal] = matching.propose([("customer:1", ours, "")], remote)
    assert proposal.status in ("suggested", "exact") and proposal.remote_id == "1"


def test_exact_match_ignores_case_and_spacing_only():
    remote = [matching.Candidate("7", "acme   corp"), matching.Candidate("8", "Acme Corporation")]
    [proposal] = matching.propose([("customer:1", "Acme Corp", "")], remote)
    assert (proposal.status, proposal.remote_id) == ("exact", "7")


def test_items_match_on_sku_and_remembered_mappings_win():
    remote = [matching.Candidate("3", "FW appliance", code="FW-100"), matching.Candidate("4", "Firewall")]
    proposals = matching.propose([("product:1", "Firewall appliance", "FW-100"), ("product:2", "Firewall", "")], remote,
                                 mapped={"product:2": "3"})
    assert [(p.status, p.remote_id) for p in proposals] == [("exact", "3"), ("mapped", "3")]


def test_nothing_close_is_no_match():
    [proposal] = matching.propose([("customer:1", "Zebra Logistics", "")], [matching.Candidate("1", "Alpha Foods")])
    assert proposal.status == "none" and not proposal.suggestions


# --- services and pages ---------------------------------------------------------------------


@pytest.fixture
def world(connected, qbo):
    firewall = Product.objects.create(sku="FW-100", name="Firewall appliance", price=d("250"), price_currency="EUR",
                                      cost=d("150"), cost_currency="EUR")
    backup = Product.objects.create(sku="BK-1", name="Backup licence", price=d("12.5"), price_currency="EUR",
                                    cost=d("5"), cost_currency="EUR")
    remote_support = RateItem.objects.create(name="Remote Support", rate=d("95"), rate_currency="EUR")
    nick = customer("Nick Brown")
    acme = customer("Acme Corp")
    zeta = customer("Zeta Solutions GmbH")
    qbo_firewall = qbo.add("Item", {"Name": "Firewall appliance", "Type": "NonInventory", "UnitPrice": 240,
                                    "IncomeAccountRef": {"value": "1"}})
    qbo_support = qbo.add("Item", {"Name": "remote support", "Type": "Service", "UnitPrice": 90,
                                   "IncomeAccountRef": {"value": "2"}})
    qbo_brown = qbo.add("Customer", {"DisplayName": "Brown, Nick"})
    qbo_acme = qbo.add("Customer", {"DisplayName": "ACME Corp."})
    qbo_only = qbo.add("Customer", {"DisplayName": "Only In QuickBooks Inc", "PrimaryEmailAddr": {"Address": "a@b.example"},
                                    "CurrencyRef": {"value": "EUR"}})
    return dict(firewall=firewall, backup=backup, remote_support=remote_support, nick=nick, acme=acme, zeta=zeta,
                qbo_firewall=qbo_firewall, qbo_support=qbo_support, qbo_brown=qbo_brown, qbo_acme=qbo_acme, qbo_only=qbo_only)


def test_proposals(world, connected):
    remote = wizard.wizard_fetch(connection=connected)
    items = {p.local_key: p for p in wizard.item_proposals(system="quickbooks", remote_items=remote["items"])}
    assert (items[f"product:{world['firewall'].pk}"].status, items[f"product:{world['firewall'].pk}"].remote_id) == \
        ("exact", world["qbo_firewall"]["Id"])
    assert items[f"rate_item:{world['remote_support'].pk}"].remote_id == world["qbo_support"]["Id"]
    assert items[f"product:{world['backup'].pk}"].status == "none"
    customers = {p.local_key: p for p in wizard.customer_proposals(system="quickbooks", remote_customers=remote["customers"])}
    nick = customers[f"customer:{world['nick'].pk}"]
    assert nick.status == "suggested" and nick.suggestions[0].remote_id == world["qbo_brown"]["Id"]
    choices = wizard.initial_choices(customers.values())
    assert choices[f"customer:{world['nick'].pk}"] == world["qbo_brown"]["Id"]  # suggestions are pre-selected
    # Skipped or not, a customer matched or suggested for one here is never offered for import.
    choices[f"customer:{world['nick'].pk}"] = "skip"
    importable = wizard.importable_customers(system="quickbooks", remote_customers=remote["customers"],
                                             customer_choices=choices, proposals=list(customers.values()))
    assert [row["name"] for row in importable] == ["Only In QuickBooks Inc"]


def test_done_saves_everything_at_once(world, connected, qbo):
    remote = wizard.wizard_fetch(connection=connected)
    items = {f"product:{world['firewall'].pk}": world["qbo_firewall"]["Id"], f"product:{world['backup'].pk}": "create",
             f"rate_item:{world['remote_support'].pk}": world["qbo_support"]["Id"]}
    customers = {f"customer:{world['nick'].pk}": world["qbo_brown"]["Id"], f"customer:{world['acme'].pk}": world["qbo_acme"]["Id"],
                 f"customer:{world['zeta'].pk}": "create"}
    summary = wizard.wizard_complete(connection=connected, remote=remote, item_choices=items, customer_choices=customers,
                                     imports=[world["qbo_only"]["Id"]], acting_user=admin())
    assert (summary.matched_items, summary.created_items, summary.matched_customers, summary.created_customers,
            summary.imported_customers) == (2, 1, 2, 1, 1)
    [backup] = [i for i in qbo.records("Item") if i["Name"] == "Backup licence"]
    assert str(backup["UnitPrice"]) in ("12.5", "12.5000")  # same price as here
    assert RemoteMapping.objects.get(local_type="product", local_id=str(world["backup"].pk)).remote_id == backup["Id"]
    assert qbo.count("Customer", DisplayName="Zeta Solutions GmbH") == 1
    imported = Customer.objects.get(legal_name="Only In QuickBooks Inc")
    assert imported.billing_email == "a@b.example" and imported.currency == "EUR"
    assert RemoteMapping.objects.get(local_type="customer", local_id=str(imported.pk)).remote_id == world["qbo_only"]["Id"]
    assert RemoteMapping.objects.filter(system="quickbooks").count() == 7
    connected.refresh_from_db()
    assert connected.wizard_completed_at is not None
    # Done twice (a double click): nothing is created twice remotely.
    wizard.wizard_complete(connection=connected, remote=remote, item_choices=items,
                           customer_choices={f"customer:{world['zeta'].pk}": "create"}, imports=[], acting_user=admin())
    assert qbo.count("Customer", DisplayName="Zeta Solutions GmbH") == 1 and qbo.count("Item", Name="Backup licence") == 1


def test_a_refused_done_saves_nothing(world, connected, qbo):
    remote = wizard.wizard_fetch(connection=connected)
    base = dict(connection=connected, remote=remote, item_choices={f"product:{world['firewall'].pk}": world["qbo_firewall"]["Id"]},
                acting_user=admin())
    with pytest.raises(ValidationError, match="same customer"):
        wizard.wizard_complete(**base, customer_choices={f"customer:{world['nick'].pk}": world["qbo_brown"]["Id"],
                                                         f"customer:{world['acme'].pk}": world["qbo_brown"]["Id"]},
                               imports=[])
    with pytest.raises(ValidationError):
        wizard.wizard_complete(**base, customer_choices={}, imports=["99999"])
    with pytest.raises(ValidationError):
        wizard.wizard_complete(**base, customer_choices={"customer:abc": "create"}, imports=[])
    # The remote refuses a creation: nothing saved here either.
    qbo.inject("batch", 400, {"Fault": {"Error": [{"Message": "Business Validation Error", "code": "6000"}],
                                        "type": "ValidationFault"}})
    with pytest.raises(IntegrationError):
        wizard.wizard_complete(**base, customer_choices={f"customer:{world['zeta'].pk}": "create"},
                               imports=[world["qbo_only"]["Id"]])
    assert not RemoteMapping.objects.exists()
    assert not Customer.objects.filter(legal_name="Only In QuickBooks Inc").exists()
    assert AccountingConnection.objects.get(pk=connected.pk).wizard_completed_at is None


def step_url(step: str) -> str:
    return reverse("integrations:wizard", args=[step])


def test_the_wizard_pages_nothing_saved_before_done(world, connected, qbo, admin_client):
    page = admin_client.get(step_url("welcome"))
    assert page.status_code == 200 and "Nothing is saved until you click" in page.content.decode()
    assert admin_client.post(step_url("welcome"))["Location"] == step_url("items")
    page = admin_client.get(step_url("items")).content.decode()
    assert "Exact match" in page and "Firewall appliance" in page
    response = admin_client.post(step_url("items"), {
        f"choice-product-{world['backup'].pk}": "create",
        f"choice-product-{world['firewall'].pk}": world["qbo_firewall"]["Id"],
    })
    assert response["Location"] == step_url("customers")
    page = admin_client.get(step_url("customers")).content.decode()
    assert "Suggested: Brown, Nick" in page
    assert f'<option value="{world["qbo_brown"]["Id"]}" selected>Suggested: Brown, Nick</option>' in page
    response = admin_client.post(step_url("customers"), {
        f"choice-customer-{world['nick'].pk}": world["qbo_brown"]["Id"],
        f"choice-customer-{world['acme'].pk}": world["qbo_acme"]["Id"],
        f"choice-customer-{world['zeta'].pk}": "create",
    })
    assert response["Location"] == step_url("import")
    page = admin_client.get(step_url("import")).content.decode()
    assert "Only In QuickBooks Inc" in page and "Brown, Nick" not in page  # matched customers are not importable
    assert admin_client.post(step_url("import"), {"import": [world["qbo_only"]["Id"]]})["Location"] == step_url("summary")
    page = admin_client.get(step_url("summary")).content.decode()
    assert "Customers to import: 1" in page
    assert not RemoteMapping.objects.exists() and qbo.count("Customer", DisplayName="Zeta Solutions GmbH") == 0
    assert not Customer.objects.filter(legal_name="Only In QuickBooks Inc").exists()
    response = admin_client.post(step_url("summary"))
    assert response.status_code == 302 and response["Location"] == reverse("integrations:accounting")
    assert RemoteMapping.objects.filter(local_type="customer").count() == 4
    assert Customer.objects.filter(legal_name="Only In QuickBooks Inc").exists()
    assert AccountingConnection.objects.get(pk=connected.pk).wizard_completed_at is not None


def test_wizard_bad_input_is_400(world, connected, admin_client):
    admin_client.get(step_url("welcome"))
    response = admin_client.post(step_url("items"), {f"choice-product-{world['backup'].pk}": "not-a-remote-id"})
    assert response.status_code == 400
    response = admin_client.post(step_url("import"), {"import": ["424242"]})
    assert response.status_code == 400
    assert admin_client.get(step_url("nonsense")).status_code == 404


def test_wizard_roles(world, connected, client_for):
    assert client_for("alpha", "technician").get(step_url("welcome")).status_code == 403
    accountant = client_for("alpha", "accountant")
    assert accountant.get(step_url("welcome")).status_code == 200
    assert accountant.post(step_url("summary")).status_code == 403
    assert not RemoteMapping.objects.exists()


def test_wizard_needs_a_connection(tenant, admin_client):
    response = admin_client.get(step_url("welcome"))
    assert response.status_code == 302 and response["Location"] == reverse("integrations:accounting")


# --- suggestions chosen, bulk actions, no twins ------------------------------------------------------


def test_a_suggestion_is_chosen_once_and_only_in_the_customers_currency(world, connected, qbo):
    twin = customer("Nick Brown Ltd")  # suggests "Brown, Nick" too: the first row takes it, this one is left unmatched
    dollars = customer("Acme Corporation", currency="USD")
    qbo_dollar_acme = qbo.add("Customer", {"DisplayName": "Acme Corporation Inc", "CurrencyRef": {"value": "EUR"}})
    remote = wizard.wizard_fetch(connection=connected)
    proposals = wizard.customer_proposals(system="quickbooks", remote_customers=remote["customers"])
    choices = wizard.initial_choices(proposals, fit=wizard.customer_fit(remote["customers"]))
    assert choices[f"customer:{world['nick'].pk}"] == world["qbo_brown"]["Id"]
    assert choices[f"customer:{twin.pk}"] == "skip"
    assert choices[f"customer:{dollars.pk}"] == "skip" != qbo_dollar_acme["Id"]  # a EUR customer there
    # What is pre-selected always passes Done.
    summary = wizard.wizard_complete(connection=connected, remote=remote, item_choices={}, customer_choices=choices,
                                     imports=[], acting_user=admin())
    assert summary.matched_customers == 2 and summary.created_customers == 0


def test_accept_all_suggestions_and_create_all_on_the_page(world, connected, qbo, admin_client):
    admin_client.get(step_url("welcome"))
    nick = f"choice-customer-{world['nick'].pk}"
    # The admin turned the suggestion down, then accepts all suggestions: it is chosen again; the rest stays.
    response = admin_client.post(step_url("customers"), {nick: "skip", "bulk": "suggestions"})
    assert response.status_code == 302 and response["Location"] == step_url("customers")  # stays on the step
    page = admin_client.get(step_url("customers")).content.decode()
    assert f'<option value="{world["qbo_brown"]["Id"]}" selected>Suggested: Brown, Nick</option>' in page
    # Create all: only the rows nothing was found for (Zeta); suggested and exact rows keep their match.
    admin_client.post(step_url("customers"), {"bulk": "create"})
    session = admin_client.session["integrations_wizard"]["customers"]
    assert session == {f"customer:{world['nick'].pk}": world["qbo_brown"]["Id"],
                       f"customer:{world['acme'].pk}": world["qbo_acme"]["Id"],
                       f"customer:{world['zeta'].pk}": "create"}
    admin_client.post(step_url("items"), {"bulk": "create"})
    items = admin_client.session["integrations_wizard"]["items"]
    assert items == {f"product:{world['backup'].pk}": "create", f"product:{world['firewall'].pk}": world["qbo_firewall"]["Id"],
                     f"rate_item:{world['remote_support'].pk}": world["qbo_support"]["Id"]}
    assert admin_client.post(step_url("customers"), {"bulk": "everything"}).status_code == 400
    # The current step is marked for the eye and for screen readers.
    assert '<li aria-current="step">Customers<span class="visually-hidden"> (current step)</span></li>' in page
    # Nothing reached QuickBooks before Done.
    assert qbo.count("Customer") == 3 and not RemoteMapping.objects.exists()


def test_import_never_offers_a_customer_matched_before(world, connected, qbo, admin_client):
    RemoteMapping.objects.create(system="quickbooks", local_type="customer", local_id=str(world["zeta"].pk),
                                 remote_id=world["qbo_only"]["Id"], remote_name="Only In QuickBooks Inc")
    admin_client.get(step_url("welcome"))
    page = admin_client.get(step_url("import")).content.decode()
    assert "Only In QuickBooks Inc" not in page and "Brown, Nick" not in page and "ACME Corp." not in page
    assert admin_client.post(step_url("import"), {"import": [world["qbo_only"]["Id"]]}).status_code == 400


def test_an_unconfigured_system_explains_the_setup_and_leads_back(tenant, admin_client, monkeypatch, settings):
    for name in ("QBO_CLIENT_ID", "QBO_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
        setattr(settings, name, "")
    page = admin_client.get(reverse("integrations:accounting")).content.decode()
    assert "Not set up on this server" in page and reverse("integrations:setup", args=["quickbooks"]) in page
    connect = admin_client.post(reverse("integrations:connect", args=["quickbooks"]))
    assert connect.status_code == 302 and connect["Location"] == reverse("integrations:setup", args=["quickbooks"])
    setup = admin_client.get(connect["Location"]).content.decode()
    assert "<code>QBO_CLIENT_ID</code>" in setup and "/integrations/accounting/quickbooks/callback/" in setup
    assert f'href="{reverse("integrations:accounting")}">Back to Accounting' in setup
    assert admin_client.get(reverse("integrations:setup", args=["sage"])).status_code == 404
