"""Unbilled work: every billable item a contract takes that no batch has billed yet.

One definition serves the billing dashboard's widgets, the saved widgets and the
"Unbilled work in progress" report, so a widget's figure is always the total of the list
it links to (docs/dashboard.md). An item is one of:

* **time**: a routed time allocation that charges money (buckets *charged* and
  *overage*; time a contract absorbs or deducts from a block bills nothing of its own);
* **a part or expense** (``Charge``) with a contract, valued at quantity × unit price
  with its markup, rounded once to the currency's minor unit as its invoice line will be.

Its **state** follows ``billing.readiness`` exactly: *ready* (a batch with today's cut-off
would bill it), *waiting for approval* (where the MSP turned approval on: time and parts on
resolved or closed tickets that no admin approved yet) and *in progress* (the ticket is
still open, or the item is dated after today). Its **age** is days since its date.

Both sources are read as one ``UNION ALL`` of two querysets with the same columns; the
figures are one ``GROUPING SETS`` aggregate over it, so the number of queries does not
grow with the rows.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Case, CharField, DecimalField, ExpressionWrapper, F, Func, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce

from billing.readiness import DONE_STATUSES
from contracts.models import Contract, Customer
from contracts.rules.routing import Bucket
from msp_billing.money import minor_unit_exponent
from msp_billing.tenants.today import current_msp
from tickets.models import Charge, TimeAllocation, TimeEntry

ZERO = Decimal("0")
READY, WAITING, IN_PROGRESS = "ready", "waiting", "in_progress"
STATES = {READY: "Ready to bill", WAITING: "Waiting for approval", IN_PROGRESS: "In progress"}
# (key, label, first day, last day) of age since the item's date; future-dated work is 0–30.
AGE_BUCKETS = [("0-30", "0–30 days", None, 30), ("31-60", "31–60 days", 31, 60), ("61-90", "61–90 days", 61, 90),
               ("over-90", "Over 90 days", 91, None)]
AGES = {key: label for key, label, *_ in AGE_BUCKETS}
KINDS = {"time": "Time", "charge": "Part or expense"}


def age_range(age: str, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """The item dates (from, to) of an age bucket seen on ``today``."""
    for key, _label, first, last in AGE_BUCKETS:
        if key == age:
            return (today - dt.timedelta(days=last) if last is not None else None,
                    today - dt.timedelta(days=first) if first is not None else None)
    raise ValueError(age)


def _state(*, approved: Q, waiting: Q, done: Q, dated: str, today: dt.date, approval_on: bool) -> Case:
    not_future = Q(**{f"{dated}__lte": today})
    if approval_on:
        whens = [When(approved & not_future, then=Value(READY)), When(waiting & done, then=Value(WAITING))]
    else:
        whens = [When(done & not_future, then=Value(READY))]
    return Case(*whens, default=Value(IN_PROGRESS), output_field=CharField())


def _rounding_places() -> Case | Value:
    """The minor unit of each currency billed in (JPY 0, BHD 3, most 2), for rounding charge amounts in SQL."""
    odd = {code: minor_unit_exponent(code) for code in Customer.objects.values_list("currency", flat=True).distinct()}
    odd = {code: places for code, places in odd.items() if places != 2}
    if not odd:
        return Value(2)
    return Case(*[When(contract__currency=code, then=Value(places)) for code, places in odd.items()],
                default=Value(2), output_field=IntegerField())


def _apply(queryset: QuerySet, filters: dict, *, dated: str, technician: str, today: dt.date) -> QuerySet:
    if filters.get("state"):
        queryset = queryset.filter(item_state=filters["state"])
    if filters.get("age"):
        first, last = age_range(filters["age"], today)
        if first is not None:
            queryset = queryset.filter(**{f"{dated}__gte": first})
        if last is not None:
            queryset = queryset.filter(**{f"{dated}__lte": last})
    if filters.get("older_than"):
        queryset = queryset.filter(**{f"{dated}__lt": today - dt.timedelta(days=filters["older_than"])})
    if filters.get("customer"):
        queryset = queryset.filter(contract__customer_id=getattr(filters["customer"], "pk", filters["customer"]))
    if filters.get("contract_type"):
        queryset = queryset.filter(contract__type=filters["contract_type"])
    if filters.get("technician"):
        queryset = queryset.filter(**{technician: getattr(filters["technician"], "pk", filters["technician"])})
    return queryset


WIDE = ("item_customer_name", "item_contract_name", "item_ticket", "item_technician_email", "item_description")


NARROW = ["item_date", "item_contract", "item_state", "item_currency", "item_amount", "item_minutes"]


def unbilled_items(*, today: dt.date, filters: dict | None = None, wide: bool = False, narrow: bool = False) -> QuerySet:
    """The unbilled items as one union queryset of tuples: kind, id, date, customer_id, contract_id,
    contract_type, technician_id, state, currency, amount, minutes (and, ``wide``, names for a list).
    ``narrow`` (no filters): only date, contract_id, state, currency, amount and minutes, read without
    joining the contracts, for aggregates that add the contract's type and customer afterwards."""
    filters = filters or {}
    if narrow and filters:
        raise ValueError("narrow items take no filters")
    approval_on = current_msp().time_approval_required
    done = Q(entry__ticket__status__in=DONE_STATUSES)
    time = TimeAllocation.objects.filter(
        contract__isnull=False, bucket__in=(Bucket.CHARGED, Bucket.OVERAGE), amount__isnull=False,
        entry__billed_at__isnull=True, entry__billable=True,
    )
    if not narrow:
        time = time.annotate(item_kind=Value("time", output_field=CharField()), item_id=F("id"),
                             item_customer=F("contract__customer_id"), item_contract_type=F("contract__type"),
                             item_technician=F("entry__technician_id"))
    time = time.annotate(
        item_date=F("entry__date"), item_contract=F("contract_id"),
        item_state=_state(approved=Q(entry__approval=TimeEntry.Approval.APPROVED), waiting=Q(entry__approval=TimeEntry.Approval.PENDING),
                     done=done, dated="entry__date", today=today, approval_on=approval_on),
        item_currency=F("amount_currency"), item_amount=F("amount"), item_minutes=F("billed_minutes"),
    )
    done = Q(ticket__isnull=True) | Q(ticket__status__in=DONE_STATUSES)
    exact = ExpressionWrapper(F("quantity") * F("unit_price") * (Value(Decimal(1)) + F("markup_percent") / Value(Decimal(100))),
                              output_field=DecimalField())
    charges = Charge.objects.filter(contract__isnull=False, billed_at__isnull=True, billable=True).annotate(
        item_kind=Value("charge", output_field=CharField()), item_id=F("id"), item_date=F("date"),
        item_customer=F("contract__customer_id"), item_contract=F("contract_id"), item_contract_type=F("contract__type"),
        item_technician=F("ticket__technician_id"),
        item_state=_state(approved=Q(state=Charge.State.READY), waiting=Q(state=Charge.State.WAITING), done=done,
                     dated="date", today=today, approval_on=approval_on),
        item_currency=F("contract__currency"),
        item_amount=Func(exact, _rounding_places(), function="ROUND", output_field=DecimalField(max_digits=14, decimal_places=2)),
        item_minutes=Value(0, output_field=IntegerField()),
    )
    time = _apply(time, filters, dated="entry__date", technician="entry__technician_id", today=today)
    charges = _apply(charges, filters, dated="date", technician="ticket__technician_id", today=today)
    columns = ["item_kind", "item_id", "item_date", "item_customer", "item_contract", "item_contract_type", "item_technician",
               "item_state", "item_currency", "item_amount", "item_minutes"]
    if narrow:
        return time.values_list(*NARROW).order_by().union(charges.values_list(*NARROW).order_by(), all=True)
    if wide:
        time = time.annotate(item_customer_name=F("contract__customer__legal_name"), item_contract_name=F("contract__name"),
                             item_ticket=F("entry__ticket_id"), item_technician_email=F("entry__technician__email"),
                             item_description=Coalesce(F("entry__work_type__name"), Value("")))
        charges = charges.annotate(item_customer_name=F("contract__customer__legal_name"), item_contract_name=F("contract__name"),
                                   item_ticket=F("ticket_id"), item_technician_email=F("ticket__technician__email"),
                                   item_description=F("description"))
        time = time.values_list(*columns, *WIDE)
        charges = charges.values_list(*columns, *WIDE)
    else:
        time, charges = time.values_list(*columns), charges.values_list(*columns)
    return time.order_by().union(charges.order_by(), all=True)


