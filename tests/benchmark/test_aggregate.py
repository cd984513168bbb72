"""The platform aggregate on real schemas: ten opted-in MSPs or nothing, never an opted-out
one, and no MSP's own figure outside its own schema.

Each MSP here is a real tenant schema (alpha's tables created again, so no migrations run)
with one closed October period: a fee of 100 + 10·i EUR and one hour worked, so its
effective hourly rate is 100 + 10·i EUR = 1.25 × that in USD (1 USD = 0.80 EUR).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django_tenants.utils import tenant_context

from benchmark.models import BenchmarkSettings, Rollup
from benchmark.public.models import IndustryAggregate
from bench._schemas import msp_with_copied_schema
from benchmark.rollup import nightly
from msp_billing.fx.rates import rates_load
from msp_billing.tenants.models import Msp

TODAY = dt.date(2026, 12, 5)
OCTOBER = dict(start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 31), covered_start=dt.date(2026, 10, 1),
               covered_end=dt.date(2026, 10, 31), bill_date=dt.date(2026, 10, 1))


def make_msp(index: int, *, fee: Decimal, opted_in: bool, base_schema: str = "alpha", region: str = "europe") -> Msp:
    """A real MSP schema with one closed period billed ``fee`` for one hour of work."""
    msp = msp_with_copied_schema(schema=f"bm_{index:03d}", base=base_schema, region=region)
    with tenant_context(msp):
        tenant_figures(fee=fee, opted_in=opted_in, number=index)
    return msp


def tenant_figures(*, fee: Decimal, opted_in: bool, number: int) -> None:
    from contracts.models import Contract, ContractPeriod, Customer, Role, WorkType
    from invoices.models import Invoice, InvoiceLine
    from msp_billing.accounts.models import User
    from tickets.models import Ticket, TimeAllocation, TimeEntry

    customer = Customer.objects.create(legal_name="Customer", currency="EUR")
    contract = Contract.objects.create(customer=customer, name="Managed", type="retainer", currency="EUR", start_date=dt.date(2026, 1, 1))
    period = ContractPeriod.objects.create(contract=contract, **OCTOBER)
    tech = User.objects.create_user(f"tech{number}@example.com", None, role="technician")
    role = Role.objects.create(name="Engineer", default_rate=("100", "EUR"), cost_rate=("40", "EUR"))
    work_type = WorkType.objects.create(name="Remote Support")
    entry = TimeEntry.objects.create(ticket=Ticket.objects.create(customer=customer, title="Work"), technician=tech, role=role,
                                     work_type=work_type, date=dt.date(2026, 10, 9), minutes=60)
    TimeAllocation.objects.create(entry=entry, contract=contract, bucket="absorbed", minutes=60, billed_minutes=60)
    invoice = Invoice.objects.create(customer=customer, currency="EUR", status="issued", number=f"INV-{number}",
                                     issue_date=dt.date(2026, 10, 1), subtotal=fee, total=fee)
    InvoiceLine.objects.create(invoice=invoice, description="Fee", fixed_amount=fee, gross_amount=fee, amount=fee,
                               taxable_amount=fee, source_kind="period", contract_period=period, contract=contract)
    BenchmarkSettings.objects.update_or_create(pk=1, defaults={"opted_in": opted_in})


@pytest.fixture
def usd_rates(db, tmp_path):
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"base": "USD", "date": "2026-12-01", "rates": {"EUR": "0.8"}}))
    rates_load(str(path))


def test_nine_show_nothing_ten_show_the_median_and_an_opted_out_msp_is_never_counted(usd_rates, client_for, monkeypatch):
    monkeypatch.setattr("benchmark.views.tenant_today", lambda: TODAY)
    msps = [make_msp(i, fee=Decimal(100 + 10 * i), opted_in=True) for i in range(9)]
    outsider = make_msp(99, fee=Decimal("1000.00"), opted_in=False)
    schemas = [m.schema_name for m in [*msps, outsider]]

    result = nightly(today=TODAY, schemas=schemas)
    assert (result["tenants"], result["contributors"], result["groups"]) == (10, 9, 0)
    assert IndustryAggregate.objects.count() == 0
    assert "Not enough MSPs in your region yet." in client_for("alpha", "accountant").get("/benchmark/").content.decode()
    # Each MSP's own figure stays in its own schema, in its home currency and in USD.
    with tenant_context(msps[3]):
        assert Rollup.objects.values_list("effective_rate", "effective_rate_usd", "contributed").get() == \
            (Decimal("130.00"), Decimal("162.50"), True)
    # The public table cannot hold a group of fewer than ten.
    with pytest.raises(IntegrityError), transaction.atomic():
        IndustryAggregate.objects.create(metric="effective_rate", region="europe", contributors=9, p10=1, p25=1, median=1,
                                         p75=1, p90=1, computed_on=TODAY)

    msps.append(make_msp(9, fee=Decimal(190), opted_in=True))
    result = nightly(today=TODAY, schemas=[*schemas, msps[-1].schema_name])
    assert (result["tenants"], result["contributors"]) == (11, 10)
    rate = IndustryAggregate.objects.get(metric="effective_rate", region="europe", currency="")
    # 125.00, 137.50, … 237.50 USD: the median of ten is (175.00 + 187.50) ÷ 2; the outsider's 1,250.00 is not among them.
    assert (rate.contributors, rate.median, rate.p90 < Decimal("1250"), rate.rates_date) == \
        (10, Decimal("181.25"), True, dt.date(2026, 12, 1))
    assert IndustryAggregate.objects.get(metric="invoice_total", region="europe", currency="EUR").median == Decimal("181.25")
    page = client_for("alpha", "accountant").get("/benchmark/").content.decode()
    # In the MSP's own number format (alpha is in Europe: "US$181.25").
    assert re.search(r'id="industry-median">[^<]*\$181\.25<', page) and "10 MSPs" in page

    with tenant_context(msps[0]):
        BenchmarkSettings.objects.filter(pk=1).update(opted_in=False)
    assert nightly(today=TODAY, schemas=[m.schema_name for m in msps])["groups"] == 0
    assert not IndustryAggregate.objects.exists()
    connection.set_schema_to_public()
