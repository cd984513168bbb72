"""What the endpoint modules share: id path parameters, the Idempotency-Key header, money as Decimal."""

from decimal import Decimal

from django.http import Http404
from ninja import Header, Path

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