def _sql(queryset: QuerySet) -> tuple[str, tuple]:
    return queryset.query.get_compiler(connection=connection).as_sql()


COLUMNS = ["kind", "id", "date", "customer_id", "contract_id", "contract_type", "technician_id", "state", "currency",
           "amount", "minutes"]


def _age_sql(today: dt.date) -> tuple[str, list]:
    parts, params = [], []
    for key, _label, _first, last in AGE_BUCKETS:
        if last is None:
            parts.append(f"ELSE '{key}'")
        else:
            parts.append(f"WHEN u.date >= %s THEN '{key}'")
            params.append(today - dt.timedelta(days=last))
    return "CASE " + " ".join(parts) + " END", params


@dataclass
class Figure:
    """An amount per currency, how many items and how many billed minutes."""

    amounts: dict[str, Decimal] = field(default_factory=dict)
    items: int = 0
    minutes: int = 0

    def add(self, currency: str, amount: Decimal, items: int, minutes: int) -> None:
        self.amounts[currency] = self.amounts.get(currency, ZERO) + amount
        self.items += items
        self.minutes += minutes

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(Decimal("0.01"))

    def amount(self, currency: str) -> Decimal:
        return self.amounts.get(currency, ZERO)

    @property
    def lines(self) -> list[tuple[str, Decimal]]:
        """(currency, amount), one per currency: amounts in different currencies are never added."""
        return sorted(self.amounts.items())


