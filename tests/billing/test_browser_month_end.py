"""The month end in Chromium, with a real Celery worker rendering the PDFs and sending e-mail
through a real SMTP server (aiosmtpd on 127.0.0.1).

1. Consolidated: select (one contract left out), tick "One invoice per customer", run: one
   invoice per billed customer, a site's contract on its parent's invoice, several contracts
   on one invoice. Then delete an invoice (after its confirmation), generate (after its
   confirmation), watch the PDF progress bar fill as the worker renders, download an
   invoice's PDF from its page, delete the batch (after its confirmation) and see the
   tickets released.
2. The shortest month end, counting clicks: from the Billing page to issued and e-mailed
   invoices in six clicks, the messages read back from the SMTP server.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import re
import secrets
import shutil
import time
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import expect
from django.conf import settings
from django_tenants.utils import schema_context
from pypdf import PdfReader

from tests.support import PASSWORD, committed_msp, sign_in, smtp_server

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db]

# Its own MSP per run: test runs on one machine share the test MEDIA_ROOT, whose PDFs are
# filed under the MSP's schema name.
SCHEMA = f"closing{secrets.token_hex(3)}"
# Set SCREENSHOTS_DIR (such as docs/screenshots) to save the batch page, the e-mail preview and
# the first page of an e-mailed PDF.
PAYMENT_INSTRUCTIONS = "Bank transfer to Closing Time IT, IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX."
SCREENSHOTS = Path(os.environ["SCREENSHOTS_DIR"]) if os.environ.get("SCREENSHOTS_DIR") else None


def _pdf_first_page_png(message, path: Path) -> None:
    """The first page of the PDF attached to ``message``, as the customer's reader draws it (PDFium)."""
    import pypdfium2

    [attachment] = list(message.iter_attachments())
    document = pypdfium2.PdfDocument(attachment.get_content())
    document[0].render(scale=1.5).to_pil().save(path)
ADMIN = f"billing-admin@{SCHEMA}.example"
TECH = f"technician@{SCHEMA}.example"
CUTOFF = "2026-03-31"
DAY = dt.date(2026, 3, 3)  # a Tuesday: ordinary hours

NORDWIND, HAMBURG, SUEDHAFEN, OSTWERK, WESTHANG = (
    "Nordwind Holding AG", "Nordwind Hamburg", "Südhafen Logistik GmbH", "Ostwerk KG", "Westhang Praxis")


