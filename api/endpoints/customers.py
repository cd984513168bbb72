"""Customers and their billing contacts (read; billing roles)."""

from typing import Annotated

from ninja import Field, FilterLookup, FilterSchema, Query, Router, Schema
from ninja.pagination import paginate

from api.endpoints._common import ERRORS, Id, get_or_404, needs
from api.pagination import IdCursorPagination
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
