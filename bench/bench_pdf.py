"""PDFs for a 500-invoice batch: our pipeline against WeasyPrint alone, and fanned out over Celery workers.

Four sides render the same invoices in a scratch tenant, in alternating rounds over parts
of the batch (BENCH_PDF_ROUNDS, default 5) so load from neighbours on a shared machine
falls on all alike:

* **WeasyPrint alone**: each invoice's HTML (made beforehand) to PDF bytes, with the same
  FontConfiguration, stylesheets and URL fetcher the pipeline uses — the floor;
* **one at a time**: ``invoices.pdf.invoice_pdf_ensure`` per invoice (what the task queued
  by one invoice's change does): load, render, write atomically, one transaction;
* **in chunks**: ``invoices.pdf.invoice_pdfs_ensure`` over chunks of ``INVOICE_PDF_CHUNK``
  (what the sweep and a month end queue): one query set and one transaction per chunk;
* **Celery fan-out**: ``invoices.tasks.queue_pdf_renders`` for the part, taken by
  BENCH_PDF_WORKERS worker processes (``--concurrency=1`` each, default 2), timed from the
  first task queued until ``pdf_progress`` says all are done.

Prints each side's cost per invoice, the pipeline's ratio to WeasyPrint alone (goal ≤
1.25×), the fan-out's ratio to the chunks in one process (goal ≥ 1.7× with 2 workers), the
machine's own ceiling for that ratio (the same WeasyPrint call in plain processes, no
database, no Celery) and the peak memory (VmHWM) of each worker process (goal ≤ 300 MB).
Run: `make bench` (or `python -m bench pdf`); for a quick look: BENCH_PDF_INVOICES=20.
"""
from __future__ import annotations

import os
import random
import resource
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from bench._django import msps_drop
from bench._processes import solo_workers_start, stop_process_groups, vm_hwm_mb

INVOICES = int(os.environ.get("BENCH_PDF_INVOICES", 500))
WORKERS = int(os.environ.get("BENCH_PDF_WORKERS", 2))
ROUNDS = int(os.environ.get("BENCH_PDF_ROUNDS", 5))
SCHEMA = "bench_pdf"
QUEUE = "bench_pdf"  # its own queue: other workers on the same broker never take these tasks
BASE_DIR = Path(__file__).resolve().parent.parent


# The machine's own ceiling: the same WeasyPrint call in plain processes, one alone and then
# WORKERS at once, no database and no Celery. On a shared or throttled machine this is what
# the fan-out can reach at best, so the fan-out's ratio is also shown against it.
CEILING_CODE = """
import sys, time
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
fonts = FontConfiguration()
html = open(sys.argv[1], encoding="utf-8").read()
sheets = [CSS(filename=name, font_config=fonts) for name in sys.argv[3:]]
HTML(string=html).write_pdf(stylesheets=sheets, font_config=fonts)
count = int(sys.argv[2])
start = time.perf_counter()
for _ in range(count):
    HTML(string=html).write_pdf(stylesheets=sheets, font_config=fonts)
print(time.perf_counter() - start)
"""


def _ceiling(html: str, sheets: list[str], count: int, processes: int, work_dir: Path) -> float:
    """Renders per second of ``processes`` plain processes rendering ``html`` ``count`` times each, at once."""
    page = work_dir / "ceiling.html"
    page.write_text(html, encoding="utf-8")
    command = [sys.executable, "-c", CEILING_CODE, str(page), str(count), *sheets]
    running = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(processes)]
    seconds = [float(process.communicate()[0]) for process in running]
    return processes * count / max(seconds)


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        children = []
    for child in children:
        pids.extend(_process_tree(int(child)))
    return pids


