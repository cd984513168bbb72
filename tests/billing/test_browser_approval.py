"""Approve & Post in Chromium, for an MSP that turned time approval on: waiting time is not
in the batch; one entry approved as it is, one posted at another rate; the batch then bills
both, the posted one at the posted rate."""
from __future__ import annotations

import datetime as dt

import pytest
from django_tenants.utils import schema_context

from tests.support import PASSWORD, committed_msp, sign_in
from tests.tickets.builders import catalogue, customer, hourly_default, technician, ticket

pytestmark = [pytest.mark.browser, pytest.mark.django_db]
SCHEMA = "approvals"
ADMIN = "billing-admin@approvals.example"
DAY = dt.date(2026, 3, 3)


@pytest.fixture(scope="module")
def approvals(django_db_setup, django_db_blocker):
    from msp_billing.accounts.services import user_create
    from msp_billing.tenants.models import Msp
    from tickets import services as ticket_services

    with committed_msp(django_db_blocker, name="Approvals IT", subdomain=SCHEMA, admin_email=ADMIN) as msp:
        with django_db_blocker.unblock():
            Msp.objects.filter(pk=msp.pk).update(time_approval_required=True)
            with schema_context(SCHEMA):
                user_create(email="technician@approvals.example", role="technician", password=PASSWORD)
                remote, _onsite, _ooh, engineer = catalogue()
                tech = technician(engineer, email="technician@approvals.example")
                cust = customer("Harbour Dental")
                hourly = hourly_default(cust, "120", name="Hourly T&M", rounding_increment=15)
                entries = []
                for minutes in (60, 30):
                    tkt = ticket(cust)
                    entries.append(ticket_services.time_entry_log(ticket=tkt, technician=tech, work_type=remote, date=DAY, minutes=minutes))
                    ticket_services.ticket_set_status(ticket_id=tkt.pk, status="resolved")
        yield {"entries": entries}


def test_approve_and_post_in_the_browser(server, browser, approvals):
    base = f"http://{SCHEMA}.localhost:{server}"
    page = browser.new_page()
    sign_in(page, server, ADMIN, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")

    # Waiting time is not due: nothing to bill yet.
    page.goto(base + "/billing/batches/new/?cutoff=2026-03-31")
    assert page.locator('[data-figure="bills"]').inner_text() == "0"

    page.goto(base + "/billing/")
    page.get_by_role("link", name="Approve & Post").click()
    first, second = approvals["entries"]
    # The 30-minute entry: posted at 150 an hour instead of 120.
    page.get_by_role("link", name=f"Adjust entry #{second.pk}").click()
    page.get_by_label("Hourly rate").fill("150")
    page.get_by_role("button", name="Approve & Post").click()
    page.get_by_text(f"Time entry #{second.pk} approved and posted with your adjustments").wait_for()
    # The 60-minute entry: approved as it is, from the list.
    page.get_by_label(f"Approve entry #{first.pk}").check()
    page.get_by_role("button", name="Approve selected").click()
    page.get_by_text("1 time entry approved").wait_for()
    assert page.get_by_text("Nothing waits for approval").is_visible()

    # Now both are due: 1 h at 120 + 0.5 h at 150 = 195.00 (the contract is taxable, no tax rate set).
    page.goto(base + "/billing/batches/new/?cutoff=2026-03-31")
    assert page.locator('[data-figure="bills"]').inner_text() == "1"
    assert page.locator('[data-figure="billable-EUR"]').inner_text() == "195.00"
