"""Products, tax rates (billing roles) and work types (everyone who logs time)."""

import datetime as dt
from decimal import Decimal

from ninja import Router, Schema
from ninja.pagination import paginate

from api.endpoints._common import ERRORS, amount, needs
from api.pagination import IdCursorPagination
from contracts import selectors
from msp_billing.accounts.roles import Capability

router = Router(tags=["catalogue"])


class ProductOut(Schema):
    id: int
    sku: str
    name: str
    price: Decimal | None = None
    currency: str | None = None
    taxable: bool
    is_active: bool

    @staticmethod
    def resolve_price(obj):
        return amount(obj.price)

    @staticmethod
    def resolve_currency(obj):
        return str(obj.price.currency) if obj.price is not None else None


class TaxRateOut(Schema):
    id: int
    code: str
    name: str
    percent: Decimal
    compound: bool
    effective_from: dt.date


class WorkTypeOut(Schema):
    id: int
    name: str
    billable: bool
    is_after_hours: bool
    is_active: bool


@router.get("/products", response={200: list[ProductOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def product_list(request, active: bool | None = None):
    products = selectors.product_list()
    return products if active is None else products.filter(is_active=active)


@router.get("/tax-rates", response={200: list[TaxRateOut], **ERRORS})
@needs(Capability.VIEW_BILLING)
@paginate(IdCursorPagination)
def tax_rate_list(request, code: str | None = None):
    rates = selectors.tax_rate_list()
    return rates if not code else rates.filter(code=code[:40])


@router.get("/work-types", response={200: list[WorkTypeOut], **ERRORS})
@needs(Capability.LOG_TIME)
def work_type_list(request):
    return list(selectors.work_type_list().filter(is_active=True))
