"""Two runs over the same items at the same moment, on real parallel database connections."""
from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django_tenants.utils import schema_context

from billing import services
from billing.models import BatchItem, BillingBatch
from invoices.models import InvoiceLine
from tests.billing.test_batches import CUTOFF, build_world
from tests.support import committed_billing_msp

pytestmark = pytest.mark.django_db
SCHEMA = "concurrency"


@pytest.fixture(scope="module")
def committed_world(django_db_setup, django_db_blocker):
    """A tenant of its own, committed so that other connections see it; dropped afterwards."""
    with committed_billing_msp(django_db_blocker, name="Concurrency IT", subdomain=SCHEMA, build=build_world) as world:
        yield world


def test_two_simultaneous_runs_bill_each_item_exactly_once(committed_world, django_db_blocker):
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(name: str) -> None:
        try:
            with django_db_blocker.unblock(), schema_context(SCHEMA):
                selection = services.selection_everything_due(cutoff=CUTOFF)
                barrier.wait(timeout=30)
                services.batch_run(name=name, cutoff=CUTOFF, selection=selection, consolidated=False, acting_user=committed_world["admin"])
                outcomes.append("billed")
        except ValidationError as error:
            outcomes.append("refused: " + " ".join(error.messages))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(f"Run {n}",)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(o.split(":")[0] for o in outcomes) == ["billed", "refused"], outcomes
    with django_db_blocker.unblock(), schema_context(SCHEMA):
        assert BillingBatch.objects.count() == 1
        items = list(BatchItem.objects.values_list("kind", "period_id", "charge_id"))
        # the retainer's and the block's March periods, and the Hourly contract's January to
        # March periods (nothing to invoice, billed along with its time)
        assert len(items) == len(set(items)) == 5
        billed_time = list(InvoiceLine.objects.filter(time_allocation__isnull=False, source_released_at__isnull=True)
                           .values_list("time_allocation_id", flat=True))
        assert len(billed_time) == len(set(billed_time)) == 4  # four time allocations of the resolved ticket
