"""The Create New Batch page: contracts with what is due, and the admin's selection.

The page lists the active contracts the filters and the search match, a page of
``PAGE_SIZE`` rows at a time, each with its total and selected balance read for that page
only (``billing.due.contract_balances``). The selection is not a list of every ticked row
but a *choice* (``WizardChoice``), which the form states and the server resolves:

* ``scope`` "all" — every contract that matches, as pre-selected (``preselection``: those
  with something due, not 0.00 unless the tenant issues zero invoices) — or "none";
* the contracts the admin ticked (``contract_on``) or unticked (``contract_off``) by hand;
  the rows of the page shown post ``shown_contract`` and ``contract`` (shown but not ticked
  means unticked), the other pages' changes travel as hidden fields;
* the single items left out, as before: ``shown_entry`` … without ``entry`` ….

``wizard_summary`` resolves the choice on the figures of everything due, and the batch
details and Run read the same resolution, so the details the admin sees are what the run
bills. ``match_token`` is a digest of the contracts that matched when the page was drawn:
if a contract was added, ended or renamed into or out of the search since, the choice
would mean something else, and the details and Run refuse (409). ``due_token``, with the
details, is the fingerprint of what was due when they were worked out (a run over a stale
page bills nothing). A contract the filters or the search hide is never in the batch, and
an id the page does not list (another MSP's, an ended contract) is refused (400).
"""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q

from billing.due import ContractDue, DueSummary, Selection, contract_balances, due_summary, issue_zero_invoices, preselection
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

NO_PERIOD_LINES = (Contract.Type.HOURLY, Contract.Type.PROJECT_HOURLY)

TOKEN_LENGTH = 40
PAGE_SIZE = 50
TAMPERED = "The selection was changed by hand and cannot be read; reload the page."


class WizardFilterForm(forms.Form):
    cutoff = forms.DateField(label="Cut-off date", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(label="Search", required=False, max_length=100, strip=True,
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Customer or contract"}))
    type = forms.ChoiceField(label="Contract type", required=False, choices=[("", "Any type"), *Contract.Type.choices])
    taxable = forms.ChoiceField(label="Taxable", required=False, choices=[("", "Taxable or not"), ("yes", "Taxable"), ("no", "Not taxable")])
    customer = forms.ModelChoiceField(label="Customer", required=False, queryset=Customer.objects.all(), empty_label="Any customer")
    hide_mid_period = forms.BooleanField(label="Hide contracts with nothing due", required=False)


def _ids(values) -> frozenset[int]:
    try:
        ids = frozenset(int(v) for v in values if str(v).strip())
    except (TypeError, ValueError):
        raise forms.ValidationError(TAMPERED) from None
    if any(not 0 < pk < 2**63 for pk in ids):
        raise forms.ValidationError(TAMPERED)
    return ids


def selection_from_post(data) -> Selection:
    token = (data.get("due_token") or "").strip() or None
    if token is not None and not _is_token(token):
        raise forms.ValidationError(TAMPERED)
    return Selection(
        contract_ids=_ids(data.getlist("contract")),
        excluded_period_ids=_ids(data.getlist("shown_period")) - _ids(data.getlist("period")),
        excluded_entry_ids=_ids(data.getlist("shown_entry")) - _ids(data.getlist("entry")),
        excluded_charge_ids=_ids(data.getlist("shown_charge")) - _ids(data.getlist("charge")),
        due_token=token,
    )


def _is_token(token: str) -> bool:
    return len(token) == TOKEN_LENGTH and all(c in "0123456789abcdef" for c in token)


class MatchChanged(Exception):
    """The contracts that match the filters and the search are not those the page listed."""

    message = ("Nothing was billed: the contracts that match changed since this page was loaded (a contract was added, "
               "ended or renamed). Reload the page and check the batch again.")


@dataclass(frozen=True)
class WizardChoice:
    """What the admin picked, as the form states it (see the module docstring): every
    matching contract as pre-selected or none, the contracts ticked and unticked by hand,
    and the items left out (``items``: a ``Selection`` without contracts, with the due token)."""

    all_matching: bool = True
    ticked: frozenset[int] = frozenset()
    unticked: frozenset[int] = frozenset()
    items: Selection = Selection()
    match_token: str | None = None

    def reset(self, *, all_matching: bool) -> WizardChoice:
        """"Select all that match" (everything due on every matching contract) or "Select none"."""
        return WizardChoice(all_matching=all_matching, items=Selection(due_token=self.items.due_token))


def choice_from_post(data) -> WizardChoice:
    """The choice a posted batch form states. A form without ``scope`` (built by hand, or by a
    script) picks exactly the contracts it posts."""
    items = selection_from_post(data)
    scope = data.get("scope", "none")
    if scope not in ("all", "none"):
        raise forms.ValidationError(TAMPERED)
    match_token = (data.get("match_token") or "").strip() or None
    if match_token is not None and not _is_token(match_token):
        raise forms.ValidationError(TAMPERED)
    shown, checked = _ids(data.getlist("shown_contract")), items.contract_ids
    return WizardChoice(
        all_matching=scope == "all",
        ticked=(_ids(data.getlist("contract_on")) - shown) | checked,
        unticked=((_ids(data.getlist("contract_off")) - shown) | (shown - checked)) - checked,
        items=replace(items, contract_ids=frozenset()), match_token=match_token)


def matching_ids(filters: dict) -> list[int]:
    """The ids of the contracts the filters and the search match, in the page's order."""
    return list(wizard_contracts(filters).values_list("pk", flat=True))


def match_token(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, sorted(ids))).encode()).hexdigest()[:TOKEN_LENGTH]


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

    def ids(self):
        """The items listed, as the form's ``shown_…`` fields name them."""
        yield from (("shown_period", item["period"].pk) for item in self.periods)
        yield from (("shown_entry", item["entry"].pk) for group in self.tickets.values() for item in group.entries)
        yield from (("shown_charge", item["charge"].pk) for item in self.charges)


