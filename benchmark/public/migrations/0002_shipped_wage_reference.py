"""The wage reference shipped with the product (benchmark/data/wage_reference.csv)."""
import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from django.db import migrations

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "wage_reference.csv"


def load(apps, schema_editor):
    WageReference = apps.get_model("benchmark_public", "WageReference")
    with SHIPPED.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            WageReference.objects.update_or_create(
                occupation_code=row["occupation_code"], area=row["area"], measure=row["measure"],
                survey_date=dt.date.fromisoformat(row["survey_date"]),
                defaults=dict(occupation=row["occupation"], value=Decimal(row["value"]), currency=row["currency"],
                              survey=row["survey"], source_url=row["source_url"]))


class Migration(migrations.Migration):

    dependencies = [("benchmark_public", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
