"""Recording audit events.

    audit_record(actor=request.user, action="invoice_issued", obj=invoice,
                 before={"status": "draft"}, after={"status": "issued", "number": "INV-2026-00042"})

Call it inside the action's own transaction (docs/architecture.md, "A request"): the record is
written or rolled back together with the change it describes. Any app may call it; the
values are turned into JSON here (Decimal and Money as strings, dates in ISO format,
model instances as their primary key), so callers pass what they have.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.db.models import Model
from djmoney.money import Money

from msp_billing.audit.models import AuditEvent

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


def audit_record_many(*, actor, action: str, records: Sequence[tuple[Model, Mapping[str, Any] | None, Mapping[str, Any] | None]],
                      message: str = "") -> list[AuditEvent]:
    """``audit_record`` for many objects at once (``records``: object, before, after) in one statement."""
    if not action:
        raise ValueError("an audit event needs an action")
    is_user = actor is not None and getattr(actor, "pk", None) is not None
    label = (getattr(actor, "email", "") or str(actor)) if actor is not None else SYSTEM_ACTOR
    events = []
    for obj, before, after in records:
        if obj.pk is None:
            raise ValueError("save the object before recording an audit event for it")
        events.append(AuditEvent(
            actor=actor if is_user else None, actor_label=label, action=action[:60], object_type=object_type_of(obj),
            object_id=str(obj.pk), object_repr=str(obj)[:200], before=jsonable(before) if before is not None else None,
            after=jsonable(after) if after is not None else None, message=message,
        ))
    return AuditEvent.objects.bulk_create(events, batch_size=1000)


def object_type_of(obj: Model | type[Model]) -> str:
    return obj._meta.label_lower


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


def changed_only(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys whose value differs, on both sides (an edit records what it changed)."""
    keys = [key for key in after if before.get(key) != after.get(key)]
    keys += [key for key in before if key not in after]
    return {key: before.get(key) for key in keys}, {key: after.get(key) for key in keys}
