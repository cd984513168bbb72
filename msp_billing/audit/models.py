"""The audit trail every billing action writes to (docs/design.md § Audit trail).

Its own small app so that every other app — contracts, tickets, billing, invoices,
integrations — can record and show events without importing one another.
"""
from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from msp_billing.audit.labels import action_label, field_label, object_label


class AuditEvent(models.Model):
    """Who did what, when, to which object, with before/after.

    Generic on purpose: ``object_type`` is the object's ``app_label.model`` and
    ``object_id`` its primary key as text, so any app records through
    ``msp_billing.audit.services.audit_record``. The table keeps the name it was created
    with (the trail began in ``invoices``), so no existing event is lost.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=254, blank=True, help_text="The actor's e-mail as it was, or 'system'.")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=60, help_text="app_label.model")
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    message = models.TextField(blank=True)

    class Meta:
        db_table = "invoices_auditevent"
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="invoices_au_object__d1e0b3_idx"),
            models.Index(fields=["action"], name="invoices_au_action_b31b22_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_type}#{self.object_id} by {self.actor_label or 'system'}"

    @property
    def action_label(self) -> str:
        """The action as the pages name it: "Batch run", "Contract changed"."""
        return action_label(self.action)

    @property
    def object_label(self) -> str:
        """The object as the pages name it: "Contract Acme — Gold Remote"."""
        return object_label(self.object_type, self.object_id, self.object_repr)

    @property
    def is_edit(self) -> bool:
        """Both sides recorded: the event says what changed from what."""
        return self.before is not None and self.after is not None

    @property
    def changes(self) -> list[tuple[str, str, str]]:
        """(field, before, after) as the pages print them, for every key on either side."""
        before = self.before if isinstance(self.before, dict) else {}
        after = self.after if isinstance(self.after, dict) else {}
        keys = list(before) + [key for key in after if key not in before]
        return [(field_label(key), _shown(before.get(key)), _shown(after.get(key))) for key in keys]


def _shown(value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_shown(item)}" for key, item in value.items())
    return str(value)
