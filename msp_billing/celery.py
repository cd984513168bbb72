"""The Celery app. Tasks queued inside a tenant's schema run in that schema."""
import os

from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp_billing.settings.local")

app = CeleryApp("msp_billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from celery.signals import worker_ready, worker_shutdown  # noqa: E402

from msp_billing import heartbeat  # noqa: E402

worker_ready.connect(heartbeat.on_worker_ready, weak=False)
worker_shutdown.connect(heartbeat.on_worker_shutdown, weak=False)
