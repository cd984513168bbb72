"""A technician's start/stop timer on a ticket.

The running timer is a row (``RunningTimer``: person, ticket, start), so it survives a
reload, a closed tab or a switch to another device. Stopping it removes the row and gives
the elapsed time in whole minutes (to the nearest minute, at least 1) for the time form:
nothing is logged until the technician saves that form, where the contract's rounding
rule applies as for any other entry.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tickets.models import RunningTimer, Ticket


@dataclass(frozen=True)
class StoppedTimer:
    started_at: dt.datetime
    ended_at: dt.datetime

    @property
    def minutes(self) -> int:
        seconds = Decimal((self.ended_at - self.started_at).total_seconds())
        return max(1, int((seconds / 60).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def timer_running(*, user, ticket: Ticket) -> RunningTimer | None:
    return RunningTimer.objects.filter(user=user, ticket=ticket).first()


@transaction.atomic
def timer_start(*, user, ticket: Ticket) -> RunningTimer:
    """Start the person's timer on the ticket; a second start (double tap, another device) keeps the first."""
    if ticket.is_locked:
        raise ValidationError(f"Ticket #{ticket.pk} was billed and is locked: it takes no more time.")
    timer, _ = RunningTimer.objects.get_or_create(user=user, ticket=ticket, defaults={"started_at": timezone.now()})
    return timer


@transaction.atomic
def timer_stop(*, user, ticket: Ticket) -> StoppedTimer:
    timer = RunningTimer.objects.select_for_update().filter(user=user, ticket=ticket).first()
    if timer is None:
        raise ValidationError("No timer is running on this ticket (it was stopped already, perhaps on another device).")
    timer.delete()
    return StoppedTimer(started_at=timer.started_at, ended_at=timezone.now())
