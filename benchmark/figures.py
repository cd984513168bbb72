"""What the benchmark and the profitability reports read: pure reads, in the home currency.

The formula (docs/benchmark.md § Effective hourly rate) — for one closed contract period:

    effective hourly rate = (revenue attributable to the contract in the period
                             − pass-through product revenue) ÷ hours worked

* *Revenue attributable* is the line amount before tax, after the line's share of the
  invoice discount and surcharge (``taxable_amount``), of every line for the contract on an
  issued invoice (partly paid and paid included, void left out), less the lines of its
  credit notes. A line belongs to the period its source is dated in: a period's fee to that
  period, time to the day it was worked, a part or expense to its date, anything else
  (a block purchase, a milestone, a manual line) to the invoice's issue date.
* *Pass-through product revenue* is what of that came from parts and expenses (charges) and
  from lines selling a catalogue product: resold, not earned by labour.
* *Hours worked* are the raw minutes of the time routed to the contract in the period, in
  every bucket (covered by a fee, deducted from a block, charged, overage), ÷ 60.
* A period is *closed* once its last covered day is past.

Amounts are converted to the home currency at the rate frozen on each invoice (or the
dated rate of its issue day when none was frozen); an amount with no rate at all is left
out and counted in ``missing_rates``.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection

from msp_billing.fx.rates import RateCache
from msp_billing.money import round_money

ISSUED = ["issued", "partially_paid", "paid"]
HOUR = Decimal(60)


def home_currency() -> str:
    from msp_billing.tenants.models import Msp

    tenant = getattr(connection, "tenant", None)
    if getattr(tenant, "currency", None) and getattr(tenant, "schema_name", None) == connection.schema_name:
        return tenant.currency
    return Msp.objects.filter(schema_name=connection.schema_name).values_list("currency", flat=True).get()


class _Converter:
    """Invoice amounts to the home currency: the frozen rate, else the dated rate of the day."""

    def __init__(self, home: str):
        self.home = home
        self.rates = RateCache()
        self.missing = 0

    def invoice(self, amount: Decimal, *, currency: str, frozen: Decimal | None, frozen_home: str, on: dt.date) -> Decimal | None:
        if currency == self.home:
            return amount
        if frozen is not None and frozen_home == self.home:
            return amount * frozen
        return self.other(amount, currency=currency, on=on)

    def other(self, amount: Decimal, *, currency: str, on: dt.date) -> Decimal | None:
        if currency == self.home:
            return amount
        found = self.rates.get(currency, self.home, on)
        if found is None:
            self.missing += 1
            return None
        return amount * found.value


def _rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- effective hourly rate per closed period ---------------------------------------------------

@dataclass
class PeriodRate:
    period_id: int
    contract_id: int
    contract: str
    contract_type: str
    customer_id: int
    customer: str
    start: dt.date
    end: dt.date
    revenue: Decimal = Decimal(0)
    pass_through: Decimal = Decimal(0)
    minutes: int = 0

    @property
    def net_revenue(self) -> Decimal:
        return self.revenue - self.pass_through

    @property
    def hours(self) -> Decimal:
        return Decimal(self.minutes) / HOUR

    @property
    def effective_rate(self) -> Decimal | None:
        return effective_rate(self.net_revenue, self.minutes)


def effective_rate(net_revenue: Decimal, minutes: int) -> Decimal | None:
    """Net revenue per hour worked, to the cent; None without hours."""
    if not minutes:
        return None
    return (net_revenue * HOUR / Decimal(minutes)).quantize(Decimal("0.01"))


_PERIODS_SQL = """
SELECT p.id, p.contract_id, k.name, k.type, k.customer_id, COALESCE(NULLIF(c.display_name, ''), c.legal_name),
       p.covered_start, p.covered_end
