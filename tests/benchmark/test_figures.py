"""Effective hourly rate, profitability and utilisation worked out by hand on one retainer
(schema alpha, home currency EUR), the pages and CSVs that show them, and who may see them.

The retainer "Managed" has October and November closed (today is 5 December 2026):

* October: fee 1,000.00, a firewall resold for 100.00 (cost 70.00), 200.00 of the fee
  credited, a 5,000.00 invoice voided; 4 h + 2 h worked.
  (1,000.00 + 100.00 − 200.00 − 100.00) ÷ 6 h = 800.00 ÷ 6 = 133.33 an hour.
* November: fee 1,000.00, 1 h worked: 1,000.00 an hour.
* Both: 1,800.00 ÷ 7 h = 257.14. December (30 min) is still open and not counted.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from benchmark import figures
from benchmark.services import benchmark_opt_in_set, technician_cost_rate_set
from contracts.models import ContractPeriod
from invoices import services as invoice_services
from invoices.models import InvoiceLine
from msp_billing.audit.models import AuditEvent
from tests.invoices.builders import admin
from tests.tickets.builders import catalogue, contract, customer, eur, technician, ticket
from tickets.services import charge_add, time_entry_log

TODAY = dt.date(2026, 12, 5)


def _period(c, start: dt.date, end: dt.date) -> ContractPeriod:
    return ContractPeriod.objects.create(contract=c, start=start, end=end, covered_start=start, covered_end=end, bill_date=start)


@pytest.fixture
def retainer(tenant, monkeypatch):
    monkeypatch.setattr("benchmark.views.tenant_today", lambda: TODAY)
    remote, _, _, engineer = catalogue()
    tech = technician(engineer)
    cust = customer("Rate GmbH")
    managed = contract(cust, "retainer", name="Managed")
    october = _period(managed, dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    november = _period(managed, dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    _period(managed, dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    work = ticket(cust)
    for day, minutes in ((dt.date(2026, 10, 10), 240), (dt.date(2026, 10, 20), 120), (dt.date(2026, 11, 3), 60), (dt.date(2026, 12, 2), 30)):
        time_entry_log(ticket=work, technician=tech, work_type=remote, date=day, minutes=minutes, chosen_contract=managed)
    # Not billable, on a customer without contracts: counts for utilisation only.
    time_entry_log(ticket=ticket(customer("Other AG")), technician=tech, work_type=remote, date=dt.date(2026, 11, 5),
                   minutes=60, billable=False)
    firewall = charge_add(contract=managed, description="Firewall", date=dt.date(2026, 10, 15), quantity=Decimal(1),
                          unit_price=eur("100"), unit_cost=eur("70"))
    lines = [
        invoice_services.LineInput(description="October fee", amount=Decimal("1000.00"), tax_rate_codes=(),
                                   source_kind=InvoiceLine.SourceKind.PERIOD, contract_period_id=october.pk, contract_id=managed.pk),
        invoice_services.LineInput(description="Firewall", amount=Decimal("100.00"), tax_rate_codes=(),
                                   source_kind=InvoiceLine.SourceKind.CHARGE, charge_id=firewall.pk, contract_id=managed.pk),
        invoice_services.LineInput(description="November fee", amount=Decimal("1000.00"), tax_rate_codes=(),
                                   source_kind=InvoiceLine.SourceKind.PERIOD, contract_period_id=november.pk, contract_id=managed.pk),
    ]
    invoice = invoice_services.invoice_create_draft(customer=cust, lines=lines, acting_user=admin())
    invoice = invoice_services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=dt.date(2026, 10, 1))
    fee_line = invoice.lines.get(description="October fee")
    invoice_services.credit_note_create(invoice_id=invoice.pk, reason="Outage", acting_user=admin(), issue_date=dt.date(2026, 10, 20),
                                        lines=[invoice_services.CreditLineInput(invoice_line_id=fee_line.pk, amount=Decimal("200.00"))])
    voided = invoice_services.invoice_create_draft(customer=cust, acting_user=admin(), lines=[invoice_services.LineInput(
        description="Wrong", amount=Decimal("5000.00"), tax_rate_codes=(), contract_id=managed.pk)])
    invoice_services.invoice_issue(invoice_id=voided.pk, acting_user=admin(), issue_date=dt.date(2026, 10, 5))
    invoice_services.invoice_void(invoice_id=voided.pk, acting_user=admin(), reason="Typo")
    return {"contract": managed, "technician": tech, "customer": cust}


def test_effective_rate_per_closed_period_by_hand(retainer):
    report = figures.period_rates(today=TODAY, since=dt.date(2026, 1, 1))
    by_month = {row["label"]: row for row in report.by_month()}
    assert [(p.start, p.revenue, p.pass_through, p.minutes, p.effective_rate) for p in report.periods] == [
        (dt.date(2026, 10, 1), Decimal("900.00"), Decimal("100.00"), 360, Decimal("133.33")),
        (dt.date(2026, 11, 1), Decimal("1000.00"), Decimal("0.00"), 60, Decimal("1000.00")),
    ]
    assert by_month[dt.date(2026, 10, 1)]["effective_rate"] == Decimal("133.33")
    assert report.overall["effective_rate"] == Decimal("257.14")
    assert report.by_type()[0]["label"] == "Retainer / Flat Fee" and report.by_customer()[0]["effective_rate"] == Decimal("257.14")
    assert figures.period_rates(today=TODAY, since=dt.date(2026, 1, 1), contract_type="hourly").periods == []


def test_the_benchmark_page_shows_the_rate_the_formula_and_the_sourced_wage_floor(retainer, client_for):
    page = client_for("alpha", "accountant").get("/benchmark/?months=3").content.decode()
    assert 'id="own-rate">€257.14' in page
    assert "(revenue attributable to the contract in the period − pass-through product revenue) ÷ hours worked" in page
    assert "€133.33" in page and "Oct 2026" in page
    assert "https://blsmon1.bls.gov/oes/2018/may/oes151151.htm" in page and "not a price" in page
    assert "Not enough MSPs in your region yet." in page  # no aggregate stored for Europe
    # Another MSP sees none of it.
    other = client_for("beta", "accountant").get("/benchmark/").content.decode()
    assert "€257.14" not in other and "No closed periods with hours yet" in other


def test_profitability_by_hand_and_its_csv_parses_back_with_the_filters(retainer, client_for):
    report = figures.profitability(since=dt.date(2026, 10, 1), until=dt.date(2026, 11, 30))
    (row,) = [r for r in report.rows if r.contract == "Managed"]
    assert (row.revenue, row.product_revenue, row.product_cost, row.labour_cost, row.minutes) == \
        (Decimal("1900.00"), Decimal("100.00"), Decimal("70.00"), Decimal("280.00"), 420)  # 7 h × role cost 40.00
    technician_cost_rate_set(technician=retainer["technician"], cost_rate=Decimal("50"), acting_user=admin())
    client = client_for("alpha", "billing_admin")
    response = client.get("/benchmark/profitability/?since=2026-10-01&until=2026-11-30&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    (parsed,) = [r for r in csv.DictReader(io.StringIO(response.content.decode())) if r["contract"] == "Managed"]
    assert parsed["revenue (EUR)"] == "1900.00" and parsed["labour_cost (EUR)"] == "350.00"  # 7 h × own cost 50.00
    assert parsed["margin (EUR)"] == "1480.00" and parsed["margin_percent"] == "77.9"
    assert parsed["effective_rate (EUR)"] == "257.14" and parsed["hours"] == "7.00"
    filtered = client.get("/benchmark/profitability/?since=2026-10-01&until=2026-11-30&contract_type=hourly&format=csv")
    assert list(csv.DictReader(io.StringIO(filtered.content.decode()))) == []
    assert AuditEvent.objects.filter(action="technician_cost_rate_changed").exists()
    assert client.get("/benchmark/profitability/?since=2026-12-01&until=2026-10-01").status_code == 400


def test_utilisation_counts_billable_and_non_billable_hours_and_its_csv_parses_back(retainer, client_for):
    (row,) = figures.utilisation(since=dt.date(2026, 10, 1), until=dt.date(2026, 11, 30))
    assert (row.billable_minutes, row.non_billable_minutes, row.utilisation_percent) == (420, 60, Decimal("87.5"))
    client = client_for("alpha", "accountant")
    rows = list(csv.DictReader(io.StringIO(client.get(
        "/benchmark/utilisation/?since=2026-10-01&until=2026-11-30&format=csv").content.decode())))
    assert rows == [{"technician": str(retainer["technician"]), "role": "Engineer", "billable_hours": "7.00",
                     "non_billable_hours": "1.00", "total_hours": "8.00", "utilisation_percent": "87.5"}]
    assert "87.5" in client.get("/benchmark/utilisation/?since=2026-10-01&until=2026-11-30").content.decode()


def test_opting_in_is_for_the_owner_only_and_audited(tenant, client_for):
    assert client_for("alpha", "billing_admin").post("/benchmark/settings/", {"opted_in": "on"}).status_code == 403
    assert client_for("alpha", "accountant").get("/benchmark/settings/").status_code == 403
    owner = client_for("alpha", "owner")
    assert owner.post("/benchmark/settings/", {"opted_in": "on"}).status_code == 302
    assert 'id="opt-state">take part' in owner.get("/benchmark/settings/").content.decode()
    event = AuditEvent.objects.filter(action="benchmark_opt_in_switched").latest("at")
    assert (event.before, event.after, event.actor_label) == ({"opted_in": False}, {"opted_in": True}, "owner@alpha.example")
    owner.post("/benchmark/settings/", {})
    assert AuditEvent.objects.filter(action="benchmark_opt_in_switched").latest("at").after == {"opted_in": False}
    with pytest.raises(Exception, match="Only the owner"):
        benchmark_opt_in_set(opted_in=True, acting_user=admin())


def test_the_dashboard_card_reads_last_nights_rollup(retainer, client_for):
    from benchmark.rollup import tenant_rollup

    assert "appears after the nightly roll-up" in client_for("alpha", "billing_admin").get("/dashboard/").content.decode()
    tenant_rollup(today=TODAY)
    page = client_for("alpha", "billing_admin").get("/dashboard/").content.decode()
    assert 'id="card-own-rate">€257.14' in page and "Not enough MSPs in your region yet." in page


def test_cost_rates_are_read_only_for_accountants_and_stay_within_their_msp(retainer, client_for):
    tech = retainer["technician"]
    accountant = client_for("alpha", "accountant")
    page = accountant.get("/benchmark/cost-rates/").content.decode()
    assert "Engineer" in page and "Change" not in page
    assert accountant.post(f"/benchmark/cost-rates/{tech.pk}/", {"cost_rate": "1"}).status_code == 403
    admin_client = client_for("alpha", "billing_admin")
    assert admin_client.post(f"/benchmark/cost-rates/{tech.pk}/", {"cost_rate": "-5"}).status_code == 400
    assert admin_client.post(f"/benchmark/cost-rates/{tech.pk}/", {"cost_rate": "55"}).status_code == 302
    # Another MSP's admin cannot reach alpha's technician by id, nor see alpha's rates.
    beta = client_for("beta", "billing_admin")
    assert beta.post(f"/benchmark/cost-rates/{tech.pk}/", {"cost_rate": "1"}).status_code == 404
    assert "55" not in beta.get("/benchmark/cost-rates/").content.decode()
    assert "Rate GmbH" not in beta.get("/benchmark/profitability/?since=2026-10-01&until=2026-11-30").content.decode()
