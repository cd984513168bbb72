"""Settings → Webhooks: owners and billing admins (``MANAGE_SETTINGS``); everyone else gets 403."""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from msp_billing.accounts.access import requires
from msp_billing.accounts.roles import Capability
from webhooks import services
from webhooks.forms import SubscriptionForm
from webhooks.models import Delivery, Subscription

SECRET_SESSION_KEY = "webhook_secret_once"
LOG_LENGTH = 50


def _show_secret_once(request, subscription: Subscription) -> None:
    request.session[SECRET_SESSION_KEY] = {"id": subscription.pk, "secret": subscription.secret}


@requires(Capability.MANAGE_SETTINGS)
def subscription_list(request):
    subscriptions = Subscription.objects.annotate(
        delivered=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.SUCCEEDED)),
        failing=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.FAILED)),
        waiting=Count("deliveries", filter=Q(deliveries__status=Delivery.Status.PENDING)),
        last_attempt=Max("deliveries__last_attempt_at"))
    return render(request, "settings/webhooks/list.html", {"subscriptions": subscriptions})


@requires(Capability.MANAGE_SETTINGS)
def subscription_new(request):
    form = SubscriptionForm(request.POST if request.method == "POST" else None, creating=True)
    if request.method == "POST" and form.is_valid():
        try:
            subscription = services.subscription_create(
                url=form.cleaned_data["url"], events=form.cleaned_data["events"],
                description=form.cleaned_data["description"], acting_user=request.user)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            _show_secret_once(request, subscription)
            messages.success(request, "Webhook subscription created. Copy its signing secret now: it is shown only once.")
            return redirect("settings:webhook_detail", subscription.pk)
    return render(request, "settings/webhooks/form.html", {"form": form}, status=400 if form.errors else 200)


@requires(Capability.MANAGE_SETTINGS)
def subscription_detail(request, subscription_id: int):
    subscription = get_object_or_404(Subscription, pk=subscription_id)
    initial = {"url": subscription.url, "events": subscription.events, "description": subscription.description,
               "is_active": subscription.is_active}
    form = SubscriptionForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.subscription_update(subscription_id=subscription.pk, url=form.cleaned_data["url"],
                                         events=form.cleaned_data["events"], description=form.cleaned_data["description"],
                                         is_active=form.cleaned_data["is_active"], acting_user=request.user)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Webhook subscription saved.")
            return redirect("settings:webhook_detail", subscription.pk)
    shown = request.session.pop(SECRET_SESSION_KEY, None)
    secret = shown["secret"] if shown and shown.get("id") == subscription.pk else None
    deliveries = (subscription.deliveries.select_related("event").prefetch_related("attempt_log")
                  .order_by("-created_at", "-id")[:LOG_LENGTH])
    return render(request, "settings/webhooks/detail.html",
                  {"subscription": subscription, "form": form, "secret": secret, "deliveries": deliveries},
                  status=400 if form.errors else 200)


@requires(Capability.MANAGE_SETTINGS)
@require_POST
def subscription_secret_rotate(request, subscription_id: int):
    subscription = get_object_or_404(Subscription, pk=subscription_id)
    subscription = services.subscription_secret_rotate(subscription_id=subscription.pk, acting_user=request.user)
    _show_secret_once(request, subscription)
    messages.success(request, "New signing secret made; the old one no longer signs deliveries. Copy it now.")
    return redirect("settings:webhook_detail", subscription.pk)


@requires(Capability.MANAGE_SETTINGS)
def subscription_delete(request, subscription_id: int):
    subscription = get_object_or_404(Subscription, pk=subscription_id)
    if request.method == "POST":
        services.subscription_delete(subscription_id=subscription.pk, acting_user=request.user)
        messages.success(request, f"Webhook subscription to {subscription.url} deleted.")
        return redirect("settings:webhooks")
    counts = subscription.deliveries.aggregate(total=Count("pk"),
                                               waiting=Count("pk", filter=Q(status=Delivery.Status.PENDING)))
    return render(request, "settings/webhooks/delete_confirm.html", {"subscription": subscription, "counts": counts})


@requires(Capability.MANAGE_SETTINGS)
def delivery_detail(request, subscription_id: int, delivery_id: int):
    delivery = get_object_or_404(Delivery.objects.select_related("event", "subscription"),
                                 pk=delivery_id, subscription_id=subscription_id)
    return render(request, "settings/webhooks/delivery.html",
                  {"delivery": delivery, "subscription": delivery.subscription, "attempts": delivery.attempt_log.all()})


@requires(Capability.MANAGE_SETTINGS)
@require_POST
def delivery_redeliver(request, subscription_id: int, delivery_id: int):
    subscription = get_object_or_404(Subscription, pk=subscription_id)
    try:
        delivery = services.delivery_redeliver(subscription_id=subscription.pk, delivery_id=delivery_id,
                                               acting_user=request.user)
    except Delivery.DoesNotExist:
        raise Http404("No such delivery.") from None
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{delivery.event.type} ({delivery.event.public_id}) queued to be sent again.")
    return redirect("settings:webhook_detail", subscription.pk)