def _month_end_world() -> dict:
    """Five customers' March, all due by the cut-off (VAT 19 % on everything):

    * Nordwind Holding AG: retainer, fee 800.00 → 952.00; its site Nordwind Hamburg:
      hourly at 100/h, 60 minutes → 119.00. Consolidated on the parent: 1,071.00.
    * Südhafen Logistik GmbH: retainer, fee 500.00 → 595.00, onsite work excluded from it;
      hourly at 120/h takes 90 onsite minutes → 214.20. One invoice: 809.20.
    * Ostwerk KG: hourly at 100/h, 45 minutes → 89.25.
    * Westhang Praxis: hourly at 100/h, 30 minutes → 59.50 (left out of the batch).
    """
    from contracts.models import ContractPeriod, TaxRate
    from invoices.models import InvoiceSettings
    from msp_billing.accounts.services import user_create
    from tests.tickets.builders import (
        catalogue,
        contract,
        customer,
        eur,
        exclusion_set,
        rate_line,
        technician,
    )
    from tickets import services as tickets

    user_create(email=TECH, role="technician", password=PASSWORD)
    remote, onsite, _, engineer = catalogue()
    tech = technician(engineer, email=TECH)
    TaxRate.objects.create(code="VAT", name="VAT 19 %", percent=Decimal(19), effective_from=dt.date(2020, 1, 1))
    config = InvoiceSettings.load()
    config.default_tax_codes = "VAT"
    config.payment_instructions = PAYMENT_INSTRUCTIONS
    config.save()
    from msp_billing.tenants.models import Msp
    from msp_billing.tenants.services import msp_update_preferences

    msp = Msp.objects.get(schema_name=SCHEMA)
    msp_update_preferences(msp_id=msp.pk, name=msp.name, timezone=msp.timezone, address="Hafenstraße 12\n20457 Hamburg")

    def retainer(cust, name, fee, **terms):
        c = contract(cust, "retainer", priority=1, name=name, fee=eur(fee), start_date=dt.date(2026, 3, 1),
                     billing_frequency="monthly", billing_timing="advance", **terms)
        ContractPeriod.objects.create(contract=c, start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31), covered_start=dt.date(2026, 3, 1),
                                      covered_end=dt.date(2026, 3, 31), bill_date=dt.date(2026, 3, 1))
        return c

    def hourly(cust, name, rate):
        c = contract(cust, "hourly", priority=2, name=name, rounding_increment=15)
        rate_line(c, rate)
        return c

    def resolved_ticket(cust, title, work_type, minutes):
        t = tickets.ticket_create(customer=cust, title=title)
        tickets.time_entry_log(ticket=t, technician=tech, work_type=work_type, date=DAY, minutes=minutes)
        return tickets.ticket_set_status(ticket_id=t.pk, status="resolved")

    nordwind = customer(NORDWIND)
    hamburg = customer(HAMBURG, parent=nordwind)
    suedhafen = customer(SUEDHAFEN)
    ostwerk = customer(OSTWERK)
    westhang = customer(WESTHANG)
    from contracts.services import customer_update

    for who, email, contacts in ((nordwind, "rechnung@nordwind.example", "Jana Nord <jana@nordwind.example>\ncc: controlling@nordwind.example"),
                                 (hamburg, "hamburg@nordwind.example", ""),
                                 (suedhafen, "ap@suedhafen.example", "cc: chef@suedhafen.example"),
                                 (ostwerk, "buchhaltung@ostwerk.example", ""), (westhang, "praxis@westhang.example", "")):
        customer_update(customer=who, data={"billing_email": email, "billing_contacts": contacts}, acting_user=None)
    contracts = {
        "nordwind": retainer(nordwind, "Nordwind Managed Services", "800.00"),
        "hamburg": hourly(hamburg, "Hamburg Hourly", "100"),
        "suedhafen_retainer": retainer(suedhafen, "Südhafen Managed Services", "500.00", exclusion=exclusion_set("Remote only", onsite)),
        "suedhafen_hourly": hourly(suedhafen, "Südhafen Onsite Hourly", "120"),
        "ostwerk": hourly(ostwerk, "Ostwerk Hourly", "100"),
        "westhang": hourly(westhang, "Westhang Hourly", "100"),
    }
    ticket_list = {
        "hamburg": resolved_ticket(hamburg, "Router in Hamburg replaced", remote, 60),
        "suedhafen": resolved_ticket(suedhafen, "Warehouse scanners installed", onsite, 90),
        "ostwerk": resolved_ticket(ostwerk, "Mailbox migrated", remote, 45),
        "westhang": resolved_ticket(westhang, "Printer driver updated", remote, 30),
    }
    return {"contracts": contracts, "tickets": ticket_list}


@pytest.fixture(scope="module")
def smtp():
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def worker_env(smtp):
    """The module's worker sends its e-mail to the module's SMTP server."""
    port, _ = smtp
    return {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port), "EMAIL_USE_TLS": "false"}


@pytest.fixture(scope="module")
def closing(django_db_setup, django_db_blocker):
    """An MSP of its own with the world above, committed (the server and the worker see it); dropped afterwards."""
    with committed_msp(django_db_blocker, name="Closing Time IT", subdomain=SCHEMA, admin_email=ADMIN):
        with django_db_blocker.unblock(), schema_context(SCHEMA):
            world = _month_end_world()
        yield world
        with django_db_blocker.unblock():
            _renders_finished(timeout=60)
    shutil.rmtree(Path(settings.MEDIA_ROOT) / SCHEMA, ignore_errors=True)


def _renders_finished(*, timeout: float) -> None:
    """Give the worker time to finish the PDFs it was asked for before the MSP is dropped
    (it is still running then: the test asks for ``server_worker`` before ``closing``)."""
    from invoices.selectors import invoices_needing_pdf

    deadline = time.monotonic() + timeout
    with schema_context(SCHEMA):
        while invoices_needing_pdf().exists() and time.monotonic() < deadline:
            time.sleep(0.5)