@dataclass
class ContractRow:
    contract: Contract
    due: ContractDue
    chosen: bool = True
    items: ContractItems | None = None  # loaded when expanded

    @property
    def selected(self) -> Decimal:
        """What this row adds to the batch: its selected balance when ticked."""
        return self.due.selected if self.chosen else Decimal(0)

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
    if filters.get("q"):
        contracts = contracts.filter(Q(name__icontains=filters["q"]) | Q(customer__legal_name__icontains=filters["q"]))
    if filters.get("hide_mid_period"):
        contracts = contracts.filter(_something_ready(filters["cutoff"]))
    return contracts


def _something_ready(cutoff: dt.date) -> Q:
    """A contract with time, a part or expense, or a period with lines (not an Hourly or
    Project — hourly contract's) ready by the cut-off: those rows have a checkbox."""
    mine = {"contract_id": OuterRef("pk")}
    return (Q(Exists(ready_time_allocations(cutoff=cutoff).filter(**mine)))
            | Q(Exists(ready_charges(cutoff=cutoff).filter(**mine)))
            | Q(Exists(ready_periods(cutoff=cutoff).filter(**mine)), ~Q(type__in=NO_PERIOD_LINES)))


def wizard_summary(*, filters: dict, choice: WizardChoice, consolidated: bool, details: bool = True) -> DueSummary:
    """What is due, and the batch details of the admin's ``choice`` resolved on it:
    ``summary.selection`` is what Run bills. Raises ``forms.ValidationError`` for an id the
    page does not list, ``MatchChanged`` when the matching contracts are not those the page
    listed."""
    ids = matching_ids(filters)
    matching = frozenset(ids)
    if choice.match_token and choice.match_token != match_token(ids):
        raise MatchChanged
    if not (choice.ticked | choice.unticked) <= matching:
        raise forms.ValidationError("The selection names a contract this page does not list; reload the page.")
    cutoff = filters["cutoff"]
    zero_invoices = issue_zero_invoices()

    def picked(figures: dict[int, ContractDue]) -> frozenset[int]:
        base = preselection(figures, cutoff=cutoff, candidates=matching, zero_invoices=zero_invoices) if choice.all_matching else frozenset()
        return frozenset(((base | choice.ticked) - choice.unticked) & figures.keys())

    return due_summary(cutoff=cutoff, selection=choice.items, preselect=picked, consolidated=consolidated, details=details)


