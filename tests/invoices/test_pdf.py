"""Invoice PDFs, branding, the print page and e-mail — and a worker killed in the middle of a render."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import struct
import time
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_tenants.utils import schema_context
from djmoney.money import Money
from pypdf import PdfReader

from invoices import pdf as invoice_pdfs
from invoices import selectors, services, tasks
from invoices.branding import invoice_branding_update, logo_kind, validate_brand_colour
from invoices.mail import invoice_email_deliver, invoice_email_send
from invoices.models import AuditEvent, Invoice, InvoiceEmail, InvoicePdf, InvoiceSettings
from tests.invoices.builders import admin, customer, draft, issued, line, render_killed, tax
from tests.support import BASE_DIR, wait_for

pytestmark = pytest.mark.django_db


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    """Each test's files in its own folder (the worker test uses the shared test MEDIA_ROOT)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def alpha(tenant, media):
    return tenant


def png(width: int = 4, height: int = 2) -> bytes:
    """A small valid PNG, made here (no binary fixtures in the repository)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\x1f\x4e\x79" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="120" height="40" fill="#1F4E79"/></svg>'


def pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


def stored(pdf: InvoicePdf) -> bytes:
    with default_storage.open(pdf.file.name, "rb") as handle:
        return handle.read()


def render(invoice: Invoice) -> InvoicePdf:
    result = invoice_pdfs.invoice_pdf_ensure(invoice_id=invoice.pk, version=invoice.pdf_version)
    assert result is not None
    return result


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def current_rows(invoice: Invoice) -> list[InvoicePdf]:
    return list(InvoicePdf.objects.filter(invoice=invoice, is_current=True))


@pytest.fixture
def texts():
    row = InvoiceSettings.load()
    row.terms = "Payable without deduction."
    row.payment_instructions = "IBAN DE02 1203 0000 0000 2020 51, BIC BYLADEM1001"
    row.footer = "Alpha Managed IT GmbH · Registergericht Berlin HRB 4242"
    row.save()
    return row


# --- what the PDF shows --------------------------------------------------------------------


def test_the_pdf_shows_number_customer_lines_taxes_and_totals(alpha, texts):
    tax("VAT", "19", name="VAT")
    cust = customer("Druck & Partner GmbH", billing_email="ap@druck.example")
    invoice = issued(cust, [line("Managed backup", "1", "200", taxes=("VAT",)), line("Patch cable", "3", "4.99")])

    pdf = render(invoice)
    content = stored(pdf)
    text = pdf_text(content)

    assert content.startswith(b"%PDF")
    assert pdf.is_current and pdf.version == invoice.pdf_version == 1
    assert pdf.file.name.startswith("alpha/invoices/pdf/")
    for expected in (invoice.number, "Druck & Partner GmbH", "Hauptstraße 1", "DE123456789", "Managed backup",
                     "Patch cable", "Alpha Managed IT", texts.payment_instructions, texts.terms, "HRB 4242",
                     "Page 1 of 1"):
        assert expected in text, expected
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (Decimal("214.97"), Decimal("38.00"), Decimal("252.97"))
    for figure in (invoice.subtotal, invoice.tax_total, invoice.total, Decimal("200.00"), Decimal("14.97")):
        assert money(figure) in text
    assert "VAT 19 % on 200.00" in text
    assert f"Total {invoice.currency}" in text


def test_a_detailed_invoice_lists_services_tickets_time_entries_and_expenses(alpha):
    from contracts.models import ContractPeriod
    from tests.tickets import builders as t
    from tickets.models import Charge
    from tickets.services import time_entry_log

    remote, _onsite, _ooh, engineer = t.catalogue()
    tech = t.technician(engineer)
    cust = customer("Detail AG")
    hourly = t.contract(cust, "hourly", name="Hourly T&M")
    t.rate_line(hourly, "120")
    retainer = t.contract(cust, "retainer", priority=20, name="Managed Services", fee=t.eur("430"))
    period = ContractPeriod.objects.create(contract=retainer, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31),
                                          covered_start=dt.date(2026, 3, 1), covered_end=dt.date(2026, 3, 31),
                                          bill_date=dt.date(2026, 3, 1))
    from tickets.models import Ticket

    ticket = Ticket.objects.create(customer=cust, title="Mail server down")
    entry = time_entry_log(ticket=ticket, technician=tech, work_type=remote, date=dt.date(2026, 3, 3), minutes=90,
                           notes="Restarted the mail queue", chosen_contract=hourly)
    allocation = entry.allocations.get()
    toner = Charge.objects.create(ticket=ticket, description="Replacement toner", date=dt.date(2026, 3, 4),
                                  quantity=Decimal("2"), unit_price=Money("45", "EUR"), is_expense=True)
    invoice = issued(cust, [
        line("Managed Services, March 2026", "1", "430", source_kind="period", contract_period_id=period.pk,
             contract_id=retainer.pk),
        line("Remote Support", "1.5", "120", source_kind="time", time_allocation_id=allocation.pk,
             contract_id=hourly.pk),
        line("Replacement toner", "2", "45", source_kind="charge", charge_id=toner.pk),
        line("Office 365 licences", "12", "10", detail={"rows": ["12 × Microsoft 365 Business Standard",
                                                                  {"period": "March 2026", "seats": "12 seats"}]}),
    ])

    text = pdf_text(stored(render(invoice)))

    for heading in ("services", "tickets and time", "products and expenses"):  # printed in capitals
        assert heading in text.lower(), heading
    for expected in ("Ticket #%d Mail server down" % ticket.pk,
                     "Period 1 Mar 2026 – 31 Mar 2026", "3 Mar 2026 · Remote Support", "1:30 h billed",
                     "Restarted the mail queue", "4 Mar 2026 · Expense", "12 × Microsoft 365 Business Standard",
                     money(invoice.total)):
        assert expected in text, expected
    # A row given as a mapping prints its values (in the order JSONB keeps the keys).
    assert "– 12 seats · March 2026" in text or "– March 2026 · 12 seats" in text
    # Services first, then time by ticket, then products and expenses.
    assert text.index("Managed Services, March 2026") < text.index("Remote Support") < text.index("Replacement toner")


def test_credit_notes_and_void_invoices_say_what_they_are(alpha):
    invoice = issued(customer("Gutschrift GmbH"), [line("Support", "2", "50")])
    credit = services.credit_note_create(invoice_id=invoice.pk, reason="Goodwill", acting_user=admin())
    text = pdf_text(stored(render(credit)))
    assert "credit note" in text.lower() and credit.number in text and invoice.number in text and "Goodwill" in text
    assert money(credit.total) in text  # negative: -100.00

    other = issued(customer("Storno GmbH"), [line("Support", "1", "80")])
    render(other)
    services.invoice_void(invoice_id=other.pk, acting_user=admin(), reason="Wrong customer")
    other.refresh_from_db()
    voided = render(other)
    assert voided.version == 2 and "Void" in pdf_text(stored(voided)) and "Wrong customer" in pdf_text(stored(voided))


def test_both_templates_print_the_brand_colour_and_the_logo(alpha):
    invoice = issued(customer("Vorlage GmbH"), [line("Support", "1", "80")])
    invoice_branding_update(acting_user=admin(), brand_colour="#b22222", pdf_template="modern", logo=png())
    document = selectors.invoice_document(invoice_id=invoice.pk)
    html = invoice_pdfs.invoice_html(document)
    assert "--brand: #B22222" in html and 'class="doc-header band"' in html and "data:image/png;base64," in html
    modern = invoice_pdfs.render_invoice_pdf(document)
    assert modern.startswith(b"%PDF") and invoice.number in pdf_text(modern)
    assert len(PdfReader(io.BytesIO(modern)).pages[0].images) == 1  # the logo

    invoice_branding_update(acting_user=admin(), pdf_template="classic", logo=SVG)
    html = invoice_pdfs.invoice_html(document)
    assert "template-classic" in html and "data:image/svg+xml;base64," in html and "band" not in html
    assert invoice.number in pdf_text(invoice_pdfs.render_invoice_pdf(document))


def test_nothing_outside_the_document_is_fetched_while_rendering(alpha):
    """Descriptions are escaped, and WeasyPrint may only read data: URIs (no files, no network)."""
    invoice = issued(customer("Fetch GmbH"), [line('<img src="file:///etc/passwd"> Support', "1", "80")])
    document = selectors.invoice_document(invoice_id=invoice.pk)
    html = invoice_pdfs.invoice_html(document)
    assert "&lt;img src=&quot;file:///etc/passwd&quot;&gt;" in html
    _font_config, fetcher = invoice_pdfs._weasyprint()
    with pytest.raises(ValueError, match="disallowed protocol"):
        fetcher.fetch("file:///etc/passwd")
    with pytest.raises(ValueError, match="disallowed protocol"):
        fetcher.fetch("http://127.0.0.1:9/logo.png")


# --- exactly one current PDF ---------------------------------------------------------------


def test_an_edit_gives_a_new_current_version_and_only_one_current_pdf(alpha):
    invoice = issued(customer("Version GmbH"), [line("Support", "2", "50")])
    first = render(invoice)
    assert render(invoice).pk == first.pk  # a second run for a rendered version is a no-op
    assert InvoicePdf.objects.filter(invoice=invoice).count() == 1

    services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), lines=[line("Support, extended", "3", "50")])
    invoice.refresh_from_db()
    assert invoice.pdf_version == 2
    assert selectors.current_pdf(invoice) is None  # the v1 copy is out of date: the PDF is "being prepared"

    second = invoice_pdfs.invoice_pdf_ensure(invoice_id=invoice.pk, version=1)  # a late task for v1 renders v2
    first.refresh_from_db()
    assert (second.version, second.is_current, first.is_current) == (2, True, False)
    assert current_rows(invoice) == [second]
    assert "Support, extended" in pdf_text(stored(second)) and "150.00" in pdf_text(stored(second))
    assert default_storage.exists(first.file.name)  # superseded copies are kept (they may have been sent)
    assert invoice_pdfs.invoice_pdf_ensure(invoice_id=invoice.pk, version=2).pk == second.pk
    assert InvoicePdf.objects.filter(invoice=invoice).count() == 2


def test_a_missing_file_is_rendered_again_and_drafts_get_no_pdf(alpha, media):
    invoice = issued(customer("Lost GmbH"), [line("Support", "1", "50")])
    first = render(invoice)
    Path(default_storage.path(first.file.name)).unlink()
    again = render(invoice)
    assert again.pk == first.pk and again.file.name != first.file.name and stored(again).startswith(b"%PDF")
    assert current_rows(invoice) == [again]

    assert invoice_pdfs.invoice_pdf_ensure(invoice_id=draft(customer("Draft GmbH")).pk) is None
    assert invoice_pdfs.invoice_pdf_ensure(invoice_id=987654321) is None
    assert not list(media.rglob("*.tmp"))  # nothing half-written left behind


def test_a_chunk_renders_each_invoice_its_own_pdf_with_queries_independent_of_its_size(alpha, media):
    cust = customer("Chunk GmbH")
    invoices = [issued(cust, [line(f"Chunk service {n}", str(n), "10"), line(f"Chunk extra {n}", "1", "5")])
                for n in range(1, 9)]
    before = render(invoices[0])
    waiting_draft = draft(cust, [line("Not yet", "1", "1")])

    def queries_for(chunk):
        with CaptureQueriesContext(connection) as captured:
            result = invoice_pdfs.invoice_pdfs_ensure(invoice_ids=[i.pk for i in chunk])
        return result, len(captured.captured_queries)

    small, small_queries = queries_for([invoices[0], invoices[1], waiting_draft])
    large, large_queries = queries_for([*invoices, waiting_draft, Invoice(pk=987654321)])
    assert large_queries == small_queries  # one query set and one transaction per chunk, not per invoice
    assert small[invoices[0].pk].pk == before.pk  # already rendered: kept, not rendered again
    assert small[waiting_draft.pk] is None and large[987654321] is None
    for n, invoice in enumerate(invoices, start=1):
        pdf = large[invoice.pk]
        assert current_rows(invoice) == [pdf] and pdf.version == 1
        assert InvoicePdf.objects.filter(invoice=invoice).count() == 1
        text = pdf_text(stored(pdf))
        assert invoice.number in text and f"Chunk service {n}" in text and f"Chunk service {n + 1}" not in text
        assert money(invoice.total) in text
        assert pdf.sha256 == hashlib.sha256(stored(pdf)).hexdigest() and pdf.size == len(stored(pdf))
    assert not list(media.rglob("*.tmp"))


def test_a_chunk_keeps_no_copy_of_an_invoice_edited_while_it_rendered(alpha, media, monkeypatch,
                                                                      django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(tasks.invoice_pdf_render, "delay", lambda *args: queued.append(args))
    cust = customer("Edited Meanwhile GmbH")
    steady, edited = issued(cust, [line("Steady", "1", "10")]), issued(cust, [line("Old text", "1", "10")])
    real_render = invoice_pdfs.render_invoice_pdf

    def render_then_edit(document, **kwargs):
        content = real_render(document, **kwargs)
        if document.pk == edited.pk:  # someone edits it while its (now outdated) PDF is being made
            services.invoice_edit(invoice_id=edited.pk, acting_user=admin(), lines=[line("New text", "1", "10")])
        return content

    monkeypatch.setattr(invoice_pdfs, "render_invoice_pdf", render_then_edit)
    with django_capture_on_commit_callbacks(execute=True):
        result = invoice_pdfs.invoice_pdfs_ensure(invoice_ids=[steady.pk, edited.pk])
    assert queued == [(edited.pk, 2)]  # the edit queued the render of its own version
    assert result[edited.pk] is None and not InvoicePdf.objects.filter(invoice=edited).exists()
    assert not list((media / "alpha" / "invoices" / "pdf" / str(edited.pk)).glob("*.pdf"))  # its file went too
    assert current_rows(steady) == [result[steady.pk]]
    monkeypatch.setattr(invoice_pdfs, "render_invoice_pdf", real_render)
    again = invoice_pdfs.invoice_pdfs_ensure(invoice_ids=[steady.pk, edited.pk])
    assert again[steady.pk].pk == result[steady.pk].pk and again[edited.pk].version == 2
    assert "New text" in pdf_text(stored(again[edited.pk]))


def test_the_sweep_queues_missing_pdfs_in_chunks(alpha, monkeypatch, settings):
    settings.INVOICE_PDF_CHUNK = 2
    monkeypatch.setattr(tasks, "PDF_TASKS_AT_LEAST", 1)
    chunks = []
    monkeypatch.setattr(tasks.invoice_pdfs_render, "delay", chunks.append)
    cust = customer("Sweep Chunks GmbH")
    missing = [issued(cust, [line(f"S{n}", "1", "10")]).pk for n in range(5)]
    assert tasks.invoice_pdfs_sweep(clean_temporaries=False) == len([pk for chunk in chunks for pk in chunk])
    assert set(missing) <= {pk for chunk in chunks for pk in chunk} and max(len(chunk) for chunk in chunks) <= 2
    assert len(chunks) < len([pk for chunk in chunks for pk in chunk])  # several invoices to a task


def test_a_failed_write_leaves_no_file_and_no_row(alpha, media, monkeypatch):
    invoice = issued(customer("Disk GmbH"), [line("Support", "1", "50")])

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(invoice_pdfs.os, "replace", disk_full)
    with pytest.raises(OSError):
        render(invoice)
    assert not InvoicePdf.objects.filter(invoice=invoice).exists()
    assert not [p for p in media.rglob("*") if p.is_file()]


def test_pdf_progress_counts_invoices_whose_current_version_is_rendered(alpha):
    cust = customer("Progress GmbH")
    first, second = issued(cust, [line("A", "1", "10")]), issued(cust, [line("B", "1", "10")])
    a_draft = draft(cust)
    ids = [first.pk, second.pk, a_draft.pk, 987654321]
    assert selectors.pdf_progress(ids) == (0, 2)  # drafts and unknown ids do not count
    render(first)
    assert selectors.pdf_progress(ids) == (1, 2)
    render(second)
    assert selectors.pdf_progress(ids) == (2, 2)
    services.invoice_edit(invoice_id=second.pk, acting_user=admin(), lines=[line("B2", "1", "10")])
    assert selectors.pdf_progress(ids) == (1, 2)
    assert set(selectors.invoices_needing_pdf().filter(customer=cust)) == {second}
    assert selectors.pdf_progress([]) == (0, 0)


def test_issuing_editing_and_voiding_queue_a_render_after_commit(alpha, monkeypatch, django_capture_on_commit_callbacks):
    queued = []
    monkeypatch.setattr(tasks.invoice_pdf_render, "delay", lambda *args: queued.append(args))
    cust = customer("Queue GmbH")
    with django_capture_on_commit_callbacks(execute=True):
        invoice = draft(cust, [line("Support", "1", "50")])
    assert queued == []  # drafts get no PDF
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_issue(invoice_id=invoice.pk, acting_user=admin())
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_edit(invoice_id=invoice.pk, acting_user=admin(), lines=[line("Support", "2", "50")])
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_void(invoice_id=invoice.pk, acting_user=admin(), reason="Test")
    assert queued == [(invoice.pk, 1), (invoice.pk, 2), (invoice.pk, 3)]


def test_the_sweep_queues_what_is_missing_and_removes_old_temporary_files(alpha, media, monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.invoice_pdfs_render, "delay", lambda ids: queued.extend(ids))
    cust = customer("Sweep GmbH")
    done, missing = issued(cust, [line("A", "1", "10")]), issued(cust, [line("B", "1", "10")])
    render(done)
    folder = Path(default_storage.path(f"alpha/invoices/pdf/{done.pk}"))
    old, recent = folder / ".INV-old-v1-abc.x1.tmp", folder / ".INV-new-v1-abc.x2.tmp"
    old.write_bytes(b"%PDF-half")
    recent.write_bytes(b"%PDF-half")
    os.utime(old, (time.time() - 2 * 3600,) * 2)

    assert tasks.invoice_pdfs_sweep() == len(queued)
    assert missing.pk in queued and done.pk not in queued
    assert not old.exists() and recent.exists()  # a render may still be writing the recent one


# --- branding ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["red", "#12345", "#12345G", "1F4E79", "#1F4E79; } body { display: none", "#1F4E7900", ""])
def test_brand_colour_must_be_hex_rrggbb(alpha, value):
    with pytest.raises(ValidationError, match="six hexadecimal digits"):
        validate_brand_colour(value)
    with pytest.raises(ValidationError) as error:
        invoice_branding_update(acting_user=admin(), brand_colour=value)
    assert "brand_colour" in error.value.error_dict
    assert InvoiceSettings.load().brand_colour == "#1F4E79"


@pytest.mark.parametrize("value", ["url(x)", "#1F4E7\n", "#1F4E79\n"])
def test_the_database_refuses_a_colour_that_is_not_hex(alpha, value):
    from django.db import DataError, IntegrityError, transaction

    row = InvoiceSettings.load()
    row.brand_colour = value
    with pytest.raises((IntegrityError, DataError)), transaction.atomic():
        row.save()


@pytest.mark.parametrize("content,message", [
    (b"GIF89a" + b"\x00" * 20, "PNG, JPEG or SVG"),
    (b"just some text", "PNG, JPEG or SVG"),
    (png()[:30], "could not be read"),
    (png() + b"\x00" * (1024 * 1024), "at most 1 MB"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "scripts"),
    (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>', "scripts"),
    (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>', "DOCTYPE"),
    (b"<svg><unclosed></svg>", "could not be read as an SVG"),
    (b"", "empty"),
])
def test_logos_other_than_png_jpeg_or_svg_up_to_1_mb_are_refused(alpha, content, message):
    with pytest.raises(ValidationError, match=message):
        logo_kind(content)
    with pytest.raises(ValidationError) as error:
        invoice_branding_update(acting_user=admin(), logo=content)
    assert "logo" in error.value.error_dict
    assert not InvoiceSettings.load().logo


def test_a_logo_is_stored_in_the_msps_own_folder_and_replaced_cleanly(alpha, django_capture_on_commit_callbacks):
    from PIL import Image

    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), "#1F4E79").save(jpeg, "JPEG")
    assert (logo_kind(png()), logo_kind(jpeg.getvalue()), logo_kind(SVG)) == ("png", "jpeg", "svg")

    row = invoice_branding_update(acting_user=admin(), logo=png(), brand_colour="#0a7d3b", pdf_template="modern")
    assert row.logo.name.startswith("alpha/branding/logo-") and row.logo.name.endswith(".png")
    assert (row.brand_colour, row.pdf_template) == ("#0A7D3B", "modern")
    old = row.logo.name
    with django_capture_on_commit_callbacks(execute=True):
        row = invoice_branding_update(acting_user=admin(), logo=SVG)
    assert row.logo.name.endswith(".svg") and not default_storage.exists(old)
    with django_capture_on_commit_callbacks(execute=True):
        row = invoice_branding_update(acting_user=admin(), remove_logo=True)
    assert not row.logo
    event = AuditEvent.objects.filter(action="invoice_branding_updated").first()
    assert event.before["logo"].endswith(".svg") and event.after["logo"] == ""


# --- e-mail --------------------------------------------------------------------------------


def test_the_invoice_is_e_mailed_with_its_pdf_attached_once(alpha, mailoutbox, django_capture_on_commit_callbacks,
                                                            monkeypatch):
    queued = []
    monkeypatch.setattr(tasks.invoice_email_deliver, "delay", lambda *args: queued.append(args))
    invoice = issued(customer("Mail GmbH", billing_email="ap@mail.example"), [line("Support", "2", "50")])
    pdf = render(invoice)

    with django_capture_on_commit_callbacks(execute=True):
        email = invoice_email_send(invoice_id=invoice.pk, acting_user=admin())
    assert queued == [(email.pk,)] and email.status == InvoiceEmail.Status.QUEUED and mailoutbox == []

    delivered = invoice_email_deliver(email_id=email.pk)  # what the task runs
    assert delivered.status == InvoiceEmail.Status.SENT and delivered.pdf == pdf
    [message] = mailoutbox
    assert message.to == ["ap@mail.example"]
    assert message.subject == f"Invoice {invoice.number} from Alpha Managed IT"
    assert "100.00" in message.body and invoice.number in message.body
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == (f"{invoice.number}.pdf", "application/pdf")
    assert content == stored(pdf) and content.startswith(b"%PDF")

    invoice_email_deliver(email_id=email.pk)  # a redelivered task sends nothing twice
    assert len(mailoutbox) == 1
    actions = set(AuditEvent.objects.filter(object_type="invoices.invoice", object_id=str(invoice.pk))
                  .values_list("action", flat=True))
    assert {"invoice_email_queued", "invoice_emailed"} <= actions


def test_e_mail_is_refused_without_a_billing_e_mail_or_a_ready_pdf(alpha, mailoutbox):
    no_address = issued(customer("Stumm GmbH"), [line("Support", "1", "50")])
    render(no_address)
    with pytest.raises(ValidationError, match="has no billing e-mail"):
        invoice_email_send(invoice_id=no_address.pk, acting_user=admin())

    not_ready = issued(customer("Eilig GmbH", billing_email="ap@eilig.example"), [line("Support", "1", "50")])
    with pytest.raises(ValidationError, match="still being prepared"):
        invoice_email_send(invoice_id=not_ready.pk, acting_user=admin())

    with pytest.raises(ValidationError, match="Issue the invoice"):
        invoice_email_send(invoice_id=draft(customer("Entwurf GmbH", billing_email="a@b.example")).pk, acting_user=admin())
    assert not InvoiceEmail.objects.exists() and mailoutbox == []


# --- pages ---------------------------------------------------------------------------------


@pytest.fixture
def admin_client(client_for):
    return client_for("alpha", "billing_admin")


def test_pdf_download_print_page_and_detail_links(alpha, admin_client, client_for):
    invoice = issued(customer("Seiten GmbH", billing_email="ap@seiten.example"), [line("Support", "1", "50")])
    detail = admin_client.get(reverse("invoices:detail", args=[invoice.pk])).content.decode()
    assert "PDF being prepared" in detail and reverse("invoices:print", args=[invoice.pk]) in detail

    waiting = admin_client.get(reverse("invoices:pdf", args=[invoice.pk]))
    assert waiting.status_code == 404 and "is being prepared" in waiting.content.decode()
    assert "<progress" in waiting.content.decode()

    pdf = render(invoice)
    response = client_for("alpha", "accountant").get(reverse("invoices:pdf", args=[invoice.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert f'attachment; filename="{invoice.number}.pdf"' == response["Content-Disposition"]
    assert b"".join(response.streaming_content) == stored(pdf)

    detail = admin_client.get(reverse("invoices:detail", args=[invoice.pk])).content.decode()
    assert reverse("invoices:pdf", args=[invoice.pk]) in detail and reverse("invoices:email", args=[invoice.pk]) in detail

    page = admin_client.get(reverse("invoices:print", args=[invoice.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and invoice.number in html and "Seiten GmbH" in html
    assert "invoices/pdf/print_page.css" in html and "js/print.js" in html and "data-print" in html  # no inline handler (CSP)
    print_css = (BASE_DIR / "invoices/static/invoices/pdf/print_page.css").read_text()
    assert "@media print" in print_css

    a_draft = draft(customer("Vorschau GmbH"))
    assert "Draft" in admin_client.get(reverse("invoices:print", args=[a_draft.pk])).content.decode()
    response = admin_client.get(reverse("invoices:pdf", args=[a_draft.pk]))
    assert response.status_code == 404 and "A draft has no PDF" in response.content.decode()


def test_another_msps_invoice_pdf_is_404(alpha, client_for, media):
    alpha_max = Invoice.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with schema_context("beta"):
        with connection.cursor() as cursor:  # make sure alpha has no invoice with beta's id
            cursor.execute("SELECT setval(pg_get_serial_sequence('invoices_invoice', 'id'), %s)", [alpha_max + 1000])
        from msp_billing.accounts.models import User

        beta_admin = User.objects.get(email="billing-admin@beta.example")
        beta_draft = services.invoice_create_draft(customer=customer("Beta Kunde GmbH"), lines=[line("Support", "1", "50")],
                                                   acting_user=beta_admin)
        beta_invoice = services.invoice_issue(invoice_id=beta_draft.pk, acting_user=beta_admin)
        beta_pdf = render(beta_invoice)
        assert beta_pdf.file.name.startswith("beta/")
    url = reverse("invoices:pdf", args=[beta_invoice.pk])
    assert not Invoice.objects.filter(pk=beta_invoice.pk).exists()
    assert client_for("alpha", "owner").get(url).status_code == 404
    assert client_for("alpha", "owner").get(reverse("invoices:print", args=[beta_invoice.pk])).status_code == 404
    assert client_for("beta", "owner").get(url).status_code == 200
    # No media URL serves stored files, on any host.
    assert client_for("alpha", "owner").get(f"{django_settings.MEDIA_URL}{beta_pdf.file.name}").status_code == 404
    assert client_for("beta", "owner").get(f"{django_settings.MEDIA_URL}{beta_pdf.file.name}").status_code == 404


def test_e_mail_button_queues_or_explains(alpha, admin_client, client_for, monkeypatch):
    monkeypatch.setattr(tasks.invoice_email_deliver, "delay", lambda *args: None)
    ready = issued(customer("Knopf GmbH", billing_email="ap@knopf.example"), [line("Support", "1", "50")])
    render(ready)
    response = admin_client.post(reverse("invoices:email", args=[ready.pk]))
    assert response.status_code == 302 and InvoiceEmail.objects.filter(invoice=ready, to="ap@knopf.example").exists()

    silent = issued(customer("Ohne Adresse GmbH"), [line("Support", "1", "50")])
    render(silent)
    response = admin_client.post(reverse("invoices:email", args=[silent.pk]))
    assert response.status_code == 409 and "has no billing e-mail" in response.content.decode()
    assert client_for("alpha", "accountant").post(reverse("invoices:email", args=[ready.pk])).status_code == 403
    assert admin_client.get(reverse("invoices:email", args=[ready.pk])).status_code == 302


def test_pdf_progress_fragment_polls_until_done(alpha, admin_client):
    cust = customer("Balken GmbH")
    first, second = issued(cust, [line("A", "1", "10")]), issued(cust, [line("B", "1", "10")])
    render(first)
    url = f"{reverse('invoices:pdf_progress')}?ids={first.pk},{second.pk}"
    html = admin_client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert '<progress class="progress" value="1" max="2">' in html and 'hx-trigger="every 2s"' in html
    render(second)
    html = admin_client.get(url).content.decode()
    assert 'value="2" max="2"' in html and "hx-get" not in html and "All 2 PDFs ready" in html
    assert "No PDFs to prepare" in admin_client.get(reverse("invoices:pdf_progress")).content.decode()


def test_branding_page_saves_and_explains(alpha, client_for):
    client = client_for("alpha", "billing_admin")
    url = reverse("invoices:branding")
    assert client.get(url).status_code == 200
    response = client.post(url, {"brand_colour": "#0a7d3b", "pdf_template": "modern",
                                 "logo": SimpleUploadedFile("logo.png", png(), content_type="image/png")})
    assert response.status_code == 302
    row = InvoiceSettings.load()
    assert (row.brand_colour, row.pdf_template) == ("#0A7D3B", "modern") and row.logo.name.startswith("alpha/branding/")

    response = client.post(url, {"brand_colour": "red; }", "pdf_template": "modern",
                                 "logo": SimpleUploadedFile("logo.png", b"not an image", content_type="image/png")})
    page = response.content.decode()
    assert response.status_code == 400 and "six hexadecimal digits" in page and "PNG, JPEG or SVG" in page
    assert InvoiceSettings.load().brand_colour == "#0A7D3B"
    assert client_for("alpha", "accountant").get(url).status_code == 403


# --- a worker killed in the middle of a render ---------------------------------------------

CRASH_YEAR_DAY = dt.date(2031, 1, 15)  # its own number series, removed again afterwards
QUICK_REDELIVERY = {"visibility_timeout": 3, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}


@pytest.fixture(scope="module")
def crashed_render(django_db_setup, django_db_blocker, tmp_path_factory):
    """Issue invoices (committed, schema alpha), kill the worker rendering them, start another.

    Returns (invoice ids, the id whose render was killed, the temporary files seen at the kill).
    Everything it committed is removed afterwards.
    """
    with render_killed(django_db_blocker, tmp_path_factory, name="crash test", on=CRASH_YEAR_DAY,
                       lines_of=lambda n: [line(f"Managed service {n}", "1", "100"),
                                           line("Patch cable", str(n), "4.99")]) as scene:
        with django_db_blocker.unblock(), schema_context("alpha"):
            assert not InvoicePdf.objects.filter(invoice_id=scene.killed_id).exists()
        fresh = scene.start_worker("fresh.log", "--pool=solo", "--loglevel=INFO", "--without-heartbeat",
                                   "--without-gossip", "--without-mingle", transport_options=QUICK_REDELIVERY)
        with django_db_blocker.unblock(), schema_context("alpha"):
            wait_for(lambda: selectors.pdf_progress(scene.ids) == (len(scene.ids), len(scene.ids)), timeout=120,
                     what="PDFs for every invoice", process=fresh, log=scene.logs / "fresh.log")
        yield scene.ids, scene.killed_id, scene.temporaries


@pytest.mark.worker
def test_a_worker_killed_mid_render_leaves_exactly_one_current_valid_pdf_per_invoice(crashed_render, tenant):
    ids, killed_id, temporaries = crashed_render
    assert killed_id in ids and temporaries  # it was killed while writing that invoice's PDF
    for invoice in Invoice.objects.filter(pk__in=ids):
        [current] = InvoicePdf.objects.filter(invoice=invoice, is_current=True)
        assert current.version == invoice.pdf_version == 1
        assert InvoicePdf.objects.filter(invoice=invoice).count() == 1
        content = stored(current)
        assert content.startswith(b"%PDF") and content.rstrip().endswith(b"%%EOF")
        assert len(content) == current.size
        text = pdf_text(content)
        assert invoice.number in text and f"{invoice.total:,.2f}" in text
        # One PDF file per invoice: the killed render left only its temporary file (never served,
        # removed after an hour), not a PDF of its own.
        folder = Path(default_storage.path(f"alpha/invoices/pdf/{invoice.pk}"))
        assert [p.name for p in folder.glob("*.pdf")] == [Path(current.file.name).name]


def test_a_store_reported_failed_after_its_commit_keeps_the_files_its_rows_point_to(alpha, media, monkeypatch):
    """PostgreSQL can stop between writing a commit and answering it: the rows are there, so are their files."""
    from django.db import OperationalError

    cust = customer("Commit Then Gone GmbH")
    first, second = issued(cust, [line("One", "1", "10")]), issued(cust, [line("Two", "1", "20")])
    real_store = invoice_pdfs._store_rendered

    def stored_then_connection_lost(rendered, **kwargs):
        real_store(rendered, **kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(invoice_pdfs, "_store_rendered", stored_then_connection_lost)
    with pytest.raises(OperationalError):
        invoice_pdfs.invoice_pdfs_ensure(invoice_ids=[first.pk, second.pk])
    for invoice in (first, second):
        row = InvoicePdf.objects.get(invoice=invoice, is_current=True)
        assert stored(row).startswith(b"%PDF")
    assert selectors.pdf_progress([first.pk, second.pk]) == (2, 2)


def test_a_store_that_rolled_back_leaves_no_stray_files(alpha, media, monkeypatch):
    from django.db import OperationalError

    cust = customer("Rolled Back GmbH")
    invoice = issued(cust, [line("One", "1", "10")])

    def lost(rendered, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(invoice_pdfs, "_store_rendered", lost)
    with pytest.raises(OperationalError):
        invoice_pdfs.invoice_pdfs_ensure(invoice_ids=[invoice.pk])
    assert not InvoicePdf.objects.filter(invoice=invoice).exists()
    assert not list((media / "alpha" / "invoices" / "pdf" / str(invoice.pk)).glob("*.pdf"))


def test_a_tax_whose_name_states_its_rate_prints_the_rate_once(alpha, media):
    tax("VAT19", "19", name="VAT 19 %")
    tax("GST", "7.5")
    invoice = issued(customer("Rate Once GmbH"), [line("Support", "1", "100", taxes=("VAT19",)),
                                                 line("Backup", "1", "200", taxes=("GST",))])
    text = " ".join(pdf_text(stored(render(invoice))).split())
    assert "VAT 19 % on" in text and "19 % 19 %" not in text
    assert "GST 7.5 % on" in text
