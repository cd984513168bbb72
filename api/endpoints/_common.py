"""What the endpoint modules share: the refusals they answer, the role check, id path parameters,
the Idempotency-Key header, money as Decimal."""

from decimal import Decimal
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import Header, Path

from api.problems import Problem
from msp_billing.accounts.roles import Capability

# The refusals every operation may answer, all as problem details (api.core turns them into RFC 9457).
ERRORS = {frozenset({400, 401, 403, 404, 405, 409, 422, 429}): Problem}

MAX_ID = 2_147_483_647
Id = Path[int, {"ge": 1, "le": MAX_ID}]
IdempotencyKey = Header[str | None, {"alias": "Idempotency-Key", "max_length": 200,
                                     "description": "Repeat a POST safely: the same key answers with the first answer."}]


def amount(value) -> Decimal | None:
    """A Money (or Decimal) as its Decimal amount."""
    if value is None:
        return None
    return getattr(value, "amount", value)


def get_or_404(queryset, what: str, **lookup):
    try:
        return queryset.get(**lookup)
    except queryset.model.DoesNotExist:
        raise Http404(f"No such {what}.") from None


def needs(capability: Capability):
    """The operation needs the token's user to have ``capability`` (the pages' rule, accounts.roles)."""

    def decorator(function):
        @wraps(function)
        def wrapped(request, *args, **kwargs):
            if not request.user.can(capability):
                raise PermissionDenied(f"This token's role may not do this (it needs {capability.value}).")
            return function(request, *args, **kwargs)

        wrapped.required_capability = capability
        return wrapped

    return decorator
