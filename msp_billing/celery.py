"""The Celery app. Tasks queued inside a tenant's schema run in that schema."""
import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp_billing.settings.local")

app = CeleryApp("msp_billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
