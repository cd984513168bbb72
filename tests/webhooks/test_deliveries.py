"""Events raised by the real services reach a receiver on 127.0.0.1, signed, retried with
backoff through the stored next attempt, and only ever the MSP's own."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from billing import services as billing_services
from integrations.base import IntegrationError
from integrations.models import ExportRun, IntegrationLog
from integrations.services import _record_failures
from invoices import services as invoice_services
from msp_billing.accounts.models import User
from tests.billing.test_batches import CUTOFF, everything, world  # noqa: F401  (fixture)
from tests.invoices import builders
from tests.webhooks.receiver import receiver, signature_valid
from webhooks import services
from webhooks.models import Attempt, Delivery, Event
from webhooks.tasks import deliver, deliveries_due

ALL_EVENTS = ["invoice.issued", "invoice.paid", "invoice.voided", "invoice.exported", "batch.run", "sync.failed"]
allow_private = override_settings(WEBHOOKS_ALLOW_PRIVATE=True)


def subscribe(url: str, events=ALL_EVENTS, user=None):
    with allow_private:
        return services.subscription_create(url=url, events=list(events), acting_user=user or builders.admin())


def attempt_all_due() -> list[int | None]:
    """What a worker does with the deliveries the beat task finds due: one attempt each."""
    with allow_private:
        return [deliver.run(pk) for pk in services.deliveries_due()]


def time_passes(delivery: Delivery) -> None:
    """The stored next attempt has come (the clock moved on)."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


def test_issuing_and_paying_an_invoice_deliver_signed_events(tenant, django_capture_on_commit_callbacks):
    with receiver() as hook:
        subscription = subscribe(hook.url("/msp/hooks?source=billing"), events=["invoice.issued", "invoice.paid"])
        with django_capture_on_commit_callbacks(execute=True):
            invoice = builders.issued(lines=[builders.line(quantity="3", unit_price="33.33")])
        assert attempt_all_due() == [200]

        [request] = hook.received
        assert request.path == "/msp/hooks?source=billing"
        assert signature_valid(subscription.secret, request)
        assert abs(int(request.headers["Webhook-Timestamp"]) - timezone.now().timestamp()) < 60
        payload = json.loads(request.body)
        assert payload["type"] == "invoice.issued" and payload["tenant"] == "alpha"
        assert payload["id"] == request.headers["Webhook-Id"] and payload["id"].startswith("evt_")
        issued = payload["data"]["invoice"]
        assert issued["number"] == invoice.number and issued["status"] == "issued"
        assert (issued["total"], issued["amount_due"], issued["currency"]) == ("99.99", "99.99", "EUR")
        assert issued["customer"]["name"] == invoice.display_customer_name

        with django_capture_on_commit_callbacks(execute=True):
            invoice_services.payment_record(invoice_id=invoice.pk, amount=Decimal("40.00"), date=builders.ISSUE_DAY,
                                            acting_user=builders.admin())
        assert attempt_all_due() == [200]
        paid = json.loads(hook.received[1].body)
        assert signature_valid(subscription.secret, hook.received[1])
        assert paid["type"] == "invoice.paid" and paid["id"] != payload["id"]
        assert (paid["data"]["invoice"]["amount_paid"], paid["data"]["invoice"]["amount_due"]) == ("40.00", "59.99")

    log = list(Delivery.objects.filter(subscription=subscription).order_by("pk").values_list("status", "attempts", "last_status_code"))
    assert log == [("succeeded", 1, 200), ("succeeded", 1, 200)]


def test_a_tampered_body_or_another_secret_fails_the_check(tenant, django_capture_on_commit_callbacks):
    with receiver() as hook:
        subscription = subscribe(hook.url())
        with django_capture_on_commit_callbacks(execute=True):
            builders.issued()
        attempt_all_due()
    [request] = hook.received
    request.body = request.body.replace(b'"status":"issued"', b'"status":"paid"')
    assert not signature_valid(subscription.secret, request)
    rotated = services.subscription_secret_rotate(subscription_id=subscription.pk, acting_user=builders.admin())
    assert rotated.secret != subscription.secret


