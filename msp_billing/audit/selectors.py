"""Reading the audit trail: one object's events, and the filterable report."""
from __future__ import annotations

from django.apps import apps
from django.db.models import Model, Q, QuerySet

from msp_billing.audit.labels import ACTION_LABELS, action_label, object_type_label
from msp_billing.audit.models import AuditEvent
from msp_billing.audit.services import object_type_of


def audit_events_for(obj: Model) -> QuerySet[AuditEvent]:
    """The trail of one object, newest first."""
    return AuditEvent.objects.filter(object_type=object_type_of(obj), object_id=str(obj.pk)).select_related("actor")


def audit_events(*, action: str = "", object_type: str = "", object_id: str = "", actor: str = "", start=None, end=None,
                 obj: Model | None = None) -> QuerySet[AuditEvent]:
    """The audit trail, newest first, filtered as the report's form allows.

    ``object_type`` is an exact ``app_label.model`` when it names one (as the report's
    choices do), else matched as part of it; ``object_id`` narrows to one object.
    """
    events = AuditEvent.objects.all()
    if obj is not None:
        events = events.filter(object_type=object_type_of(obj), object_id=str(obj.pk))
    if action:
        # The code (``batch_run``) or the words the pages show ("Batch run").
        events = events.filter(Q(action__icontains=action) | Q(action__in=actions_named(action)))
    if object_type:
        exact = "." in object_type and _model_for(object_type) is not None
        events = events.filter(object_type=object_type.lower()) if exact else events.filter(object_type__icontains=object_type)
    if object_id:
        events = events.filter(object_id=str(object_id))
    if actor:
        events = events.filter(Q(actor_label__icontains=actor))
    if start:
        events = events.filter(at__date__gte=start)
    if end:
        events = events.filter(at__date__lte=end)
    return events.order_by("-at", "-id")


def actions_named(text: str) -> list[str]:
    """The action codes recorded whose label contains ``text``: "batch run" → ["batch_run"]."""
    wanted = text.strip().lower()
    recorded = AuditEvent.objects.order_by().values_list("action", flat=True).distinct()
    return [action for action in recorded if wanted in action_label(action).lower()]


def action_choices() -> list[str]:
    """The labels of the actions recorded, then of the known ones, for the filter's suggestions."""
    recorded = AuditEvent.objects.order_by().values_list("action", flat=True).distinct()
    return sorted({action_label(action) for action in (*recorded, *ACTION_LABELS)})


def object_type_choices() -> list[tuple[str, str]]:
    """(app_label.model, "Contract") for every kind of object the trail holds, by label."""
    labels = AuditEvent.objects.order_by().values_list("object_type", flat=True).distinct()
    return sorted(((label, object_type_label(label)) for label in labels), key=lambda choice: choice[1].lower())


def _model_for(label: str) -> type[Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None
