"""Tickets and time (everyone who logs time: a technician sees their own entries, as on the
pages), charges (billing roles). Time is logged, routed and rated by ``tickets.services``."""

import datetime as dt
from decimal import Decimal
from typing import Annotated

from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from ninja import Field, FilterLookup, FilterSchema, Query, Router, Schema, Status
from ninja.pagination import paginate

from api.endpoints._common import ERRORS, Id, IdempotencyKey, MAX_ID, amount, get_or_404, needs
from api.pagination import IdCursorPagination
from contracts.models import Contract, Customer, Product, RateItem, WorkType
from msp_billing.accounts.roles import Capability
from msp_billing.validation import Errors, check_date
from tickets import services
from tickets.models import Charge, Ticket, TimeAllocation, TimeEntry

router = Router(tags=["tickets and time"])


class TicketOut(Schema):
    id: int
    customer_id: int
    title: str
    status: str
    technician_id: int | None
    default_contract_id: int | None
    created_at: dt.datetime


class AllocationOut(Schema):
    contract_id: int | None
    contract: str | None = None
    bucket: str
    minutes: int
    billed_minutes: int

    @staticmethod
    def resolve_contract(obj):
        return obj.contract.name if obj.contract_id else None


class TimeEntryOut(Schema):
    id: int
    ticket_id: int
    technician_id: int
    work_type_id: int
    date: dt.date
    minutes: int
    billable_minutes: int | None
    notes: str
    billable: bool
    after_hours: bool
    approval: str
    is_unrouted: bool
    routing_explanation: str
    billed: bool
    allocations: list[AllocationOut]

    @staticmethod
    def resolve_billed(obj):
        return obj.billed_at is not None

    @staticmethod
    def resolve_allocations(obj):
        if "allocations" in getattr(obj, "_prefetched_objects_cache", {}):
            return list(obj.allocations.all())
        return list(obj.allocations.select_related("contract"))


class TimeEntryIn(Schema):
    work_type: int = Field(..., ge=1, le=MAX_ID, description="Id of an active work type (GET /work-types).")
    date: dt.date
    minutes: int | None = Field(None, ge=1, le=1440, description="Time worked; or give started_at and ended_at.")
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    billable_minutes: int | None = Field(None, ge=0, le=1440)
    notes: str = Field("", max_length=5000)
    billable: bool | None = None
    after_hours: bool | None = Field(None, description="null: from the MSP's business hours.")
    chosen_contract: int | None = Field(None, ge=1, le=MAX_ID)
    chosen_rate_item: int | None = Field(None, ge=1, le=MAX_ID)


class TicketIn(Schema):
    customer: int = Field(..., ge=1, le=MAX_ID)
    title: str = Field(..., min_length=1, max_length=200)
    default_contract: int | None = Field(None, ge=1, le=MAX_ID, description="An active contract of the customer that bills all its work.")


class ChargeIn(Schema):
    product: int | None = Field(None, ge=1, le=MAX_ID, description="A catalogue product (GET /products); null: an expense.")
    description: str = Field("", max_length=200)
    date: dt.date
    quantity: Decimal = Field(..., gt=0, max_digits=12, decimal_places=3)
    unit_price: Decimal | None = Field(None, ge=0, max_digits=14, decimal_places=4,
                                       description="In the customer's currency; null: the product's price. Billing roles only.")


class ChargeOut(Schema):
    id: int
    ticket_id: int | None
    contract_id: int | None
    product_id: int | None
    description: str
    date: dt.date
    quantity: Decimal
    unit_price: Decimal | None = None
    billable: bool
    state: str

    @staticmethod
    def resolve_unit_price(obj):
        return amount(obj.unit_price)


class TicketFilter(FilterSchema):
    customer: Annotated[int | None, FilterLookup("customer_id"), Field(ge=1, le=MAX_ID)] = None
    status: Ticket.Status | None = None
    technician: Annotated[int | None, FilterLookup("technician_id"), Field(ge=1, le=MAX_ID)] = None


class TimeFilter(FilterSchema):
    ticket: Annotated[int | None, FilterLookup("ticket_id"), Field(ge=1, le=MAX_ID)] = None
    customer: Annotated[int | None, FilterLookup("ticket__customer_id"), Field(ge=1, le=MAX_ID)] = None
    date_from: Annotated[dt.date | None, FilterLookup("date__gte")] = None
    date_to: Annotated[dt.date | None, FilterLookup("date__lte")] = None


def _sees_money(request) -> bool:
    return request.user.can(Capability.VIEW_BILLING)


def _entries(request):
    entries = TimeEntry.objects.prefetch_related(Prefetch("allocations", queryset=TimeAllocation.objects.select_related("contract")))
    return entries if _sees_money(request) else entries.filter(technician=request.user)


