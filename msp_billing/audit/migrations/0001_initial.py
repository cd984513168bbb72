"""The audit trail moves from ``invoices`` to its own app.

The table ``invoices_auditevent`` (created by ``invoices.0001_initial``) stays as it is,
rows, indexes and all: this migration only tells Django that the model now belongs here.
``invoices.0003_auditevent_moved`` removes it from the ``invoices`` state.
"""
import django.core.serializers.json
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("invoices", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("actor_label", models.CharField(blank=True, help_text="The actor's e-mail as it was, or 'system'.", max_length=254)),
                        ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("action", models.CharField(max_length=60)),
                        ("object_type", models.CharField(help_text="app_label.model", max_length=60)),
                        ("object_id", models.CharField(max_length=64)),
                        ("object_repr", models.CharField(blank=True, max_length=200)),
                        ("before", models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                        ("after", models.JSONField(blank=True, encoder=django.core.serializers.json.DjangoJSONEncoder, null=True)),
                        ("message", models.TextField(blank=True)),
                        ("actor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        "db_table": "invoices_auditevent",
                        "ordering": ["-at", "-id"],
                        "indexes": [
                            models.Index(fields=["object_type", "object_id"], name="invoices_au_object__d1e0b3_idx"),
                            models.Index(fields=["action"], name="invoices_au_action_b31b22_idx"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
