"""The preview is the run: for any filter and selection, the batch details of Create New Batch
equal what Save As / Run then creates — invoices, tickets, hours, billable amount, tax and
total per currency, to the cent."""
from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from billing import services
from billing.due import BatchDetails, Selection
from billing.readiness import ready_charges, ready_periods, ready_time_allocations
from billing import wizard
from billing.wizard import WizardChoice, wizard_contracts, wizard_page, wizard_summary
from contracts.models import Contract
from invoices import services as invoice_services
from invoices.models import InvoiceLine
from msp_billing.accounts.models import User
from tests.billing.generated_tenant import CUTOFF, build_generated_tenant

pytestmark = pytest.mark.django_db


class _Undo(Exception):
    """Rolls one example's run back."""


def batch_figures(batch) -> BatchDetails:
    """What a batch created, counted like the batch details."""
    invoices = list(services.batch_invoices(batch))
    lines = InvoiceLine.objects.filter(invoice__in=invoices)
    tickets = set(lines.filter(time_allocation__isnull=False).values_list("time_allocation__entry__ticket_id", flat=True))
    tickets |= set(lines.filter(charge__ticket__isnull=False).values_list("charge__ticket_id", flat=True))
    minutes = lines.aggregate(m=Sum("time_allocation__billed_minutes"))["m"] or 0
    figures = BatchDetails(bills=len(invoices), tickets=len(tickets), hours=(Decimal(minutes) / 60).quantize(Decimal("0.01")))
    for invoice in invoices:
        sums = figures.by_currency.setdefault(invoice.currency, {"billable": Decimal(0), "tax": Decimal(0), "total": Decimal(0)})
        sums["billable"] += invoice.total - invoice.tax_total
        sums["tax"] += invoice.tax_total
        sums["total"] += invoice.total
    return figures


def every_row(filters: dict, choice: WizardChoice) -> list:
    """The rows of every page of the list, as the admin pages through it."""
    first = wizard_page(filters=filters, choice=choice, page_number=1)
    return [row for number in first.page.paginator.page_range
            for row in wizard_page(filters=filters, choice=choice, page_number=number).rows]


def test_acme_alone_by_hand(tenant):
    """Filtered to one customer, the details count that customer only (figures worked out by hand)."""
    world = build_generated_tenant(tech_email="technician@alpha.example")
    filters = {"cutoff": CUTOFF, "customer": world["customers"]["Acme GmbH"]}
    summary = wizard_summary(filters=filters, choice=WizardChoice(), consolidated=False)
    acme = {world["contracts"]["Acme Managed"].pk, world["contracts"]["Acme T&M"].pk}
    assert summary.selection.contract_ids == acme
    assert summary.details == BatchDetails(bills=2, tickets=2, hours=Decimal("2.25"), by_currency={
        "EUR": {"billable": Decimal("1051.00"), "tax": Decimal("199.69"), "total": Decimal("1250.69")}})
    rows = wizard_page(filters=filters, choice=WizardChoice(), page_number=1).rows
    assert [(row.contract.name, row.chosen) for row in rows] == [("Acme Managed", True), ("Acme T&M", True), ("Acme Backup", False)]
    # Unfiltered, every currency is there, and the 0.00 contract is not picked.
    everything = wizard_summary(filters={"cutoff": CUTOFF}, choice=WizardChoice(), consolidated=False)
    assert set(everything.details.by_currency) == {"EUR", "USD", "GBP"}
    assert world["zero"].pk not in everything.selection.contract_ids
    assert everything.details.bills == 7  # Foxtrot's deducted block time goes on its Hourly invoice


