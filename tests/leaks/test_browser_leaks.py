"""The Leaks page in Chromium: two fixes and one dismissal, each gone from the list afterwards."""
from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from leaks.rules import Kind
from tests.support import PASSWORD, committed_billing_msp, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SCHEMA = "leakwalk"


@pytest.fixture(scope="module")
def planted(django_db_setup, django_db_blocker):
    from tests.leaks.generator import plant

    with committed_billing_msp(django_db_blocker, name="Leak Walk IT", subdomain=SCHEMA,
                               build=lambda **_: plant(subdomain=SCHEMA)) as world:
        yield world


def key_of(planted, kind: str) -> str:
    return next(key for found_kind, key in planted.leaks if found_kind == kind)


def test_fix_two_leaks_and_dismiss_one_in_the_browser(server, browser, planted, django_db_blocker):
    base = f"http://{SCHEMA}.localhost:{server}"
    page = browser.new_page()
    sign_in(page, server, planted.admin.email, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")
    page.get_by_role("link", name="Open the leaks").click()
    page.wait_for_url(base + "/leaks/")
    rows = page.locator("tr[data-leak]")
    assert rows.count() == len(planted.leaks)

    for kind, button in ((Kind.TIME_NOT_BILLABLE, "Mark billable"), (Kind.RATE_STALE, "Re-rate to the catalogue")):
        row = page.locator(f'tr[data-leak="{kind}|{key_of(planted, kind)}"]')
        row.get_by_role("button", name=button).click()
        page.get_by_text("Fixed:").wait_for()
        assert page.locator(f'tr[data-leak="{kind}|{key_of(planted, kind)}"]').count() == 0

    kind = Kind.BLOCK_OVERAGE_UNBILLED
    row = page.locator(f'tr[data-leak="{kind}|{key_of(planted, kind)}"]')
    row.get_by_label("Reason").fill("Overage waived in the renewal talks")
    row.get_by_role("button", name="Dismiss").click()
    page.get_by_text("Dismissed.").wait_for()
    assert page.locator(f'tr[data-leak="{kind}|{key_of(planted, kind)}"]').count() == 0
    assert page.locator("tr[data-leak]").count() == len(planted.leaks) - 3

    with django_db_blocker.unblock(), schema_context(SCHEMA):
        from contracts.models import ContractRateLine
        from leaks.models import LeakDismissal
        from tickets.models import TimeEntry

        assert TimeEntry.objects.get(pk=planted.objects["not_billable_entry"].pk).billable
        assert ContractRateLine.objects.filter(contract=planted.objects["stale_contract"]).count() == 2
        assert LeakDismissal.objects.get().reason == "Overage waived in the renewal talks"
