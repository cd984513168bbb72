"""Lists as CSV files: Python's ``csv`` module, streamed row by row.

The rows come from the same filtered queryset the list page shows (``crud.filtered``), so
a download always holds what the page lists with its search and filters — every page of
it, not just the one on screen. Values are plain: amounts as plain decimals (``1250.69``,
no separators, no symbol), dates ISO (``2026-12-04``), yes/no as ``yes`` / ``no``.
"""
from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from itertools import islice
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

CHUNK = 500


class _Echo:
    """A file-like object that hands back what is written, for ``csv.writer``."""

    def write(self, value: str) -> str:
        return value


def plain(value: Any) -> str:
    """A cell: decimals plain, dates ISO, booleans yes/no, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    amount = getattr(value, "amount", None)  # django-money's Money
    if isinstance(amount, Decimal):
        return format(amount, "f")
    return str(value)


def chunks(items: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (for reads done once per chunk rather than once per row)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def csv_download(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    """A streamed CSV attachment: ``header`` then ``rows``, each cell through :func:`plain`."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([plain(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def list_csv(request: HttpRequest, rows, *, page: Callable[[HttpRequest], HttpResponse], filename: str,
             header: Sequence[str], lines: Callable[[QuerySet], Iterable[Sequence[Any]]]) -> HttpResponse:
    """A list's rows (``crud.filtered``) as CSV; filters that do not validate get the list page
    with their messages (400) instead, as the page itself would."""
    if not rows.valid:
        return page(request)
    return csv_download(filename, header, lines(rows.queryset))
