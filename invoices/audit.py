"""The audit trail every billing action writes to (DESIGN.md "Audit trail").

    audit_record(actor=request.user, action="invoice_issued", obj=invoice,
                 before={"status": "draft"}, after={"status": "issued", "number": "INV-2026-00042"})

Call it inside the action's own transaction (CONVENTIONS.md habit 2): the record is
written or rolled back together with the change it describes. Any app may call it; the
values are turned into JSON here (Decimal and Money as strings, dates in ISO format,
model instances as their primary key), so callers pass what they have.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db.models import Model, QuerySet
from djmoney.money import Money

from invoices.models import AuditEvent

SYSTEM_ACTOR = "system"


def audit_record(*, actor, action: str, obj: Model, before: Mapping[str, Any] | None = None,
                 after: Mapping[str, Any] | None = None, message: str = "") -> AuditEvent:
    """Write one audit event for ``action`` on ``obj`` by ``actor`` (None: the scheduler)."""
    if not action:
        raise ValueError("an audit event needs an action")
    if obj.pk is None:
        raise ValueError("save the object before recording an audit event for it")
    is_user = actor is not None and getattr(actor, "pk", None) is not None
    return AuditEvent.objects.create(
        actor=actor if is_user else None,
        actor_label=(getattr(actor, "email", "") or str(actor)) if actor is not None else SYSTEM_ACTOR,
        action=action[:60],
        object_type=object_type_of(obj),
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        before=jsonable(before) if before is not None else None,
        after=jsonable(after) if after is not None else None,
        message=message,
    )


def object_type_of(obj: Model | type[Model]) -> str:
    return obj._meta.label_lower


def audit_events_for(obj: Model) -> QuerySet[AuditEvent]:
    """The trail of one object, newest first."""
    return AuditEvent.objects.filter(object_type=object_type_of(obj), object_id=str(obj.pk)).select_related("actor")


def jsonable(value: Any) -> Any:
    """``value`` with every leaf turned into something JSON keeps exactly."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, Model):
        return value.pk
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def audit_events(*, action: str = "", object_type: str = "", actor: str = "", start=None, end=None,
                 obj: Model | None = None) -> QuerySet[AuditEvent]:
    """The audit trail, newest first, filtered as the report's form allows."""
    events = AuditEvent.objects.all()
    if obj is not None:
        events = events.filter(object_type=object_type_of(obj), object_id=str(obj.pk))
    if action:
        events = events.filter(action__icontains=action)
    if object_type:
        events = events.filter(object_type__icontains=object_type)
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if start:
        events = events.filter(at__date__gte=start)
    if end:
        events = events.filter(at__date__lte=end)
    return events.order_by("-at", "-id")