def test_details_equal_what_the_run_creates(tenant, monkeypatch):
    monkeypatch.setattr(wizard, "PAGE_SIZE", 3)  # the list in pages of three rows: ticks on other pages count too
    world = build_generated_tenant(tech_email="technician@alpha.example")
    admin = User.objects.get(email="billing-admin@alpha.example")
    customers = sorted(world["customers"].values(), key=lambda c: c.pk)
    types = sorted(set(Contract.objects.values_list("type", flat=True)))
    period_ids = sorted(ready_periods(cutoff=CUTOFF).values_list("pk", flat=True))
    entry_ids = sorted(set(ready_time_allocations(cutoff=CUTOFF).values_list("entry_id", flat=True)))
    charge_ids = sorted(ready_charges(cutoff=CUTOFF).values_list("pk", flat=True))
    assert len(period_ids) == 3 and len(entry_ids) == 10 and len(charge_ids) == 2
    foxtrot = {world["contracts"]["Foxtrot Block"].pk, world["contracts"]["Foxtrot T&M"].pk}
    split_entry = ready_time_allocations(cutoff=CUTOFF).filter(contract_id__in=foxtrot).values_list("entry_id", flat=True).distinct().get()
    seen = {"runs": 0, "refused": 0, "split": 0}

    def some(data, ids, *, max_size):
        return frozenset(data.draw(st.sets(st.sampled_from(ids), max_size=max_size)))

    # Bounded in time: 25 examples, no shrinking (a failure still prints the example drawn).
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate])
    @given(data=st.data())
    def check(data):
        # Each filter is used about every other or third time, so that most examples still show some rows.
        filters = {"cutoff": CUTOFF, "customer": data.draw(st.sampled_from([None, *customers]) if data.draw(st.booleans()) else st.none(), label="customer"),
                   "type": data.draw(st.sampled_from(types) if data.draw(st.integers(0, 2)) == 2 else st.just(""), label="type"),
                   "taxable": data.draw(st.sampled_from(["yes", "no"]) if data.draw(st.integers(0, 2)) == 2 else st.just(""), label="taxable"),
                   "hide_mid_period": data.draw(st.booleans(), label="hide nothing due")}
        consolidated = data.draw(st.booleans(), label="consolidated")
        shown = set(wizard_contracts(filters).values_list("pk", flat=True))
        how = data.draw(st.sampled_from(["as pre-selected", "all that match, some unticked", "ticked by hand"]), label="selection")
        if how == "as pre-selected":
            choice = WizardChoice()
        else:
            # The admin ticks or unticks some of the rows and unticks single items of expanded contracts.
            # Most rows stay as they are, a few single items are left out.
            changed = frozenset(pk for pk in sorted(shown) if data.draw(st.integers(0, 3), label=f"contract {pk} (3: changed)") == 3)
            items = Selection(excluded_period_ids=some(data, period_ids, max_size=2), excluded_entry_ids=some(data, entry_ids, max_size=3),
                              excluded_charge_ids=some(data, charge_ids, max_size=1))
            choice = (WizardChoice(unticked=changed, items=items) if how == "all that match, some unticked"
                      else WizardChoice(all_matching=False, ticked=frozenset(shown) - changed, items=items))
        discount = data.draw(st.sampled_from([None, Decimal("5"), Decimal("12.5")]), label="default invoice discount %")
        try:
            with transaction.atomic():
                if discount:  # shared over every line of an invoice: the details work line by line
                    invoice_services.invoice_settings_update(data={"default_discount_percent": discount}, acting_user=admin)
                summary = wizard_summary(filters=filters, choice=choice, consolidated=consolidated)
                ticked = {row.contract.pk for row in every_row(filters, choice) if row.chosen and row.has_due}  # the checkboxes ticked
                assert summary.selection.contract_ids <= shown  # a contract the filters hide is never billed
                assert ticked == {pk for pk in summary.selection.contract_ids if summary.contracts.get(pk)}
                if how == "as pre-selected":
                    assert world["zero"].pk not in ticked
                run_selection = dataclasses.replace(summary.selection, due_token=summary.token)
                try:
                    batch = services.batch_run(name="Preview", cutoff=CUTOFF, selection=run_selection, consolidated=consolidated,
                                               acting_user=admin)
                except ValidationError as error:
                    message = " ".join(error.messages)
                    if "shared between a picked contract and one left out" in message:
                        # An entry is billed whole: one Foxtrot contract without the other is refused.
                        assert len(run_selection.contract_ids & foxtrot) == 1 and split_entry not in run_selection.excluded_entry_ids
                        seen["split"] += 1
                    else:
                        assert "select at least one contract with items due" in message
                        assert summary.details == BatchDetails()
                        seen["refused"] += 1
                    raise _Undo from None
                assert batch_figures(batch) == summary.details
                seen["runs"] += 1
                raise _Undo
        except _Undo:
            pass

    check()
    assert seen["runs"] >= 6  # many examples bill something
