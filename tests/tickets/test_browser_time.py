"""A technician logs time on a phone and sees where it went; a billing admin sees the amount.

``SCREENSHOTS=1`` saves the 375 px ticket page to docs/screenshots/ (how the one there was made)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django_tenants.utils import schema_context

from tests.support import sign_in

# django_db: pytest-django creates the test database only for tests that ask for it.
pytestmark = [pytest.mark.browser, pytest.mark.django_db]


@pytest.fixture(scope="module")
def phone_ticket(django_db_setup, django_db_blocker):
    """Committed data in the demo MSP (the gunicorn server must see it), removed afterwards."""
    from contracts.models import Contract, ContractRateLine, Customer, ExclusionSet, Role, WorkType
    from msp_billing.accounts.models import User
    from tests.tickets.builders import START, eur
    from tickets.models import TechnicianProfile, Ticket, TimeEntry

    with django_db_blocker.unblock(), schema_context("demo"):
        remote, _ = WorkType.objects.get_or_create(name="Remote Support")
        onsite, _ = WorkType.objects.get_or_create(name="Onsite Support")
        role, _ = Role.objects.get_or_create(name="Engineer", defaults={"default_rate": eur("100"), "cost_rate": eur("40")})
        tech = User.objects.get(email="tech1@demo.example")
        profile, created_profile = TechnicianProfile.objects.get_or_create(user=tech, defaults={"role": role})
        customer = Customer.objects.create(legal_name="Phone Test Ltd", currency="USD")
        gold = ExclusionSet.objects.create(name="Phone Gold")
        gold.work_types.set([onsite])
        retainer = Contract.objects.create(customer=customer, name="Phone Retainer", type="retainer", currency="USD", start_date=START, priority=1, exclusion_set=gold)
        hourly = Contract.objects.create(customer=customer, name="Phone Hourly", type="hourly", currency="USD", start_date=START, priority=2, rounding_increment=15)
        ContractRateLine.objects.create(contract=hourly, rate=eur("120").amount, rate_currency="USD", effective_from=START)
        customer.default_hourly_contract = hourly
        customer.save()
        ticket = Ticket.objects.create(customer=customer, title="Laptop will not boot", technician=tech)
    yield ticket
    with django_db_blocker.unblock(), schema_context("demo"):
        TimeEntry.objects.filter(ticket=ticket).delete()
        ticket.delete()
        customer.default_hourly_contract = None
        customer.save()
        Contract.objects.filter(customer=customer).delete()
        customer.delete()
        gold.delete()
        if created_profile:
            profile.delete()
        assert retainer


def test_technician_on_a_phone_logs_time_and_sees_the_routed_contract(server, browser, phone_ticket):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, server, "tech1@demo.example")
    page.goto(f"http://demo.localhost:{server}/tickets/{phone_ticket.pk}/")
    page.get_by_label("Work type").select_option(label="Onsite Support")
    page.get_by_label("Time worked").fill("1:10")
    page.get_by_label("Date").fill("2026-03-03")
    # The live preview runs the real routing before anything is saved.
    preview = page.locator("#route-preview")
    preview.get_by_text("Phone Hourly").wait_for()
    page.get_by_role("button", name="Log time").click()
    page.get_by_text("Logged 70 minutes of Onsite Support: Phone Hourly.").wait_for()
    assert "$" not in page.locator("main").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    context.close()

    admin = browser.new_page()
    sign_in(admin, server, "billing@demo.example")
    admin.goto(f"http://demo.localhost:{server}/tickets/{phone_ticket.pk}/")
    # 70 minutes round up to 75 on the Hourly contract: 1.25 h × 120 = 150.00.
    assert admin.get_by_text("$150.00").count() >= 1
    admin.close()


def test_technician_times_the_work_on_a_phone_and_sees_how_it_is_rounded(server, browser, phone_ticket):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    refused = []  # anything the Content-Security-Policy blocks is reported on the console
    page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
    sign_in(page, server, "tech1@demo.example")

    # The list opens on the technician's open tickets, readable without scrolling sideways.
    page.goto(f"http://demo.localhost:{server}/tickets/")
    assert page.locator('.tabs [aria-current="page"]').inner_text() == "My open tickets"
    row = page.locator("table.data tbody tr", has_text="Laptop will not boot")
    assert row.get_by_text("Phone Test Ltd").is_visible() and row.get_by_text("Open", exact=True).is_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    row.get_by_role("link").click()

    # Start; the clock runs (timer.js under the CSP); a reload finds the timer still running.
    page.get_by_role("button", name="Start timer").click()
    clock = page.locator(".timer-clock")
    page.wait_for_function("() => /^\\d+:\\d\\d$/.test(document.querySelector('.timer-clock').textContent)")
    page.reload()
    assert clock.is_visible() and page.get_by_role("button", name="Stop timer").is_visible()
    # The rarely needed fields are folded away.
    assert not page.get_by_label("Rate item").is_visible()

    # Stop: the form is filled in with the elapsed minutes; pick the work type and save.
    page.get_by_role("button", name="Stop timer").click()
    page.get_by_text("Timer stopped at 1 min.").wait_for()
    assert page.get_by_label("Time worked").input_value() == "1"
    page.get_by_label("Work type").select_option(label="Onsite Support")
    page.locator("#route-preview").get_by_text("Phone Hourly").wait_for()
    page.get_by_role("button", name="Log time").click()
    page.get_by_text("Logged 1 minutes of Onsite Support: Phone Hourly.").wait_for()
    # 1 minute under "15-minute increments, up" is billed as a quarter of an hour.
    assert page.locator(".entry-list li", has_text=re.compile(r"(^|\D)1 min, billed as 0\.25 h")).count() == 1
    assert page.get_by_role("button", name="Start timer").is_visible()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 375
    assert not refused, refused
    if os.environ.get("SCREENSHOTS"):
        target = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "ticket-phone-375.png"
        target.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(target), full_page=True)
    context.close()
