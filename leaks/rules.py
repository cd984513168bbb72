"""The leak rules: one function per kind of revenue leak (docs/leaks.md has each definition).

Each rule reads the active MSP's data with set-based queries (aggregated in SQL) and returns
:class:`Leak` records: the kind, a key naming the object(s), the customer, the amount at the
rate it would have billed (``Decimal``, rounded once by ``msp_billing.money``), its age in days,
a short description and a fingerprint of the data it was found in (a dismissal holds only
while the fingerprint is the same). The rules write nothing.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Sum,
)
from django.db.models.functions import Coalesce

from billing.models import BillingBatch
from contracts.models import (
    Contract,
    ContractPeriod,
    ContractRateLine,
    Customer,
    DeviceClass,
    Role,
    UnmatchedDeviceReport,
    UsageRecord,
)
from contracts.period_charges import periods_lines
from contracts.rules.rates import amount_for_minutes, marked_up_amount
from contracts.rules.routing import BLOCK_TYPES, Bucket
from msp_billing.money import line_amount, round_money
from tickets.models import Charge, Ticket, TimeAllocation, TimeEntry
from tickets.routing import ENTRY_RELATED, entries_plan
from tickets.services import entry_fingerprint

ZERO = Decimal("0")
DONE = (Ticket.Status.RESOLVED, Ticket.Status.CLOSED)


def unbilled_after_days() -> int:
    """N: ready work and periods left unbilled this many days are leaks (``LEAKS_UNBILLED_AFTER_DAYS``)."""
    return getattr(settings, "LEAKS_UNBILLED_AFTER_DAYS", 30)


def rate_age_months() -> int:
    """N: a contract rate unchanged this many months is compared with the catalogue (``LEAKS_RATE_AGE_MONTHS``)."""
    return getattr(settings, "LEAKS_RATE_AGE_MONTHS", 12)


class Kind:
    TICKET_NO_TIME = "ticket_no_time"
    TIME_NOT_BILLABLE = "time_not_billable"
    TIME_INACTIVE_CONTRACT = "time_inactive_contract"
    TIME_UNROUTED = "time_unrouted"
    PARTS_UNROUTED = "parts_unrouted"
    BLOCK_OVERAGE_UNBILLED = "block_overage_unbilled"
    RETAINER_OVER = "retainer_over"
    DEVICES_UNBILLED = "devices_unbilled"
    USAGE_UNPRICED = "usage_unpriced"
    PERIOD_SKIPPED = "period_skipped"
    PART_BELOW_COST = "part_below_cost"
    PART_BELOW_CATALOGUE = "part_below_catalogue"
    RATE_STALE = "rate_stale"
    APPROVED_LOWER = "approved_lower"


LABELS = {
    Kind.TICKET_NO_TIME: "Resolved ticket without time",
    Kind.TIME_NOT_BILLABLE: "Billable work marked not billable",
    Kind.TIME_INACTIVE_CONTRACT: "Time on an inactive contract",
    Kind.TIME_UNROUTED: "Unrouted time",
    Kind.PARTS_UNROUTED: "Unrouted part or expense",
    Kind.BLOCK_OVERAGE_UNBILLED: "Block overage never billed",
    Kind.RETAINER_OVER: "Retainer used beyond its fee",
    Kind.DEVICES_UNBILLED: "Devices without a contract line",
    Kind.USAGE_UNPRICED: "Usage over the included quantity, no price",
    Kind.PERIOD_SKIPPED: "Contract period skipped",
    Kind.PART_BELOW_COST: "Part sold below cost",
    Kind.PART_BELOW_CATALOGUE: "Part sold below the catalogue price",
    Kind.RATE_STALE: "Rate below the catalogue for a long time",
    Kind.APPROVED_LOWER: "Time approved at a lower value than logged",
}


@dataclass(frozen=True)
class Leak:
    kind: str
    key: str
    customer_id: int | None
    customer: str
    amount: Decimal
    currency: str
    age_days: int
    description: str
    fingerprint: str
    fix: str = ""  # the one-click fix offered (leaks.fixes), "" for none
    target: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        return LABELS[self.kind]

    @property
    def ident(self) -> str:
        return f"{self.kind}|{self.key}"


def fingerprint(*parts) -> str:
    return hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()[:16]


def _age(today: dt.date, since: dt.date | dt.datetime | None) -> int:
    if since is None:
        return 0
    if isinstance(since, dt.datetime):
        since = since.date()
    return max((today - since).days, 0)


def _customers(ids) -> dict[int, Customer]:
    return Customer.objects.in_bulk({pk for pk in ids if pk})


# --- tickets and time ---------------------------------------------------------------------------


def tickets_without_time(*, today: dt.date) -> list[Leak]:
    """Resolved or closed, unbilled tickets with neither time nor parts, of customers who have a
    contract that charges time (Hourly, Project — hourly, Block). The amount is unknown (0.00)."""
    charging = Contract.objects.filter(
        Q(customer_id=OuterRef("customer_id")) | Q(customer_id=OuterRef("customer__parent_id")),
        status=Contract.Status.ACTIVE, type__in=[Contract.Type.HOURLY, Contract.Type.PROJECT_HOURLY, *BLOCK_TYPES])
    rows = (Ticket.objects.filter(status__in=DONE, billed_at__isnull=True)
            .filter(~Exists(TimeEntry.objects.filter(ticket_id=OuterRef("pk"))),
                    ~Exists(Charge.objects.filter(ticket_id=OuterRef("pk"))), Exists(charging))
            .values("pk", "title", "customer_id", "customer__legal_name", "customer__currency", "resolved_at"))
    return [Leak(Kind.TICKET_NO_TIME, f"ticket:{r['pk']}", r["customer_id"], r["customer__legal_name"], ZERO,
                 r["customer__currency"], _age(today, r["resolved_at"]),
                 f"Ticket #{r['pk']} “{r['title']}” was resolved with no time or parts logged.",
                 fingerprint(r["pk"], r["resolved_at"]), target={"ticket_id": r["pk"]}) for r in rows]


# Notes that say why time is not billed make it a decision, not a leak ("Goodwill: not billed.").
NOT_BILLED_REASONS = ("not billed", "no charge", "goodwill", "warranty", "free of charge", "not billable because")


def _reason_given() -> Q:
    reason = Q()
    for words in NOT_BILLED_REASONS:
        reason |= Q(notes__icontains=words)
    return reason


def time_marked_not_billable(*, today: dt.date) -> list[Leak]:
    """Resolved or closed, unbilled tickets whose time is all marked not billable, although its work
    types are billable, no entry says why (``NOT_BILLED_REASONS``) and the contract that would take
    the time charges for it: the amount is what routing would charge, were the time billable."""
    billable_time = TimeEntry.objects.filter(ticket_id=OuterRef("ticket_id"), billable=True)
    reasoned = TimeEntry.objects.filter(_reason_given(), ticket_id=OuterRef("ticket_id"), billable=False)
    entries = (TimeEntry.objects.filter(billable=False, work_type__billable=True, billed_at__isnull=True,
                                        ticket__billed_at__isnull=True, ticket__status__in=DONE)
               .filter(~Exists(billable_time), ~Exists(reasoned))
               .select_related(*ENTRY_RELATED))
    by_ticket: dict[int, list] = defaultdict(list)
    for entry, allocations in entries_plan(entries):
        charged = [a for a in allocations if a.bucket in (Bucket.CHARGED, Bucket.OVERAGE) and a.amount is not None]
        if sum((a.amount.amount for a in charged), ZERO) > 0:
            by_ticket[entry.ticket_id].append((entry, charged))
    leaks = []
    for ticket_id, found in by_ticket.items():
        ticket = found[0][0].ticket
        customer = ticket.customer
        charged = [a for _, allocations in found for a in allocations]
        amount = sum((a.amount.amount for a in charged), ZERO)
        minutes = sum(entry.minutes for entry, _ in found)
        names = ", ".join(sorted({a.contract.name for a in charged}))
        leaks.append(Leak(Kind.TIME_NOT_BILLABLE, f"ticket:{ticket_id}", customer.pk, customer.legal_name, amount,
                          str(charged[0].amount.currency), _age(today, ticket.resolved_at or max(e.date for e, _ in found)),
                          f"Ticket #{ticket_id} “{ticket.title}”: {minutes} min, all marked not billable with no reason "
                          f"given; {names} would charge them.",
                          fingerprint(*sorted(entry_fingerprint(entry) for entry, _ in found)), fix="mark_billable",
                          target={"entry_ids": sorted(entry.pk for entry, _ in found)}))
    return leaks


def unrouted_time(*, today: dt.date) -> list[Leak]:
    """Unbilled billable time no contract takes, of customers who have a contract for time (their own
    or their parent's). When one of those is not active on the entry's date (ended, cancelled, a
    draft, expired or not yet started), the leak is *time on an inactive contract*; otherwise
    *unrouted time* (every contract excludes the work and there is no default Hourly contract).
    A customer with no contract that takes time at all is left to the dashboard's unrouted list.
    Amount: the minutes to bill at the role's catalogue rate (the last tier of the rate order)."""
    rows = list(TimeEntry.objects.filter(is_unrouted=True, billable=True, billed_at__isnull=True)
                .values("pk", "date", "minutes", "routed_at", "ticket_id", "ticket__customer_id", "ticket__customer__parent_id",
                        "role__default_rate", "work_type__name")
                .annotate(to_bill=Coalesce("posted_minutes", "billable_minutes", "minutes")))
    if not rows:
        return []
    owners = {r["ticket__customer_id"] for r in rows} | {r["ticket__customer__parent_id"] for r in rows}
    contracts_of: dict[int, list[dict]] = defaultdict(list)
    for c in (Contract.objects.filter(customer_id__in=owners - {None}).exclude(type=Contract.Type.ONLINE_BACKUP)
              .values("customer_id", "name", "status", "start_date", "end_date")):
        contracts_of[c["customer_id"]].append(c)
    customers = _customers(owners)
    leaks = []
    for r in rows:
        customer = customers[r["ticket__customer_id"]]
        on = r["date"]
        theirs = [c for owner in (r["ticket__customer_id"], r["ticket__customer__parent_id"]) for c in contracts_of.get(owner, ())]
        if not theirs:
            continue  # no contract for labour at all: a customer to set up, listed as unrouted on the dashboard
        lapsed = next((c for c in theirs if c["status"] != Contract.Status.ACTIVE or c["start_date"] > on or (c["end_date"] and c["end_date"] < on)),
                      None)
        amount = amount_for_minutes(minutes=r["to_bill"], hourly_rate=r["role__default_rate"], currency=customer.currency)
        what = f"{r['minutes']} min of {r['work_type__name']} on ticket #{r['ticket_id']} ({on:%Y-%m-%d})"
        if lapsed:
            kind, text = Kind.TIME_INACTIVE_CONTRACT, f"{what}: {lapsed['name']} is {_inactive_reason(lapsed, on)} on that date."
        else:
            kind, text = Kind.TIME_UNROUTED, f"{what}: no contract takes it."
        leaks.append(Leak(kind, f"entry:{r['pk']}", customer.pk, customer.legal_name, amount, customer.currency,
                          _age(today, on), text, fingerprint(r["pk"], r["to_bill"], r["routed_at"]), fix="route_time",
                          target={"entry_id": r["pk"]}))
    return leaks


def _inactive_reason(contract: dict, on: dt.date) -> str:
    if contract["status"] == Contract.Status.CANCELLED:
        return "cancelled"
    if contract["status"] == Contract.Status.DRAFT or contract["start_date"] > on:
        return "not yet started"
    return "ended"


def unrouted_parts(*, today: dt.date) -> list[Leak]:
    """Billable, unbilled parts and expenses on tickets that no contract bills although the ticket has
    a contract or the customer (or its parent) a default Hourly contract: one not active on the
    charge's date. Without either, the parts are left to the dashboard's unrouted list."""
    rows = (Charge.objects.filter(contract__isnull=True, billable=True, billed_at__isnull=True, ticket__isnull=False)
            .filter(Q(ticket__default_contract__isnull=False) | Q(ticket__customer__default_hourly_contract__isnull=False)
                    | Q(ticket__customer__parent__default_hourly_contract__isnull=False))
            .values("pk", "description", "date", "quantity", "unit_price", "unit_price_currency", "markup_percent",
                    "ticket_id", "ticket__customer_id", "ticket__customer__legal_name"))
    return [Leak(Kind.PARTS_UNROUTED, f"charge:{r['pk']}", r["ticket__customer_id"], r["ticket__customer__legal_name"],
                 marked_up_amount(quantity=r["quantity"], unit_price=r["unit_price"], markup_percent=r["markup_percent"],
                                  currency=r["unit_price_currency"]),
                 r["unit_price_currency"], _age(today, r["date"]),
                 f"{r['quantity'].normalize():f} × {r['description']} on ticket #{r['ticket_id']}: no contract bills it.",
                 fingerprint(r["pk"], r["quantity"], r["unit_price"], r["markup_percent"]), fix="route_charge",
                 target={"charge_id": r["pk"]}) for r in rows]


def approved_lower(*, today: dt.date) -> list[Leak]:
    """Time approved (Approve & Post) at a lower amount than it was logged at, in the last N months
    (``rate_age_months``), summed per technician and customer: the difference is the amount."""
    since = today - dt.timedelta(days=31 * rate_age_months())
    sql = f"""
        WITH logged AS (
            SELECT e.id, e.technician_id, t.customer_id,
                   COALESCE((SELECT sum((a->>'amount')::numeric) FROM jsonb_array_elements(e.routed_before_approval) a
                             WHERE a->>'amount' IS NOT NULL), 0) AS before
            FROM {TimeEntry._meta.db_table} e JOIN {Ticket._meta.db_table} t ON t.id = e.ticket_id
            WHERE e.routed_before_approval IS NOT NULL AND e.date >= %s
              AND (e.posted_minutes IS NOT NULL OR e.posted_rate IS NOT NULL OR e.posted_contract_id IS NOT NULL)
        )
        SELECT l.technician_id, l.customer_id, sum(l.before - COALESCE(n.now, 0)), count(*), max(l.id)
        FROM logged l LEFT JOIN (SELECT entry_id, sum(amount) AS now FROM {TimeAllocation._meta.db_table}
                                 WHERE superseded_at IS NULL GROUP BY entry_id) n ON n.entry_id = l.id
        WHERE l.before > COALESCE(n.now, 0)
        GROUP BY l.technician_id, l.customer_id
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [since])
        rows = cursor.fetchall()
    if not rows:
        return []
    from msp_billing.accounts.models import User

    users = User.objects.in_bulk({r[0] for r in rows})
    customers = _customers({r[1] for r in rows})
    leaks = []
    for technician_id, customer_id, difference, count, last_id in rows:
        customer = customers[customer_id]
        amount = round_money(difference, customer.currency)
        leaks.append(Leak(Kind.APPROVED_LOWER, f"technician:{technician_id}:customer:{customer_id}", customer_id,
                          customer.legal_name, amount, customer.currency, 0,
                          f"{count} entr{'y' if count == 1 else 'ies'} of {users[technician_id]} approved "
                          f"{amount} {customer.currency} below their logged value.",
                          fingerprint(amount, count, last_id)))
    return leaks


# --- contracts ----------------------------------------------------------------------------------


def block_overage_unbilled(*, today: dt.date) -> list[Leak]:
    """Block contracts whose blocks ran out: overage on done tickets left unbilled more than N days
    (``unbilled_after_days``), summed per contract."""
    cutoff = today - dt.timedelta(days=unbilled_after_days())
    rows = (TimeAllocation.objects.filter(bucket=Bucket.OVERAGE, contract__type__in=list(BLOCK_TYPES),
                                          entry__billed_at__isnull=True, entry__billable=True, entry__date__lte=cutoff,
                                          entry__ticket__status__in=DONE)
            .values("contract_id", "contract__name", "contract__currency", "contract__customer_id", "contract__customer__legal_name")
            .annotate(total=Sum("amount"), minutes=Sum("billed_minutes"), first=Min("entry__date"), n=Count("pk"),
                      last=Max("entry_id")))
    return [Leak(Kind.BLOCK_OVERAGE_UNBILLED, f"contract:{r['contract_id']}", r["contract__customer_id"],
                 r["contract__customer__legal_name"], r["total"] or ZERO, r["contract__currency"], _age(today, r["first"]),
                 f"{r['contract__name']}: {r['minutes']} min of overage since {r['first']:%Y-%m-%d} not billed.",
                 fingerprint(r["total"], r["n"], r["last"]), fix="bill_contract",
                 target={"contract_id": r["contract_id"], "customer_id": r["contract__customer_id"]})
            for r in rows if (r["total"] or ZERO) > 0]


def retainer_over(*, today: dt.date) -> list[Leak]:
    """Retainers without an included-hours cap whose absorbed work in a finished period of the last
    N months was worth more than the period's fee: nothing bills the excess (no cap, no overage).
    The amount is the work's value at rate less the fee."""
    since = today - dt.timedelta(days=31 * rate_age_months())
    candidates = list(ContractPeriod.objects.filter(
        contract__type=Contract.Type.RETAINER, contract__included_minutes__isnull=True, contract__fee__isnull=False,
        covered_end__lt=today, covered_end__gte=since).select_related("contract__customer"))
    # The absorbed work per contract and day in one aggregate; each period adds up its days.
    days = defaultdict(list)
    for row in (TimeAllocation.objects.filter(bucket=Bucket.ABSORBED, contract__in={p.contract_id for p in candidates},
                                              entry__date__gte=min((p.covered_start for p in candidates), default=today))
                .order_by().values("contract_id", "entry__date").annotate(value=Sum("value"), minutes=Sum("billed_minutes"))):
        days[row["contract_id"]].append(row)
    usage = {}
    for period in candidates:
        rows = [r for r in days[period.contract_id] if period.covered_start <= r["entry__date"] <= period.covered_end]
        value = sum((r["value"] or ZERO for r in rows), ZERO)
        if value:
            usage[period.pk] = {"value": value, "minutes": sum(r["minutes"] or 0 for r in rows)}
    periods = [p for p in candidates if p.pk in usage]
    lines = periods_lines(periods)
    leaks = []
    for period in periods:
        contract = period.contract
        used = usage[period.pk]
        fee = sum((line.amount for line in lines[period.pk] if line.kind == "fee"), ZERO)
        excess = (used["value"] or ZERO) - fee
        if fee <= 0 or excess <= 0:
            continue
        leaks.append(Leak(Kind.RETAINER_OVER, f"period:{period.pk}", contract.customer_id, contract.customer.legal_name,
                          excess, contract.currency, _age(today, period.covered_end),
                          f"{contract.name}, {period.covered_start:%Y-%m-%d} – {period.covered_end:%Y-%m-%d}: "
                          f"{used['minutes']} min worth {used['value']} absorbed against a fee of {fee}; "
                          "no included hours or overage set.",
                          fingerprint(used["value"], used["minutes"], fee), target={"contract_id": contract.pk}))
    return leaks


def devices_unbilled(*, today: dt.date) -> list[Leak]:
    """Device counts reported (import, API or page) for a device class the Remote Monitoring contract
    does not have: monitored, billed by no line. Amount per period: the count at the contract's
    lowest device-class price (0.00 when it has none)."""
    has_class = DeviceClass.objects.filter(contract_id=OuterRef("contract_id"), name__iexact=OuterRef("device_class_name"))
    latest = (UnmatchedDeviceReport.objects.filter(~Exists(has_class), contract__status=Contract.Status.ACTIVE)
              .order_by("contract_id", "device_class_name", "-reported_at", "-id")
              .distinct("contract_id", "device_class_name")
              .values("pk", "contract_id", "contract__name", "contract__currency", "contract__customer_id",
                      "contract__customer__legal_name", "device_class_name", "count", "reported_on", "source"))
    prices = dict(DeviceClass.objects.values("contract_id").annotate(low=Min("unit_price")).values_list("contract_id", "low"))
    leaks = []
    for r in latest:
        price = prices.get(r["contract_id"]) or ZERO
        leaks.append(Leak(Kind.DEVICES_UNBILLED, f"devices:{r['contract_id']}:{r['device_class_name'].lower()}",
                          r["contract__customer_id"], r["contract__customer__legal_name"],
                          line_amount(quantity=r["count"], unit_price=price, currency=r["contract__currency"]),
                          r["contract__currency"], _age(today, r["reported_on"]),
                          f"{r['count']} × “{r['device_class_name']}” reported ({r['source']}) on {r['contract__name']}, "
                          "which has no such device class.",
                          fingerprint(r["pk"], r["count"]), fix="add_device_line",
                          target={"report_id": r["pk"], "contract_id": r["contract_id"], "unit_price": str(price)}))
    return leaks


def usage_unpriced(*, today: dt.date) -> list[Leak]:
    """Online Backup contracts whose latest usage is above the included quantity with no usage price:
    the excess bills nothing. The amount is unknown (0.00)."""
    latest = (UsageRecord.objects.filter(contract__type=Contract.Type.ONLINE_BACKUP, contract__status=Contract.Status.ACTIVE)
              .filter(Q(contract__unit_price__isnull=True) | Q(contract__unit_price=0))
              .order_by("contract_id", "-measured_on", "-id").distinct("contract_id")
              .values("pk", "contract_id", "contract__name", "contract__currency", "contract__customer_id",
                      "contract__customer__legal_name", "contract__included_quantity", "contract__usage_unit",
                      "quantity", "measured_on"))
    return [Leak(Kind.USAGE_UNPRICED, f"usage:{r['contract_id']}", r["contract__customer_id"], r["contract__customer__legal_name"],
                 ZERO, r["contract__currency"], _age(today, r["measured_on"]),
                 f"{r['contract__name']}: {r['quantity'].normalize():f} {r['contract__usage_unit']} used, "
                 f"{r['contract__included_quantity'].normalize():f} included, and no usage price.",
                 fingerprint(r["pk"], r["quantity"]), target={"contract_id": r["contract_id"]})
            for r in latest if r["quantity"] > r["contract__included_quantity"]]


def periods_skipped(*, today: dt.date) -> list[Leak]:
    """Unbilled periods of active or ended contracts whose bill date is more than N days past
    (``unbilled_after_days``) and that a billing batch since then left out. Amount: what the
    period invoices."""
    cutoff = today - dt.timedelta(days=unbilled_after_days())
    later_batch = BillingBatch.objects.filter(cutoff__gte=OuterRef("bill_date"))
    periods = list(ContractPeriod.objects.filter(billed_at__isnull=True, bill_date__lte=cutoff,
                                                  contract__status__in=[Contract.Status.ACTIVE, Contract.Status.ENDED])
                   .filter(Exists(later_batch)).select_related("contract__customer"))
    lines = periods_lines(periods)
    leaks = []
    for period in periods:
        amount = sum((line.amount for line in lines[period.pk]), ZERO)
        if amount <= 0:
            continue
        contract = period.contract
        leaks.append(Leak(Kind.PERIOD_SKIPPED, f"period:{period.pk}", contract.customer_id, contract.customer.legal_name,
                          amount, contract.currency, _age(today, period.bill_date),
                          f"{contract.name}: {period.covered_start:%Y-%m-%d} – {period.covered_end:%Y-%m-%d}, "
                          f"due {period.bill_date:%Y-%m-%d}, left out of every batch since.",
                          fingerprint(period.pk, amount), fix="bill_contract",
                          target={"contract_id": contract.pk, "customer_id": contract.customer_id}))
    return leaks


def parts_below_price(*, today: dt.date) -> list[Leak]:
    """Unbilled parts whose price (with its mark-up) is below their cost — else below the product's
    catalogue price. Amount: (cost or catalogue − price) × quantity."""
    price = ExpressionWrapper(F("unit_price") * (1 + F("markup_percent") / 100), output_field=DecimalField())
    rows = (Charge.objects.filter(billable=True, billed_at__isnull=True)
            .annotate(sold=price)
            .filter(Q(unit_cost__isnull=False, sold__lt=F("unit_cost"))
                    | Q(product__isnull=False, product__price_currency=F("unit_price_currency"), sold__lt=F("product__price")))
            .values("pk", "description", "date", "quantity", "unit_price", "unit_price_currency", "markup_percent", "unit_cost",
                    "product__price", "sold", "ticket__customer_id", "ticket__customer__legal_name",
                    "contract__customer_id", "contract__customer__legal_name"))
    leaks = []
    for r in rows:
        below_cost = r["unit_cost"] is not None and r["sold"] < r["unit_cost"]
        reference = r["unit_cost"] if below_cost else r["product__price"]
        currency = r["unit_price_currency"]
        amount = (line_amount(quantity=r["quantity"], unit_price=reference, currency=currency)
                  - marked_up_amount(quantity=r["quantity"], unit_price=r["unit_price"], markup_percent=r["markup_percent"],
                                     currency=currency))
        customer_id = r["ticket__customer_id"] or r["contract__customer_id"]
        name = r["ticket__customer__legal_name"] or r["contract__customer__legal_name"]
        kind = Kind.PART_BELOW_COST if below_cost else Kind.PART_BELOW_CATALOGUE
        leaks.append(Leak(kind, f"charge:{r['pk']}", customer_id, name, amount, currency, _age(today, r["date"]),
                          f"{r['quantity'].normalize():f} × {r['description']} at {r['unit_price'].normalize():f} "
                          f"({'cost' if below_cost else 'catalogue price'} {reference.normalize():f}).",
                          fingerprint(r["pk"], r["quantity"], r["unit_price"], r["markup_percent"], reference)))
    return leaks


def rates_stale(*, today: dt.date) -> list[Leak]:
    """Active contracts whose current rate for a tier is older than N months (``rate_age_months``)
    and below the catalogue: the role's default rate for a line naming a role, else the lowest
    role rate of the catalogue. Amount: the difference × the hours the contract charged at that
    rate in the last N months."""
    months = rate_age_months()
    old = today - dt.timedelta(days=round(months * 365.25 / 12))
    latest: dict[tuple, ContractRateLine] = {}
    for line in (ContractRateLine.objects.filter(contract__status=Contract.Status.ACTIVE, effective_from__lte=today)
                 .select_related("contract__customer", "role", "work_type").order_by("effective_from", "id")):
        latest[(line.contract_id, line.work_type_id, line.role_id)] = line  # the tier's current line wins
    lines = [line for line in latest.values() if line.effective_from < old]
    if not lines:
        return []
    lowest = {row["default_rate_currency"]: row["low"] for row in
              Role.objects.values("default_rate_currency").annotate(low=Min("default_rate"))}
    charged = defaultdict(int)
    for row in (TimeAllocation.objects.filter(contract_id__in={line.contract_id for line in lines},
                                              bucket__in=[Bucket.CHARGED, Bucket.OVERAGE], entry__date__gte=old)
                .values("contract_id", "rate", "entry__role_id").annotate(minutes=Sum("billed_minutes"))):
        charged[(row["contract_id"], row["rate"], row["entry__role_id"])] += row["minutes"]
        charged[(row["contract_id"], row["rate"], None)] += row["minutes"]
    leaks = []
    for line in lines:
        contract = line.contract
        if line.role_id is not None:
            catalogue = line.role.default_rate.amount if str(line.role.default_rate.currency) == contract.currency else None
        else:
            catalogue = lowest.get(contract.currency)
        if catalogue is None or line.rate.amount >= catalogue:
            continue
        minutes = charged.get((contract.pk, line.rate.amount, line.role_id), 0)
        amount = amount_for_minutes(minutes=minutes, hourly_rate=catalogue - line.rate.amount, currency=contract.currency)
        tier = " / ".join(str(x) for x in (line.work_type, line.role) if x) or "default rate"
        leaks.append(Leak(Kind.RATE_STALE, f"rate:{line.pk}", contract.customer_id, contract.customer.legal_name, amount,
                          contract.currency, _age(today, line.effective_from),
                          f"{contract.name} ({tier}): {line.rate.amount.normalize():f} since {line.effective_from:%Y-%m-%d}; "
                          f"the catalogue says {catalogue.normalize():f}. {minutes} min charged at it in {months} months.",
                          fingerprint(line.pk, line.rate.amount, catalogue, minutes), fix="rerate",
                          target={"contract_id": contract.pk, "line_id": line.pk, "rate": str(catalogue)}))
    return leaks


RULES = (
    tickets_without_time, time_marked_not_billable, unrouted_time, unrouted_parts, approved_lower,
    block_overage_unbilled, retainer_over, devices_unbilled, usage_unpriced, periods_skipped,
    parts_below_price, rates_stale,
)


def leaks_all(*, today: dt.date) -> list[Leak]:
    """Every rule's leaks, largest amount first (dismissals not applied: see ``leaks.finder``)."""
    found = [leak for rule in RULES for leak in rule(today=today)]
    return sorted(found, key=lambda leak: (-leak.amount, -leak.age_days, leak.kind, leak.key))
