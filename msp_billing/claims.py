"""Claiming rows for a billing run: unbilled rows marked billed, all or nothing.

Each app claims its own rows (``contracts.periods.periods_claim``,
``tickets.bulk.charges_claim``) with this one rule: the rows are locked in id order (two
runs over the same rows queue, never deadlock), and a claim that finds any of them billed
already raises ``AlreadyClaimed`` so the run bills nothing.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from django.db import models


class AlreadyClaimed(Exception):
    """Some of the rows were billed a moment ago by another run."""


def claim_unbilled(model: type[models.Model], ids: Collection[int], *, at: dt.datetime) -> None:
    """Set ``billed_at`` on the rows ``ids`` of ``model``, none of which may be billed yet."""
    if not ids:
        return
    claimed = model.objects.filter(pk__in=model.objects.select_for_update().filter(pk__in=ids, billed_at__isnull=True)
                                   .order_by("pk").values("pk")).update(billed_at=at)
    if claimed != len(set(ids)):
        raise AlreadyClaimed
