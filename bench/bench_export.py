"""Export 1,000 issued invoices to the fake QuickBooks Online and the fake Xero, each with its rate limit enforced.

What runs is the production path: ``integrations.services.export_run_create`` queues
``integrations.tasks.export_run_task`` on commit, and a real Celery worker process (its own
queue, so no other worker on the broker takes these tasks) runs ``export_run_execute`` with
the real connector and client library against the fake on 127.0.0.1. A 429 goes back to
Celery as a retry with the fake's ``Retry-After`` as countdown, as in production.

Each fake enforces its system's own limits (``docs/accounting-apis.md``) over a window of
BENCH_EXPORT_WINDOW seconds standing for the minute (default 6; 60 is the real minute):
QuickBooks 500 requests and 40 batch requests per window and 10 at once per company; Xero 60
calls per window, 5,000 per (equally scaled) day and 5 at once per organisation. Floors are
computed for that same window, so wall ÷ floor compares like with like. The floor is calls ÷
allowed rate (the per-minute limits; the day's 5,000 is far away); a rolling window also
admits a whole allowance at once, so the "burst floor" — ⌊(calls − 1) ÷ allowance⌋ windows —
is the least time the limit can really impose: 0 while the calls fit in one window.

Data: a scratch tenant (schema ``bench_export`` in the database of the local settings, created
and dropped by the benchmark; no other tenant is touched). Invoices come customer by customer,
as a billing batch makes them. Per system, two runs over the same BENCH_EXPORT_CUSTOMERS
customers (default 200):

* **first export** — nothing mapped yet: the export itself creates the customers (and, in
  QuickBooks, the items) and reads the one-off defaults (income account, tax rates,
  organisation);
* **mapped** — another BENCH_EXPORT_INVOICES invoices for the same customers, now all mapped
  (the steady state of a monthly export).

Printed per run: invoices exported, HTTP calls the fake received in total and per invoice
against the goal (≤ 0.04 QuickBooks, ≤ 0.02 Xero; every call counts, OAuth included), calls
per endpoint, 429s received, wall time (run created → run finished), the floor the rate
limit sets for that many calls (calls ÷ allowed rate per minute-window), wall ÷ floor, and
the check that each invoice exists exactly once in the fake with the remote id we stored.
Also the worker's peak memory. Both systems export the same invoices: between systems they
are marked not exported again (a scratch tenant, dropped at the end).

Run: `make bench` (or `python -m bench export`); a quick look: BENCH_EXPORT_INVOICES=100
BENCH_EXPORT_CUSTOMERS=20; one system: BENCH_EXPORT_SYSTEMS=xero.
"""
from __future__ import annotations

import datetime as dt
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from bench._django import msps_drop
from bench._processes import stop_process_groups, vm_hwm_mb

INVOICES = int(os.environ.get("BENCH_EXPORT_INVOICES", "1000"))
CUSTOMERS = int(os.environ.get("BENCH_EXPORT_CUSTOMERS", "200"))
WINDOW = float(os.environ.get("BENCH_EXPORT_WINDOW", "6"))
SYSTEMS = [name.strip() for name in os.environ.get("BENCH_EXPORT_SYSTEMS", "quickbooks,xero").split(",") if name.strip()]
SCHEMA = "bench_export"
QUEUE = "bench_export"  # its own queue: other workers on the same broker never take these tasks
WORKER_NAME = "bench_export"
BASE_DIR = Path(__file__).resolve().parent.parent
GOALS = {"quickbooks": 0.04, "xero": 0.02}
LABELS = {"quickbooks": "QuickBooks Online", "xero": "Xero"}


