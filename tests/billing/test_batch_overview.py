"""The batch page in figures: totals per currency, invoices grouped by customer with their
contracts; the batch list with its totals.

By hand (tests/billing/test_batches.py's world, cut-off 31 Mar 2026): Managed Services
1,000.00 + 19 % VAT = 1,190.00; Hourly T&M 30 min out of hours at 120 × 1.5 = 90.00 + 19 %
= 107.10; Onsite Block 110.00 for the block + 30 min overage at 150 = 75.00, untaxed = 185.00.
Batch: 3 invoices, 1,275.00 before tax, 207.10 tax, 1,482.10 in all.
"""
from __future__ import annotations

from django.urls import reverse
from django.utils.html import escape

from billing import services
from invoices import services as invoice_services
from invoices.models import Invoice
from tests.billing.test_batches import CUTOFF, everything, world  # noqa: F401  (fixture)


def run(world, *, consolidated=False):  # noqa: F811
    return services.batch_run(name="March", cutoff=CUTOFF, selection=everything(), consolidated=consolidated,
                              acting_user=world["admin"])


def section(page: str, marker: str) -> str:
    return page[page.index(marker):]


def test_totals_per_currency_and_invoices_by_customer_with_their_contract(client_for, world):  # noqa: F811
    batch = run(world)
    client = client_for("alpha", "accountant")
    page = client.get(reverse("billing:batch_detail", args=[batch.pk])).content.decode()
    totals = section(page, 'id="batch-totals"')
    assert ('<th scope="row">EUR</th><td class="num">3</td><td class="num">€1,275.00</td><td class="num">€207.10</td>'
            '<td class="num"><strong>€1,482.10</strong></td>') in totals
    rows = section(page, 'aria-label="Invoices of this batch, by customer"')
    assert rows.count('scope="rowgroup"') == 1 and 'rowspan="3" class="group-head">Chain GmbH<br>' in rows
    for contract, total in ((world["retainer"], "€1,190.00"), (world["hourly"], "€107.10"), (world["blocks"], "€185.00")):
        row = section(rows, f'{reverse("contracts:detail", args=[contract.pk])}">{escape(contract.name)}</a>')
        assert total in row[:row.index("</tr>")], contract.name
    assert '<span class="muted">3 invoices, €1,482.10</span>' in rows

    listing = client.get(reverse("billing:home")).content.decode()
    assert "€1,482.10 <span class=\"muted\">(3)</span>" in listing


def test_a_consolidated_invoice_names_every_contract_and_void_ones_are_not_counted(client_for, world):  # noqa: F811
    batch = run(world, consolidated=True)
    client = client_for("alpha", "billing_admin")
    page = client.get(reverse("billing:batch_detail", args=[batch.pk])).content.decode()
    assert ">Hourly T&amp;M</a>, <a" in page and ">Managed Services</a>, <a" in page and ">Onsite Block</a></td>" in page
    assert "€1,482.10" in section(page, 'id="batch-totals"')

    invoice = Invoice.objects.get()
    invoice_services.invoice_issue(invoice_id=invoice.pk, acting_user=world["admin"], issue_date=CUTOFF)
    invoice_services.invoice_void(invoice_id=invoice.pk, acting_user=world["admin"], reason="Wrong customer")
    page = client.get(reverse("billing:batch_detail", args=[batch.pk])).content.decode()
    assert "Every invoice of this batch is void." in section(page, 'id="batch-totals"')
    assert "—" in client.get(reverse("billing:home")).content.decode()
