"""Approve & Post: time waiting for an admin's approval (docs/design.md § Readiness, periods
and approval).

Where the MSP turns on time approval, an entry is ready for a batch only once approved
(``billing.readiness``). This page lists what waits — billable, unbilled entries of
resolved or closed tickets — with how each is routed and rated now. Approving is done by
``tickets.services.time_entries_approve`` (as they are) and ``time_entry_approve`` (with
posted hours, rate or contract). Parts and expenses need no approval: the model has no
approval state for them, and they are ready with their ticket as always.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django import forms
from django.db.models import Prefetch, Q, QuerySet

from billing.readiness import DONE_STATUSES
from contracts.models import Contract, Customer
from contracts.rules.routing import Bucket
from msp_billing.accounts.models import User
from msp_billing.templatetags.formatting import rate as format_rate
from tickets.models import Charge, TimeAllocation, TimeEntry
from tickets.services import contracts_valid_for, entry_fingerprint

CHARGED = (Bucket.CHARGED, Bucket.OVERAGE)
FINGERPRINT_LENGTH = 16


# --- reads --------------------------------------------------------------------------------------


def pending_time_entries(*, customer: Customer | None = None, technician: User | None = None,
                         contract: Contract | None = None, start: dt.date | None = None,
                         end: dt.date | None = None) -> QuerySet[TimeEntry]:
    """Billable, unbilled entries waiting for approval on resolved or closed tickets, oldest first.
    ``contract`` matches the contract an entry is routed to (or was chosen for it)."""
    entries = TimeEntry.objects.filter(
        approval=TimeEntry.Approval.PENDING, billed_at__isnull=True, billable=True, ticket__status__in=DONE_STATUSES,
    )
    if customer is not None:
        entries = entries.filter(ticket__customer=customer)
    if technician is not None:
        entries = entries.filter(technician=technician)
    if contract is not None:
        routed_to = TimeAllocation.objects.filter(contract=contract).values("entry_id")
        entries = entries.filter(Q(pk__in=routed_to) | Q(chosen_contract=contract))
    if start is not None:
        entries = entries.filter(date__gte=start)
    if end is not None:
        entries = entries.filter(date__lte=end)
    return (
        entries.select_related("ticket__customer", "technician", "work_type", "role", "chosen_contract")
        .prefetch_related(Prefetch("allocations", queryset=TimeAllocation.objects.select_related("contract").order_by("pk")))
        .order_by("date", "id")
    )


def pending_charges(*, customer: Customer | None = None, technician: User | None = None, contract: Contract | None = None,
                    start: dt.date | None = None, end: dt.date | None = None) -> QuerySet[Charge]:
    """Billable, unbilled parts and expenses waiting for approval on resolved or closed tickets, oldest first
    (``technician``: the ticket's)."""
    charges = Charge.objects.filter(state=Charge.State.WAITING, billed_at__isnull=True, billable=True,
                                    ticket__status__in=DONE_STATUSES)
    if customer is not None:
        charges = charges.filter(ticket__customer=customer)
    if technician is not None:
        charges = charges.filter(ticket__technician=technician)
    if contract is not None:
        charges = charges.filter(contract=contract)
    if start is not None:
        charges = charges.filter(date__gte=start)
    if end is not None:
        charges = charges.filter(date__lte=end)
    return charges.select_related("ticket__customer", "contract", "product").order_by("date", "id")


def charge_ids_from_post(data) -> list[int]:
    ids = []
    for value in data.getlist("charge"):
        if not str(value).isdigit() or not 0 < int(value) < 2**63:
            raise forms.ValidationError("The selection was changed by hand and cannot be read; reload the page.")
        ids.append(int(value))
    return ids


def time_entry_for_approval(*, entry_id: int) -> TimeEntry:
    """One entry with what its approval page shows (any state: a page opened twice may find it approved)."""
    return (
        TimeEntry.objects.select_related("ticket__customer", "technician", "work_type", "role", "chosen_contract",
                                         "posted_contract", "approved_by")
        .prefetch_related(Prefetch("allocations", queryset=TimeAllocation.objects.select_related("contract").order_by("pk")))
        .get(pk=entry_id)
    )


@dataclass
class PendingRow:
    """One entry as the page shows it: how it is routed and rated now."""

    entry: TimeEntry
    billed_minutes: int
    contracts: list[str]
    rates: list[str]
    rate: Decimal | None  # the one hourly rate of all its allocations, if they share one
    amount: Decimal | None  # charged amount; None when nothing is charged (covered or unrouted)
    covered: bool
    unrouted: bool
    currency: str
    fingerprint: str

    @property
    def hours(self) -> Decimal:
        return minutes_as_hours(self.billed_minutes)

    @property
    def logged_hours(self) -> Decimal:
        return minutes_as_hours(self.entry.minutes)


def pending_row(entry: TimeEntry) -> PendingRow:
    allocations = list(entry.allocations.all())
    charged = [a.amount.amount for a in allocations if a.bucket in CHARGED and a.amount is not None]
    rates = {a.rate.amount for a in allocations if a.rate is not None}
    return PendingRow(
        entry=entry,
        billed_minutes=sum(a.billed_minutes for a in allocations),
        contracts=[a.contract.name for a in allocations if a.contract_id],
        rates=[format_rate(a.rate) for a in allocations if a.rate is not None],
        rate=rates.pop() if len(rates) == 1 else None,
        amount=sum(charged, Decimal(0)) if charged else None,
        covered=any(a.bucket in (Bucket.ABSORBED, Bucket.DEDUCTED) for a in allocations),
        unrouted=entry.is_unrouted or not any(a.contract_id for a in allocations),
        currency=entry.ticket.customer.currency,
        fingerprint=entry_fingerprint(entry),
    )


def minutes_as_hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def hours_as_minutes(hours: Decimal) -> int:
    """Posted hours in whole minutes, to the nearest minute (1.33 h → 80 minutes)."""
    return int((hours * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- forms --------------------------------------------------------------------------------------


class ApprovalFilterForm(forms.Form):
    customer = forms.ModelChoiceField(label="Customer", required=False, queryset=Customer.objects.order_by("legal_name"),
                                      empty_label="Any customer")
    technician = forms.ModelChoiceField(label="Technician", required=False, queryset=User.objects.filter(time_entries__isnull=False).distinct().order_by("email"),
                                        empty_label="Any technician")
    contract = forms.ModelChoiceField(label="Contract", required=False,
                                      queryset=Contract.objects.select_related("customer").order_by("customer__legal_name", "name"),
                                      empty_label="Any contract")
    start = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError("The end date is before the start date.")
        return data


def seen_from_post(data) -> dict[int, str]:
    """The ticked entries (``entry``) with the fingerprint the page showed for each (``seen_<id>``)."""
    seen: dict[int, str] = {}
    for value in data.getlist("entry"):
        if not str(value).isdigit() or not 0 < int(value) < 2**63:
            raise forms.ValidationError("The selection was changed by hand and cannot be read; reload the page.")
        token = (data.get(f"seen_{int(value)}") or "").strip()
        if len(token) != FINGERPRINT_LENGTH or any(c not in "0123456789abcdef" for c in token):
            raise forms.ValidationError("The selection was changed by hand and cannot be read; reload the page.")
        seen[int(value)] = token
    return seen


class PostForm(forms.Form):
    """Approve one entry, adjusting hours, rate or contract before posting."""

    hours = forms.DecimalField(label="Hours to bill", max_digits=5, decimal_places=2,
                               help_text="Up to 24 hours; posted to the nearest minute.")
    rate = forms.DecimalField(label="Hourly rate", max_digits=11, decimal_places=4, required=False,
                              help_text="Leave empty to keep the rate the contract resolves.")
    contract = forms.ModelChoiceField(label="Contract", queryset=Contract.objects.all(), required=False,
                                      empty_label="As routed")
    seen = forms.CharField(widget=forms.HiddenInput, max_length=FINGERPRINT_LENGTH)

    def __init__(self, *args, entry: TimeEntry, **kwargs):
        super().__init__(*args, **kwargs)
        # Offer the contracts that may take this time; any other id is refused by the service with a reason.
        valid = contracts_valid_for(entry.ticket.customer, entry.date).exclude(type=Contract.Type.ONLINE_BACKUP)
        self.fields["contract"].widget.choices = [("", "As routed"), *((c.pk, f"{c.name} ({c.get_type_display()})") for c in valid)]
        self.fields["rate"].label = f"Hourly rate ({entry.ticket.customer.currency})"

    def clean_hours(self):
        hours = self.cleaned_data["hours"]
        if hours <= 0 or hours > 24:
            raise forms.ValidationError("Enter hours greater than 0 and at most 24.")
        if hours_as_minutes(hours) == 0:
            raise forms.ValidationError("That is less than a minute; enter at least 0.01 hours.")
        return hours

    def clean_rate(self):
        rate = self.cleaned_data["rate"]
        if rate is not None and rate < 0:
            raise forms.ValidationError("A rate cannot be negative.")
        return rate