FROM contracts_contractperiod p
JOIN contracts_contract k ON k.id = p.contract_id
JOIN contracts_customer c ON c.id = k.customer_id
WHERE p.covered_end < %(today)s AND p.covered_end >= %(since)s AND p.covered_end <= %(until)s {where}
"""

_REVENUE_SQL = """
SELECT p.id, i.currency, i.exchange_rate, i.home_currency, i.issue_date,
       (s.source_kind = 'charge' OR s.product_id IS NOT NULL) AS pass_through, SUM(l.taxable_amount)
FROM invoices_invoiceline l
JOIN invoices_invoice i ON i.id = l.invoice_id
JOIN invoices_invoiceline s ON s.id = COALESCE(l.credited_line_id, l.id)
JOIN invoices_invoice si ON si.id = s.invoice_id
LEFT JOIN tickets_timeallocation a ON a.id = s.time_allocation_id
LEFT JOIN tickets_timeentry e ON e.id = a.entry_id
LEFT JOIN tickets_charge ch ON ch.id = s.charge_id
JOIN contracts_contractperiod p ON p.contract_id = s.contract_id AND (
     p.id = s.contract_period_id
     OR (s.contract_period_id IS NULL AND COALESCE(e.date, ch.date, si.issue_date) BETWEEN p.covered_start AND p.covered_end))
