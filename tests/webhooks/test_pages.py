"""Settings → Webhooks: who may open it, what the forms refuse, redelivery, delete, and
another MSP's ids."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from django_tenants.utils import schema_context

from msp_billing.accounts.models import User
from tests.invoices import builders
from tests.webhooks.receiver import receiver, signature_valid
from tests.webhooks.test_deliveries import allow_private, attempt_all_due, subscribe
from webhooks import services
from webhooks.models import Attempt, Delivery, Event, Subscription

LIST = "/settings/webhooks/"
NEW = "/settings/webhooks/new/"


def form(url: str, *events: str, **extra) -> dict:
    return {"url": url, "events": list(events or ["invoice.issued"]), "description": "", **extra}


def page_urls(subscription_id: int, delivery_id: int) -> list[str]:
    return [LIST, NEW, reverse("settings:webhook_detail", args=[subscription_id]),
            reverse("settings:webhook_delete", args=[subscription_id]),
            reverse("settings:webhook_delivery", args=[subscription_id, delivery_id])]


def delivered_once(hook, django_capture_on_commit_callbacks) -> Delivery:
    subscription = subscribe(hook.url(), events=["invoice.issued"])
    with django_capture_on_commit_callbacks(execute=True):
        builders.issued()
    assert attempt_all_due() == [200]
    return Delivery.objects.get(subscription=subscription)


@pytest.mark.parametrize("role", ["technician", "accountant"])
def test_only_owners_and_billing_admins_open_the_pages(tenant, client_for, role, django_capture_on_commit_callbacks):
    with receiver() as hook:
        delivery = delivered_once(hook, django_capture_on_commit_callbacks)
    client = client_for("alpha", role)
    for url in page_urls(delivery.subscription_id, delivery.pk):
        assert client.get(url).status_code == 403, url
    redeliver = reverse("settings:webhook_redeliver", args=[delivery.subscription_id, delivery.pk])
    assert client.post(redeliver).status_code == 403
    assert client.post(NEW, form("https://hooks.example.com/x")).status_code == 403
    assert client.post(reverse("settings:webhook_delete", args=[delivery.subscription_id])).status_code == 403
    with schema_context("alpha"):
        assert Subscription.objects.count() == 1 and Delivery.objects.get().status == "succeeded"
    for manager in ("owner", "billing_admin"):
        assert client_for("alpha", manager).get(LIST).status_code == 200


def test_create_shows_the_secret_once_then_only_its_start(tenant, client_for):
    client = client_for("alpha", "billing_admin")
    with allow_private:
        response = client.post(NEW, form("http://127.0.0.1:8123/hooks", "invoice.issued", "batch.run", description="ERP"))
    with schema_context("alpha"):
        subscription = Subscription.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("settings:webhook_detail", args=[subscription.pk])
    assert subscription.events == ["invoice.issued", "batch.run"] and subscription.secret.startswith("whsec_")
    first = client.get(response["Location"]).content.decode()
    assert subscription.secret in first and "shows it only this once" in first
    again = client.get(response["Location"]).content.decode()
    assert subscription.secret not in again and subscription.secret_hint in again
    listing = client.get(LIST).content.decode()
    assert "http://127.0.0.1:8123/hooks" in listing and "ERP" in listing


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1/hooks", "127.0.0.1 is a loopback address"),
    ("http://localhost:8000/hooks", "is a loopback address"),
    ("https://10.20.30.40/hooks", "10.20.30.40 is a private address"),
    ("http://[::1]:8080/hooks", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/hooks", "127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://100.64.1.1/hooks", "not a public address"),
    ("http://0.0.0.0/hooks", "is an unspecified address"),
])
def test_private_and_internal_addresses_are_refused_on_the_form(tenant, client_for, url, says):
    client = client_for("alpha", "owner")
    response = client.post(NEW, form(url))
    page = response.content.decode()
    assert response.status_code == 400
    assert "Webhooks are not sent to private or internal addresses" in page and says in page
    with schema_context("alpha"):
        assert not Subscription.objects.exists()


@pytest.mark.parametrize("data, says", [
    (form("not a url"), "The URL must start with https://"),
    (form("ftp://files.example.com/in"), "The URL must start with https://"),
    (form("https://"), "The URL needs a host name"),
    (form("https://admin:hunter2@hooks.example.com/x"), "Leave the user name and password out of the URL"),
    (form("https://hooks.example.com:99999/x"), "Enter a valid URL"),
    (form("http://[::1/x"), "Enter a valid URL"),
    (form("https://hooks.invalid/x"), "The host hooks.invalid could not be found."),
    (form("https://hooks.example.com/" + "a" * 600), "at most 500 characters"),
    (form(""), "This field is required."),
    ({"url": "https://hooks.example.com/x"}, "Choose at least one event."),
    (form("https://hooks.example.com/x", "invoice.deleted"), "Choose events from the list."),
])
def test_hostile_form_input_gets_a_clear_message(tenant, client_for, data, says):
    response = client_for("alpha", "owner").post(NEW, data)
    assert response.status_code == 400
    assert says in response.content.decode()
    with schema_context("alpha"):
        assert not Subscription.objects.exists()


def test_an_edit_to_a_private_address_is_refused_and_changes_nothing(tenant, client_for):
    subscription = subscribe("http://127.0.0.1:9/first")
    response = client_for("alpha", "owner").post(reverse("settings:webhook_detail", args=[subscription.pk]),
                                                  form("http://10.0.0.1/hooks", is_active="on"))
    assert response.status_code == 400 and "10.0.0.1 is a private address" in response.content.decode()
    with schema_context("alpha"):
        assert Subscription.objects.get().url == "http://127.0.0.1:9/first"


def test_redeliver_from_the_page_sends_the_same_event_again(tenant, client_for, django_capture_on_commit_callbacks):
    client = client_for("alpha", "owner")
    with receiver() as hook:
        delivery = delivered_once(hook, django_capture_on_commit_callbacks)
        detail = reverse("settings:webhook_detail", args=[delivery.subscription_id])
        page = client.get(detail).content.decode()
        assert f'data-delivery="{delivery.pk}"' in page and "Redeliver" in page and 'data-status="succeeded"' in page
        response = client.post(reverse("settings:webhook_redeliver", args=[delivery.subscription_id, delivery.pk]))
        assert response.status_code == 302 and response["Location"] == detail
        with schema_context("alpha"):
            assert Delivery.objects.get().status == "pending"
            assert attempt_all_due() == [200]
    first, second = hook.received
    assert first.headers["Webhook-Id"] == second.headers["Webhook-Id"] and first.body == second.body
    with schema_context("alpha"):
        subscription = Subscription.objects.get()
        assert signature_valid(subscription.secret, second)
        assert list(Attempt.objects.order_by("number").values_list("number", "status_code")) == [(1, 200), (2, 200)]
    log = client.get(reverse("settings:webhook_delivery", args=[delivery.subscription_id, delivery.pk])).content.decode()
    assert log.count("<td class=\"num\">200</td>") == 2 and first.headers["Webhook-Id"] in log


def test_delete_goes_through_its_confirmation(tenant, client_for, django_capture_on_commit_callbacks):
    client = client_for("alpha", "owner")
    with receiver(500) as hook:
        delivery = subscribe(hook.url(), events=["invoice.issued"])
        with django_capture_on_commit_callbacks(execute=True):
            builders.issued()
        attempt_all_due()
        delivery = Delivery.objects.get()
    url = reverse("settings:webhook_delete", args=[delivery.subscription_id])
    page = client.get(url).content.decode()
    assert 'data-figure="deliveries">1<' in page and 'data-figure="waiting">1<' in page
    with schema_context("alpha"):
        assert Subscription.objects.exists()
    response = client.post(url)
    assert response.status_code == 302 and response["Location"] == LIST
    with schema_context("alpha"):
        assert not Subscription.objects.exists() and not Delivery.objects.exists() and not Event.objects.exists()


def test_another_msps_ids_are_not_found(tenant, client_for, django_capture_on_commit_callbacks):
    """Beta's subscription and delivery ids on alpha's host: 404 for every page and action."""
    with schema_context("beta"):
        beta_owner = User.objects.get(email="owner@beta.example")
        beta = [subscribe(f"http://127.0.0.1:9/beta-{n}", user=beta_owner) for n in range(3)]
        event = services.event_raise("invoice.issued", {"invoice": {}})
        deliveries = list(event.deliveries.order_by("pk"))
    alpha_ids = set(Subscription.objects.values_list("pk", flat=True))
    alpha_deliveries = set(Delivery.objects.values_list("pk", flat=True))
    target = next(d for d in deliveries if d.subscription_id not in alpha_ids and d.pk not in alpha_deliveries)
    client = client_for("alpha", "owner")
    for url in page_urls(target.subscription_id, target.pk)[2:]:
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("settings:webhook_delete", args=[target.subscription_id])).status_code == 404
    assert client.post(reverse("settings:webhook_redeliver", args=[target.subscription_id, target.pk])).status_code == 404
    assert client.post(reverse("settings:webhook_secret_rotate", args=[target.subscription_id])).status_code == 404
    assert client.post(reverse("settings:webhook_detail", args=[target.subscription_id]),
                       form("http://127.0.0.1:9/x", is_active="on")).status_code == 404
    with schema_context("beta"):
        assert Subscription.objects.filter(pk__in=[s.pk for s in beta]).count() == 3
        assert all(s.url.startswith("http://127.0.0.1:9/beta-") for s in Subscription.objects.all())


def test_a_paused_subscription_gets_nothing_until_resumed_then_what_waited(tenant, client_for,
                                                                           django_capture_on_commit_callbacks):
    client = client_for("alpha", "owner")
    with receiver(500) as hook:
        subscription = subscribe(hook.url(), events=["invoice.issued"])
        detail = reverse("settings:webhook_detail", args=[subscription.pk])
        with django_capture_on_commit_callbacks(execute=True):
            builders.issued()
        assert attempt_all_due() == [500]
        with allow_private:
            assert client.post(detail, form(hook.url(), "invoice.issued")).status_code == 302  # Active unticked
        with schema_context("alpha"):
            Delivery.objects.update(next_attempt_at=timezone.now())
            with django_capture_on_commit_callbacks(execute=True):
                builders.issued()  # raised while paused: not for this subscription
            assert attempt_all_due() == [] and Event.objects.count() == 1
        with allow_private:
            assert client.post(detail, form(hook.url(), "invoice.issued", is_active="on")).status_code == 302
        with schema_context("alpha"):
            assert attempt_all_due() == [200]
    assert len(hook.received) == 2 and hook.received[0].body == hook.received[1].body
    page = client.get(detail).content.decode()
    assert 'data-status="succeeded"' in page and "Active" in page