@dataclass
class Outcome:
    """One export run, as measured."""

    system: str
    scenario: str
    invoices: int
    exported: int
    failed: int
    attempts: int
    wall: float
    calls: Counter  # endpoint → calls the fake received
    limited_calls: dict[str, int]  # limit bucket → accepted calls it counts
    limits: dict[str, tuple[int, float]]  # limit bucket → (calls, per seconds)
    throttled: int
    retry_after: float
    http_seconds: float
    mapped_before: dict[str, str] = field(default_factory=dict)
    check: str = ""
    check_ok: bool = False

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def per_invoice(self) -> float:
        return self.total_calls / max(1, self.invoices)

    def floor(self) -> tuple[float, str]:
        """Calls ÷ allowed rate, for the limit that takes longest (the one that would bind)."""
        best, why = 0.0, ""
        for bucket, count in self.limited_calls.items():
            allowed, seconds = self.limits[bucket]
            floor = count * seconds / allowed
            if floor > best:
                best, why = floor, f"{count} {bucket} calls ÷ {allowed} per {seconds:g} s"
        return best, why

    def burst_floor(self, *, scale: float = 1.0) -> float:
        """A rolling window admits its whole allowance at once: the k-th call can go at ⌊k/allowed⌋ windows.

        ``scale`` stretches the windows (60 / BENCH_EXPORT_WINDOW: what the real minute would impose)."""
        return max((((count - 1) // allowed) * seconds * scale if count else 0.0)
                   for bucket, count in self.limited_calls.items()
                   for allowed, seconds in [self.limits[bucket]])


# --- data --------------------------------------------------------------------------------------


def _catalogue() -> dict[str, list[int]]:
    from djmoney.money import Money

    from contracts.models import Product, RateItem, TaxRate

    TaxRate.objects.create(code="VAT", name="VAT 19 %", percent=Decimal(19), effective_from=dt.date(2020, 1, 1))
    rate_items = [RateItem.objects.create(name=name, rate=Money(Decimal(rate), "EUR"), accounting_code="210")
                  for name, rate in (("Remote Support", "95"), ("Onsite Support", "120"), ("Project Work", "140"))]
    products = [Product.objects.create(sku=sku, name=name, price=Money(Decimal(price), "EUR"), cost=Money(Decimal(cost), "EUR"),
                                       taxable=True)
                for sku, name, price, cost in (("CAB-C6-2M", "Patch cable Cat6 2 m", "4.99", "1.20"),
                                               ("SSD-1TB", "SSD 1 TB", "89", "61"))]
    return {"rate_items": [item.pk for item in rate_items], "products": [product.pk for product in products]}


def _customers(count: int) -> list:
    from contracts.models import Customer

    return [Customer.objects.create(legal_name=f"Bench Export Customer {number:04d} GmbH", currency="EUR",
                                    address=f"Hauptstraße {number}\n10115 Berlin", tax_id=f"DE{200000000 + number}",
                                    billing_email=f"ap{number}@customer{number}.example", payment_terms_days=14)
            for number in range(max(1, count))]


def _invoices(count: int, customers: list, catalogue: dict[str, list[int]], *, seed: int) -> list[int]:
    """``count`` issued invoices shaped like a month end (a retainer, rated time, sometimes parts), customer by customer."""
    from invoices import services
    from msp_billing.accounts.models import User

    rng = random.Random(seed)
    owner = User.objects.filter(role="owner").first()
    ids = []
    for number in range(count):
        lines = [services.LineInput(description="Managed Services retainer", quantity=Decimal(1),
                                    unit_price=Decimal(1450), tax_rate_codes=("VAT",), source_kind="period")]
        # Every rate item and product appears within the first invoices, so a first export meets them all early.
        rate_items = catalogue["rate_items"]
        for entry in range(rng.randint(1, 3)):
            minutes = rng.choice((15, 30, 45, 60, 90, 120))
            rate_item = rate_items[(number + entry) % len(rate_items)] if number < 3 else rng.choice(rate_items)
            lines.append(services.LineInput(description=f"Support ticket {1000 + number}", quantity=Decimal(minutes) / 60,
                                            unit_price=Decimal(95), tax_rate_codes=("VAT",), source_kind="time",
                                            rate_item_id=rate_item))
        if number < len(catalogue["products"]) or rng.random() < 0.4:
            product = catalogue["products"][number % len(catalogue["products"])]
            lines.append(services.LineInput(description="Hardware", quantity=Decimal(rng.randint(1, 5)),
                                            unit_price=Decimal("4.99"), tax_rate_codes=("VAT",), source_kind="charge",
                                            product_id=product))
        # Customer by customer, as a billing batch makes them (one invoice per contract).
        buyer = customers[number * len(customers) // count]
        draft = services.invoice_create_draft(customer=buyer, lines=lines, acting_user=owner)
        ids.append(services.invoice_issue(invoice_id=draft.pk, acting_user=owner).pk)
    return ids


def _mark_not_exported(ids: list[int]) -> None:
    """Between systems: the same invoices, as a fresh tenant would have them (nothing exported)."""
    from invoices.models import Invoice

    Invoice.objects.filter(pk__in=ids).update(exported_to="", exported_at=None, remote_id="", remote_url="")


# --- the fakes and the worker ----------------------------------------------------------------------


def _start_fakes():
    from tests.fakes.openapi import _validators
    from tests.fakes.quickbooks import FakeQuickBooks
    from tests.fakes.xero import FakeXero, Limits

    qbo = FakeQuickBooks.with_real_limits(window=WINDOW).start()
    xero = FakeXero(limits=Limits.scaled(WINDOW)).start()
    _validators()  # Xero's OpenAPI file (about a second to load) before anything is timed
    env = {**qbo.environ(),
           "XERO_API_URL": xero.api_url, "XERO_IDENTITY_API_URL": xero.url, "XERO_AUTHORIZE_URL": xero.authorize_url,
           "XERO_TOKEN_URL": xero.token_url, "XERO_REVOKE_URL": xero.revoke_url, "XERO_WEB_URL": f"{xero.url}/web",
           "XERO_CLIENT_ID": xero.client_id, "XERO_CLIENT_SECRET": xero.client_secret}
    return qbo, xero, env


def _start_worker(log_dir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "bench.bench_export", "worker", "--pool=solo", "--concurrency=1", "-Q", QUEUE,
               "-n", f"{WORKER_NAME}@%h", "--loglevel=WARNING", "--without-heartbeat", "--without-gossip",
               "--without-mingle"]
    log = (log_dir / "worker.log").open("wb")
    # The environment carries DATABASE_URL / REDIS_URL of the servers this process uses and the fakes' URLs.
    return subprocess.Popen(command, cwd=BASE_DIR, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for_worker(app, worker: subprocess.Popen, log_dir: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    name = f"{WORKER_NAME}@{socket.gethostname()}"
    while not (app.control.inspect(destination=[name], timeout=1).ping() or {}):
        if worker.poll() is not None:
            raise RuntimeError(f"the benchmark worker exited with {worker.returncode}; see {log_dir / 'worker.log'}")
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark worker did not start")
        time.sleep(0.5)


def _worker_main(argv: list[str]) -> None:
    """The benchmark's Celery worker: the project's app and tasks; what it queues stays on the benchmark's queue."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "msp_billing.settings.local")
    from msp_billing.celery import app

    app.conf.task_default_queue = QUEUE
    app.worker_main(argv)


# --- one run ------------------------------------------------------------------------------------------


def _connect(system: str, qbo, xero):
    from integrations.models import AccountingConnection
    from integrations.services import connection_store

    if system == "quickbooks":
        company = qbo.company()
        tokens = qbo.issue_tokens(company.realm)
        stored = {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
                  "expires_in": tokens["expires_in"], "refresh_expires_in": tokens["x_refresh_token_expires_in"],
                  "remote_tenant_id": company.realm, "remote_name": company.name}
    else:
        tokens = xero.issue_tokens()
        stored = {**tokens, "refresh_expires_in": 60 * 24 * 3600, "remote_tenant_id": xero.org.tenant_id,
                  "remote_name": xero.org.name, "scopes": tokens["scope"]}
    connection = connection_store(system=system, tokens=stored, acting_user=None)
    return AccountingConnection.objects.get(pk=connection.pk)


def _mapped(system: str) -> dict[str, str]:
    from integrations.models import RemoteMapping

    counts = Counter(RemoteMapping.objects.filter(system=system).values_list("local_type", flat=True))
    return {kind: str(counts.get(kind, 0)) for kind in ("customer", "rate_item", "product", "tax_rate")}


def _export(system: str, scenario: str, ids: list[int], qbo, xero) -> Outcome:
    from django.db.models import Sum

    from integrations.models import ExportRun, IntegrationLog
    from integrations.services import export_run_create

    fake = qbo if system == "quickbooks" else xero
    fake.clear_counts()
    mapped_before = _mapped(system)
    run = export_run_create(document_ids=ids, acting_user=None)  # the task is queued when this commits
    deadline = time.monotonic() + max(900.0, len(ids) * 1.0)
    while not run.is_finished:
        if time.monotonic() > deadline:
            raise TimeoutError(f"export run {run.pk} to {system} not finished: {run}")
        time.sleep(0.1)
        run = ExportRun.objects.get(pk=run.pk)
    wall = (run.finished_at - run.created_at).total_seconds()
    http_ms = IntegrationLog.objects.filter(export_run=run, http_status__isnull=False).aggregate(
        total=Sum("duration_ms"))["total"] or 0
    if system == "quickbooks":
        calls = qbo.calls_by_endpoint()
        limited = {"all": qbo.api_calls(accepted_only=True), "batch": qbo.api_calls(bucket="batch", accepted_only=True)}
        limits = {"all": qbo.rate_limits()["all"], "batch": qbo.rate_limits()["batch"]}
        throttled, retry_after = qbo.throttled(), sum(qbo.retry_afters)
    else:
        calls = xero.calls_by_endpoint()
        limited = {"minute": xero.accounting_calls(accepted_only=True)}
        limits = {"minute": xero.limits.allowed()["minute"]}
        throttled = xero.throttled()
        retry_after = sum(float(call.response_headers.get("Retry-After") or 0) for call in xero.calls if call.status == 429)
    outcome = Outcome(system=system, scenario=scenario, invoices=len(ids), exported=run.done, failed=run.failed,
                      attempts=run.attempts, wall=wall, calls=calls, limited_calls=limited, limits=limits,
                      throttled=throttled, retry_after=retry_after, http_seconds=http_ms / 1000,
                      mapped_before=mapped_before)
    outcome.check_ok, outcome.check = _check(system, ids, qbo, xero)
    return outcome


def _check(system: str, ids: list[int], qbo, xero) -> tuple[bool, str]:
    """Each invoice exactly once in the fake, under the remote id we stored (and, in Xero, with our total)."""
    from invoices.models import Invoice

    ours = {number: (remote_id, exported_to, total) for number, remote_id, exported_to, total in
            Invoice.objects.filter(pk__in=ids).values_list("number", "remote_id", "exported_to", "total")}
    if system == "quickbooks":
        remote = [(row["DocNumber"], row["Id"], None) for row in qbo.records("Invoice")]
    else:
        remote = [(row["InvoiceNumber"], row["InvoiceID"], Decimal(str(row["Total"]))) for row in xero.invoices()]
    seen = Counter(number for number, _, _ in remote)
    remote_ids = {number: (remote_id, total) for number, remote_id, total in remote}
    missing = [number for number in ours if seen[number] == 0]
    twice = [number for number in ours if seen[number] > 1]
    wrong_id = [number for number, (remote_id, exported_to, _) in ours.items()
                if seen[number] == 1 and (exported_to != system or remote_ids[number][0] != remote_id)]
    wrong_total = [number for number, (_, _, total) in ours.items()
                   if seen[number] == 1 and remote_ids[number][1] is not None and remote_ids[number][1] != total]
    ok = not (missing or twice or wrong_id or wrong_total)
    text = (f"{sum(1 for number in ours if seen[number] == 1)} of {len(ours)} invoices exactly once in the fake; "
            f"{len(missing)} missing, {len(twice)} more than once, {len(wrong_id)} under another remote id than stored"
            + (f", {len(wrong_total)} with another total" if system == "xero" else ""))
    return ok, text


# --- report -----------------------------------------------------------------------------------------------


def _print(outcome: Outcome) -> None:
    goal = GOALS[outcome.system]
    floor, why = outcome.floor()
    ratio = f"{outcome.wall / floor:.1f}×" if floor else "—"
    endpoints = ", ".join(f"{name} {count}" for name, count in sorted(outcome.calls.items(), key=lambda kv: (-kv[1], kv[0])))
    mapped = ", ".join(f"{kind} {count}" for kind, count in outcome.mapped_before.items())
    rest = max(0.0, outcome.wall - outcome.http_seconds - outcome.retry_after)
    print(f"  {LABELS[outcome.system]} — {outcome.scenario} (mapped before: {mapped})")
    print(f"    invoices exported: {outcome.exported} of {outcome.invoices} ({outcome.failed} failed), "
          f"{outcome.attempts} task run{'s' if outcome.attempts != 1 else ''}")
    print(f"    HTTP calls: {outcome.total_calls} = {outcome.per_invoice:.3f} per invoice "
          f"(goal ≤ {goal}: {'met' if outcome.per_invoice <= goal else 'NOT met'}) — {endpoints}")
    print(f"    429s received: {outcome.throttled}" + (f" (Retry-After {outcome.retry_after:g} s in all)" if outcome.throttled else ""))
    print(f"    wall {outcome.wall:.1f} s; floor {floor:.1f} s ({why}); wall/floor {ratio}; "
          f"burst floor {outcome.burst_floor():.1f} s (at the real minute: {outcome.burst_floor(scale=60 / WINDOW):.0f} s)")
    print(f"    time: in HTTP calls {outcome.http_seconds:.1f} s, waiting out 429s {outcome.retry_after:.1f} s, "
          f"the rest (our code, database, Celery) {rest:.1f} s")
    print(f"    check: {'OK' if outcome.check_ok else 'FAILED'} — {outcome.check}")


def main() -> None:
    from cryptography.fernet import Fernet

    # The fakes speak plain http; tokens are encrypted with a key of this run (the tenant is dropped at the end).
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    os.environ.setdefault("INTEGRATION_FERNET_KEYS", Fernet.generate_key().decode())
    from bench._django import django_ready, fresh_msp

    django_ready()
    from django_tenants.utils import schema_context

    from integrations.models import AccountingConnection
    from integrations.services import connection_disconnect
    from invoices import hooks
    from invoices.models import InvoiceLine
    from msp_billing.celery import app

    unknown = [name for name in SYSTEMS if name not in GOALS]
    if unknown:
        raise SystemExit(f"BENCH_EXPORT_SYSTEMS: unknown {', '.join(unknown)} (quickbooks, xero)")
    app.conf.task_default_queue = QUEUE  # the run's task goes to the benchmark's worker only
    msp = fresh_msp(schema=SCHEMA, name="Export benchmark")
    # Issuing invoices would queue PDF renders (and whatever else listens); none of that is measured here.
    listeners = list(hooks._listeners)
    for listener in listeners:
        hooks.unregister_invoice_listener(listener)
    qbo = xero = worker = None
    log_dir = Path(tempfile.mkdtemp(prefix="bench_export_"))
    outcomes: list[Outcome] = []
    finished = False
    try:
        qbo, xero, env = _start_fakes()
        os.environ.update(env)
        worker = _start_worker(log_dir)
        with schema_context(msp.schema_name):
            t0 = time.perf_counter()
            catalogue = _catalogue()
            customers = _customers(CUSTOMERS)
            first_ids = _invoices(INVOICES, customers, catalogue, seed=1)
            mapped_ids = _invoices(INVOICES, customers, catalogue, seed=2)
            setup_seconds = time.perf_counter() - t0
            lines = InvoiceLine.objects.filter(invoice_id__in=first_ids + mapped_ids).count()
            _wait_for_worker(app, worker, log_dir)
            print(f"  tenant: {len(customers)} customers, 2 × {INVOICES} issued invoices ({lines} lines, VAT 19 %), "
                  f"3 rate items, 2 products (setup {setup_seconds:.0f} s); window {WINDOW:g} s stands for the "
                  f"minute (BENCH_EXPORT_WINDOW; 60 = real); {os.cpu_count()} CPUs, shared", flush=True)
            for number, system in enumerate(SYSTEMS):
                if number:
                    _mark_not_exported(first_ids + mapped_ids)
                connection_row = _connect(system, qbo, xero)
                for scenario, ids in (("first export (nothing mapped yet)", first_ids), ("mapped", mapped_ids)):
                    outcome = _export(system, scenario, ids, qbo, xero)
                    outcomes.append(outcome)
                    _print(outcome)
                connection_disconnect(connection=AccountingConnection.objects.get(pk=connection_row.pk), acting_user=None)
            worker_peak = vm_hwm_mb(worker.pid)
        print(f"  peak memory of the worker (VmHWM): {worker_peak:.0f} MB; of this process (max RSS, includes setup "
              f"and the fakes): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        if xero is not None and xero.spec.problems:
            print(f"  Xero contract problems seen by the fake: {len(xero.spec.problems)}, first: {xero.spec.problems[0]}")
        failed = [outcome for outcome in outcomes if not outcome.check_ok]
        if failed:
            raise SystemExit(f"export benchmark: the check failed for {', '.join(f'{o.system} {o.scenario}' for o in failed)}")
        finished = True
    finally:
        stop_process_groups([worker] if worker is not None else [])
        for fake in (qbo, xero):
            if fake is not None:
                fake.stop()
        for listener in listeners:
            hooks.register_invoice_listener(listener)
        msps_drop(msp)
        if finished:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"  the worker's log is kept in {log_dir}", file=sys.stderr)


if __name__ == "__main__":  # `python -m bench.bench_export worker …`: the benchmark's Celery worker (see _start_worker)
    _worker_main(sys.argv[1:])