WHERE i.status = ANY(%(issued)s) AND p.id = ANY(%(periods)s)
GROUP BY 1, 2, 3, 4, 5, 6
"""

# The minutes are read per entry first (a materialised step), then spread over the periods:
# joined the other way round, PostgreSQL may look entries up by date for every allocation.
_HOURS_SQL = """
WITH worked AS MATERIALIZED (
    SELECT a.contract_id, e.date, a.minutes
    FROM tickets_timeallocation a
    JOIN tickets_timeentry e ON e.id = a.entry_id
    WHERE a.superseded_at IS NULL AND a.contract_id = ANY(%(contracts)s) AND e.date BETWEEN %(first)s AND %(last)s
)
SELECT p.id, SUM(w.minutes)
FROM worked w
JOIN contracts_contractperiod p ON p.contract_id = w.contract_id AND w.date BETWEEN p.covered_start AND p.covered_end
WHERE p.id = ANY(%(periods)s)
GROUP BY 1
"""


@dataclass
class RateReport:
    home_currency: str
    periods: list[PeriodRate]
    missing_rates: int

    def _grouped(self, key) -> list[dict]:
        groups: dict = defaultdict(lambda: {"net_revenue": Decimal(0), "revenue": Decimal(0), "pass_through": Decimal(0),
                                            "minutes": 0, "periods": 0})
        for period in self.periods:
            group = groups[key(period)]
            group["revenue"] += period.revenue
            group["pass_through"] += period.pass_through
            group["net_revenue"] += period.net_revenue
            group["minutes"] += period.minutes
            group["periods"] += 1
        rows = []
        for label, group in groups.items():
            rows.append({"label": label, **group, "hours": Decimal(group["minutes"]) / HOUR,
                         "effective_rate": effective_rate(group["net_revenue"], group["minutes"])})
        return rows

    @property
    def overall(self) -> dict:
        rows = self._grouped(lambda p: "all")
        return rows[0] if rows else {"label": "all", "revenue": Decimal(0), "pass_through": Decimal(0), "net_revenue": Decimal(0),
                                      "minutes": 0, "hours": Decimal(0), "periods": 0, "effective_rate": None}

    def by_contract(self) -> list[dict]:
        return sorted(self._grouped(lambda p: (p.customer, p.contract)), key=lambda r: r["label"])

    def by_customer(self) -> list[dict]:
        return sorted(self._grouped(lambda p: p.customer), key=lambda r: r["label"])

    def by_type(self) -> list[dict]:
        from contracts.models import Contract

        names = dict(Contract.Type.choices)
        return sorted(self._grouped(lambda p: names.get(p.contract_type, p.contract_type)), key=lambda r: r["label"])

    def by_month(self) -> list[dict]:
        return sorted(self._grouped(lambda p: p.end.replace(day=1)), key=lambda r: r["label"])


def period_rates(*, today: dt.date, since: dt.date, until: dt.date | None = None, customer_id: int | None = None,
                 contract_type: str | None = None) -> RateReport:
    """The effective hourly rate of every contract period closed before ``today`` whose last
    covered day is between ``since`` and ``until``; only periods with hours worked count."""
    home = home_currency()
    where, params = "", {"today": today, "since": since, "until": until or today}
    if customer_id:
        where += " AND k.customer_id = %(customer)s"
        params["customer"] = customer_id
    if contract_type:
        where += " AND k.type = %(type)s"
        params["type"] = contract_type
    periods = {row[0]: PeriodRate(*row) for row in _rows(_PERIODS_SQL.format(where=where), params)}
    if not periods:
        return RateReport(home_currency=home, periods=[], missing_rates=0)
    ids = list(periods)
    hours_params = {"periods": ids, "contracts": list({p.contract_id for p in periods.values()}),
                    "first": min(p.start for p in periods.values()), "last": max(p.end for p in periods.values())}
    for period_id, minutes in _rows(_HOURS_SQL, hours_params):
        periods[period_id].minutes = int(minutes or 0)
    convert = _Converter(home)
    for period_id, currency, frozen, frozen_home, issued_on, pass_through, amount in _rows(
            _REVENUE_SQL, {"periods": ids, "issued": ISSUED}):
        value = convert.invoice(amount, currency=currency, frozen=frozen, frozen_home=frozen_home, on=issued_on)
        if value is None:
            continue
        period = periods[period_id]
        period.revenue += value
        if pass_through:
            period.pass_through += value
    worked = [p for p in periods.values() if p.minutes]
    for period in worked:
        period.revenue = round_money(period.revenue, home)
        period.pass_through = round_money(period.pass_through, home)
    worked.sort(key=lambda p: (p.end, p.customer, p.contract))
    return RateReport(home_currency=home, periods=worked, missing_rates=convert.missing)


# --- invoice totals -----------------------------------------------------------------------------

def invoice_average(*, since: dt.date, until: dt.date) -> tuple[int, Decimal | None, int]:
    """(invoices, average total before tax in the home currency, amounts without a rate) of the
    invoices issued between ``since`` and ``until`` (credit notes and void invoices left out)."""
    home = home_currency()
    convert = _Converter(home)
    rows = _rows("""
        SELECT currency, exchange_rate, home_currency, issue_date, total - tax_total FROM invoices_invoice
        WHERE kind = 'invoice' AND status = ANY(%(issued)s) AND issue_date BETWEEN %(since)s AND %(until)s
    """, {"issued": ISSUED, "since": since, "until": until})
    values = [convert.invoice(net, currency=c, frozen=r, frozen_home=h, on=d) for c, r, h, d, net in rows]
    values = [v for v in values if v is not None]
    if not values:
        return 0, None, convert.missing
    return len(values), round_money(sum(values) / len(values), home), convert.missing


# --- profitability per customer and contract --------------------------------------------------

@dataclass
class Profitability:
    customer: str
    contract: str
    contract_type: str
    revenue: Decimal = Decimal(0)
    product_revenue: Decimal = Decimal(0)
    product_cost: Decimal = Decimal(0)
    labour_cost: Decimal = Decimal(0)
    minutes: int = 0
    contract_id: int | None = None
    customer_id: int | None = None

    @property
    def hours(self) -> Decimal:
        return Decimal(self.minutes) / HOUR

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.labour_cost - self.product_cost

    @property
    def margin_percent(self) -> Decimal | None:
        if not self.revenue:
            return None
        return (self.margin * 100 / self.revenue).quantize(Decimal("0.1"))

    @property
    def effective_rate(self) -> Decimal | None:
        return effective_rate(self.revenue - self.product_revenue, self.minutes)


@dataclass
class ProfitabilityReport:
    home_currency: str
    rows: list[Profitability]
    missing_rates: int
    totals: Profitability = field(default_factory=lambda: Profitability("", "", ""))


_LINES_SQL = """
SELECT l.contract_id, i.customer_id, i.currency, i.exchange_rate, i.home_currency, i.issue_date,
       (s.source_kind = 'charge' OR s.product_id IS NOT NULL) AS product,
       SUM(l.taxable_amount),
       SUM(CASE WHEN s.charge_id IS NOT NULL THEN SIGN(l.taxable_amount) * ch.quantity * COALESCE(ch.unit_cost, pr.cost, 0)
                WHEN s.product_id IS NOT NULL THEN l.quantity * sp.cost ELSE 0 END),
       COALESCE(ch.unit_cost_currency, pr.cost_currency, sp.cost_currency)
