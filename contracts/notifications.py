"""Stored notifications (renewals, block and budget thresholds), e-mailed to billing staff.

Each notification has a ``key`` that says what it is about (``renewal:12:2026-12-31``,
``block:7:31:90``); the unique key makes it happen once, however often a check runs or
is retried, and also when two runs race.

Recipients are the MSP's active owners and billing admins (the people who can act on a
renewal or a block running out). The e-mail is sent after the transaction commits; a
mail that cannot be delivered is logged and does not undo the stored notification,
which stays on the notifications page.
"""
from __future__ import annotations

import logging

from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from contracts.models import Contract, Notification
from msp_billing.accounts.models import User
from msp_billing.accounts.roles import Role
from msp_billing.tenants.urls import tenant_url

logger = logging.getLogger(__name__)

RECIPIENT_ROLES = (Role.OWNER, Role.BILLING_ADMIN)


def notification_recipients() -> list[str]:
    """E-mail addresses of the active owners and billing admins of the active MSP."""
    return list(
        User.objects.filter(is_active=True, role__in=RECIPIENT_ROLES).order_by("email").values_list("email", flat=True)
    )


def notification_send_once(
    *, kind: str, key: str, contract: Contract | None, subject: str, message: str
) -> Notification | None:
    """Store the notification and e-mail it — unless one with ``key`` exists (then ``None``)."""
    with transaction.atomic():
        notification, created = Notification.objects.get_or_create(
            key=key, defaults={"kind": kind, "contract": contract, "message": message}
        )
    if not created:
        return None
    recipients = notification_recipients()
    if recipients:
        body = _email_body(message)
        transaction.on_commit(lambda: _send(subject=subject, body=body, recipients=recipients, key=key))
    return notification


def notifications_mark_read(*, notification_ids: list[int] | None = None) -> int:
    """Mark the given notifications (or, with ``None``, every unread one) as read."""
    unread = Notification.objects.filter(read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


def notifications_for_list(*, unread_only: bool) -> QuerySet[Notification]:
    """Newest first, with contract and customer loaded for the list page."""
    notifications = Notification.objects.select_related("contract", "contract__customer").order_by("-created_at", "-id")
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications


def unread_notification_count() -> int:
    return Notification.objects.filter(read_at__isnull=True).count()


def _email_body(message: str) -> str:
    from msp_billing.tenants.today import current_msp

    tenant = current_msp()
    try:
        link = tenant_url(tenant, reverse("contracts:notifications"))
    except NoReverseMatch:  # the page is not routed (yet): the message still stands on its own
        link = tenant_url(tenant, "/")
    return f"{message}\n\nAll notifications for {tenant.name}: {link}\n"


def _send(*, subject: str, body: str, recipients: list[str], key: str) -> None:
    try:
        send_mail(subject=subject, message=body, from_email=None, recipient_list=recipients)
    except Exception:  # noqa: BLE001 — the stored notification remains; say loudly that mail failed
        logger.exception("notification %s could not be e-mailed to %s", key, ", ".join(recipients))
