"""The Create New Batch page: contracts with what is due, and the admin's selection.

The page lists every active contract the filters show with its total and selected balance
from one ``due_summary``, whose batch details are for exactly the rows it ticks: the
pre-selection of the shown rows on the first view, the posted form after that — the same
form Run bills. A contract the filters hide is never in the batch. A contract's single
items (periods, tickets with their time entries, charges) are loaded when the admin
expands it. The form posts the picked contracts and, for each expanded contract, which
items were shown (``shown_entry`` …) and which are still ticked (``entry`` …): shown but
not ticked means left out. ``due_token`` carries the fingerprint of what was due when the
page was built, so a run over a stale page bills nothing.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django import forms

from billing.due import ContractDue, DueSummary, Selection, due_summary, issue_zero_invoices, preselection
from billing.readiness import (
    periods_make_ready,
    ready_charges,
    ready_periods,
    ready_time_allocations,
)
from contracts.models import Contract, Customer
from contracts.period_charges import periods_lines
from contracts.rules.rates import marked_up_amount
from contracts.rules.routing import Bucket

TOKEN_LENGTH = 40


class WizardFilterForm(forms.Form):
    cutoff = forms.DateField(label="Cut-off date", widget=forms.DateInput(attrs={"type": "date"}))
    type = forms.ChoiceField(label="Contract type", required=False, choices=[("", "Any type"), *Contract.Type.choices])
    taxable = forms.ChoiceField(label="Taxable", required=False, choices=[("", "Taxable or not"), ("yes", "Taxable"), ("no", "Not taxable")])
    customer = forms.ModelChoiceField(label="Customer", required=False, queryset=Customer.objects.all(), empty_label="Any customer")
    hide_mid_period = forms.BooleanField(label="Hide contracts with nothing due", required=False)


def _ids(values) -> frozenset[int]:
    try:
        ids = frozenset(int(v) for v in values if str(v).strip())
    except (TypeError, ValueError):
        raise forms.ValidationError("The selection was changed by hand and cannot be read; reload the page.") from None
    if any(not 0 < pk < 2**63 for pk in ids):
        raise forms.ValidationError("The selection was changed by hand and cannot be read; reload the page.")
    return ids


def selection_from_post(data) -> Selection:
    token = (data.get("due_token") or "").strip() or None
    if token is not None and (len(token) != TOKEN_LENGTH or not all(c in "0123456789abcdef" for c in token)):
        raise forms.ValidationError("The selection was changed by hand and cannot be read; reload the page.")
    return Selection(
        contract_ids=_ids(data.getlist("contract")),
        excluded_period_ids=_ids(data.getlist("shown_period")) - _ids(data.getlist("period")),
        excluded_entry_ids=_ids(data.getlist("shown_entry")) - _ids(data.getlist("entry")),
        excluded_charge_ids=_ids(data.getlist("shown_charge")) - _ids(data.getlist("charge")),
        due_token=token,
    )


@dataclass
class TicketGroup:
    ticket_id: int
    title: str
    entries: list[dict] = field(default_factory=list)


@dataclass
class ContractItems:
    periods: list[dict] = field(default_factory=list)
    tickets: dict[int, TicketGroup] = field(default_factory=dict)
    charges: list[dict] = field(default_factory=list)


@dataclass
class ContractRow:
    contract: Contract
    due: ContractDue
    chosen: bool = True
    items: ContractItems | None = None  # loaded when expanded

    @property
    def has_due(self) -> bool:
        return bool(self.due.entries or self.due.periods or self.due.charges)

    @property
    def zero_due(self) -> bool:
        """Something is due but it comes to 0.00 (covered or deducted time only)."""
        return self.has_due and self.due.total == 0

    @property
    def counts(self) -> str:
        """What is due, counted: "1 period, 14 time entries"."""
        due = self.due
        parts = [f"{n} {one if n == 1 else many}" for n, one, many in (
            (due.periods, "period", "periods"), (due.entries, "time entry", "time entries"), (due.charges, "charge", "charges")) if n]
        return ", ".join(parts)


def wizard_contracts(filters: dict):
    """The active contracts the filters show (every row of the page, due or not)."""
    contracts = (Contract.objects.filter(status=Contract.Status.ACTIVE).select_related("customer")
                 .only("id", "name", "type", "priority", "customer__legal_name").order_by("customer__legal_name", "priority", "pk"))
    if filters.get("type"):
        contracts = contracts.filter(type=filters["type"])
    if filters.get("taxable"):
        contracts = contracts.filter(taxable=filters["taxable"] == "yes")
    if filters.get("customer"):
        contracts = contracts.filter(customer=filters["customer"])
    return contracts


def wizard_summary(*, filters: dict, selection: Selection | None, consolidated: bool) -> DueSummary:
    """What is due, and the batch details of ``selection`` — or, before the admin has changed
    anything, of the pre-selection: the contracts the filters show with something due (not
    0.00 unless the tenant issues zero invoices). A contract the filters hide is never picked."""
    cutoff = filters["cutoff"]
    if selection is not None:
        return due_summary(cutoff=cutoff, selection=selection, consolidated=consolidated)
    shown = set(wizard_contracts(filters).order_by().values_list("pk", flat=True))
    zero_invoices = issue_zero_invoices()
    return due_summary(cutoff=cutoff, consolidated=consolidated, preselect=lambda figures: preselection(
        figures, cutoff=cutoff, candidates=shown, zero_invoices=zero_invoices))


def filter_fields(filters: dict) -> list[tuple[str, str]]:
    """The filters as hidden fields of the batch form, so a page drawn again keeps them."""
    fields = [(name, filters[name]) for name in ("type", "taxable") if filters.get(name)]
    if filters.get("customer"):
        fields.append(("customer", str(filters["customer"].pk)))
    if filters.get("hide_mid_period"):
        fields.append(("hide_mid_period", "on"))
    return fields


def wizard_rows(*, filters: dict, summary: DueSummary, items: dict[int, ContractItems]) -> list[ContractRow]:
    """One row per active contract the filters show, with its balances, ticked as in
    ``summary.selection`` (the selection its batch details are for)."""
    picked = summary.selection.contract_ids
    rows = [
        ContractRow(contract=c, due=summary.contracts.get(c.pk) or ContractDue(), chosen=c.pk in picked, items=items.get(c.pk))
        for c in wizard_contracts(filters)
    ]
    if filters.get("hide_mid_period"):
        rows = [row for row in rows if row.has_due]
    return rows


def expanded_contracts(selection: Selection | None, *, cutoff: dt.date) -> set[int]:
    """Contracts with items left out: shown expanded when the page is drawn again (after an error)."""
    if selection is None:
        return set()
    ids = set(ready_periods(cutoff=cutoff).filter(pk__in=selection.excluded_period_ids).values_list("contract_id", flat=True))
    ids |= set(ready_time_allocations(cutoff=cutoff).filter(entry_id__in=selection.excluded_entry_ids).values_list("contract_id", flat=True))
    ids |= set(ready_charges(cutoff=cutoff).filter(pk__in=selection.excluded_charge_ids).values_list("contract_id", flat=True))
    return ids


def contract_items(*, cutoff: dt.date, contract_ids: set[int], selection: Selection | None) -> dict[int, ContractItems]:
    """The single items due on ``contract_ids``, each marked ticked unless left out."""
    result = {pk: ContractItems() for pk in contract_ids}
    if not contract_ids:
        return result

    def ticked(kind: str, pk: int) -> bool:
        return selection is None or pk not in getattr(selection, kind)

    periods_make_ready(cutoff=cutoff)
    periods = list(ready_periods(cutoff=cutoff).filter(contract_id__in=contract_ids))
    lines = periods_lines(periods)
    for period in periods:
        amount = sum((line.amount for line in lines[period.pk]), Decimal(0))
        result[period.contract_id].periods.append({"period": period, "amount": amount, "selected": ticked("excluded_period_ids", period.pk)})
    allocations = (
        ready_time_allocations(cutoff=cutoff).filter(contract_id__in=contract_ids)
        .select_related("entry__ticket", "entry__work_type", "entry__technician").order_by("entry__ticket_id", "entry__date", "pk")
    )
    for allocation in allocations:
        entry = allocation.entry
        items = result[allocation.contract_id]
        group = items.tickets.setdefault(entry.ticket_id, TicketGroup(ticket_id=entry.ticket_id, title=entry.ticket.title))
        amount = allocation.amount.amount if allocation.bucket in (Bucket.CHARGED, Bucket.OVERAGE) else Decimal(0)
        group.entries.append({"allocation": allocation, "entry": entry, "amount": amount, "selected": ticked("excluded_entry_ids", entry.pk)})
    for charge in ready_charges(cutoff=cutoff).filter(contract_id__in=contract_ids).select_related("contract"):
        amount = marked_up_amount(quantity=charge.quantity, unit_price=charge.unit_price.amount,
                                  markup_percent=charge.markup_percent, currency=charge.contract.currency)
        result[charge.contract_id].charges.append({"charge": charge, "amount": amount, "selected": ticked("excluded_charge_ids", charge.pk)})
    return result
