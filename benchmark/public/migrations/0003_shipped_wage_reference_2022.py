"""The shipped wage reference again, for databases migrated before its May 2022 row (the load updates in place)."""
from importlib import import_module

from django.db import migrations

shipped = import_module("benchmark.public.migrations.0002_shipped_wage_reference")


class Migration(migrations.Migration):

    dependencies = [("benchmark_public", "0002_shipped_wage_reference")]

    operations = [migrations.RunPython(shipped.load, migrations.RunPython.noop)]
