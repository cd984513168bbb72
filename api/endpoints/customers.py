"""Customers and their billing contacts: read by billing roles, created and their contacts replaced by
those who manage billing, through ``contracts.services`` (the customer pages' services and checks)."""

from typing import Annotated

from django.core.exceptions import ValidationError

from ninja import Field, FilterLookup, FilterSchema, Query, Router, Schema, Status
from ninja.pagination import paginate

from api.endpoints._common import ERRORS, MAX_ID, Id, IdempotencyKey, get_or_404, needs
from api.pagination import IdCursorPagination
from contracts import services
from contracts.models import BillingContact, Customer
from msp_billing.accounts.roles import Capability

router = Router(tags=["customers"])


class CustomerOut(Schema):
    id: int
    legal_name: str
    display_name: str
    parent_id: int | None
    currency: str
    tax_id: str
    region: str


class ContactOut(Schema):
    id: int
    email: str
    name: str
    kind: str


class ContactIn(Schema):
    email: str = Field(..., max_length=254)
    name: str = Field("", max_length=200)
    kind: BillingContact.Kind = BillingContact.Kind.TO


class CustomerIn(Schema):
    legal_name: str = Field(..., min_length=1, max_length=200)
    currency: str = Field(..., min_length=3, max_length=3, description="ISO 4217 code, e.g. EUR.")
    display_name: str = Field("", max_length=200)
    parent: int | None = Field(None, ge=1, le=MAX_ID, description="Id of the parent customer (a site of it).")
    billing_email: str = Field("", max_length=254)
    billing_contacts: list[ContactIn] = Field(default_factory=list, max_length=50)
    address: str = Field("", max_length=1000)
    tax_id: str = Field("", max_length=50)
    tax_exempt: bool = False
    payment_terms_days: int = Field(30, ge=0, le=365)
    region: str = Field("", max_length=100)


class CustomerFilter(FilterSchema):
    q: Annotated[str | None, FilterLookup(["legal_name__icontains", "display_name__icontains"]), Field(max_length=100)] = None
    parent: Annotated[int | None, FilterLookup("parent_id"), Field(ge=1, le=2_147_483_647)] = None


@router.get("", response={200: list[CustomerOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def customer_list(request, filters: Query[CustomerFilter]):
    return filters.filter(Customer.objects.all())


@router.get("/{customer_id}", response={200: CustomerOut, **ERRORS})
@needs(Capability.VIEW_BILLING)
def customer_get(request, customer_id: Id):
    return get_or_404(Customer.objects, "customer", pk=customer_id)


@router.get("/{customer_id}/contacts", response={200: list[ContactOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
def customer_contacts(request, customer_id: Id):
    customer = get_or_404(Customer.objects, "customer", pk=customer_id)
    return list(BillingContact.objects.filter(customer=customer).order_by("position", "id"))


@router.post("", response={201: CustomerOut, **ERRORS})
@needs(Capability.MANAGE_BILLING)
def customer_create(request, payload: CustomerIn, idempotency_key: IdempotencyKey = None):
    """A new customer, checked as the New customer page checks it (a legal name in use is refused)."""
    parent = None
    if payload.parent is not None:
        parent = Customer.objects.filter(pk=payload.parent).first()
        if parent is None:
            raise ValidationError({"parent": "Unknown customer."})
    data = payload.dict(exclude={"parent", "billing_contacts"})
    customer = services.customer_create(**data, parent=parent, acting_user=request.user,
                                        billing_contacts=[contact.dict() for contact in payload.billing_contacts])
    return Status(201, customer)


@router.put("/{customer_id}/contacts", response={200: list[ContactOut], **ERRORS})
@needs(Capability.MANAGE_BILLING)
def customer_contacts_replace(request, customer_id: Id, payload: list[ContactIn]):
    """Replace the customer's billing contacts (to / cc) with these; an empty list removes them all."""
    customer = get_or_404(Customer.objects, "customer", pk=customer_id)
    services.customer_update(customer=customer, data={"billing_contacts": [contact.dict() for contact in payload]},
                             acting_user=request.user)
    return list(BillingContact.objects.filter(customer=customer).order_by("position", "id"))
