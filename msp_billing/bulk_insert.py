"""Rows by the thousand in one statement each chunk: ``INSERT … SELECT FROM unnest(arrays) RETURNING id``.

``bulk_create`` does the same on PostgreSQL, but passes every value of every row through the
field's preparation chain (``pre_save`` → ``get_db_prep_save`` → the compiler's checks): for
routing's allocations that is most of the time of writing them. ``rows_insert`` takes the
values as the objects hold them — the caller's objects are built from values that are
already what the column stores (Decimals, ids, strings) — and sets each object's id.

Only what the owning app writes goes through here: each app calls it for its own models.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models
from djmoney.models.fields import MoneyField
from djmoney.money import Money


def _value(field: models.Field, obj: models.Model):
    if isinstance(field, models.DateField) and (field.auto_now or field.auto_now_add):
        return field.pre_save(obj, add=True)
    value = getattr(obj, field.attname)
    if isinstance(field, MoneyField) and isinstance(value, Money):
        return value.amount
    return value


def rows_insert(objs: Sequence[models.Model], *, batch_size: int = 5000) -> None:
    """Insert ``objs`` (new, all of one model with an auto id) and give each its id, in order."""
    if not objs:
        return
    model = type(objs[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    arrays = ", ".join(f"%s::{f.db_type(connection)}[]" for f in fields)
    sql = (f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({names}) "
           f"SELECT * FROM unnest({arrays}) RETURNING {connection.ops.quote_name(model._meta.pk.column)}")
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch_size):
            chunk = objs[start:start + batch_size]
            cursor.execute(sql, [[_value(field, obj) for obj in chunk] for field in fields])
            for obj, (pk,) in zip(chunk, cursor.fetchall(), strict=True):
                obj.pk = pk
                obj._state.adding = False
                obj._state.db = connection.alias