@router.get("/tickets", response={200: list[TicketOut], **ERRORS})
@needs(Capability.LOG_TIME)
@paginate(IdCursorPagination)
def ticket_list(request, filters: Query[TicketFilter]):
    return filters.filter(Ticket.objects.all())


@router.get("/tickets/{ticket_id}", response={200: TicketOut, **ERRORS})
@needs(Capability.LOG_TIME)
def ticket_get(request, ticket_id: Id):
    return get_or_404(Ticket.objects, "ticket", pk=ticket_id)


@router.get("/time-entries", response={200: list[TimeEntryOut], **ERRORS})
@needs(Capability.LOG_TIME)
@paginate(IdCursorPagination)
def time_entry_list(request, filters: Query[TimeFilter]):
    return filters.filter(_entries(request))


@router.get("/time-entries/{entry_id}", response={200: TimeEntryOut, **ERRORS})
@needs(Capability.LOG_TIME)
def time_entry_get(request, entry_id: Id):
    return get_or_404(_entries(request), "time entry", pk=entry_id)


def _one(model, pk, field: str, what: str, queryset=None):
    if pk is None:
        return None
    found = (queryset if queryset is not None else model.objects).filter(pk=pk).first()
    if found is None:
        raise ValidationError({field: f"Unknown {what}."})
    return found


@router.post("/tickets/{ticket_id}/time-entries", response={201: TimeEntryOut, **ERRORS})
@needs(Capability.LOG_TIME)
def time_entry_create(request, ticket_id: Id, payload: TimeEntryIn, idempotency_key: IdempotencyKey = None):
    """Log time on a ticket as the token's user: routed to a contract and rated as on the ticket page."""
    ticket = get_or_404(Ticket.objects.select_related("customer"), "ticket", pk=ticket_id)
    errors = Errors()
    check_date(errors, "date", payload.date)
    errors.raise_if_any()
    entry = services.time_entry_log(
        ticket=ticket, technician=request.user,
        work_type=_one(WorkType, payload.work_type, "work_type", "work type"),
        date=payload.date, minutes=payload.minutes, started_at=payload.started_at, ended_at=payload.ended_at,
        billable_minutes=payload.billable_minutes, notes=payload.notes.strip(), billable=payload.billable,
        after_hours=payload.after_hours,
        chosen_contract=_one(Contract, payload.chosen_contract, "chosen_contract", "contract"),
        chosen_rate_item=_one(RateItem, payload.chosen_rate_item, "chosen_rate_item", "rate item"),
    )
    return Status(201, entry)


@router.get("/charges", response={200: list[ChargeOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def charge_list(request, ticket: int | None = Query(None, ge=1, le=MAX_ID), unbilled: bool | None = None):
    charges = Charge.objects.all()
    if ticket:
        charges = charges.filter(ticket_id=ticket)
    if unbilled is not None:
        charges = charges.filter(billed_at__isnull=unbilled)
    return charges



@router.post("/tickets", response={201: TicketOut, **ERRORS})
@needs(Capability.LOG_TIME)
def ticket_create(request, payload: TicketIn, idempotency_key: IdempotencyKey = None):
    """Open a ticket for a customer, assigned to the token's user (as New ticket on the pages)."""
    customer = _one(Customer, payload.customer, "customer", "customer")
    ticket = services.ticket_create(customer=customer, title=payload.title, technician=request.user,
                                    default_contract=_one(Contract, payload.default_contract, "default_contract", "contract"))
    return Status(201, ticket)


@router.post("/tickets/{ticket_id}/charges", response={201: ChargeOut, **ERRORS})
@needs(Capability.LOG_TIME)
def charge_create(request, ticket_id: Id, payload: ChargeIn, idempotency_key: IdempotencyKey = None):
    """Log a part (a catalogue product) or an expense on a ticket. A technician picks a product at its
    price and reads no price back; billing roles may set the price or log an expense."""
    ticket = get_or_404(Ticket.objects.select_related("customer"), "ticket", pk=ticket_id)
    errors = Errors()
    check_date(errors, "date", payload.date)
    if not _sees_money(request):
        if payload.unit_price is not None:
            errors.add("unit_price", "Your role picks a product at its catalogue price; it does not set prices.")
        if payload.product is None:
            errors.add("product", "Pick a product (GET /products is for billing roles; ask them for its id).")
    errors.raise_if_any()
    product = _one(Product, payload.product, "product", "product", Product.objects.filter(is_active=True))
    charge = services.charge_log(ticket=ticket, product=product, description=payload.description.strip(), date=payload.date,
                                 quantity=payload.quantity, unit_price=payload.unit_price)
    if not _sees_money(request):
        return Status(201, {**{name: getattr(charge, name) for name in ChargeOut.model_fields}, "unit_price": None})
    return Status(201, charge)
