"""The whole QuickBooks Online sync in Chromium: Settings → Accounting → Connect (OAuth through the fake's
authorize page back to our callback) → every wizard step (suggestions pre-selected, "Accept all suggestions",
"Create all", the current step highlighted) → summary → Done. Nothing is saved before Done (checked in the
database and in the fake between steps); afterwards the matches exist and are listed, and QuickBooks holds no
customer twice."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from tests.support import PASSWORD, committed_msp, free_port, gunicorn, process_env, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SCHEMA = "qbosync"
ADMIN = f"billing-admin@{SCHEMA}.example"


@pytest.fixture(scope="module")
def qbo_site(django_db_setup, django_db_blocker, qbo_server, tmp_path_factory):
    """gunicorn for this module, with the fake QuickBooks' URLs in its environment.

    The session's ``server`` may have started before any fake existed, so it cannot know them.
    """
    port = free_port()
    with django_db_blocker.unblock():
        env = process_env(PUBLIC_URL_PORT=str(port), **qbo_server.environ())
    with gunicorn(port=port, env=env, log=tmp_path_factory.mktemp("logs") / "gunicorn-qbo.log"):
        yield port


@pytest.fixture(scope="module")
def msp(django_db_setup, django_db_blocker):
    """An MSP of its own (committed: the server process must see it), dropped afterwards."""
    from contracts.models import Customer, Product, RateItem

    with committed_msp(django_db_blocker, name="QBO Sync IT", subdomain=SCHEMA, admin_email=ADMIN):
        with django_db_blocker.unblock(), schema_context(SCHEMA):
            def product(sku: str, name: str, price: str) -> Product:
                return Product.objects.create(sku=sku, name=name, price=Decimal(price), price_currency="EUR",
                                              cost=Decimal(1), cost_currency="EUR")

            def rate_item(name: str, rate: str) -> RateItem:
                return RateItem.objects.create(name=name, rate=Decimal(rate), rate_currency="EUR")

            local = {
                "firewall": product("FW-100", "Firewall appliance", "250"),  # exact match
                "onsite": rate_item("Onsite Support", "120"),  # suggested: On-site Support
                "backup": product("BK-1", "Backup licence", "12.50"),  # picked by hand
                "project": rate_item("Project Work", "140"),  # created in QuickBooks
                "acme": Customer.objects.create(legal_name="Acme Corp", currency="EUR"),  # exact match
                "nick": Customer.objects.create(legal_name="Nick Brown", currency="EUR"),  # suggested: Brown, Nick
                "zeta": Customer.objects.create(legal_name="Zeta Solutions GmbH", currency="EUR"),  # picked by hand
                "newco": Customer.objects.create(legal_name="Newco Ltd", currency="EUR"),  # created in QuickBooks
            }
        yield local


@pytest.fixture
def quickbooks(qbo_server):
    """The company the admin signs in to, with what the MSP already keeps in QuickBooks."""
    qbo_server.reset()
    qbo = qbo_server
    qbo.company(name="QBO Sync Books")
    remote = {
        "firewall": qbo.add("Item", {"Name": "Firewall appliance", "Type": "NonInventory", "UnitPrice": 240,
                                     "IncomeAccountRef": {"value": "1"}}),
        "onsite": qbo.add("Item", {"Name": "On-site Support", "Type": "Service", "UnitPrice": 115,
                                   "IncomeAccountRef": {"value": "2"}}),
        "cloud_backup": qbo.add("Item", {"Name": "Cloud Backup Seat", "Type": "NonInventory", "UnitPrice": 12,
                                         "IncomeAccountRef": {"value": "1"}}),
        "acme": qbo.add("Customer", {"DisplayName": "ACME Corp"}),
        "brown": qbo.add("Customer", {"DisplayName": "Brown, Nick"}),
        "zs": qbo.add("Customer", {"DisplayName": "ZS Holdings"}),
        "only": qbo.add("Customer", {"DisplayName": "Only In QuickBooks Inc",
                                     "PrimaryEmailAddr": {"Address": "ap@only.example"}}),
    }
    yield qbo, remote
    qbo_server.reset()


def saved_so_far() -> dict:
    """What the sync has written here: must stay empty until Done."""
    from contracts.models import Customer
    from integrations.models import AccountingConnection, RemoteMapping

    with schema_context(SCHEMA):
        conn = AccountingConnection.objects.get(system="quickbooks")
        return {"mappings": RemoteMapping.objects.count(), "customers": Customer.objects.count(),
                "wizard_done": conn.wizard_completed_at is not None}


def test_connect_and_walk_the_sync_wizard(qbo_site, browser, msp, quickbooks):
    qbo, remote = quickbooks
    base = f"http://{SCHEMA}.localhost:{qbo_site}"
    nothing = {"mappings": 0, "customers": 4, "wizard_done": False}
    in_quickbooks = {"Item": 3, "Customer": 4}

    def quickbooks_unchanged() -> bool:
        return {entity: qbo.count(entity) for entity in in_quickbooks} == in_quickbooks

    page = browser.new_page()
    sign_in(page, qbo_site, ADMIN, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")

    # Admin → Accounting → Connect QuickBooks Online: the fake's sign-in sends us back to the callback.
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="Accounting", exact=True).click()
    page.wait_for_url(base + "/integrations/accounting/")
    page.locator('tr[data-system="quickbooks"]').get_by_role("button", name="Connect").click()
    page.wait_for_url(base + "/integrations/accounting/sync/welcome/")
    assert qbo.calls_to("/oauth2/authorize") == 1 and qbo.calls_to("/oauth2/v1/tokens/bearer") == 1
    assert page.get_by_text("Connected to QBO Sync Books.").is_visible()
    assert page.get_by_text("Nothing is saved until you click Done").is_visible()
    assert saved_so_far() == nothing and quickbooks_unchanged()

    # Items: the exact match and the suggestion are chosen already. The admin turns the suggestion down,
    # then "Accept all suggestions" brings it back; one is picked by hand; "Create all" creates the one
    # nothing was found for (and leaves the hand pick alone).
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(base + "/integrations/accounting/sync/items/")
    current = page.locator('.wizard-steps [aria-current="step"]')
    assert current.inner_text().startswith("Items")
    assert current.evaluate("li => getComputedStyle(li).backgroundColor") != \
        page.locator(".wizard-steps li").first.evaluate("li => getComputedStyle(li).backgroundColor")
    firewall = page.get_by_label("Firewall appliance", exact=True)
    assert firewall.input_value() == remote["firewall"]["Id"]
    assert page.locator(f'tr[data-local="product:{msp["firewall"].pk}"]').get_by_role("cell", name="Exact match").is_visible()
    onsite = page.get_by_label("Onsite Support", exact=True)
    assert onsite.input_value() == remote["onsite"]["Id"]  # the suggestion is pre-selected
    assert page.locator(f'tr[data-local="rate_item:{msp["onsite"].pk}"] td').first.inner_text() == \
        "Suggested: On-site Support"
    onsite.select_option(label="— not matched —")
    page.get_by_label("Backup licence", exact=True).select_option(label="Cloud Backup Seat")
    page.get_by_role("button", name="Accept all suggestions").click()
    page.wait_for_load_state()
    assert page.get_by_label("Onsite Support", exact=True).input_value() == remote["onsite"]["Id"]
    assert page.get_by_label("Project Work", exact=True).input_value() == "skip"
    page.get_by_role("button", name="Create all").click()
    page.wait_for_load_state()
    assert page.get_by_label("Project Work", exact=True).input_value() == "create"
    assert page.get_by_label("Backup licence", exact=True).input_value() == remote["cloud_backup"]["Id"]
    assert saved_so_far() == nothing and quickbooks_unchanged()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(base + "/integrations/accounting/sync/customers/")
    assert saved_so_far() == nothing and quickbooks_unchanged()

    # Customers likewise: exact and suggested chosen, one by hand, the rest created with "Create all".
    assert current.inner_text().startswith("Customers")
    assert page.get_by_label("Acme Corp", exact=True).input_value() == remote["acme"]["Id"]
    assert page.get_by_label("Nick Brown", exact=True).input_value() == remote["brown"]["Id"]
    page.get_by_label("Zeta Solutions GmbH", exact=True).select_option(label="ZS Holdings")
    page.get_by_role("button", name="Create all").click()
    page.wait_for_load_state()
    assert page.get_by_label("Newco Ltd", exact=True).input_value() == "create"
    assert page.get_by_label("Zeta Solutions GmbH", exact=True).input_value() == remote["zs"]["Id"]
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(base + "/integrations/accounting/sync/import/")
    assert saved_so_far() == nothing and quickbooks_unchanged()

    # Import the customer that exists in QuickBooks only (matched and suggested ones are not offered).
    assert page.locator("ul.checklist li").count() == 1
    page.get_by_label("Only In QuickBooks Inc · ap@only.example").check()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(base + "/integrations/accounting/sync/summary/")
    assert saved_so_far() == nothing and quickbooks_unchanged()

    # The summary, then a step back and forth keeps every choice.
    summary = page.locator("section.card").inner_text()
    assert "Items matched: 3; to create in QuickBooks Online: 1" in summary
    assert "Customers matched: 3; to create in QuickBooks Online: 1" in summary
    assert "Customers to import: 1" in summary and "Left unmatched: 0" in summary
    page.get_by_role("link", name="Back").click()
    page.wait_for_url(base + "/integrations/accounting/sync/import/")
    assert page.get_by_label("Only In QuickBooks Inc · ap@only.example").is_checked()
    page.get_by_role("button", name="Next").click()
    page.wait_for_url(base + "/integrations/accounting/sync/summary/")
    assert saved_so_far() == nothing and quickbooks_unchanged()

    # Done: everything at once.
    page.get_by_role("button", name="Done").click()
    page.wait_for_url(base + "/integrations/accounting/")
    assert page.get_by_text("Saved: 4 items and 4 customers matched, 1 imported.").is_visible()
    assert saved_so_far() == {"mappings": 9, "customers": 5, "wizard_done": True}
    [project_work] = [row for row in qbo.records("Item") if row["Name"] == "Project Work"]
    [newco] = [row for row in qbo.records("Customer") if row["DisplayName"] == "Newco Ltd"]
    # Created in QuickBooks: what was asked for (plus the generic "Services" item that lines without an item use).
    assert sorted(row["Name"] for row in qbo.records("Item")) == [
        "Cloud Backup Seat", "Firewall appliance", "On-site Support", "Project Work", "Services"]
    # No duplicate: one customer more in QuickBooks (Newco, asked for), every name once.
    names = [row["DisplayName"] for row in qbo.records("Customer")]
    assert qbo.count("Customer") == 5 and len(set(names)) == len(names)
    assert sorted(names) == ["ACME Corp", "Brown, Nick", "Newco Ltd", "Only In QuickBooks Inc", "ZS Holdings"]

    from contracts.models import Customer
    from integrations.models import RemoteMapping

    with schema_context(SCHEMA):
        mapped = {(m.local_type, m.local_id): m.remote_id for m in RemoteMapping.objects.all()}
        imported = Customer.objects.get(legal_name="Only In QuickBooks Inc")
        assert (imported.billing_email, imported.currency) == ("ap@only.example", "EUR")
    assert mapped == {
        ("product", str(msp["firewall"].pk)): remote["firewall"]["Id"],
        ("rate_item", str(msp["onsite"].pk)): remote["onsite"]["Id"],
        ("product", str(msp["backup"].pk)): remote["cloud_backup"]["Id"],
        ("rate_item", str(msp["project"].pk)): project_work["Id"],
        ("customer", str(msp["acme"].pk)): remote["acme"]["Id"],
        ("customer", str(msp["nick"].pk)): remote["brown"]["Id"],
        ("customer", str(msp["zeta"].pk)): remote["zs"]["Id"],
        ("customer", str(msp["newco"].pk)): newco["Id"],
        ("customer", str(imported.pk)): remote["only"]["Id"],
    }

    # The accounting page lists the matches.
    def match(key: str) -> str:
        return page.locator(f'[data-mapping="{key}"]').inner_text()

    assert "ZS Holdings" in match(f"customer:{msp['zeta'].pk}") and "Brown, Nick" in match(f"customer:{msp['nick'].pk}")
    assert "Newco Ltd" in match(f"customer:{msp['newco'].pk}") and "Only In QuickBooks Inc" in match(f"customer:{imported.pk}")
    assert "Cloud Backup Seat" in match(f"product:{msp['backup'].pk}")
    assert "On-site Support" in match(f"rate_item:{msp['onsite'].pk}") and "Project Work" in match(f"rate_item:{msp['project'].pk}")
    assert page.locator('tr[data-system="quickbooks"]').get_by_text("Connected").is_visible()
    page.close()
