"""The in-process half of bench_tenants: run in a process of its own against the scratch database.

``create COUNT PREFIX``: that many MSPs through ``msp_create``, each timed; ``measure``: the
due-work query, beat's task counts and a tenant page's time. Prints one JSON line.
"""
from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time

import django


def _create(count: int, prefix: str) -> dict:
    from django.db import connection

    from msp_billing.tenants.models import Msp
    from msp_billing.tenants.services import MspRequest, msp_create

    start = Msp.objects.filter(subdomain__startswith=f"{prefix}-").count()
    seconds = []
    for number in range(start, start + count):
        began = time.perf_counter()
        msp_create(request=MspRequest(name=f"{prefix} {number}", subdomain=f"{prefix}-{number:05d}", region="europe",
                                      currency="EUR", timezone="UTC", admin_email=f"owner@{prefix}{number}.example",
                                      admin_password="bench-tenants-2026"))
        seconds.append(time.perf_counter() - began)
        connection.set_schema_to_public()
    return {"seconds": seconds}


def _measure() -> dict:
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from django_tenants.utils import schema_context

    from integrations.models import ExportRun
    from integrations.services import export_runs_due
    from msp_billing.tenant_scan import schemas_with, tenant_schemas
    from msp_billing.tenants.urls import tenant_host

    schemas = tenant_schemas()
    for schema in schemas[:: 100]:  # 1 % of the MSPs have a run whose worker died
        with schema_context(schema):
            if not ExportRun.objects.exists():
                run = ExportRun.objects.create(system="xero", document_ids=[1], total=1, state="running")
                ExportRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    connection.set_schema_to_public()
    began = time.perf_counter()
    due = schemas_with(export_runs_due)
    due_seconds = time.perf_counter() - began

    per_day = 0
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry["task"] == "msp_billing.tasks.fan_out_to_tenants":
            per_day += int(dt.timedelta(days=1) / entry["schedule"])
    due_entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if len(e.get("args", ())) == 3]
    due_per_day = sum(int(dt.timedelta(days=1) / e["schedule"]) for e in due_entries)

    subdomain = schemas[len(schemas) // 2].replace("_", "-")
    client = Client(HTTP_HOST=tenant_host(subdomain))
    for _ in range(5):
        client.get("/accounts/login/")
    times = []
    for _ in range(60):
        began = time.perf_counter()
        response = client.get("/accounts/login/")
        times.append(time.perf_counter() - began)
    assert response.status_code == 200, response.status_code
    return {
        "due_query_seconds": due_seconds, "due_msps": len(due),
        "fan_out_tasks_per_day": per_day * len(schemas),
        # entries with a due check queue only where there is work; the others still fan out to all
        "due_tasks_per_day": (per_day - due_per_day) * len(schemas) + due_per_day * len(due),
        "request_ms": statistics.median(times) * 1000,
    }


def main(argv: list[str]) -> None:
    django.setup()
    result = _create(int(argv[1]), argv[2]) if argv[0] == "create" else _measure()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