def test_a_failed_delivery_is_retried_at_the_stored_time_with_the_same_event(tenant, django_capture_on_commit_callbacks):
    with receiver(500) as hook:
        subscription = subscribe(hook.url(), events=["invoice.issued"])
        with django_capture_on_commit_callbacks(execute=True):
            invoice = builders.issued()
        before = timezone.now()
        assert attempt_all_due() == [500]
        delivery = Delivery.objects.get(subscription=subscription)
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
        assert dt.timedelta(seconds=55) < delivery.next_attempt_at - before < dt.timedelta(seconds=65)
        # Not due yet: the beat task queues nothing, a stray queued copy does nothing.
        assert attempt_all_due() == [] and deliver.run(delivery.pk) is None

        time_passes(delivery)
        assert attempt_all_due() == [200]

    first, second = hook.received
    assert first.body == second.body and first.headers["Webhook-Id"] == second.headers["Webhook-Id"]
    assert signature_valid(subscription.secret, first) and signature_valid(subscription.secret, second)
    assert json.loads(second.body)["data"]["invoice"]["number"] == invoice.number
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("succeeded", 2, None)
    assert list(Attempt.objects.filter(delivery=delivery).order_by("number").values_list("number", "status_code")) == [(1, 500), (2, 200)]


def test_backoff_grows_and_the_delivery_fails_after_the_last_attempt(tenant, django_capture_on_commit_callbacks):
    with receiver(*[503] * services.MAX_ATTEMPTS) as hook:
        subscribe(hook.url(), events=["invoice.issued"])
        with django_capture_on_commit_callbacks(execute=True):
            builders.issued()
        delivery = Delivery.objects.get()
        waits = []
        for _ in range(services.MAX_ATTEMPTS):
            time_passes(delivery)
            assert attempt_all_due() == [503]
            delivery.refresh_from_db()
            if delivery.next_attempt_at:
                waits.append(round((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds() / 60))
    assert waits == [1, 5, 30, 120, 480, 1440]
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", services.MAX_ATTEMPTS, None)
    assert len(hook.received) == services.MAX_ATTEMPTS
    time_passes(delivery)
    assert attempt_all_due() == []


def test_a_redirect_is_not_followed(tenant, django_capture_on_commit_callbacks):
    with receiver(302) as hook:
        subscribe(hook.url(), events=["invoice.issued"])
        with django_capture_on_commit_callbacks(execute=True):
            builders.issued()
        assert attempt_all_due() == [302]
    assert len(hook.received) == 1
    assert Delivery.objects.get().status == "pending"


def test_no_event_for_a_change_that_rolled_back(tenant, django_capture_on_commit_callbacks):
    with receiver() as hook:
        subscribe(hook.url())
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
            with transaction.atomic():
                builders.issued()
                raise RuntimeError("the caller gave up")
        assert attempt_all_due() == []
    assert not Event.objects.exists() and not hook.received


def test_void_export_and_sync_failure_raise_their_events(tenant, django_capture_on_commit_callbacks):
    with receiver() as hook:
        subscription = subscribe(hook.url(), events=["invoice.voided", "invoice.exported", "sync.failed"])
        invoice = builders.issued()
        with django_capture_on_commit_callbacks(execute=True):
            invoice_services.invoice_mark_exported(invoice_id=invoice.pk, system="xero", at=timezone.now(), remote_id="INV-77",
                                                   remote_url="https://go.xero.com/x", acting_user=builders.admin())
            run = ExportRun.objects.create(system="xero", document_ids=[invoice.pk], total=1, created_by=builders.admin())
            _record_failures(run, [invoice], IntegrationError("Account code 200 is archived", code="ValidationException",
                                                              http_status=400))
            invoice_services.invoice_void(invoice_id=invoice.pk, acting_user=builders.admin(), reason="Wrong customer")
        assert attempt_all_due() == [200, 200, 200]
    bodies = {json.loads(r.body)["type"]: json.loads(r.body)["data"] for r in hook.received}
    assert all(signature_valid(subscription.secret, r) for r in hook.received)
    assert bodies["invoice.exported"]["invoice"]["remote_id"] == "INV-77"
    assert bodies["invoice.voided"]["invoice"]["void_reason"] == "Wrong customer"
    failure = bodies["sync.failed"]["failure"]
    assert failure["invoice"]["number"] == invoice.number and failure["error"] == "Account code 200 is archived"
    assert failure["id"] == IntegrationLog.objects.get(outcome="failed", invoice=invoice).pk


def test_a_batch_run_raises_batch_run_with_its_totals(world, django_capture_on_commit_callbacks):  # noqa: F811
    with receiver() as hook:
        subscribe(hook.url(), events=["batch.run"], user=world["admin"])
        with django_capture_on_commit_callbacks(execute=True):
            batch = billing_services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=False,
                                               acting_user=world["admin"])
        assert attempt_all_due() == [200]
    data = json.loads(hook.received[0].body)["data"]["batch"]
    assert (data["id"], data["name"], data["cutoff"], data["invoice_count"]) == (batch.pk, "March", "2026-03-31", 3)
    assert data["totals"] == {"EUR": "1482.10"}


