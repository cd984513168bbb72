"""Money and dates in the MSP's locale on the invoice page and in its PDF, and a PDF that
prints only what the customer should read."""
from __future__ import annotations

import datetime as dt
import io
import re
from collections import Counter

import pytest
from django.urls import reverse
from django_tenants.utils import schema_context
from pypdf import PdfReader

from invoices import pdf as invoice_pdfs
from invoices.models import Invoice
from tests.invoices.builders import customer, issued, line

LOCALES = {
    # locale: (the total as the customer reads it, the issue date, what must not appear)
    "en_US": ("1,250.69", "Mar 2, 2026", "1.250,69"),
    "de_DE": ("1.250,69", "02.03.2026", "1,250.69"),
}


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.mark.parametrize("locale", list(LOCALES))
def test_the_invoice_page_and_its_pdf_write_money_and_dates_in_the_msps_locale(tenant, client_for, media, locale):
    figure, issued_on, foreign = LOCALES[locale]
    tenant.locale = locale
    tenant.save(update_fields=["locale"])
    invoice = issued(customer("Format AG"), [line("Managed services", "1", "1000"),
                                             line("Onsite support", "2.5", "100.2760")], on=dt.date(2026, 3, 2))
    assert str(invoice.total) == "1250.69"

    page = client_for("alpha", "billing_admin").get(reverse("invoices:detail", args=[invoice.pk])).content.decode()
    total = page[page.index("<dt><strong>Total</strong>"):][:200]
    assert figure in total and foreign not in page
    assert issued_on in page
    lines = page[page.index("<tbody"):page.index("<dt>Subtotal</dt>")]
    assert "100.276" in lines or "100,276" in lines  # a rate keeps the places that are not whole cents …
    assert "0000" not in lines  # … and no stray ones: 1000.0000 is written 1,000.00

    text = pdf_text(invoice_pdfs.render_invoice_pdf(Invoice.objects.get(pk=invoice.pk)))
    assert figure in text and foreign not in text
    assert issued_on in text


def test_the_locale_defaults_to_the_region_and_is_chosen_in_settings(tenant, client_for):
    owner = client_for("alpha", "owner")
    settings_page = owner.get(reverse("settings:home")).content.decode()
    assert "€1,250.69" in settings_page and "(en_IE)" in settings_page  # Europe's default: English (Ireland)
    response = owner.post(reverse("settings:home"), {"name": tenant.name, "timezone": tenant.timezone,
                                                     "locale": "de_DE", "address": "Hauptstraße 1\n10115 Berlin"})
    assert response.status_code == 302
    assert "1.250,69\xa0€" in owner.get(reverse("settings:home")).content.decode()  # CLDR: a no-break space
    tenant.refresh_from_db()
    assert (tenant.locale, tenant.address) == ("de_DE", "Hauptstraße 1\n10115 Berlin")
    refused = owner.post(reverse("settings:home"), {"name": tenant.name, "timezone": tenant.timezone, "locale": "xx_YY"})
    assert refused.status_code == 400
    assert client_for("alpha", "accountant").post(reverse("settings:home"), {"locale": "en_US"}).status_code == 403


def test_a_batch_invoice_prints_the_ticket_title_once_and_no_batch_note(db, media):
    """The demo's month end: the PDF has the MSP's address and how to pay, each ticket's
    title once above its time lines, and nothing of the batch that made it."""
    from billing import services as billing
    from msp_billing.accounts.models import User
    from msp_billing.tenants.today import tenant_today

    with schema_context("demo"):
        owner = User.objects.get(email="owner@demo.example")
        today = tenant_today()
        batch = billing.batch_run(name="March run", cutoff=today, selection=billing.selection_everything_due(cutoff=today),
                                  consolidated=False, acting_user=owner)
        billing.batch_generate(batch_id=batch.pk, acting_user=owner)
        invoices = Invoice.objects.filter(batch_link__batch=batch, lines__source_kind="time").distinct()

        def most_lines_on_one_ticket(invoice: Invoice) -> int:
            tickets = invoice.lines.filter(source_kind="time").values_list("time_allocation__entry__ticket", flat=True)
            return max(Counter(tickets).values())

        invoice = max(invoices, key=most_lines_on_one_ticket)
        assert most_lines_on_one_ticket(invoice) > 1
        assert not Invoice.objects.filter(batch_link__batch=batch).exclude(notes="").exists()
        text = pdf_text(invoice_pdfs.render_invoice_pdf(invoice))
        titles = list(invoice.lines.filter(source_kind="time").values_list(
            "time_allocation__entry__ticket__pk", "time_allocation__entry__ticket__title").distinct())
        assert titles
        for ticket_id, title in titles:
            assert text.count(f"#{ticket_id} {title}") == 1, title
        assert "Billing batch" not in text and "March run" not in text
        assert "250 Hudson Street" in text and "routing 021000021" in text
        assert re.search(r"Total USD \$[\d,]+\.\d\d", text)
