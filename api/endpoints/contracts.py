"""Contracts with their terms, device classes and dated counts, usage; the RMM device feed (PUT)."""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.db import transaction
from ninja import Field, FilterLookup, FilterSchema, Path, Query, Router, Schema, Status
from ninja.pagination import paginate

from api.endpoints._common import ERRORS, Id, IdempotencyKey, amount, get_or_404, needs
from api.pagination import IdCursorPagination
from contracts import services
from contracts.models import Contract, DeviceClass, DeviceCount, UsageRecord
from msp_billing.accounts.roles import Capability

router = Router(tags=["contracts"])
DeviceClassRef = Path[str, {"max_length": 100, "min_length": 1, "description": "The device class's id or name."}]


class RateLineOut(Schema):
    id: int
    work_type_id: int | None
    role_id: int | None
    rate: Decimal | None = None
    effective_from: dt.date

    @staticmethod
    def resolve_rate(obj):
        return amount(obj.rate)


class ServiceLineOut(Schema):
    id: int
    description: str
    quantity: Decimal
    unit_price: Decimal | None = None
    effective_from: dt.date
    effective_to: dt.date | None

    @staticmethod
    def resolve_unit_price(obj):
        return amount(obj.unit_price)


class DeviceClassOut(Schema):
    id: int
    name: str
    unit_price: Decimal | None = None
    current_count: int | None = None

    @staticmethod
    def resolve_unit_price(obj):
        return amount(obj.unit_price)

    @staticmethod
    def resolve_current_count(obj):
        latest = obj.counts.order_by("-effective_date", "-id").first()
        return latest.count if latest else None


class ContractOut(Schema):
    id: int
    customer_id: int
    name: str
    type: str
    status: str
    currency: str
    start_date: dt.date
    end_date: dt.date | None
    billing_frequency: str
    billing_timing: str


class ContractDetailOut(ContractOut):
    rate_lines: list[RateLineOut]
    service_lines: list[ServiceLineOut]
    device_classes: list[DeviceClassOut]

    @staticmethod
    def resolve_rate_lines(obj):
        return list(obj.rate_lines.all())

    @staticmethod
    def resolve_service_lines(obj):
        return list(obj.service_lines.all())

    @staticmethod
    def resolve_device_classes(obj):
        return list(obj.device_classes.order_by("name"))


class DeviceCountOut(Schema):
    id: int
    device_class_id: int
    device_class: str
    effective_date: dt.date
    count: int
    source: str

    @staticmethod
    def resolve_device_class(obj):
        return obj.device_class.name


class UsageOut(Schema):
    id: int
    measured_on: dt.date
    quantity: Decimal


class ContractFilter(FilterSchema):
    customer: Annotated[int | None, FilterLookup("customer_id"), Field(ge=1, le=2_147_483_647)] = None
    status: Contract.Status | None = None
    type: Contract.Type | None = None


class DeviceCountIn(Schema):
    count: int = Field(..., ge=0, le=1_000_000, description="Devices monitored from today on.")


class DevicePutOut(Schema):
    matched: bool = Field(..., description="False: the contract has no such device class; the report is kept as a possible leak.")
    device_count: DeviceCountOut | None = None
    unmatched_report_id: int | None = None


class UsageIn(Schema):
    measured_on: dt.date
    quantity: Decimal = Field(..., ge=0, lt=Decimal("1e9"), max_digits=12, decimal_places=3)


@router.get("", response={200: list[ContractOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def contract_list(request, filters: Query[ContractFilter]):
    return filters.filter(Contract.objects.all())


@router.get("/{contract_id}", response={200: ContractDetailOut, **ERRORS})
@needs(Capability.VIEW_BILLING)
def contract_get(request, contract_id: Id):
    return get_or_404(Contract.objects, "contract", pk=contract_id)


@router.get("/{contract_id}/device-counts", response={200: list[DeviceCountOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def device_count_list(request, contract_id: Id, effective_from: dt.date | None = None, effective_to: dt.date | None = None):
    contract = get_or_404(Contract.objects, "contract", pk=contract_id)
    counts = DeviceCount.objects.filter(device_class__contract=contract).select_related("device_class")
    if effective_from:
        counts = counts.filter(effective_date__gte=effective_from)
    if effective_to:
        counts = counts.filter(effective_date__lte=effective_to)
    return counts


@router.put("/{contract_id}/devices/{device_class}", response={200: DevicePutOut, 202: DevicePutOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def device_count_put(request, contract_id: Id, device_class: DeviceClassRef,
                     payload: DeviceCountIn):
    """Set the current count of a device class (its id or name) from today on, as the contract page does.

    A class the contract does not have is kept as an unmatched report (202) and shown on the
    dashboard as a possible leak."""
    contract = get_or_404(Contract.objects, "contract", pk=contract_id)
    classes = DeviceClass.objects.filter(contract=contract).select_related("contract")
    found = (classes.filter(pk=int(device_class)).first() if device_class.isdigit() and len(device_class) < 10 else None) \
        or classes.filter(name__iexact=device_class.strip()).first()
    if found is None:
        report = services.device_report_unmatched(contract=contract, device_class_name=device_class, count=payload.count,
                                                  acting_user=request.user)
        return Status(202, {"matched": False, "unmatched_report_id": report.pk})
    with transaction.atomic():
        row = services.device_count_record(device_class=found, effective_date=services.tenant_today(), count=payload.count,
                                           acting_user=request.user, source=DeviceCount.Source.API)
    return Status(200, {"matched": True, "device_count": row})


@router.get("/{contract_id}/usage", response={200: list[UsageOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def usage_list(request, contract_id: Id):
    contract = get_or_404(Contract.objects, "contract", pk=contract_id)
    return UsageRecord.objects.filter(contract=contract)


@router.post("/{contract_id}/usage", response={201: UsageOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def usage_create(request, contract_id: Id, payload: UsageIn, idempotency_key: IdempotencyKey = None):
    """Record usage (GB or seats) measured on a date, as the contract page does."""
    contract = get_or_404(Contract.objects, "contract", pk=contract_id)
    return Status(201, services.usage_record(contract=contract, measured_on=payload.measured_on, quantity=payload.quantity,
                                             acting_user=request.user))