def filter_fields(filters: dict) -> list[tuple[str, str]]:
    """The filters as hidden fields of the batch form, so a page drawn again keeps them."""
    fields = [(name, filters[name]) for name in ("q", "type", "taxable") if filters.get(name)]
    if filters.get("customer"):
        fields.append(("customer", str(filters["customer"].pk)))
    if filters.get("hide_mid_period"):
        fields.append(("hide_mid_period", "on"))
    return fields


@dataclass
class WizardPage:
    """One page of the list: its rows, how many contracts match, and the choice's hidden
    fields for the contracts and items not on this page."""

    rows: list[ContractRow]
    page: Page
    matching: int
    match_token: str
    choice: WizardChoice
    carried_on: list[int]
    carried_off: list[int]
    carried_items: list[tuple[str, int]]


def wizard_page(*, filters: dict, choice: WizardChoice, page_number) -> WizardPage:
    """The rows of one page (a bad or too large page number gives the first or the last
    page), ticked as ``choice`` resolves for them, in a fixed number of queries however many
    contracts match: the matching ids, the page's contracts, their balances."""
    cutoff = filters["cutoff"]
    ids = matching_ids(filters)
    page = Paginator(ids, PAGE_SIZE).get_page(page_number)
    shown = frozenset(page.object_list)
    contracts = wizard_contracts({"cutoff": cutoff}).filter(pk__in=shown).in_bulk()
    figures = contract_balances(cutoff=cutoff, contract_ids=shown, excluded=choice.items)
    picked = (_preselected_on_page(figures, cutoff=cutoff, shown=shown, matching=ids) if choice.all_matching else frozenset())
    picked = (picked | choice.ticked) - choice.unticked
    expanded = expanded_contracts(choice.items, cutoff=cutoff) & shown
    items = contract_items(cutoff=cutoff, contract_ids=expanded, selection=choice.items)
    rows = [ContractRow(contract=contracts[pk], due=figures.get(pk) or ContractDue(), chosen=pk in picked, items=items.get(pk))
            for pk in page.object_list]
    listed = {(name, pk) for contract_items_ in items.values() for name, pk in contract_items_.ids()}
    left_out = choice.items
    carried_items = sorted({*(("shown_period", pk) for pk in left_out.excluded_period_ids),
                            *(("shown_entry", pk) for pk in left_out.excluded_entry_ids),
                            *(("shown_charge", pk) for pk in left_out.excluded_charge_ids)} - listed)
    # A page turned keeps the digest the choice was made on (Run refuses if the matching contracts changed since).
    return WizardPage(rows=rows, page=page, matching=len(ids), match_token=choice.match_token or match_token(ids), choice=choice,
                      carried_on=sorted(choice.ticked - shown), carried_off=sorted(choice.unticked - shown),
                      carried_items=carried_items)


def _preselected_on_page(figures: dict[int, ContractDue], *, cutoff: dt.date, shown: frozenset[int], matching: list[int]) -> frozenset[int]:
    """The pre-selection among the page's rows. A 0.00 row is picked when it shares time with
    a picked contract, which may be on another page: those contracts' balances are read too."""
    zero = {pk for pk in shown if pk in figures and figures[pk].total == 0}
    candidates = set(shown)
    if zero:
        partners = set(ready_time_allocations(cutoff=cutoff).filter(contract_id__in=zero, entry__allocations__superseded_at__isnull=True)
                       .order_by().values_list("entry__allocations__contract_id", flat=True).distinct())
        partners = (partners - shown) & set(matching)
        figures = {**figures, **contract_balances(cutoff=cutoff, contract_ids=frozenset(partners), excluded=Selection())}
        candidates |= partners
    return preselection(figures, cutoff=cutoff, candidates=candidates, zero_invoices=issue_zero_invoices()) & shown


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
