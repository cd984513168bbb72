"""The beat tasks: exchange rates from the configured file, and the nightly benchmark in the public schema."""
from __future__ import annotations

import datetime as dt
import json

from django.conf import settings
from django.db import connection
from django_tenants.utils import schema_context

from benchmark.models import Rollup
from benchmark.tasks import benchmark_nightly
from msp_billing.fx.models import DatedRate
from msp_billing.fx.tasks import exchange_rates_load


def test_beat_schedules_both_tasks():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"msp_billing.fx.tasks.exchange_rates_load", "benchmark.tasks.benchmark_nightly"} <= tasks


def test_the_rates_task_loads_the_configured_file_and_logs_a_missing_source(db, tmp_path, settings):
    settings.EXCHANGE_RATES_URL, settings.EXCHANGE_RATES_FILE = "", ""
    assert exchange_rates_load.apply().get() == "no exchange-rate source configured"
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"base": "USD", "date": "2026-11-30", "rates": {"EUR": "0.86", "GBP": "0.75"}}))
    settings.EXCHANGE_RATES_FILE = str(path)
    assert exchange_rates_load.apply().get() == "3 rates of 2026-11-30"
    assert DatedRate.objects.filter(date=dt.date(2026, 11, 30)).count() == 3
    path.write_text("not json")
    assert exchange_rates_load.apply().get().startswith("not loaded")


def test_the_nightly_task_rolls_up_every_msp_in_its_own_schema(db):
    connection.set_schema_to_public()
    result = benchmark_nightly.apply().get()
    assert result["tenants"] >= 3  # alpha, beta and the demo at least
    for schema in ("alpha", "beta", "demo"):
        with schema_context(schema):
            assert Rollup.objects.filter(computed_on=dt.date.today()).count() == 1
