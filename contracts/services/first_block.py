"""A Block contract and the first block the customer buys, created together."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from contracts.models import Contract
from contracts.services.contracts import contract_create
from contracts.services.terms import block_purchase_add


@transaction.atomic
def contract_create_with_block(*, block: Mapping[str, Any] | None, acting_user, **contract: Any) -> Contract:
    """``contract_create``, then (for Block Hours and Block Money) ``block_purchase_add`` of
    ``block`` (``minutes`` or ``amount``, and ``price``) bought on the start date: both are
    saved, or neither."""
    created = contract_create(**contract, acting_user=acting_user)
    if block is not None and created.is_block:
        block_purchase_add(contract=created, purchased_on=created.start_date, minutes=block.get("minutes"),
                           amount=block.get("amount"), price=block.get("price"), acting_user=acting_user)
    return created