@dataclass
class UnbilledFigures:
    total: Figure = field(default_factory=Figure)
    by_state: dict[str, Figure] = field(default_factory=lambda: defaultdict(Figure))
    by_age: dict[str, Figure] = field(default_factory=lambda: defaultdict(Figure))
    by_contract_type: dict[str, Figure] = field(default_factory=lambda: defaultdict(Figure))
    by_customer: dict[int, Figure] = field(default_factory=lambda: defaultdict(Figure))
    older: Figure = field(default_factory=Figure)  # older than the MSP's attention days
    currencies: list[str] = field(default_factory=list)


@contextmanager
def _one_pass_cursor():
    """A cursor for one aggregate over every unbilled item. Its transaction lets the hash
    aggregate have the memory it needs (the server's default 4 MB makes PostgreSQL sort a
    million rows on disk instead: twice the time) and skips JIT compilation, which costs
    more than it saves on one pass."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute("SET LOCAL jit = off")
        yield cursor


def unbilled_figures(*, today: dt.date, attention_days: int, filters: dict | None = None) -> UnbilledFigures:
    """Every unbilled figure of the dashboard in one aggregate (``GROUPING SETS`` over the union)."""
    if filters:
        sql, params = _sql(unbilled_items(today=today, filters=filters))
        source = f"u ({', '.join(COLUMNS)}) AS ({sql})"
    else:
        sql, params = _sql(unbilled_items(today=today, narrow=True))
        source = f"u (date, contract_id, state, currency, amount, minutes) AS ({sql})"
    age, age_params = _age_sql(today)
    # One hash aggregate over the items per contract (as any hand-written figure reads them),
    # then each contract's type and customer, then the grouping sets over those few rows.
    query = f"""
        WITH {source},
             c AS (SELECT currency, state, {age} AS age, (u.date < %s) AS older, contract_id,
                          sum(amount) AS amount, count(*) AS items, sum(minutes) AS minutes
                   FROM u GROUP BY 1, 2, 3, 4, 5),
             a AS (SELECT c.*, k.type AS contract_type, k.customer_id
                   FROM c JOIN {Contract._meta.db_table} k ON k.id = c.contract_id)
        SELECT GROUPING(state), GROUPING(age), GROUPING(contract_type), GROUPING(customer_id), GROUPING(older),
               state, age, contract_type, customer_id, older, currency,
               coalesce(sum(amount), 0), sum(items)::int, coalesce(sum(minutes), 0)::int
        FROM a
        GROUP BY GROUPING SETS ((currency), (currency, state), (currency, age), (currency, contract_type),
                                (currency, customer_id), (currency, older))
    """
    figures = UnbilledFigures()
    with _one_pass_cursor() as cursor:
        cursor.execute(query, [*params, *age_params, today - dt.timedelta(days=attention_days)])
        rows = cursor.fetchall()
    currencies = set()
    for g_state, g_age, g_type, g_customer, g_older, state, age_key, ctype, customer_id, older, currency, amount, items, minutes in rows:
        currencies.add(currency)
        if not g_state:
            figures.by_state[state].add(currency, amount, items, minutes)
        elif not g_age:
            figures.by_age[age_key].add(currency, amount, items, minutes)
        elif not g_type:
            figures.by_contract_type[ctype].add(currency, amount, items, minutes)
        elif not g_customer:
            figures.by_customer[customer_id].add(currency, amount, items, minutes)
        elif not g_older:
            if older:
                figures.older.add(currency, amount, items, minutes)
        else:
            figures.total.add(currency, amount, items, minutes)
    figures.currencies = sorted(currencies)
    return figures


def saved_figures(*, today: dt.date, widgets) -> dict[int, Figure]:
    """The figure of each saved widget, all in one query (``FILTER`` per widget, grouped by currency)."""
    widgets = list(widgets)
    if not widgets:
        return {}
    sql, params = _sql(unbilled_items(today=today))
    selects, filter_params = [], []
    for widget in widgets:
        conditions, values = [], []
        for column, value in (("state", widget.state), ("customer_id", widget.customer_id),
                              ("contract_type", widget.contract_type), ("technician_id", widget.technician_id)):
            if value:
                conditions.append(f"{column} = %s")
                values.append(value)
        if widget.age:
            first, last = age_range(widget.age, today)
            if first is not None:
                conditions.append("date >= %s")
                values.append(first)
            if last is not None:
                conditions.append("date <= %s")
                values.append(last)
        where = " AND ".join(conditions) or "TRUE"
        selects.append(f"coalesce(sum(amount) FILTER (WHERE {where}), 0), count(*) FILTER (WHERE {where})")
        filter_params += values + values
    figures = {widget.pk: Figure() for widget in widgets}
    with _one_pass_cursor() as cursor:
        cursor.execute(f"WITH u ({', '.join(COLUMNS)}) AS ({sql}) SELECT currency, {', '.join(selects)} FROM u GROUP BY currency",
                       [*params, *filter_params])
        for row in cursor.fetchall():
            currency = row[0]
            for index, widget in enumerate(widgets):
                amount, items = row[1 + 2 * index], row[2 + 2 * index]
                if items:
                    figures[widget.pk].add(currency, amount, items, 0)
    return figures


@dataclass
class Item:
    kind: str
    id: int
    date: dt.date
    customer_id: int
    contract_id: int
    contract_type: str
    technician_id: int | None
    state: str
    currency: str
    amount: Decimal
    minutes: int
    customer_name: str
    contract_name: str
    ticket_id: int | None
    technician_email: str | None
    description: str
    age: int = 0  # days since its date

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / 60).quantize(Decimal("0.01"))

    @property
    def state_label(self) -> str:
        return STATES[self.state]

    @property
    def kind_label(self) -> str:
        return KINDS[self.kind]

    @property
    def contract_type_label(self) -> str:
        return Contract.Type(self.contract_type).label


def unbilled_list(*, today: dt.date, filters: dict | None = None, offset: int = 0, limit: int | None = 100) -> list[Item]:
    """One page of the filtered items, oldest first (``limit=None``: all, for CSV)."""
    items = unbilled_items(today=today, filters=filters, wide=True).order_by("item_date", "item_kind", "item_id")
    if limit is not None:
        items = items[offset:offset + limit]
    return [Item(*row, age=(today - row[2]).days) for row in items]
