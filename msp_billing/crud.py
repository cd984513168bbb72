"""List pages in a few lines: search, filters from GET parameters, 25 per page.

    listing = list_page(
        request, selectors.customer_list(),
        search_fields=["legal_name", "display_name"],
        filters=[choice_filter("currency", "Currency", choices=[...]), yes_no_filter("active", "Active", lookup="is_active")],
    )
    return render(request, "...", {"listing": listing}, status=listing.status)

The filter values are read through a Django form, so an unknown value (a customer id
of another MSP, a type that does not exist) is reported on the page with status 400
rather than crashing or being silently ignored. Links to other pages keep the search
and filters (``listing.querystring``).

A list that also downloads (CSV) names its rows once, ``crud.filtered(request, queryset,
search_fields=..., filters=...)``, and hands them to ``list_page`` for the page and to
``msp_billing.csv_download.list_csv`` for the file: both read the same rows.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest

PER_PAGE = 25
SEARCH_PARAM = "q"
PAGE_PARAM = "page"
SEARCH_MAX_LENGTH = 100


@dataclass(frozen=True)
class Filter:
    """One GET parameter, read by a form field, applied as ``queryset.filter(**{lookup: value})``."""

    name: str
    field: forms.Field
    lookup: str

    def apply(self, queryset: QuerySet, value: Any) -> QuerySet:
        if value in (None, ""):
            return queryset
        if isinstance(value, Model):
            value = value.pk
        return queryset.filter(**{self.lookup: value})


def choice_filter(name: str, label: str, *, choices: Iterable[tuple[Any, str]], lookup: str | None = None) -> Filter:
    field = forms.ChoiceField(label=label, required=False, choices=[("", f"Any {label.lower()}"), *choices])
    return Filter(name=name, field=field, lookup=lookup or name)


def model_filter(name: str, label: str, *, queryset: QuerySet, lookup: str | None = None) -> Filter:
    field = forms.ModelChoiceField(label=label, required=False, queryset=queryset, empty_label=f"Any {label.lower()}")
    return Filter(name=name, field=field, lookup=lookup or name)


def yes_no_filter(name: str, label: str, *, lookup: str | None = None) -> Filter:
    field = forms.TypedChoiceField(
        label=label,
        required=False,
        choices=[("", "Either"), ("yes", "Yes"), ("no", "No")],
        coerce=lambda value: value == "yes",
        empty_value=None,
    )
    return Filter(name=name, field=field, lookup=lookup or name)


@dataclass
class ListPage:
    page: Page
    search: str
    form: forms.Form
    querystring: str  # the current search and filters, without the page number
    status: int = 200
    filters: Sequence[Filter] = field(default_factory=tuple)

    @property
    def objects(self):
        return self.page.object_list

    @property
    def is_filtered(self) -> bool:
        return bool(self.querystring)

    @property
    def previous_url(self) -> str | None:
        return self._page_url(self.page.previous_page_number()) if self.page.has_previous() else None

    @property
    def next_url(self) -> str | None:
        return self._page_url(self.page.next_page_number()) if self.page.has_next() else None

    def _page_url(self, number: int) -> str:
        return f"?{self.querystring}&{PAGE_PARAM}={number}" if self.querystring else f"?{PAGE_PARAM}={number}"


@dataclass
class Filtered:
    """A list's rows after its search and filters: what its page shows and its CSV holds."""

    queryset: QuerySet
    form: forms.Form
    search: str
    valid: bool
    filters: Sequence[Filter] = field(default_factory=tuple)


def filtered(
    request: HttpRequest,
    queryset: QuerySet,
    *,
    search_fields: Sequence[str] = (),
    filters: Sequence[Filter] = (),
) -> Filtered:
    """Search ``search_fields`` (icontains, every word must match) and apply ``filters`` from GET."""
    form = _filter_form(request, search_fields=search_fields, filters=filters)
    valid = form.is_valid()
    data = form.cleaned_data  # holds the valid fields even when another one is not
    search = (data.get(SEARCH_PARAM) or "").strip() if search_fields else ""
    if search:
        for word in search.split():
            queryset = queryset.filter(reduce(or_, (Q(**{f"{name}__icontains": word}) for name in search_fields)))
    for item in filters:
        if item.name in data:
            queryset = item.apply(queryset, data[item.name])
    if search or any(data.get(item.name) not in (None, "") for item in filters):
        queryset = queryset.distinct()  # searching or filtering across a to-many relation
    if not queryset.ordered:
        queryset = queryset.order_by("pk")  # pages must not overlap
    return Filtered(queryset=queryset, form=form, search=search, valid=valid, filters=tuple(filters))


def list_page(
    request: HttpRequest,
    queryset: QuerySet | Filtered,
    *,
    search_fields: Sequence[str] = (),
    filters: Sequence[Filter] = (),
    per_page: int = PER_PAGE,
) -> ListPage:
    """Search, filter (or take rows already ``filtered``) and paginate."""
    rows = queryset if isinstance(queryset, Filtered) else filtered(request, queryset, search_fields=search_fields,
                                                                     filters=filters)
    # A page number out of range or not a number shows the nearest page, as users expect.
    page = Paginator(rows.queryset, per_page).get_page(request.GET.get(PAGE_PARAM))
    params = request.GET.copy()
    params.pop(PAGE_PARAM, None)
    for key in list(params):
        if not any(params.getlist(key)):
            params.pop(key)
    return ListPage(
        page=page,
        search=rows.search,
        form=rows.form,
        querystring=params.urlencode(),
        status=200 if rows.valid else 400,
        filters=rows.filters,
    )


def _filter_form(request: HttpRequest, *, search_fields: Sequence[str], filters: Sequence[Filter]) -> forms.Form:
    fields: dict[str, forms.Field] = {}
    if search_fields:
        fields[SEARCH_PARAM] = forms.CharField(label="Search", required=False, max_length=SEARCH_MAX_LENGTH)
    for item in filters:
        fields[item.name] = item.field
    form_class = type("ListFilterForm", (forms.Form,), dict(fields))
    # Bound even when empty, so the page always shows what is applied.
    return form_class(request.GET or {})
