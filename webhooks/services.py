"""Webhooks' writes: subscriptions, raising an event, one delivery attempt, redelivery.

Every write to the webhooks tables goes through here. A delivery is attempted by the
``webhooks.tasks.deliver`` task: queued when the event is committed, and again by the beat
task ``deliveries_due`` for every pending delivery whose ``next_attempt_at`` has come (the
retries: nothing waits in the broker for hours).
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from msp_billing.audit.services import audit_record
from webhooks import sender, signing
from webhooks.models import Attempt, Delivery, Event, EventType, Subscription
from webhooks.urlguard import UnsafeTarget, resolve

# After attempt n fails, attempt n + 1 is due RETRY_AFTER[n - 1] later; after the last, the delivery has failed.
RETRY_AFTER = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=30), dt.timedelta(hours=2),
               dt.timedelta(hours=8), dt.timedelta(hours=24))
MAX_ATTEMPTS = len(RETRY_AFTER) + 1
# An attempt under way holds its delivery this long (longer than both timeouts); a worker that
# died mid-attempt leaves the delivery due again afterwards.
LEASE = dt.timedelta(minutes=2)
DUE_BATCH = 500
DELIVER_TASK = "webhooks.tasks.deliver"


def _queue(delivery_ids: list[int], *, manual: bool = False) -> None:
    """Queue the attempts once the current transaction commits (in this MSP's schema)."""
    from msp_billing.celery import app

    def send() -> None:
        for delivery_id in delivery_ids:
            app.send_task(DELIVER_TASK, args=[delivery_id], kwargs={"manual": manual} if manual else {})

    if delivery_ids:
        transaction.on_commit(send)


# --- subscriptions ------------------------------------------------------------------------------


def _clean(*, url: str, events: list[str], description: str) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    url = (url or "").strip()
    try:
        resolve(url)
    except UnsafeTarget as refusal:
        errors["url"] = [str(refusal)]
    chosen = [event for event in EventType.values if event in set(events or ())]
    if not chosen or len(chosen) != len(set(events or ())):
        errors["events"] = ["Choose at least one of the events listed."]
    if errors:
        raise ValidationError(errors)
    return {"url": url[:500], "events": chosen, "description": (description or "").strip()[:200]}


@transaction.atomic
def subscription_create(*, url: str, events: list[str], description: str = "", acting_user) -> Subscription:
    """A new, active subscription with a fresh secret (the page shows it once)."""
    fields = _clean(url=url, events=events, description=description)
    subscription = Subscription.objects.create(**fields, secret=signing.secret_new(), created_by=acting_user)
    audit_record(actor=acting_user, action="webhook_created", obj=subscription,
                 after={"url": subscription.url, "events": subscription.events})
    return subscription


@transaction.atomic
def subscription_update(*, subscription_id: int, url: str, events: list[str], description: str = "", is_active: bool,
                        acting_user) -> Subscription:
    subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
    fields = _clean(url=url, events=events, description=description)
    before = {"url": subscription.url, "events": subscription.events, "is_active": subscription.is_active,
              "description": subscription.description}
    resumed = is_active and not subscription.is_active
    for name, value in {**fields, "is_active": is_active}.items():
        setattr(subscription, name, value)
    subscription.save()
    if resumed:  # what waited while it was paused is due now
        due = list(subscription.deliveries.filter(status=Delivery.Status.PENDING).values_list("pk", flat=True))
        Delivery.objects.filter(pk__in=due).update(next_attempt_at=timezone.now())
        _queue(due)
    after = {"url": subscription.url, "events": subscription.events, "is_active": subscription.is_active,
             "description": subscription.description}
    audit_record(actor=acting_user, action="webhook_changed", obj=subscription,
                 before={k: v for k, v in before.items() if after[k] != v}, after={k: v for k, v in after.items() if before[k] != v})
    return subscription


@transaction.atomic
def subscription_secret_rotate(*, subscription_id: int, acting_user) -> Subscription:
    subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
    subscription.secret = signing.secret_new()
    subscription.save(update_fields=["secret", "updated_at"])
    audit_record(actor=acting_user, action="webhook_secret_rotated", obj=subscription, after={"url": subscription.url})
    return subscription


@transaction.atomic
def subscription_delete(*, subscription_id: int, acting_user) -> None:
    """Delete the subscription with its delivery log; events no other subscription has are deleted too."""
    subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
    audit_record(actor=acting_user, action="webhook_deleted", obj=subscription,
                 before={"url": subscription.url, "events": subscription.events,
                         "deliveries": subscription.deliveries.count()})
    event_ids = list(subscription.deliveries.values_list("event_id", flat=True))
    subscription.delete()
    Event.objects.filter(pk__in=event_ids, deliveries__isnull=True).delete()


# --- events --------------------------------------------------------------------------------------


def wanted(event_type: str) -> bool:
    return Subscription.objects.filter(is_active=True, events__contains=[event_type]).exists()


def event_raise(event_type: str, data: dict[str, Any]) -> Event | None:
    """Store one event and a delivery for every active subscription that wants it; the
    deliveries are queued when this commits. None when nobody subscribed."""
    with transaction.atomic():
        subscriptions = list(Subscription.objects.filter(is_active=True, events__contains=[event_type])
                             .order_by("pk").values_list("pk", flat=True))
        if not subscriptions:
            return None
        now = timezone.now()
        event = Event(type=event_type, created_at=now)
        payload = {"id": event.public_id, "type": event_type, "created": now.isoformat(),
                   "tenant": connection.schema_name, "data": data}
        event.body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        event.save()
        deliveries = Delivery.objects.bulk_create(
            [Delivery(subscription_id=pk, event=event, next_attempt_at=now) for pk in subscriptions])
        _queue([delivery.pk for delivery in deliveries])
    return event


# --- deliveries ----------------------------------------------------------------------------------


def _claim(delivery_id: int, *, now: dt.datetime) -> Delivery | None:
    """The delivery, leased for one attempt; None when it is not due, is being attempted, or is not
    this MSP's (an id from elsewhere names nothing here)."""
    with transaction.atomic():
        delivery = (Delivery.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("subscription", "event").filter(pk=delivery_id).first())
        if delivery is None or delivery.status != Delivery.Status.PENDING or not delivery.subscription.is_active:
            return None
        if delivery.next_attempt_at is None or delivery.next_attempt_at > now:
            return None
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.next_attempt_at = now + LEASE
        delivery.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
        return delivery


def delivery_attempt(*, delivery_id: int, manual: bool = False) -> Attempt | None:
    """POST the delivery once if it is due, record what came back and when to try again."""
    started = timezone.now()
    delivery = _claim(delivery_id, now=started)
    if delivery is None:
        return None
    subscription, event = delivery.subscription, delivery.event
    body = event.body.encode()
    try:
        target = resolve(subscription.url)  # again now: the name may point elsewhere since it was saved
    except UnsafeTarget as refusal:
        outcome = sender.Outcome(status_code=None, duration_ms=0, error=str(refusal)[:500])
    else:
        timestamp = int(timezone.now().timestamp())
        outcome = sender.post(target, body=body, headers=signing.headers(
            secret=subscription.secret, timestamp=timestamp, body=body, event_id=event.public_id, event_type=event.type))
    with transaction.atomic():
        attempt = Attempt.objects.create(delivery_id=delivery.pk, number=delivery.attempts, manual=manual, started_at=started,
                                         duration_ms=outcome.duration_ms, status_code=outcome.status_code,
                                         error=outcome.error[:500], response_excerpt=outcome.excerpt[:500])
        fields: dict[str, Any] = {"last_status_code": outcome.status_code}
        if outcome.ok:
            fields.update(status=Delivery.Status.SUCCEEDED, next_attempt_at=None)
        elif delivery.attempts >= MAX_ATTEMPTS:
            fields.update(status=Delivery.Status.FAILED, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=timezone.now() + RETRY_AFTER[delivery.attempts - 1])
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
    return attempt


def deliveries_waiting(*, now: dt.datetime | None = None):
    """Pending deliveries of active subscriptions whose next attempt has come. Beat asks this of
    every MSP at once and runs ``deliveries_due`` only where there are some."""
    return Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now or timezone.now(),
                                   subscription__is_active=True)


def deliveries_due(*, now: dt.datetime | None = None) -> list[int]:
    """Queue every pending delivery of an active subscription whose next attempt has come (the beat task)."""
    due = list(deliveries_waiting(now=now).order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:DUE_BATCH])
    with transaction.atomic():
        _queue(due)
    return due


@transaction.atomic
def delivery_redeliver(*, subscription_id: int, delivery_id: int, acting_user) -> Delivery:
    """Send a delivery again now (whatever became of it); a failure after the last retry stays failed."""
    delivery = Delivery.objects.select_for_update().filter(pk=delivery_id, subscription_id=subscription_id).first()
    if delivery is None:
        raise Delivery.DoesNotExist
    if not Subscription.objects.filter(pk=subscription_id, is_active=True).exists():
        raise ValidationError("This subscription is paused; activate it to deliver again.")
    delivery.status, delivery.next_attempt_at = Delivery.Status.PENDING, timezone.now()
    delivery.save(update_fields=["status", "next_attempt_at"])
    audit_record(actor=acting_user, action="webhook_redelivered", obj=delivery.subscription,
                 after={"event": delivery.event.public_id, "type": delivery.event.type})
    _queue([delivery.pk], manual=True)
    return delivery