def test_each_msp_hears_only_its_own_events(tenant, django_capture_on_commit_callbacks):
    with receiver() as alpha_hook, receiver() as beta_hook:
        subscribe(alpha_hook.url())
        with schema_context("beta"):
            beta_owner = User.objects.get(email="owner@beta.example")
            beta_subscription = subscribe(beta_hook.url(), user=beta_owner)
            customer = builders.customer()
            with django_capture_on_commit_callbacks(execute=True):
                draft = invoice_services.invoice_create_draft(customer=customer, lines=[builders.line()], acting_user=beta_owner)
                invoice_services.invoice_issue(invoice_id=draft.pk, acting_user=beta_owner, issue_date=builders.ISSUE_DAY)
            beta_delivery = Delivery.objects.get()
        # In alpha: nothing raised, nothing due, and beta's delivery id names nothing here.
        assert not Event.objects.exists() and attempt_all_due() == []
        with allow_private:
            assert not Delivery.objects.filter(pk=beta_delivery.pk).exists()
            assert deliver.run(beta_delivery.pk) is None
        assert not alpha_hook.received and not beta_hook.received
        with schema_context("beta"):
            assert attempt_all_due() == [200]
    assert not alpha_hook.received
    [request] = beta_hook.received
    assert json.loads(request.body)["tenant"] == "beta" and signature_valid(beta_subscription.secret, request)


def test_the_delivery_task_refuses_the_public_schema(db):
    from msp_billing.tasks import TenantContextMissing

    with pytest.raises(TenantContextMissing):
        deliver(1)
    with pytest.raises(TenantContextMissing):
        deliveries_due()


def test_an_address_refused_at_delivery_time_is_logged_and_nothing_is_sent(tenant, django_capture_on_commit_callbacks):
    """Saved while private addresses were allowed (or the name pointed elsewhere then): checked again before sending."""
    with receiver() as hook:
        subscribe(hook.url(), events=["invoice.issued"])
        with django_capture_on_commit_callbacks(execute=True):
            builders.issued()
        delivery = Delivery.objects.get()
        assert deliver.run(delivery.pk) is None  # WEBHOOKS_ALLOW_PRIVATE is off here
    assert not hook.received
    attempt = Attempt.objects.get(delivery=delivery)
    assert attempt.status_code is None and "127.0.0.1 is a loopback address" in attempt.error
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at > timezone.now()


def test_beat_looks_for_due_retries_every_minute_in_every_msp():
    from django.conf import settings

    from msp_billing.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["webhook-deliveries-due-every-tenant"]
    assert entry["task"] == "msp_billing.tasks.fan_out_to_tenants" and entry["args"] == (
        "webhooks.tasks.deliveries_due", {}, "webhooks.services.deliveries_waiting")  # only in MSPs with some due
    assert entry["schedule"] == dt.timedelta(minutes=1)
    assert "webhooks.tasks.deliveries_due" in app.tasks and "webhooks.tasks.deliver" in app.tasks


def test_the_post_tries_the_next_checked_address_when_one_refuses_the_connection():
    from webhooks import sender
    from webhooks.urlguard import Target

    with receiver() as hook:
        # 127.0.0.2 is loopback too, but nothing listens there on this port.
        target = Target(scheme="http", host="hooks.example", port=hook.port, path="/in?x=1", addresses=("127.0.0.2", "127.0.0.1"))
        outcome = sender.post(target, body=b"{}", headers={"Content-Type": "application/json"})
        unreachable = sender.post(Target(scheme="http", host="hooks.example", port=hook.port, path="/",
                                         addresses=("127.0.0.2",)), body=b"{}", headers={})
    assert outcome.status_code == 200 and outcome.excerpt == '{"ok": true}'
    [request] = hook.received
    assert request.path == "/in?x=1" and request.headers["Host"] == f"hooks.example:{hook.port}"
    assert unreachable.status_code is None and unreachable.error == "Connection refused or unreachable."
