"""The in-process half of bench_pooling, in a process of its own (``DATABASE_URL``, and
``DATABASE_POOL_MODE`` for the pooled backend).

``setup PREFIX COUNT``: COUNT MSPs with a few customers; ``mix PREFIX COUNT CLIENTS SECONDS``:
CLIENTS threads, each signed in as the owner of one of the MSPs in turn, repeat the request
mix for SECONDS — the ticket list, the customer list, a customer search, the contract list, and
a customer written through the service — checking that every page shows its own MSP. Prints
one JSON line: requests done, their median and the requests per second.
"""
from __future__ import annotations

import json
import statistics
import sys
import threading
import time
import uuid

import django

PASSWORD = "bench-pooling-2026"


def _subdomain(prefix: str, number: int) -> str:
    return f"{prefix}-{number}"


def _setup(prefix: str, count: int) -> dict:
    from django.db import connection
    from django_tenants.utils import tenant_context

    from contracts.services import customer_create
    from msp_billing.accounts.models import User
    from msp_billing.tenants.services import MspRequest, msp_create

    for number in range(count):
        msp = msp_create(request=MspRequest(name=f"Bench pooling {number}", subdomain=_subdomain(prefix, number),
                                            region="europe", currency="EUR", timezone="UTC",
                                            admin_email=f"owner@{_subdomain(prefix, number)}.example",
                                            admin_password=PASSWORD))
        with tenant_context(msp):
            owner = User.objects.get()
            for customer in range(20):
                customer_create(legal_name=f"{_subdomain(prefix, number)} customer {customer}", currency="EUR",
                                acting_user=owner)
        connection.set_schema_to_public()
    return {"msps": count}


def _mix(prefix: str, count: int, clients: int, seconds: float) -> dict:
    from django.db import connection
    from django.test import Client
    from django_tenants.utils import tenant_context

    from contracts.services import customer_create
    from msp_billing.accounts.models import User
    from msp_billing.tenants.models import Msp
    from msp_billing.tenants.urls import tenant_host

    times: list[float] = []
    errors: list[str] = []
    start = threading.Barrier(clients)
    run = uuid.uuid4().hex[:8]

    def client(number: int) -> None:
        subdomain = _subdomain(prefix, number % count)
        try:
            msp = Msp.objects.get(schema_name=subdomain.replace("-", "_"))
            browser = Client(HTTP_HOST=tenant_host(subdomain))
            with tenant_context(msp):
                owner = User.objects.get()
                browser.force_login(owner)
            connection.set_schema_to_public()
            mine = f"{subdomain} customer".encode()
            start.wait(timeout=60)
            ends = time.monotonic() + seconds
            written = 0
            while time.monotonic() < ends:
                for path, query in (("/tickets/", {}), ("/customers/", {}), ("/customers/", {"q": "customer 1"}), ("/contracts/", {})):
                    began = time.perf_counter()
                    response = browser.get(path, query)
                    times.append(time.perf_counter() - began)
                    if response.status_code != 200 or (path == "/customers/" and mine not in response.content):
                        errors.append(f"{subdomain} {path}: {response.status_code}")
                began = time.perf_counter()
                with tenant_context(msp):
                    customer_create(legal_name=f"{subdomain} written {run} {number}-{written}", currency="EUR", acting_user=owner)
                connection.set_schema_to_public()
                times.append(time.perf_counter() - began)
                written += 1
        except Exception as error:  # noqa: BLE001 - reported
            errors.append(repr(error))
            start.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {"requests": len(times), "median_ms": statistics.median(times) * 1000 if times else None,
            "per_second": len(times) / elapsed, "wrong": len(errors), "errors": errors[:3],
            "pooled": getattr(connection, "transaction_pooled", False)}


def main(argv: list[str]) -> None:
    django.setup()
    if argv[0] == "setup":
        result = _setup(argv[1], int(argv[2]))
    else:
        result = _mix(argv[1], int(argv[2]), int(argv[3]), float(argv[4]))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
