"""Small builders for invoice tests (schema alpha, currency EUR), and a worker killed mid-render."""
from __future__ import annotations

import ast
import datetime as dt
import itertools
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from contracts.models import Customer, TaxRate
from invoices import services
from invoices.calculation import Adjustment
from invoices.models import AuditEvent, Invoice, InvoicePdf, InvoiceSettings, NumberSequence
from msp_billing.accounts.models import User
from tests.support import process_env, stop_process_group, wait_for, worker_process

ISSUE_DAY = dt.date(2026, 3, 10)
TAX_START = dt.date(2020, 1, 1)


def d(value: str) -> Decimal:
    return Decimal(value)


def admin() -> User:
    return User.objects.get(email="billing-admin@alpha.example")


_names = itertools.count(1)


def customer(name: str | None = None, **extra) -> Customer:
    name = name or f"Kunde {next(_names)} GmbH"
    extra.setdefault("currency", "EUR")
    extra.setdefault("address", "Hauptstraße 1\n10115 Berlin")
    extra.setdefault("tax_id", "DE123456789")
    extra.setdefault("payment_terms_days", 14)
    return Customer.objects.create(legal_name=name, **extra)


def tax(code: str, percent: str, *, compound: bool = False, effective_from: dt.date = TAX_START,
        name: str | None = None) -> TaxRate:
    return TaxRate.objects.create(code=code, name=name or code, percent=Decimal(percent), compound=compound,
                                  effective_from=effective_from)


def line(description: str = "Remote support", quantity: str = "1", unit_price: str = "100", *,
         taxes: tuple[str, ...] | None = (), discount: Adjustment = Adjustment(), **extra) -> services.LineInput:
    return services.LineInput(description=description, quantity=Decimal(quantity), unit_price=Decimal(unit_price),
                              tax_rate_codes=taxes, discount=discount, **extra)


def draft(cust: Customer | None = None, lines=None, **extra) -> Invoice:
    return services.invoice_create_draft(customer=cust or customer(), lines=lines if lines is not None else [line()],
                                         acting_user=admin(), **extra)


def issued(cust: Customer | None = None, lines=None, *, on: dt.date = ISSUE_DAY, **extra) -> Invoice:
    invoice = draft(cust, lines, **extra)
    return services.invoice_issue(invoice_id=invoice.pk, acting_user=admin(), issue_date=on)


def percent(value: str) -> Adjustment:
    return Adjustment("percent", Decimal(value))


def amount(value: str) -> Adjustment:
    return Adjustment("amount", Decimal(value))


@dataclass
class KilledRender:
    """What ``render_killed`` leaves: the worker environment, folders, invoices and the killed render."""

    env: dict[str, str]
    logs: Path
    media: Path
    ids: list[int]
    killed_id: int
    temporaries: list[Path]
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, log_name: str, *args: str, env: dict[str, str] | None = None,
                     transport_options: dict | None = None) -> subprocess.Popen:
        """Another worker on the same broker and media (stopped when the scene ends)."""
        process = worker_process(env or self.env, self.logs / log_name, *args, transport_options=transport_options)
        self.workers.append(process)
        return process


def active_render(app) -> dict | None:
    for tasks_of_worker in (app.control.inspect(timeout=1).active() or {}).values():
        for task in tasks_of_worker:
            if task["name"] == "invoices.tasks.invoice_pdf_render":
                return task
    return None


@contextmanager
def render_killed(django_db_blocker, tmp_path_factory, *, name: str, on: dt.date,
                  lines_of: Callable[[int], list[services.LineInput]], **env_extra: str):
    """Issue four invoices (committed, schema alpha, dated ``on``: a number series of their own)
    and kill the worker rendering them, with its whole process group, mid-render.

    Yields a ``KilledRender``; the caller starts the next worker (``start_worker``). On exit the
    workers are stopped and everything committed is removed.
    """
    from msp_billing.celery import app

    logs = tmp_path_factory.mktemp(f"{name}-logs")
    media = tmp_path_factory.mktemp(f"{name}-media")
    media_override = override_settings(MEDIA_ROOT=str(media))
    media_override.enable()
    with django_db_blocker.unblock():
        env = process_env(MSP_TEST_MEDIA_ROOT=str(media), **env_extra)
        env.pop("MSP_PDF_TEST_DELAY", None)
        app.control.purge()
        with schema_context("alpha"):
            settings_existed = InvoiceSettings.objects.exists()
            sequences_before = set(NumberSequence.objects.values_list("pk", flat=True))
            cust = customer(f"{name.title()} {uuid.uuid4().hex[:8]} GmbH")
            ids = [issued(cust, lines_of(n), on=on).pk for n in range(1, 5)]  # each issue queues its render after commit
    workers: list[subprocess.Popen] = []
    try:
        slow = worker_process({**env, "MSP_PDF_TEST_DELAY": "120"}, logs / "slow.log", "--pool=prefork",
                              "--concurrency=1", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
                              "--without-mingle")
        workers.append(slow)
        task = wait_for(lambda: active_render(app), timeout=90, what="render in progress", process=slow,
                        log=logs / "slow.log")
        args = task["args"] if isinstance(task["args"], (list, tuple)) else ast.literal_eval(task["args"])
        folder = media / "alpha" / "invoices" / "pdf" / str(args[0])
        temporaries = wait_for(lambda: list(folder.glob(".*.tmp")), timeout=30, what="temporary file", process=slow,
                               log=logs / "slow.log")
        os.killpg(slow.pid, signal.SIGKILL)  # the whole worker, as when a machine dies: its task unacknowledged
        slow.wait(timeout=10)
        scene = KilledRender(env=env, logs=logs, media=media, ids=ids, killed_id=args[0], temporaries=temporaries,
                             workers=workers)
        yield scene
    finally:
        for process in workers:
            stop_process_group(process)
        with django_db_blocker.unblock(), schema_context("alpha"):
            AuditEvent.objects.filter(object_type="invoices.invoice", object_id__in=[str(pk) for pk in ids]).delete()
            InvoicePdf.objects.filter(invoice_id__in=ids).delete()
            Invoice.objects.filter(pk__in=ids).delete()
            cust.delete()
            NumberSequence.objects.exclude(pk__in=sequences_before).delete()
            if not settings_existed:
                InvoiceSettings.objects.all().delete()
        connection.set_schema_to_public()
        media_override.disable()
        shutil.rmtree(media, ignore_errors=True)


def vat_by_default(percent: str = "19") -> TaxRate:
    """VAT at ``percent`` since 2020, charged on every line that names no tax of its own."""
    rate = tax("VAT", percent, name=f"VAT {percent} %")
    settings = InvoiceSettings.load()
    settings.default_tax_codes = "VAT"
    settings.save()
    return rate
