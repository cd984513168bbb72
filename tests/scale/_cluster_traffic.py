"""Pages read and time logged in the demo MSP for a while, as a process of its own (``DATABASE_URL``
names the database): ``python -m tests.scale._cluster_traffic SECONDS``. Prints one JSON line:
requests, their statuses, the slowest, the time entries logged (ids) and every error."""
from __future__ import annotations

import datetime as dt
import json
import sys
import time

import django


def main(seconds: float) -> dict:
    django.setup()
    from django.db import transaction
    from django.test import Client
    from django_tenants.utils import tenant_context

    from msp_billing.accounts.models import User
    from msp_billing.tenants.models import Msp
    from msp_billing.tenants.urls import tenant_host
    from tickets.models import Ticket
    from tickets.services import time_entry_log
    from contracts.models import WorkType

    msp = Msp.objects.get(subdomain="demo")
    statuses: dict[str, int] = {}
    errors: list[str] = []
    logged: list[int] = []
    slowest = 0.0
    requests = 0
    with tenant_context(msp):
        owner = User.objects.get(email="owner@demo.example")
        technician = User.objects.get(email="tech1@demo.example")
        ticket = Ticket.objects.filter(billed_at__isnull=True, status="open").order_by("pk").first() \
            or Ticket.objects.filter(billed_at__isnull=True).order_by("pk").first()
        work_type = WorkType.objects.order_by("pk").first()
        client = Client(HTTP_HOST=tenant_host("demo"))
        client.force_login(owner)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in ("/invoices/", "/billing/"):
                began = time.monotonic()
                try:
                    status = client.get(path).status_code
                except Exception as error:  # noqa: BLE001 — every failure is reported, none hidden
                    errors.append(f"GET {path}: {error!r}")
                    continue
                slowest = max(slowest, time.monotonic() - began)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
                requests += 1
            try:
                with transaction.atomic():
                    entry = time_entry_log(ticket=ticket, technician=technician, work_type=work_type,
                                           date=dt.date.today(), minutes=15, notes="logged during the move")
                logged.append(entry.pk)
            except Exception as error:  # noqa: BLE001
                errors.append(f"time entry: {error!r}")
    return {"requests": requests, "statuses": statuses, "slowest": slowest, "logged": logged, "errors": errors}


if __name__ == "__main__":
    print(json.dumps(main(float(sys.argv[1]))))
