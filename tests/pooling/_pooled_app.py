"""The app behind the PgBouncer, as a process of its own (``DATABASE_URL`` names the pool,
``DATABASE_POOL_MODE=transaction``): ``python -m tests.pooling._pooled_app SUBDOMAIN``.

Writes customers through the service and reads them back on the customer pages, takes the
export lock and checks another connection cannot take it until it is released. Prints one
JSON line."""
from __future__ import annotations

import json
import sys
import threading

import django


def main(subdomain: str) -> dict:
    django.setup()
    from django.db import connection
    from django.test import Client
    from django_tenants.utils import tenant_context

    from contracts.models import Customer
    from contracts.services import customer_create
    from msp_billing.accounts.models import User
    from msp_billing.db_locks import advisory_lock_try
    from msp_billing.tenants.models import Msp
    from msp_billing.tenants.urls import tenant_host

    report: dict = {"pooled": getattr(connection, "transaction_pooled", False), "errors": [], "pages": [],
                    "customers": [], "written": 0}
    msp = Msp.objects.get(schema_name=subdomain)
    client = Client(HTTP_HOST=tenant_host(subdomain))
    with tenant_context(msp):
        owner = User.objects.get(email=f"owner@{subdomain}.example")
        client.force_login(owner)
    for number in range(8):
        name = f"Pooled customer {number}"
        with tenant_context(msp):
            customer_create(legal_name=name, currency="EUR", acting_user=owner)
            report["customers"].append(name)
            report["written"] = Customer.objects.filter(legal_name__startswith="Pooled customer").count()
        connection.set_schema_to_public()
        response = client.get("/customers/", {"q": name})
        shown = response.status_code == 200 and name.encode() in response.content
        report["pages"].append(f"{response.status_code} with the customer" if shown else f"{response.status_code} without it")

    key = f"{subdomain}:pooling-test-lock"
    elsewhere: dict[str, bool] = {}

    def try_elsewhere(label: str) -> None:
        try:
            with advisory_lock_try(key) as held:
                elsewhere[label] = held
        except Exception as error:  # noqa: BLE001 - reported
            report["errors"].append(repr(error))
        finally:
            connection.close()

    with advisory_lock_try(key) as taken:
        for _ in range(20):  # statements that go to any server connection of the pool meanwhile
            Msp.objects.count()
        other = threading.Thread(target=try_elsewhere, args=("held",))
        other.start()
        other.join()
    after = threading.Thread(target=try_elsewhere, args=("released",))
    after.start()
    after.join()
    report["lock"] = {"taken": taken, "taken_again_elsewhere": elsewhere.get("held"),
                      "free_after_release": elsewhere.get("released")}
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
