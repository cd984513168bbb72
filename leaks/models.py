"""What the leak finder stores: the dismissals. Leaks themselves are found afresh from the data."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class LeakDismissal(models.Model):
    """A leak an admin judged not to be one, with the reason. It hides the leak only while the
    data it was found in is the same (``fingerprint``): when the data changes, the leak is back."""

    kind = models.CharField(max_length=40)
    key = models.CharField(max_length=120, help_text="Names the object(s) the leak is about, e.g. entry:12.")
    fingerprint = models.CharField(max_length=32)
    reason = models.CharField(max_length=300)
    dismissed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    dismissed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-dismissed_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["kind", "key", "fingerprint"], name="leak_dismissed_once")]

    def __str__(self) -> str:
        return f"Dismissed {self.kind} {self.key}"
