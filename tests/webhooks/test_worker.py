"""A real Celery worker delivers an issued invoice's event to a receiver on 127.0.0.1; the
receiver first fails, and the retry is queued by the beat task once its stored time has come.
Then, in a browser, the admin redelivers it from the delivery log and is refused a
subscription to the cloud metadata address."""
from __future__ import annotations

import json
import secrets
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context

from playwright.sync_api import expect

from tests.support import PASSWORD, committed_msp, sign_in, wait_for
from tests.webhooks.receiver import receiver, signature_valid
from tests.webhooks.test_deliveries import allow_private

pytestmark = [pytest.mark.worker, pytest.mark.browser]

SCHEMA = f"hooks{secrets.token_hex(3)}"
ADMIN = f"billing-admin@{SCHEMA}.example"


@pytest.fixture(scope="module")
def hook():
    with receiver(500) as state:
        yield state


@pytest.fixture(scope="module")
def worker_env() -> dict[str, str]:
    """The receiver listens on 127.0.0.1: the worker may send there."""
    return {"WEBHOOKS_ALLOW_PRIVATE": "true"}


@pytest.fixture(scope="module")
def msp(django_db_setup, django_db_blocker, hook):
    """An MSP of its own, committed (the worker sees it), subscribed to invoice.issued; dropped afterwards."""
    from contracts.models import Customer
    from invoices import services as invoices
    from msp_billing.accounts.models import User
    from webhooks import services

    with committed_msp(django_db_blocker, name="Hooked IT", subdomain=SCHEMA, admin_email=ADMIN):
        with django_db_blocker.unblock(), schema_context(SCHEMA), allow_private:
            admin = User.objects.get(email=ADMIN)
            subscription = services.subscription_create(url=hook.url("/billing-events"), events=["invoice.issued"],
                                                        acting_user=admin)
            customer = Customer.objects.create(legal_name="Hafenblick GmbH", currency="EUR", payment_terms_days=14)
            draft = invoices.invoice_create_draft(customer=customer, acting_user=admin, lines=[invoices.LineInput(
                description="Remote support", quantity=Decimal("2"), unit_price=Decimal("80"), tax_rate_codes=())])
        yield {"admin": admin, "subscription": subscription, "draft": draft}


def test_a_worker_delivers_retries_and_redelivers_from_the_page(server, server_worker, browser, msp, hook, django_db_blocker):
    from invoices import services as invoices
    from msp_billing.celery import app
    from webhooks.models import Delivery

    with django_db_blocker.unblock():
        with schema_context(SCHEMA):
            invoice = invoices.invoice_issue(invoice_id=msp["draft"].pk, acting_user=msp["admin"])  # commits; queues on commit

        def delivery() -> Delivery:
            with schema_context(SCHEMA):
                return Delivery.objects.get()

        failed = wait_for(lambda: (d := delivery()).attempts == 1 and d.last_status_code == 500 and d,
                          timeout=60, what="a first attempt answered 500", log=server_worker)
        assert failed.status == "pending" and failed.next_attempt_at > timezone.now()
        with schema_context(SCHEMA):
            # The minute passes; then beat's every-minute fan-out queues the retry.
            Delivery.objects.filter(pk=failed.pk).update(next_attempt_at=timezone.now())
        app.send_task("msp_billing.tasks.fan_out_to_tenants", args=["webhooks.tasks.deliveries_due"])
        done = wait_for(lambda: (d := delivery()).status == "succeeded" and d, timeout=60,
                        what="the retry delivered", log=server_worker)

    assert done.attempts == 2 and done.last_status_code == 200
    first, second = hook.received
    assert first.path == second.path == "/billing-events"
    assert first.headers["Webhook-Id"] == second.headers["Webhook-Id"] and first.body == second.body
    assert signature_valid(msp["subscription"].secret, first) and signature_valid(msp["subscription"].secret, second)
    payload = json.loads(second.body)
    assert payload["tenant"] == SCHEMA and payload["data"]["invoice"]["number"] == invoice.number
    assert payload["data"]["invoice"]["total"] == "160.00"

    # The delivery log in the browser: Redeliver sends the same event once more, through the worker.
    base = f"http://{SCHEMA}.localhost:{server}"
    page = browser.new_page()
    sign_in(page, server, ADMIN, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_load_state()
    page.goto(base + "/settings/")
    page.get_by_role("link", name="Webhooks", exact=True).click()
    page.get_by_role("link", name=hook.url("/billing-events")).click()
    log = page.locator('table[data-table="deliveries"]')
    expect(log.locator("tbody tr")).to_have_count(1)
    expect(log).to_contain_text("Delivered")
    log.get_by_role("button", name="Redeliver").click()
    page.get_by_text("queued to be sent again").wait_for()
    wait_for(lambda: len(hook.received) == 3, timeout=60, what="the redelivery", log=server_worker)
    assert hook.received[2].body == first.body and signature_valid(msp["subscription"].secret, hook.received[2])
    log.locator("tbody a").first.click()
    attempts = page.locator('table[data-table="attempts"] tbody tr')
    expect(attempts).to_have_count(3)
    expect(attempts.first).to_contain_text("(redelivered)")
    expect(page.locator('table[data-table="attempts"]')).to_contain_text("500")

    # The cloud metadata address is refused on the form, with the reason.
    page.goto(base + "/settings/webhooks/new/")
    page.get_by_label("Target URL").fill("http://169.254.169.254/latest/meta-data/")
    page.get_by_label("Invoice issued").check()
    page.get_by_role("button", name="Create subscription").click()
    page.get_by_text("169.254.169.254 is a link-local address").first.wait_for()
    page.close()
