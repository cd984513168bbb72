"""Writes of the benchmark app: the opt-in switch and technicians' cost rates, each audited."""
from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from benchmark.models import BenchmarkSettings, TechnicianCostRate
from msp_billing.accounts.roles import Role
from msp_billing.audit.services import audit_record


@transaction.atomic
def benchmark_opt_in_set(*, opted_in: bool, acting_user) -> BenchmarkSettings:
    """Switch contributing to the platform's anonymous aggregate; owners only."""
    if getattr(acting_user, "role", None) != Role.OWNER:
        raise ValidationError("Only the owner may change whether this MSP takes part in the benchmark.")
    config = BenchmarkSettings.objects.select_for_update().get(pk=BenchmarkSettings.load().pk)
    if config.opted_in == opted_in:
        return config
    before = {"opted_in": config.opted_in}
    config.opted_in = opted_in
    config.changed_at = timezone.now()
    config.save()
    audit_record(actor=acting_user, action="benchmark_opt_in_switched", obj=config, before=before,
                 after={"opted_in": opted_in},
                 message="Opted in to the anonymous benchmark." if opted_in else "Opted out of the anonymous benchmark.")
    return config


@transaction.atomic
def technician_cost_rate_set(*, technician, cost_rate: Decimal | None, acting_user) -> TechnicianCostRate | None:
    """Set a technician's hourly cost (home currency); None goes back to their role's cost rate."""
    current = TechnicianCostRate.objects.select_for_update().filter(technician=technician).first()
    before = {"cost_rate": current.cost_rate if current else None}
    if cost_rate is None:
        if current:
            audit_record(actor=acting_user, action="technician_cost_rate_changed", obj=current, before=before,
                         after={"cost_rate": None}, message=f"{technician}: back to the role's cost rate.")
            current.delete()
        return None
    if not cost_rate.is_finite() or cost_rate < 0:
        raise ValidationError({"cost_rate": "Enter a cost rate of 0 or more."})
    if current is None:
        current = TechnicianCostRate.objects.create(technician=technician, cost_rate=cost_rate)
    else:
        current.cost_rate = cost_rate
        current.save()
    audit_record(actor=acting_user, action="technician_cost_rate_changed", obj=current, before=before,
                 after={"cost_rate": cost_rate}, message=f"{technician}: cost rate {cost_rate}.")
    return current
