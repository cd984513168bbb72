"""Cursor pagination by id, newest first: ``?limit=`` (1–200) and the opaque ``cursor`` a page's ``next`` gives."""

import base64
import binascii
from typing import Any

from ninja import Field, Schema
from ninja.errors import ValidationError as NinjaValidationError
from ninja.pagination import PaginationBase

MAX_LIMIT = 200


def _encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def _decode(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        kind, _, value = raw.partition(":")
        if kind != "id" or not value.isdigit() or len(value) > 18:
            raise ValueError
        return int(value)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise NinjaValidationError([{"loc": ("query", "cursor"), "msg": "This cursor was not given by the API; "
                                     "start again without one.", "type": "value_error"}]) from None


class IdCursorPagination(PaginationBase):
    class Input(Schema):
        limit: int = Field(50, ge=1, le=MAX_LIMIT, description="How many items per page.")
        cursor: str | None = Field(None, max_length=40, description="The `next` of the page before.")

    class Output(Schema):
        results: list[Any]
        next: str | None = Field(None, description="Cursor of the next page; null on the last page.")

    items_attribute = "results"

    def paginate_queryset(self, queryset, pagination: Input, **params) -> dict:
        queryset = queryset.order_by("-id")
        if pagination.cursor:
            queryset = queryset.filter(id__lt=_decode(pagination.cursor))
        rows = list(queryset[: pagination.limit + 1])
        more = len(rows) > pagination.limit
        rows = rows[: pagination.limit]
        return {"results": rows, "next": _encode(rows[-1].id) if more and rows else None}
