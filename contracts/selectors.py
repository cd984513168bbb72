"""Reads for the customer, catalogue and contract pages: one place owns the joins."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, Max, OuterRef, Prefetch, QuerySet, Subquery, Value
from django.db.models.functions import Cast
from django.shortcuts import get_object_or_404

from contracts.selectors_blocks import BlockBalance as BlockBalanceFigures
from contracts.selectors_blocks import block_balance, block_balances  # noqa: F401 (one reading of block balances)
from contracts.models import (
    BlockPurchase,
    Contract,
    ContractRateLine,
    Customer,
    DeviceClass,
    DeviceCount,
    ExclusionSet,
    Milestone,
    Product,
    RateItem,
    RecurringServiceLine,
    Role,
    TaxRate,
    UnmatchedDeviceReport,
    UsageRecord,
    WorkType,
)

# --- customers ----------------------------------------------------------------------------


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.select_related("parent").annotate(
        site_count=Count("sites", distinct=True), contract_count=Count("contracts", distinct=True)
    ).order_by("legal_name")  # Meta.ordering does not apply to aggregating queries


def customer_detail(*, customer_id: int) -> Customer:
    return get_object_or_404(
        Customer.objects.select_related("parent", "default_hourly_contract").prefetch_related(
            Prefetch("sites", queryset=Customer.objects.order_by("legal_name")), "billing_contacts",
            Prefetch("contracts", queryset=Contract.objects.select_related("exclusion_set").order_by("priority", "id")),
        ),
        pk=customer_id,
    )


def customer_parent_choices(*, exclude_id: int | None = None) -> QuerySet[Customer]:
    """Customers that can be a parent: top-level ones (sites have no sites of their own)."""
    queryset = Customer.objects.filter(parent__isnull=True)
    if exclude_id is not None:
        queryset = queryset.exclude(pk=exclude_id)
    return queryset


# --- catalogue ----------------------------------------------------------------------------


def work_type_list() -> QuerySet[WorkType]:
    return WorkType.objects.all()


def work_type_detail(*, work_type_id: int) -> WorkType:
    return get_object_or_404(WorkType.objects.prefetch_related("exclusion_sets"), pk=work_type_id)


def role_list() -> QuerySet[Role]:
    return Role.objects.all()


def rate_item_list() -> QuerySet[RateItem]:
    return RateItem.objects.all()


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def tax_rate_list() -> QuerySet[TaxRate]:
    return TaxRate.objects.all()


def tax_rate_versions(*, code: str) -> QuerySet[TaxRate]:
    """Every version of one tax, newest first."""
    return TaxRate.objects.filter(code=code).order_by("-effective_from")


def tax_rate_in_force(*, code: str, on_date: dt.date) -> TaxRate | None:
    return TaxRate.objects.filter(code=code, effective_from__lte=on_date).order_by("-effective_from").first()


def tax_rate_latest_dates() -> QuerySet:
    """``code`` → newest ``effective_from``, for marking the current version in lists."""
    return TaxRate.objects.values("code").annotate(latest=Max("effective_from"))


def exclusion_set_list() -> QuerySet[ExclusionSet]:
    return ExclusionSet.objects.prefetch_related("work_types", "roles").annotate(
        contract_count=Count("contracts", distinct=True)
    ).order_by("name")


def exclusion_set_detail(*, exclusion_set_id: int) -> ExclusionSet:
    return get_object_or_404(
        ExclusionSet.objects.prefetch_related(
            "work_types", "roles", Prefetch("contracts", queryset=Contract.objects.select_related("customer"))
        ),
        pk=exclusion_set_id,
    )


# --- contracts ----------------------------------------------------------------------------


def contract_list() -> QuerySet[Contract]:
    return Contract.objects.select_related("customer", "exclusion_set")


def contract_detail(*, contract_id: int) -> Contract:
    latest_count = DeviceCount.objects.filter(device_class=OuterRef("pk")).order_by("-effective_date", "-id")
    return get_object_or_404(
        Contract.objects.select_related("customer", "customer__parent", "exclusion_set").prefetch_related(
            Prefetch(
                "rate_lines",
                queryset=ContractRateLine.objects.select_related("work_type", "role").order_by(
                    "work_type__name", "role__name", "-effective_from"
                ),
            ),
            Prefetch(
                "service_lines",
                queryset=RecurringServiceLine.objects.select_related("rate_item", "product").order_by(
                    "-effective_from", "id"
                ),
            ),
            Prefetch(
                "device_classes",
                queryset=DeviceClass.objects.annotate(
                    current_count=Subquery(latest_count.values("count")[:1]),
                    current_count_from=Subquery(latest_count.values("effective_date")[:1]),
                )
                .prefetch_related(Prefetch("counts", queryset=DeviceCount.objects.order_by("-effective_date", "-id")))
                .order_by("name"),
            ),
            Prefetch("usage_records", queryset=UsageRecord.objects.order_by("-measured_on", "-id")),
            Prefetch("blocks", queryset=BlockPurchase.objects.annotate(
                hours=Cast("minutes", DecimalField(max_digits=12, decimal_places=2)) / Value(Decimal(60))
            ).order_by("-purchased_on", "-id")),
            Prefetch("milestones", queryset=Milestone.objects.order_by("due_date", "id")),
        ),
        pk=contract_id,
    )


def contract_for_update(*, contract_id: int) -> Contract:
    return get_object_or_404(Contract.objects.select_related("customer"), pk=contract_id)


# --- block balances and renewals (dashboard and reports) --------------------------------------


@dataclass(frozen=True)
class ActiveBlockBalance:
    """An active Block contract with its balance (``contracts.selectors_blocks``), as the
    dashboard and the consumption report list it: size and use of the usable blocks."""

    contract: Contract
    balance: BlockBalanceFigures

    @property
    def bought(self) -> bool:
        """False: no block bought yet (or every one expired): nothing to measure."""
        return self.balance.usage is not None

    @property
    def is_money(self) -> bool:
        return self.balance.money

    @property
    def size(self) -> int | Decimal:
        return self.balance.usage.size if self.bought else self.balance._zero

    @property
    def used(self) -> int | Decimal:
        return self.balance.usage.used if self.bought else self.balance._zero

    @property
    def remaining(self) -> int | Decimal:
        return self.size - self.used

    @property
    def threshold(self) -> int | None:
        """The lowest alert threshold, percent used."""
        return self.balance.low_threshold

    @property
    def percent_used(self) -> Decimal:
        if not self.size:
            return Decimal(100)
        return (Decimal(self.used) * 100 / Decimal(self.size)).quantize(Decimal("0.1"))

    @property
    def below_threshold(self) -> bool:
        """The balance fell below the first alert threshold (used at least that percent)."""
        return self.bought and self.threshold is not None and self.percent_used >= self.threshold


def active_block_balances(*, today: dt.date, customer: Customer | None = None) -> list[ActiveBlockBalance]:
    """Every active Block contract's balance in two queries, whatever the number of blocks,
    most used first. Measured as ``contracts.selectors_blocks.block_balances`` measures it."""
    contracts = Contract.objects.filter(status=Contract.Status.ACTIVE, type__in=(Contract.Type.BLOCK_HOURS, Contract.Type.BLOCK_MONEY))
    if customer is not None:
        contracts = contracts.filter(customer=customer)
    contracts = list(contracts.select_related("customer"))
    figures = block_balances(contracts=contracts, today=today)
    balances = [ActiveBlockBalance(contract=contract, balance=figures[contract.pk]) for contract in contracts]
    return sorted(balances, key=lambda b: (-b.percent_used, b.contract.customer.legal_name, b.contract.name))


def contracts_ending(*, today: dt.date, within_days: int = 90, customer: Customer | None = None,
                     contract_type: str = "") -> QuerySet[Contract]:
    """Active contracts whose end date falls within ``within_days`` of today (renewing or ending), soonest first."""
    contracts = Contract.objects.filter(status=Contract.Status.ACTIVE, end_date__isnull=False, end_date__gte=today,
                                        end_date__lte=today + dt.timedelta(days=within_days))
    if customer is not None:
        contracts = contracts.filter(customer=customer)
    if contract_type:
        contracts = contracts.filter(type=contract_type)
    return contracts.select_related("customer").order_by("end_date", "customer__legal_name", "name")


def unmatched_device_reports(*, limit: int = 10) -> list[UnmatchedDeviceReport]:
    """The latest device counts reported for classes their contract does not have (a possible
    leak: devices monitored that no contract line bills), newest first."""
    return list(UnmatchedDeviceReport.objects.select_related("contract__customer")[:limit])
