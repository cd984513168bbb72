"""Which of a customer's contracts share a priority (the contract form warns about it)."""
from __future__ import annotations

from contracts.models import Contract, Customer


def contracts_sharing_priority(*, customer: Customer | int, priority: int, exclude_id: int | None = None) -> list[Contract]:
    """The customer's other live contracts that take time at ``priority``, oldest first
    (with equal priorities the older one takes time first: ``contracts/rules/routing.py``).
    The customer's default Hourly contract is left out: it takes what the others leave,
    whatever its number; so is everything when the contract asked about is that default."""
    customer_id = getattr(customer, "pk", customer)
    fallback_id = Customer.objects.filter(pk=customer_id).values_list("default_hourly_contract_id", flat=True).first()
    if exclude_id is not None and exclude_id == fallback_id:
        return []
    contracts = (Contract.objects.filter(customer_id=customer_id, priority=priority)
                 .exclude(status__in=(Contract.Status.ENDED, Contract.Status.CANCELLED))
                 .exclude(type=Contract.Type.ONLINE_BACKUP).order_by("id"))
    if fallback_id is not None:
        contracts = contracts.exclude(pk=fallback_id)
    if exclude_id is not None:
        contracts = contracts.exclude(pk=exclude_id)
    return list(contracts)