def _progress_of(fragment: str) -> tuple[int, int]:
    """(done, total) from the PDF progress fragment's <progress value max> bar."""
    bar = re.search(r'<progress[^>]* value="(\d+)" max="(\d+)"', fragment)
    assert bar, f"no progress bar in {fragment!r}"
    return int(bar.group(1)), int(bar.group(2))


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_consolidated_month_end_with_pdfs_from_a_worker(server, server_worker, browser, closing):
    # (runs first: it leaves every item released again for the next test)
    base = f"http://{SCHEMA}.localhost:{server}"
    contracts, tickets = closing["contracts"], closing["tickets"]
    page = browser.new_page()
    page.set_default_timeout(30_000)
    sign_in(page, server, ADMIN, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")

    # Select: everything due is pre-selected; Westhang waits for next month. Then consolidate.
    page.goto(f"{base}/billing/batches/new/?cutoff={CUTOFF}")
    bills = page.locator('#batch-details [data-figure="bills"]')
    assert bills.inner_text() == "6"
    page.locator(f'input[name="contract"][value="{contracts["westhang"].pk}"]').uncheck()
    expect(page.locator('#batch-details [data-figure="bills"]')).to_have_text("5")  # no eval: the pages forbid it (CSP)
    page.locator('input[name="consolidated"]').check()  # One invoice per customer (consolidated)
    expect(page.locator('#batch-details [data-figure="bills"]')).to_have_text("3")
    assert page.locator('#batch-details [data-figure="total-EUR"]').inner_text() == "1,969.45"
    page.get_by_label("Save As").fill("March consolidated")
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Batch “March consolidated” billed").wait_for()
    batch_url = page.url
    assert "one invoice per customer" in page.locator("main").inner_text()

    # One invoice per billed customer: the Hamburg site bills on its parent, Westhang not at all.
    # The batch page groups its invoices by customer: the customer's name spans its invoices' rows.
    invoices = page.get_by_role("region", name="Invoices of this batch")
    rows = invoices.locator("tbody tr")
    heads = invoices.locator('tbody th[scope="rowgroup"]')
    assert [head.inner_text() for head in heads.all()] == [NORDWIND, OSTWERK, SUEDHAFEN]
    assert [row.locator("td").nth(5).inner_text() for row in rows.all()] == ["€1,071.00", "€89.25", "€809.20"]

    def of(customer_name: str):
        return invoices.locator("tbody").filter(has=page.locator('th[scope="rowgroup"]', has_text=customer_name)).locator("tr")

    def lines_of(customer_name: str) -> str:
        page.goto(batch_url)
        of(customer_name).get_by_role("link", name="View").click()
        return page.locator("section[aria-labelledby=lines-h]").inner_text()

    nordwind_lines = lines_of(NORDWIND)
    assert "Nordwind Managed Services" in nordwind_lines and "Hamburg Hourly" in nordwind_lines
    assert "Router in Hamburg replaced" in nordwind_lines
    suedhafen_lines = lines_of(SUEDHAFEN)
    assert "Südhafen Managed Services" in suedhafen_lines and "Südhafen Onsite Hourly" in suedhafen_lines
    assert "Warehouse scanners installed" in suedhafen_lines

    # Billed tickets are locked; the left-out one is not.
    page.goto(f"{base}/tickets/{tickets['hamburg'].pk}/")
    assert page.get_by_text("This ticket was billed and is locked.").is_visible()
    page.goto(f"{base}/tickets/{tickets['westhang'].pk}/")
    assert page.get_by_role("heading", name="Log time").is_visible()

    # Delete Ostwerk's draft: its ticket is released at once.
    page.goto(batch_url)
    of(OSTWERK).get_by_role("link", name="Delete").click()
    confirmation = page.locator("section.confirmation")
    assert confirmation.locator('[data-figure="count"]').inner_text() == "1"
    assert "€89.25" in confirmation.locator('[data-figure="total-EUR"]').inner_text()
    assert "Mailbox migrated" in confirmation.get_by_role("list", name="Items released").inner_text()
    page.get_by_role("button", name="Delete draft").click()
    page.get_by_text("Invoice deleted; its items are unbilled again.").wait_for()
    assert rows.count() == 2
    page.goto(f"{base}/tickets/{tickets['ostwerk'].pk}/")
    assert page.get_by_role("heading", name="Log time").is_visible()

    # Generate: the worker renders the PDFs while the page shows their progress.
    page.goto(batch_url)
    fetched: list[str] = []  # every progress fragment the page fetched

    def progress_fetched(response):
        if "/invoices/pdf-progress/" in response.url:
            fetched.append(response.text())

    page.on("response", progress_fetched)
    page.get_by_role("link", name="Generate invoices").click()
    assert "These numbers are used for good" in page.locator("section.confirmation").inner_text()
    numbers = page.get_by_role("table", name="Invoices to issue").locator("tbody tr td:first-child").all_inner_texts()
    assert len(numbers) == 2 and "€1,880.20" in page.locator('[data-figure="total-EUR"]').inner_text()
    page.get_by_role("button", name="Generate 2 invoices").click()
    page.get_by_text("2 invoice(s) issued; their PDFs are being prepared.").wait_for()
    assert sorted(rows.locator("td:first-of-type").all_inner_texts()) == sorted(numbers)  # the numbers shown are the numbers used
    progress = page.locator("#pdf-progress")
    progress.get_by_text("All 2 PDFs ready").wait_for(timeout=120_000)
    bar = progress.locator("progress")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("2", "2")
    polls = [_progress_of(fragment) for fragment in fetched]  # (done, total) as the bar filled
    assert polls == sorted(polls) and polls[-1] == (2, 2) and all(total == 2 for _, total in polls)
    # Once everything is ready the page stops asking (it polls every 2 s while rendering).
    page.wait_for_timeout(4_500)
    assert len(fetched) == len(polls)
    page.remove_listener("response", progress_fetched)

    # Open Nordwind's invoice from the batch and download its PDF as the user would.
    nordwind_row = of(NORDWIND)
    number = nordwind_row.locator("td").first.inner_text()
    assert number.strip() and number != "Draft"
    nordwind_row.get_by_role("link", name=number).click()
    page.get_by_role("heading", name=number).wait_for()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PDF", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == f"{number}.pdf"
    content = Path(download.path()).read_bytes()
    assert content.startswith(b"%PDF")
    text = _pdf_text(content)
    assert number in text and "1,071.00" in text and NORDWIND in text
    assert "Router in Hamburg replaced" in text  # the site's time, on the parent's invoice
    invoice_url = page.url
    # The invoice names its batch, and the invoice list finds the batch's invoices.
    assert batch_url.endswith(page.get_by_role("link", name="March consolidated").get_attribute("href"))
    page.goto(f"{base}/invoices/")
    page.get_by_label("Billing batch").select_option(label="March consolidated")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**batch=*")
    listed = page.locator("table.data tbody tr")
    assert listed.count() == 2 and listed.filter(has_text=number).count() == 1

    # Deleting the batch voids the issued invoices and releases every ticket.
    page.goto(batch_url)
    page.get_by_role("link", name="Delete batch").click()
    voided = page.get_by_role("list", name="Invoices to void").inner_text()
    assert number in voided and "These numbers are used for good" in page.locator("section.confirmation").inner_text()
    assert "Router in Hamburg replaced" in page.get_by_role("list", name="Items released").inner_text()
    page.get_by_role("button", name="Delete batch").click()
    page.get_by_text("item(s) released for rebilling").wait_for()
    for key in ("hamburg", "suedhafen"):
        page.goto(f"{base}/tickets/{tickets[key].pk}/")
        assert page.get_by_role("heading", name="Log time").is_visible()
        assert not page.get_by_text("This ticket was billed and is locked.").is_visible()
    # The voided invoice is printed again, marked void (its page offers the new PDF once rendered).
    page.goto(invoice_url)
    assert "Billing batch March consolidated deleted" in page.locator("main").inner_text()
    download_link = page.get_by_role("link", name="PDF", exact=True).or_(page.get_by_role("link", name="Download PDF"))
    with page.expect_download() as download_info:
        download_link.first.click(timeout=120_000)
    text = _pdf_text(Path(download_info.value.path()).read_bytes())
    assert number in text and "Void: Billing batch March consolidated deleted" in text
    page.close()


# Whom each customer's invoice goes to (To, Cc), as the world above sets them up.
RECIPIENTS = {
    "Nordwind Holding AG": ("rechnung@nordwind.example, jana@nordwind.example", "controlling@nordwind.example"),
    "Nordwind Hamburg": ("hamburg@nordwind.example", None),
    "Südhafen Logistik GmbH": ("ap@suedhafen.example", "chef@suedhafen.example"),
    "Ostwerk KG": ("buchhaltung@ostwerk.example", None),
    "Westhang Praxis": ("praxis@westhang.example", None),
}


def test_month_end_from_the_billing_page_to_e_mailed_invoices_in_six_clicks(server, server_worker, browser, closing, smtp):
    """Billing → Create New Batch → Run → Generate invoices → confirm → E-mail invoices → Send."""
    base = f"http://{SCHEMA}.localhost:{server}"
    _, received = smtp
    received.clear()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    sign_in(page, server, ADMIN, subdomain=SCHEMA, password=PASSWORD)
    page.wait_for_url(base + "/dashboard/")
    page.goto(f"{base}/billing/")
    clicks = 0

    def click(locator) -> None:
        nonlocal clicks
        clicks += 1
        locator.click()

    click(page.get_by_role("link", name="Create New Batch").first)
    bills = int(page.locator('#batch-details [data-figure="bills"]').inner_text())
    assert bills == 6  # everything due is pre-selected: one invoice per contract
    click(page.get_by_role("button", name="Run"))
    page.get_by_text("billed: review its draft invoices").wait_for()
    batch_url = page.url
    click(page.get_by_role("link", name="Generate invoices"))
    assert "These numbers are used for good" in page.locator("section.confirmation").inner_text()
    click(page.get_by_role("button", name=f"Generate {bills} invoices"))
    page.get_by_text(f"{bills} invoice(s) issued").wait_for()
    click(page.get_by_role("link", name="E-mail invoices"))
    nordwind = page.locator("article.email-preview").filter(has_text="Nordwind Managed Services").or_(
        page.locator("article.email-preview").filter(has_text=NORDWIND)).first
    assert nordwind.locator('[data-field="to"]').inner_text() == RECIPIENTS[NORDWIND][0]
    assert nordwind.locator('[data-field="cc"]').inner_text() == RECIPIENTS[NORDWIND][1]
    assert nordwind.locator('[data-field="attachment"]').inner_text().endswith(".pdf (PDF)")
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "email-preview.png"), full_page=True)
    click(page.get_by_role("button", name=f"Send {bills} e-mails"))
    page.wait_for_url(batch_url)
    page.locator("#email-progress").get_by_text(f"{bills} of {bills} sent").wait_for(timeout=120_000)
    assert clicks == 6

    # Every invoice arrived once, to its To and Cc, with its own PDF attached.
    assert len(received) == bills
    page.reload()
    numbers = {}
    for group in page.get_by_role("region", name="Invoices of this batch").locator("tbody").all():
        customer_name = group.locator('th[scope="rowgroup"]').inner_text().splitlines()[0].strip()
        for row in group.locator("tr").all():
            numbers[row.locator("td").first.inner_text()] = customer_name
            assert row.locator('[data-email-state="sent"]').count() == 1
    by_number = {}
    for message in received:
        [attachment] = list(message.iter_attachments())
        by_number[attachment.get_filename().removesuffix(".pdf")] = message
        assert attachment.get_content_type() == "application/pdf" and attachment.get_content().startswith(b"%PDF")
    assert sorted(by_number) == sorted(numbers)
    for number, customer_name in numbers.items():
        message = by_number[number]
        to, cc = RECIPIENTS[customer_name]
        assert (message["To"], message["Cc"]) == (to, cc)
        assert str(message["Subject"]).strip() == f"Invoice {number} from Closing Time IT"
        [attachment] = list(message.iter_attachments())
        text = _pdf_text(attachment.get_content())
        assert number in text and "Hafenstraße 12" in text and "DE89 3704 0044 0532 0130 00" in text
    if SCREENSHOTS:
        page.screenshot(path=str(SCREENSHOTS / "batch-page.png"), full_page=True)
        _pdf_first_page_png(next(iter(by_number.values())), SCREENSHOTS / "invoice-pdf.png")

    # The invoice list shows the delivery state; a second Send finds nothing left to send.
    page.goto(f"{base}/invoices/?batch=" + batch_url.rstrip("/").rsplit("/", 1)[1])
    assert page.locator('table.data [data-email-state="sent"]').count() == bills
    page.goto(batch_url)
    page.get_by_role("link", name="E-mail invoices").click()
    assert page.get_by_role("button", name="Send").count() == 0 and len(received) == bills
    page.close()
