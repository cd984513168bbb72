"""Migration operations that run the same on one PostgreSQL and on a Citus cluster.

Citus refuses a few statements Django's schema editor writes by default on distributed
tables; each helper here writes the Citus-safe form, with the same result on plain
PostgreSQL (same columns, same constraint names). See docs/scaling.md.
"""
from __future__ import annotations

from django.db import migrations, models


def add_field_with_named_check(*, model_name: str, table: str, name: str, field: models.Field):
    """``AddField`` of a ``Positive*Field``, its CHECK added as a named constraint.

    Django writes ``ADD COLUMN x integer CHECK (x >= 0)``, an unnamed column constraint
    Citus refuses on a distributed table. This adds the plain column and then the same
    check under the name PostgreSQL gives an inline check (``<table>_<column>_check``), so
    the resulting table is identical; the migration state is the original ``AddField``.
    """
    column = field.db_column or name
    kwargs = {k: v for k, v in field.deconstruct()[3].items() if k in ("null", "blank", "default", "db_column")}
    base = {
        "PositiveIntegerField": models.IntegerField,
        "PositiveSmallIntegerField": models.SmallIntegerField,
        "PositiveBigIntegerField": models.BigIntegerField,
    }[type(field).__name__]
    constraint = f"{table}_{column}_check"
    return migrations.SeparateDatabaseAndState(
        database_operations=[
            migrations.AddField(model_name=model_name, name=name, field=base(**kwargs)),
            migrations.RunSQL(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{constraint}" CHECK ("{column}" >= 0)',
                f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{constraint}"',
            ),
        ],
        state_operations=[migrations.AddField(model_name=model_name, name=name, field=field)],
    )
