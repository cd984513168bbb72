"""The Create New Batch page: contracts with what is due, and the admin's selection."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django import forms

from billing import services
from billing.readiness import ready_charges, ready_periods, ready_time_allocations
from billing.selectors import charge_unit_price
from contracts.models import Contract, Customer
from contracts.period_charges import period_lines
from contracts.rules.routing import Bucket
from msp_billing.money import line_amount


class WizardFilterForm(forms.Form):
    cutoff = forms.DateField(label="Cut-off date", widget=forms.DateInput(attrs={"type": "date"}))
    type = forms.ChoiceField(label="Contract type", required=False, choices=[("", "Any type"), *Contract.Type.choices])
    taxable = forms.ChoiceField(label="Taxable", required=False, choices=[("", "Taxable or not"), ("yes", "Taxable"), ("no", "Not taxable")])
    customer = forms.ModelChoiceField(label="Customer", required=False, queryset=Customer.objects.all(), empty_label="Any customer")
    hide_mid_period = forms.BooleanField(label="Hide contracts with nothing due", required=False)


def _ids(values) -> frozenset[int]:
    try:
        return frozenset(int(v) for v in values if str(v).strip())
    except (TypeError, ValueError):
        raise forms.ValidationError("The selection was changed by hand and cannot be read; reload the page.") from None


def selection_from_post(data) -> services.Selection:
    return services.Selection(
        contract_ids=_ids(data.getlist("contract")), period_ids=_ids(data.getlist("period")),
        entry_ids=_ids(data.getlist("entry")), charge_ids=_ids(data.getlist("charge")),
    )


@dataclass
class TicketGroup:
    ticket_id: int
    title: str
    entries: list[dict] = field(default_factory=list)


@dataclass
class ContractRow:
    contract: Contract
    periods: list[dict] = field(default_factory=list)
    tickets: dict[int, TicketGroup] = field(default_factory=dict)
    charges: list[dict] = field(default_factory=list)
    total: Decimal = Decimal(0)
    selected: Decimal = Decimal(0)
    chosen: bool = True

    @property
    def has_due(self) -> bool:
        return bool(self.periods or self.tickets or self.charges)


def wizard_rows(*, cutoff: dt.date, filters: dict, selection: services.Selection | None) -> list[ContractRow]:
    """One row per active contract (filtered), with every item due by the cut-off and its amount.

    ``selection`` None means everything due is selected (the first view of the page).
    """
    contracts = Contract.objects.filter(status=Contract.Status.ACTIVE).select_related("customer").order_by("customer__legal_name", "priority", "pk")
    if filters.get("type"):
        contracts = contracts.filter(type=filters["type"])
    if filters.get("taxable"):
        contracts = contracts.filter(taxable=filters["taxable"] == "yes")
    if filters.get("customer"):
        contracts = contracts.filter(customer=filters["customer"])
    rows = {c.pk: ContractRow(contract=c, chosen=selection is None or c.pk in selection.contract_ids) for c in contracts}

    def chosen(kind: str, pk: int, contract_id: int) -> bool:
        if selection is None:
            return True
        return contract_id in selection.contract_ids and pk in getattr(selection, kind)

    for period in ready_periods(cutoff=cutoff).filter(contract_id__in=rows).prefetch_related("contract__service_lines", "contract__device_classes", "contract__blocks"):
        amount = sum((line.amount for line in period_lines(period=period)), Decimal(0))
        row = rows[period.contract_id]
        selected = chosen("period_ids", period.pk, period.contract_id)
        row.periods.append({"period": period, "amount": amount, "selected": selected})
        row.total += amount
        row.selected += amount if selected else 0
    allocations = (
        ready_time_allocations(cutoff=cutoff).filter(contract_id__in=rows)
        .select_related("entry__ticket", "entry__work_type", "entry__technician").order_by("entry__ticket_id", "entry__date", "pk")
    )
    for allocation in allocations:
        entry = allocation.entry
        row = rows[allocation.contract_id]
        group = row.tickets.setdefault(entry.ticket_id, TicketGroup(ticket_id=entry.ticket_id, title=entry.ticket.title))
        amount = allocation.amount.amount if allocation.bucket in (Bucket.CHARGED, Bucket.OVERAGE) else Decimal(0)
        selected = chosen("entry_ids", entry.pk, allocation.contract_id)
        group.entries.append({"allocation": allocation, "entry": entry, "amount": amount, "selected": selected})
        row.total += amount
        row.selected += amount if selected else 0
    for charge in ready_charges(cutoff=cutoff).filter(contract_id__in=rows).select_related("contract"):
        amount = line_amount(quantity=charge.quantity, unit_price=charge_unit_price(charge), currency=charge.contract.currency)
        row = rows[charge.contract_id]
        selected = chosen("charge_ids", charge.pk, charge.contract_id)
        row.charges.append({"charge": charge, "amount": amount, "selected": selected})
        row.total += amount
        row.selected += amount if selected else 0
    result = list(rows.values())
    if filters.get("hide_mid_period"):
        result = [row for row in result if row.has_due]
    return result