def _make_invoices(count: int, *, label: str) -> list[int]:
    """``count`` issued invoices shaped like a month-end batch: a retainer fee, tickets with time, some parts."""
    from contracts.models import Customer, TaxRate
    from invoices import services
    from msp_billing.accounts.models import User

    rng = random.Random(42)
    admin = User.objects.filter(role="owner").first()
    TaxRate.objects.get_or_create(code="VAT", effective_from="2020-01-01", defaults={"name": "VAT", "percent": Decimal("19")})
    customers = [Customer.objects.create(legal_name=f"{label} Customer {i:03d} GmbH", currency="EUR",
                                         address=f"Hauptstraße {i}\n10115 Berlin", tax_id=f"DE{100000000 + i}",
                                         billing_email=f"ap{i}@{label.lower()}.example") for i in range(max(1, count // 5))]
    ids = []
    for number in range(count):
        lines = [services.LineInput(description="Managed Services retainer, March 2026", quantity=Decimal("1"),
                                    unit_price=Decimal("1450"), tax_rate_codes=("VAT",), source_kind="period",
                                    detail={"rows": ["Period 01 Mar 2026 – 31 Mar 2026", "25 workstations, 3 servers"]})]
        for ticket in range(rng.randint(1, 4)):
            ticket_id = 1000 + number * 10 + ticket
            for entry in range(rng.randint(1, 3)):
                minutes = rng.choice((15, 30, 45, 60, 90, 120))
                lines.append(services.LineInput(
                    description=rng.choice(("Remote Support", "Onsite Support", "Project Work")),
                    quantity=Decimal(minutes) / 60, unit_price=Decimal("120"), tax_rate_codes=("VAT",), source_kind="time",
                    detail={"ticket_id": ticket_id, "ticket_title": rng.choice(("Printer offline", "VPN drops", "New laptop")),
                            "rows": [f"0{entry + 2} Mar 2026 · Engineer · {minutes // 60}:{minutes % 60:02d} h billed",
                                     "Checked the logs, applied the fix, confirmed with the user"]}))
        for _ in range(rng.randint(0, 2)):
            lines.append(services.LineInput(description="Patch cable Cat6 2 m", quantity=Decimal(rng.randint(1, 5)),
                                            unit_price=Decimal("4.99"), tax_rate_codes=("VAT",), source_kind="charge",
                                            detail={"rows": ["04 Mar 2026 · Product · CAB-C6-2M"]}))
        draft = services.invoice_create_draft(customer=customers[number % len(customers)], lines=lines, acting_user=admin)
        ids.append(services.invoice_issue(invoice_id=draft.pk, acting_user=admin).pk)
    return ids


def _clear_pdfs(ids: list[int]) -> None:
    from django.core.files.storage import default_storage

    from invoices.models import InvoicePdf

    for name in InvoicePdf.objects.filter(invoice_id__in=ids).values_list("file", flat=True):
        default_storage.delete(name)
    InvoicePdf.objects.filter(invoice_id__in=ids).delete()



def _wait_for_workers(app, workers: list[subprocess.Popen], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    import socket

    names = [f"bench_pdf_{index}@{socket.gethostname()}" for index in range(len(workers))]
    while True:
        replies = app.control.inspect(destination=names, timeout=1).ping() or {}
        if len(replies) == len(workers):
            return
        for worker in workers:
            if worker.poll() is not None:
                raise RuntimeError(f"a benchmark worker exited with {worker.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark workers did not start")
        time.sleep(0.5)


def _wait_done(ids: list[int], timeout: float) -> None:
    from invoices.selectors import pdf_progress

    deadline = time.monotonic() + timeout
    while pdf_progress(ids)[0] < len(ids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"PDFs not done after {timeout}s: {pdf_progress(ids)}")
        time.sleep(0.05)


def main() -> None:
    from bench._django import django_ready, fresh_msp

    django_ready()
    import tempfile

    from django.conf import settings
    from django_tenants.utils import schema_context

    from invoices import hooks, selectors
    from invoices.models import InvoiceLine, InvoicePdf
    from invoices.pdf import CSS_DIR, invoice_html, invoice_pdf_ensure
    from invoices.tasks import invoice_pdf_render, invoice_pdfs_render, pdf_chunks, queue_pdf_render
    from msp_billing.celery import app

    msp = fresh_msp(schema=SCHEMA, name="PDF benchmark")
    # Setup issues invoices; their renders are what we measure, so nothing may be queued meanwhile.
    hooks.unregister_invoice_listener(queue_pdf_render)
    workers: list[subprocess.Popen] = []
    log_dir = Path(tempfile.mkdtemp(prefix="bench_pdf_"))
    try:
        with schema_context(msp.schema_name):
            t0 = time.perf_counter()
            warm_ids = _make_invoices(WORKERS + 1, label="Warm")
            ids = _make_invoices(INVOICES, label="Batch")
            setup_seconds = time.perf_counter() - t0
            lines = InvoiceLine.objects.filter(invoice_id__in=ids).count()

            workers = solo_workers_start(WORKERS, queue=QUEUE, log_dir=log_dir)
            _wait_for_workers(app, workers)
            # First renders outside the timing (fonts load): this process, and one task per worker.
            invoice_pdf_ensure(invoice_id=warm_ids[-1])
            for invoice_id in warm_ids[:WORKERS]:
                invoice_pdf_render.apply_async((invoice_id, 1), queue=QUEUE)
            _wait_done(warm_ids[:WORKERS], timeout=120)

            from weasyprint import HTML

            from invoices.models import InvoiceSettings
            from invoices.pdf import _weasyprint, invoice_pdfs_ensure, seller_details, stylesheets

            branding, seller = InvoiceSettings.load(), seller_details()
            font_config, url_fetcher = _weasyprint()
            sheets_of_template = stylesheets(branding.pdf_template)
            size = max(1, settings.INVOICE_PDF_CHUNK)
            htmls = {document.pk: invoice_html(document, branding=branding, seller=seller)
                     for document in selectors.invoice_documents().filter(pk__in=ids)}

            def weasyprint_alone(chunk: list[int]) -> float:
                start = time.perf_counter()
                for invoice_id in chunk:
                    HTML(string=htmls[invoice_id], url_fetcher=url_fetcher, media_type="print").write_pdf(
                        stylesheets=sheets_of_template, font_config=font_config)
                return time.perf_counter() - start

            def one_at_a_time(chunk: list[int]) -> float:
                start = time.perf_counter()
                for invoice_id in chunk:
                    invoice_pdf_ensure(invoice_id=invoice_id)
                return time.perf_counter() - start

            def in_chunks(chunk: list[int]) -> float:
                start = time.perf_counter()
                for first in range(0, len(chunk), size):
                    invoice_pdfs_ensure(invoice_ids=chunk[first:first + size])
                return time.perf_counter() - start

            def fan_out(chunk: list[int]) -> float:
                start = time.perf_counter()
                queue_pdf_renders_on(chunk)
                _wait_done(chunk, timeout=max(600, len(chunk) * 5))
                return time.perf_counter() - start

            def queue_pdf_renders_on(chunk: list[int]) -> None:  # as queue_pdf_renders, on the benchmark's queue
                for part in pdf_chunks(chunk):
                    invoice_pdfs_render.apply_async((part,), queue=QUEUE)

            # The machine is shared: the sides run in alternating rounds over parts of the batch,
            # so a neighbour's load falls on all alike. Each side renders every invoice once.
            rounds = max(1, min(ROUNDS, INVOICES))
            chunks = [ids[index::rounds] for index in range(rounds)]
            sides = [weasyprint_alone, one_at_a_time, in_chunks, fan_out]
            seconds_of = dict.fromkeys(sides, 0.0)
            sizes: list[int] = []
            pages = 0
            for number, chunk in enumerate(chunks):
                for side in (sides if number % 2 == 0 else sides[::-1]):
                    seconds_of[side] += side(chunk)
                    if side is in_chunks and number == 0:
                        done = InvoicePdf.objects.filter(invoice_id__in=chunk, is_current=True)
                        sizes = list(done.values_list("size", flat=True))
                        pages = _pages(done)
                    if side is not weasyprint_alone:
                        _clear_pdfs(chunk)
            sequential_seconds = seconds_of[in_chunks]
            fanout_seconds = seconds_of[fan_out]
            sequential_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            peaks = [(worker.pid, max(vm_hwm_mb(pid) for pid in _process_tree(worker.pid))) for worker in workers]
            stop_process_groups(workers)

            sample = invoice_html(selectors.invoice_document(invoice_id=ids[0]))
            sheets = [str(CSS_DIR / "invoice.css"), str(CSS_DIR / "classic.css")]
            renders = max(10, min(INVOICES, 60))
            alone = _ceiling(sample, sheets, renders, 1, log_dir)
            together = _ceiling(sample, sheets, renders, WORKERS, log_dir)

        sequential_rate = INVOICES / sequential_seconds
        fanout_rate = INVOICES / fanout_seconds
        ratio = fanout_rate / sequential_rate
        ceiling = together / alone
        average_kb = sum(sizes) / len(sizes) / 1024 if sizes else 0
        average_pages = f"{pages / len(sizes):.1f}" if pages and sizes else "?"
        print(f"  batch: {INVOICES} issued invoices, {lines} lines, {average_pages} pages and {average_kb:.0f} KB per PDF "
              f"on average; {rounds} alternating rounds; {os.cpu_count()} CPUs (setup {setup_seconds:.1f} s)")
        alone_ms = seconds_of[weasyprint_alone] / INVOICES * 1000
        for side, label in ((weasyprint_alone, "WeasyPrint alone (same HTML, same fonts and CSS)"),
                            (one_at_a_time, "pipeline, one invoice at a time"),
                            (in_chunks, f"pipeline, chunks of {size}"),
                            (fan_out, f"Celery fan-out, chunks of ≤ {size}, {WORKERS} workers")):
            per_invoice = seconds_of[side] / INVOICES * 1000
            wall = "" if side is not fan_out else "  (wall clock over all workers)"
            print(f"  {label:<52} {seconds_of[side]:8.2f} s  {INVOICES / seconds_of[side]:7.1f} invoices/s  "
                  f"{per_invoice:7.1f} ms/invoice  = {per_invoice / alone_ms:5.2f}× WeasyPrint{wall}")
        chunk_ratio = seconds_of[in_chunks] / seconds_of[weasyprint_alone]
        print(f"  ratio pipeline in chunks / WeasyPrint alone: {chunk_ratio:.2f}×  (goal ≤ 1.25×: "
              f"{'met' if chunk_ratio <= 1.25 else 'NOT met'})")
        print(f"  ratio fan-out / chunks in one process: {ratio:.2f}×  (goal ≥ 1.7× with 2 workers: "
              f"{'met' if ratio >= 1.7 else 'NOT met'})")
        print(f"  machine ceiling (one invoice's HTML in plain processes, no database, no Celery): 1 process "
              f"{alone:.1f}/s, {WORKERS} at once {together:.1f}/s = {ceiling:.2f}×")
        for pid, peak in peaks:
            print(f"  peak memory of worker {pid} (VmHWM): {peak:.0f} MB  (goal ≤ 300 MB: "
                  f"{'met' if peak <= 300 else 'NOT met'})")
        print(f"  peak memory of the sequential process (max RSS, includes setup): {sequential_rss:.0f} MB")
    finally:
        stop_process_groups(workers)
        hooks.register_invoice_listener(queue_pdf_render)
        msps_drop(msp)
        shutil.rmtree(Path(settings.MEDIA_ROOT) / SCHEMA, ignore_errors=True)
        shutil.rmtree(log_dir, ignore_errors=True)


def _pages(pdfs) -> int | None:
    """Pages of all PDFs (None without pypdf, which is a test extra)."""
    try:
        from pypdf import PdfReader
    except ImportError:
        return None
    from django.core.files.storage import default_storage

    total = 0
    for pdf in pdfs:
        with default_storage.open(pdf.file.name, "rb") as handle:
            total += len(PdfReader(handle).pages)
    return total