FROM invoices_invoiceline l
JOIN invoices_invoice i ON i.id = l.invoice_id
JOIN invoices_invoiceline s ON s.id = COALESCE(l.credited_line_id, l.id)
LEFT JOIN tickets_charge ch ON ch.id = s.charge_id
LEFT JOIN contracts_product pr ON pr.id = ch.product_id
LEFT JOIN contracts_product sp ON sp.id = s.product_id
WHERE i.status = ANY(%(issued)s) AND i.issue_date BETWEEN %(since)s AND %(until)s {where}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 10
"""

_LABOUR_SQL = """
SELECT a.contract_id, t.customer_id, SUM(a.minutes),
       SUM(a.minutes * COALESCE(tc.cost_rate, r.cost_rate)) / 60.0, CASE WHEN tc.id IS NULL THEN r.cost_rate_currency END
FROM tickets_timeallocation a
JOIN tickets_timeentry e ON e.id = a.entry_id
JOIN tickets_ticket t ON t.id = e.ticket_id
JOIN contracts_role r ON r.id = e.role_id
LEFT JOIN benchmark_techniciancostrate tc ON tc.technician_id = e.technician_id
WHERE a.superseded_at IS NULL AND e.date BETWEEN %(since)s AND %(until)s {where}
GROUP BY 1, 2, 5
"""


def profitability(*, since: dt.date, until: dt.date, customer_id: int | None = None,
                  contract_type: str | None = None) -> ProfitabilityReport:
    """Revenue (invoices issued in the range), labour cost (time worked in the range, at each
    technician's cost rate or else their role's), product cost, margin and effective rate,
    per customer and contract, in the home currency."""
    from contracts.models import Contract, Customer

    home = home_currency()
    convert = _Converter(home)
    where_lines, where_labour, params = "", "", {"issued": ISSUED, "since": since, "until": until}
    if customer_id:
        where_lines += " AND i.customer_id = %(customer)s"
        where_labour += " AND t.customer_id = %(customer)s"
        params["customer"] = customer_id
    if contract_type:
        ids = list(Contract.objects.filter(type=contract_type).values_list("id", flat=True))
        where_lines += " AND l.contract_id = ANY(%(contracts)s)"
        where_labour += " AND a.contract_id = ANY(%(contracts)s)"
        params["contracts"] = ids
    rows: dict[tuple, Profitability] = {}

    def row(contract_id, customer_id) -> Profitability:
        key = (contract_id, customer_id if contract_id is None else None)
        if key not in rows:
            rows[key] = Profitability("", "", "", contract_id=contract_id, customer_id=customer_id)
        return rows[key]

    for contract_id, cust, currency, frozen, frozen_home, issued_on, product, amount, cost, cost_currency in _rows(
            _LINES_SQL.format(where=where_lines), params):
        value = convert.invoice(amount, currency=currency, frozen=frozen, frozen_home=frozen_home, on=issued_on)
        if value is None:
            continue
        item = row(contract_id, cust)
        item.revenue += value
        if product:
            item.product_revenue += value
            if cost:
                cost_home = convert.other(cost, currency=cost_currency or currency, on=issued_on)
                item.product_cost += cost_home or 0
    for contract_id, cust, minutes, cost, cost_currency in _rows(_LABOUR_SQL.format(where=where_labour), params):
        if contract_id is None:
            continue  # unrouted time: no contract to charge it to (the unrouted list shows it)
        item = row(contract_id, cust)
        item.minutes += int(minutes or 0)
        cost_home = convert.other(Decimal(cost or 0), currency=cost_currency or home, on=until)
        item.labour_cost += cost_home or 0
    contracts = {c.pk: c for c in Contract.objects.filter(pk__in=[k[0] for k in rows if k[0]]).select_related("customer")}
    customers = {c.pk: str(c) for c in Customer.objects.filter(pk__in=[k[1] for k in rows if k[1]])}
    totals = Profitability("Total", "", "")
    for (contract_id, cust), item in rows.items():
        if contract_id:
            contract = contracts[contract_id]
            item.customer, item.contract, item.contract_type = str(contract.customer), contract.name, contract.get_type_display()
            item.customer_id = contract.customer_id
        else:
            item.customer, item.contract, item.contract_type = customers.get(cust, ""), "(no contract)", ""
        for name in ("revenue", "product_revenue", "product_cost", "labour_cost"):
            setattr(item, name, round_money(getattr(item, name), home))
            setattr(totals, name, getattr(totals, name) + getattr(item, name))
        totals.minutes += item.minutes
    ordered = sorted(rows.values(), key=lambda r: (r.customer, r.contract))
    return ProfitabilityReport(home_currency=home, rows=ordered, missing_rates=convert.missing, totals=totals)


# --- technician utilisation ---------------------------------------------------------------------

@dataclass
class Utilisation:
    technician_id: int
    technician: str
    role: str
    billable_minutes: int
    non_billable_minutes: int

    @property
    def billable_hours(self) -> Decimal:
        return Decimal(self.billable_minutes) / HOUR

    @property
    def non_billable_hours(self) -> Decimal:
        return Decimal(self.non_billable_minutes) / HOUR

    @property
    def total_hours(self) -> Decimal:
        return self.billable_hours + self.non_billable_hours

    @property
    def utilisation_percent(self) -> Decimal | None:
        total = self.billable_minutes + self.non_billable_minutes
        return (Decimal(self.billable_minutes) * 100 / total).quantize(Decimal("0.1")) if total else None


def utilisation(*, since: dt.date, until: dt.date, technician_id: int | None = None,
                role_id: int | None = None) -> list[Utilisation]:
    """Hours each technician logged in the range, billable (a billable entry of a billable
    work type) and not."""
    where, params = "", {"since": since, "until": until}
    if technician_id:
        where += " AND e.technician_id = %(technician)s"
        params["technician"] = technician_id
    if role_id:
        where += " AND e.role_id = %(role)s"
        params["role"] = role_id
    found = _rows(f"""
        SELECT u.id, COALESCE(NULLIF(u.full_name, ''), u.email), STRING_AGG(DISTINCT r.name, ', '),
               SUM(CASE WHEN e.billable AND w.billable THEN e.minutes ELSE 0 END),
               SUM(CASE WHEN e.billable AND w.billable THEN 0 ELSE e.minutes END)
        FROM tickets_timeentry e
        JOIN accounts_user u ON u.id = e.technician_id
        JOIN contracts_role r ON r.id = e.role_id
        JOIN contracts_worktype w ON w.id = e.work_type_id
        WHERE e.date BETWEEN %(since)s AND %(until)s {where}
        GROUP BY 1, 2 ORDER BY 2
    """, params)
    return [Utilisation(*row[:3], int(row[3] or 0), int(row[4] or 0)) for row in found]


def months_back(today: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` before ``today``'s month."""
    index = today.year * 12 + today.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def as_rows(items: Iterable, names: Iterable[str]) -> list[list]:
    return [[getattr(item, name) if not isinstance(item, dict) else item[name] for name in names] for item in items]
