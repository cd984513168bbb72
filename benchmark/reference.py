"""The wage reference table: loaded from a CSV file whose every row names its source.

File format (UTF-8 CSV, header row, one published value a row)::

    occupation_code,occupation,area,measure,value,currency,survey,survey_date,source_url

``survey_date`` is YYYY-MM-DD; ``value`` a plain decimal; ``source_url`` the public page the
value was read from (required: a value without a source is refused). A load is all or
nothing: any bad row refuses the whole file, naming each problem by line. Rows are matched on
(occupation_code, area, measure, survey_date): a later load updates them; ``--replace``
first removes every row not in the file.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction

from benchmark.public.models import WageReference

COLUMNS = ["occupation_code", "occupation", "area", "measure", "value", "currency", "survey", "survey_date", "source_url"]


def wage_reference_parse(text: str) -> list[WageReference]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationError(f"The file needs the columns {', '.join(COLUMNS)}; missing: {', '.join(missing)}.")
    rows, problems, url = [], [], URLValidator(schemes=["http", "https"])
    for number, raw in enumerate(reader, start=2):
        values = {k: (raw.get(k) or "").strip() for k in COLUMNS}
        try:
            value = Decimal(values["value"])
            if not value.is_finite() or value <= 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"line {number}: value {values['value']!r} is not a positive number")
            continue
        try:
            day = dt.date.fromisoformat(values["survey_date"])
        except ValueError:
            problems.append(f"line {number}: survey_date must be YYYY-MM-DD")
            continue
        try:
            url(values["source_url"])
        except ValidationError:
            problems.append(f"line {number}: source_url must be the address of the page the value comes from")
            continue
        empty = [k for k in ("occupation_code", "occupation", "area", "measure", "survey") if not values[k]]
        if empty:
            problems.append(f"line {number}: {', '.join(empty)} empty")
            continue
        rows.append(WageReference(
            occupation_code=values["occupation_code"], occupation=values["occupation"], area=values["area"],
            measure=values["measure"], value=value, currency=(values["currency"] or "USD").upper()[:3],
            survey=values["survey"], survey_date=day, source_url=values["source_url"]))
    if problems:
        raise ValidationError("Wage reference refused: " + "; ".join(problems) + ".")
    return rows


@transaction.atomic
def wage_reference_load(text: str, *, replace: bool = False) -> int:
    rows = wage_reference_parse(text)
    if replace:
        WageReference.objects.all().delete()
    WageReference.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["occupation_code", "area", "measure", "survey_date"],
        update_fields=["occupation", "value", "currency", "survey", "source_url", "loaded_at"])
    return len(rows)
