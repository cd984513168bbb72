"""E-mailing a set of invoices through a real SMTP server (aiosmtpd on 127.0.0.1): the preview,
the job, what the customer receives, delivery states, the once-per-version rule, resend,
and tenant isolation. Billing contacts (to / cc) decide the recipients."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django_tenants.utils import schema_context

from contracts import services as contract_services
from contracts.models import BillingContact
from invoices import delivery, tasks
from invoices.mail import invoice_email_deliver
from invoices.models import InvoiceEmail, InvoiceEmailJob, InvoiceSettings
from tests.invoices.builders import admin, issued, line
from tests.invoices.test_pdf import render, stored


@pytest.fixture
def alpha(tenant, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tenant


@pytest.fixture
def smtp(smtp_outbox):
    return smtp_outbox


@pytest.fixture
def queued(monkeypatch):
    jobs: list = []
    monkeypatch.setattr(tasks.invoice_email_job_run, "delay", lambda job_id: jobs.append(job_id))
    monkeypatch.setattr(tasks.invoice_email_deliver, "delay", lambda email_id: jobs.append(("single", email_id)))
    return jobs


def a_customer(name: str, contacts="", email="ap@{slug}.example"):
    slug = name.split()[0].lower()
    return contract_services.customer_create(legal_name=name, currency="EUR", billing_email=email.format(slug=slug),
                                             billing_contacts=contacts, payment_terms_days=14, acting_user=admin())


def send(invoice_ids, django_capture_on_commit_callbacks, queued) -> InvoiceEmailJob:
    with django_capture_on_commit_callbacks(execute=True):
        job = delivery.invoices_email(invoice_ids=invoice_ids, acting_user=admin())
    assert queued[-1] == job.pk  # the Celery job was queued after commit
    return job


def test_a_set_is_previewed_then_sent_with_to_cc_subject_and_pdf(alpha, smtp, queued, django_capture_on_commit_callbacks):
    config = InvoiceSettings.load()
    config.email_subject = "Rechnung {invoice_number} für {customer}: {total}"
    config.email_body = "Hallo {customer},\nanbei {invoice_number}, fällig am {due_date}.\n{seller}"
    config.save()
    werft = a_customer("Werft Nord GmbH", "Dana Reyes <dana@werft.example>\ncc: Controller <controlling@werft.example>")
    hafen = a_customer("Hafen Süd GmbH")
    first = issued(werft, [line("Support", "2", "50")])
    second = issued(hafen, [line("Support", "1", "80")])
    pdf = render(first)  # the second PDF is still missing: the job renders it before sending

    preview = delivery.email_preview([first.pk, second.pk])
    by_invoice = {row.invoice.pk: row for row in preview.rows}
    row = by_invoice[first.pk]
    assert row.recipients.to == ("ap@werft.example", "dana@werft.example") and row.recipients.cc == ("controlling@werft.example",)
    assert row.content.subject == f"Rechnung {first.number} für Werft Nord GmbH: €100.00"
    assert row.content.attachment == f"{first.number}.pdf" and "Hallo Werft Nord GmbH" in row.content.body
    assert len(preview.sending) == 2 and smtp == []  # a preview sends nothing

    job = send([first.pk, second.pk], django_capture_on_commit_callbacks, queued)
    assert job.total == 2 and delivery.email_job_progress(job).done == 0
    assert set(InvoiceEmail.objects.filter(job=job).values_list("status", flat=True)) == {"queued"}
    assert delivery.email_job_run(job_id=job.pk) == 2

    messages = {str(m["Subject"]).strip(): m for m in smtp}
    assert len(smtp) == 2
    werft_mail = messages[row.content.subject]
    assert werft_mail["To"] == "ap@werft.example, dana@werft.example" and werft_mail["Cc"] == "controlling@werft.example"
    assert werft_mail["X-Rcpt-To"] == "ap@werft.example, dana@werft.example, controlling@werft.example"
    [attachment] = list(werft_mail.iter_attachments())
    assert attachment.get_filename() == f"{first.number}.pdf" and attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == stored(pdf)
    assert f"fällig am {by_invoice[first.pk].content.body.split('fällig am ')[1].split('.')[0]}" in werft_mail.get_body().get_content()
    hafen_mail = next(m for m in smtp if m is not werft_mail)
    assert hafen_mail["To"] == "ap@hafen.example" and hafen_mail["Cc"] is None
    assert next(hafen_mail.iter_attachments()).get_content().startswith(b"%PDF")

    progress = delivery.email_job_progress(InvoiceEmailJob.objects.get(pk=job.pk))
    assert (progress.sent, progress.failed, progress.finished) == (2, 0, True)
    states = {i.pk: i.email_status for i in delivery.with_email_state(first.__class__.objects.filter(pk__in=[first.pk, second.pk]))}
    assert states == {first.pk: "sent", second.pk: "sent"}


def test_a_version_goes_out_once_however_often_the_job_runs_or_send_is_pressed(
        alpha, smtp, queued, django_capture_on_commit_callbacks):
    invoice = issued(a_customer("Einmal GmbH"), [line("Support", "1", "50")])
    render(invoice)
    job = send([invoice.pk], django_capture_on_commit_callbacks, queued)
    delivery.email_job_run(job_id=job.pk)
    delivery.email_job_run(job_id=job.pk)  # the job retried (redelivered after its worker died)
    with pytest.raises(ValidationError, match="Nothing to send"):
        delivery.invoices_email(invoice_ids=[invoice.pk], acting_user=admin())  # Send pressed again
    assert len(smtp) == 1
    # The preview says so, and the database refuses a second row for the version.
    assert delivery.email_preview([invoice.pk]).rows[0].already_sent is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceEmail.objects.create(invoice=invoice, version=invoice.pdf_version, to="x@y.example")

    # A row is claimed before the mail server sees it: one being sent when its worker died is not sent again.
    other = issued(a_customer("Abbruch GmbH"), [line("Support", "1", "50")])
    render(other)
    job = send([other.pk], django_capture_on_commit_callbacks, queued)
    InvoiceEmail.objects.filter(job=job).update(status=InvoiceEmail.Status.SENDING)
    delivery.email_job_run(job_id=job.pk)
    assert len(smtp) == 1 and InvoiceEmail.objects.get(job=job).status == "sending"

    # Delivering a sent e-mail again (a redelivered single task) sends nothing.
    invoice_email_deliver(email_id=InvoiceEmail.objects.get(invoice=invoice).pk)
    assert len(smtp) == 1


def test_a_failure_is_shown_with_its_reason_and_resend_sends_again(alpha, smtp, queued, settings,
                                                                   django_capture_on_commit_callbacks, client_for):
    invoice = issued(a_customer("Fehler GmbH"), [line("Support", "1", "50")])
    render(invoice)
    job = send([invoice.pk], django_capture_on_commit_callbacks, queued)
    port = settings.EMAIL_PORT
    settings.EMAIL_PORT = 1  # nothing listens there
    delivery.email_job_run(job_id=job.pk)
    email = InvoiceEmail.objects.get(job=job)
    assert email.status == "failed" and "refused" in email.error.lower() and smtp == []
    client = client_for("alpha", "billing_admin")
    listing = client.get(reverse("invoices:list")).content.decode()
    assert 'data-email-state="failed"' in listing and "refused" in listing.lower()

    settings.EMAIL_PORT = port  # the server is back: Send again picks up the failed version
    job = send([invoice.pk], django_capture_on_commit_callbacks, queued)
    delivery.email_job_run(job_id=job.pk)
    assert len(smtp) == 1 and InvoiceEmail.objects.get(pk=email.pk).status == "sent"

    # Resend from the invoice page: a new row, marked as a resend, sent once.
    page = client.get(reverse("invoices:detail", args=[invoice.pk])).content.decode()
    assert ">Resend</button>" in page
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse("invoices:email", args=[invoice.pk])).status_code == 302
    resent = InvoiceEmail.objects.filter(invoice=invoice, resend=True).get()
    assert queued[-1] == ("single", resent.pk)
    invoice_email_deliver(email_id=resent.pk)
    invoice_email_deliver(email_id=resent.pk)  # a retried task
    assert len(smtp) == 2 and smtp[1]["Subject"] == smtp[0]["Subject"]
    assert client_for("alpha", "accountant").post(reverse("invoices:email", args=[invoice.pk])).status_code == 403


class WorkerKilled(BaseException):
    """The worker process ending between the claim and the mail server's answer."""


def test_an_email_left_sending_by_a_dead_worker_is_shown_failed_and_can_be_sent_again(
        alpha, smtp, queued, settings, monkeypatch, django_capture_on_commit_callbacks, client_for):
    from django.core.mail import EmailMessage
    from django.utils import timezone

    dead = issued(a_customer("Abbruch GmbH"), [line("Support", "1", "50")])
    fresh = issued(a_customer("Frisch GmbH"), [line("Support", "1", "60")])
    render(dead), render(fresh)
    job = send([dead.pk, fresh.pk], django_capture_on_commit_callbacks, queued)
    with monkeypatch.context() as patch:
        patch.setattr(EmailMessage, "send", lambda self, *a, **k: (_ for _ in ()).throw(WorkerKilled()))
        with pytest.raises(WorkerKilled):
            delivery.email_job_run(job_id=job.pk)
    stuck = InvoiceEmail.objects.get(invoice=dead)
    assert stuck.status == "sending" and stuck.sending_since is not None and smtp == []
    assert not delivery.email_job_progress(InvoiceEmailJob.objects.get(pk=job.pk)).finished

    # Not yet stale: a slow server is left alone.
    assert tasks.invoice_emails_stale_sweep() == 0
    InvoiceEmail.objects.filter(pk=stuck.pk).update(
        sending_since=timezone.now() - dt.timedelta(seconds=settings.INVOICE_EMAIL_SENDING_STALE_SECONDS + 60))
    assert tasks.invoice_emails_stale_sweep() == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "may or may not have received it" in stuck.error
    assert InvoiceEmail.objects.get(invoice=fresh).status == "queued"  # never claimed: the job sends it on retry

    listing = client_for("alpha", "billing_admin").get(reverse("invoices:list")).content.decode()
    assert 'data-email-state="failed"' in listing and "Sending stopped part-way" in listing
    # Send again picks the failed version up; it goes out once.
    job = send([dead.pk], django_capture_on_commit_callbacks, queued)
    delivery.email_job_run(job_id=job.pk)
    assert [str(m["To"]) for m in smtp] == ["ap@abbruch.example"]
    assert InvoiceEmail.objects.get(pk=stuck.pk).status == "sent"


def test_the_preview_page_and_send_from_a_batch_of_invoices(alpha, smtp, queued, client_for,
                                                             django_capture_on_commit_callbacks):
    invoices = [issued(a_customer(f"Seite{n} GmbH", "cc: chef@seite.example"), [line("Support", "1", "50")]) for n in (1, 2)]
    client = client_for("alpha", "billing_admin")
    url = reverse("invoices:email_preview") + "?" + "&".join(f"invoice={i.pk}" for i in invoices)
    page = client.get(url)
    html = page.content.decode()
    assert page.status_code == 200 and "Send 2 e-mails" in html and "chef@seite.example" in html
    assert f"Invoice {invoices[0].number} from Alpha Managed IT" in html
    assert "Send 2 e-mails" not in client_for("alpha", "accountant").get(url).content.decode()
    assert client_for("alpha", "accountant").post(reverse("invoices:email_preview"), {"invoice": [invoices[0].pk]}).status_code == 403
    assert "Choose the invoices to e-mail" in client.get(reverse("invoices:email_preview")).content.decode()
    for bad in ("?invoice=abc", "?batch=1;drop", "?invoice=" + "9" * 20):
        assert client.get(reverse("invoices:email_preview") + bad).status_code == 400
    assert client.get(reverse("invoices:email_preview") + "?batch=999999").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("invoices:email_preview"), {"invoice": [i.pk for i in invoices]})
    assert response.status_code == 302
    job = InvoiceEmailJob.objects.get()
    progress = client.get(reverse("invoices:email_job_progress", args=[job.pk])).content.decode()
    assert 'value="0" max="2"' in progress and "every 2s" in progress
    delivery.email_job_run(job_id=job.pk)
    done = client.get(reverse("invoices:email_job_progress", args=[job.pk])).content.decode()
    assert "2 of 2 sent" in done and "every 2s" not in done and len(smtp) == 2


def test_another_msp_cannot_see_or_run_a_job(alpha, smtp, queued, client_for, django_capture_on_commit_callbacks):
    invoice = issued(a_customer("Geheim GmbH"), [line("Support", "1", "50")])
    render(invoice)
    job = send([invoice.pk], django_capture_on_commit_callbacks, queued)
    beta = client_for("beta", "billing_admin")
    assert beta.get(reverse("invoices:email_job_progress", args=[job.pk])).status_code == 404
    assert beta.get(reverse("invoices:email_preview") + f"?invoice={invoice.pk}").status_code == 404
    assert beta.post(reverse("invoices:email_preview"), {"invoice": [invoice.pk]}).status_code == 404
    with schema_context("beta"):
        assert not InvoiceEmailJob.objects.filter(pk=job.pk).exists()
        with pytest.raises(InvoiceEmailJob.DoesNotExist):
            delivery.email_job_run(job_id=job.pk)  # the task run in another MSP's schema finds nothing
    with schema_context(alpha.schema_name):
        assert smtp == [] and InvoiceEmail.objects.get(job=job).status == "queued"


def test_billing_contacts_are_edited_as_lines_and_checked(alpha, client_for):
    customer = a_customer("Kontakt GmbH")
    client = client_for("alpha", "billing_admin")
    url = reverse("contracts:customer_edit", args=[customer.pk])
    form = client.get(url).content.decode()
    assert 'name="billing_contacts"' in form
    data = {"legal_name": "Kontakt GmbH", "currency": "EUR", "payment_terms_days": 14, "is_active": "on",
            "billing_email": "ap@kontakt.example",
            "billing_contacts": "Dana <Dana@Kontakt.example>\ncc: boss@kontakt.example\nno address here"}
    refused = client.post(url, data)
    assert refused.status_code == 400 and "Line 3: enter an e-mail address" in refused.content.decode()
    assert not BillingContact.objects.filter(customer=customer).exists()
    data["billing_contacts"] = "Dana <Dana@Kontakt.example>\ncc: boss@kontakt.example"
    assert client.post(url, data).status_code == 302
    assert [(c.email, c.name, c.kind) for c in customer.billing_contacts.all()] == [
        ("dana@kontakt.example", "Dana", "to"), ("boss@kontakt.example", "", "cc")]
    page = client.get(reverse("contracts:customer_detail", args=[customer.pk])).content.decode()
    assert "dana@kontakt.example" in page and "boss@kontakt.example" in page


def test_the_migration_carries_addresses_over_as_to():
    import importlib

    migration = importlib.import_module("contracts.migrations.0003_billing_contacts")
    assert migration._contacts("Dana Reyes <Dana@x.example>\nbilling@x.example, ap@x.example", "") == [
        ("dana@x.example", "Dana Reyes"), ("billing@x.example", ""), ("ap@x.example", "")]
    assert migration._contacts("Dana Reyes (practice manager)", "ap@x.example") == [("ap@x.example", "Dana Reyes (practice manager)")]
    assert migration._contacts("Dana Reyes (practice manager)", "") == []


def test_the_e_mail_template_is_the_msps_own_and_checked(alpha, client_for):
    client = client_for("alpha", "owner")
    url = reverse("invoices:email_template")
    bad = client.post(url, {"email_subject": "Invoice {number}", "email_body": "Hello {customer}"})
    assert bad.status_code == 400 and "Unknown placeholder {number}" in bad.content.decode()
    assert client.post(url, {"email_subject": "Ihre Rechnung {invoice_number}", "email_body": "Fällig: {due_date}"}).status_code == 302
    invoice = issued(a_customer("Vorlage GmbH"), [line("Support", "1", "50")])
    assert delivery.email_preview([invoice.pk]).rows[0].content.subject == f"Ihre Rechnung {invoice.number}"
    with schema_context("beta"):  # the other MSP keeps its own template
        assert InvoiceSettings.load().email_subject == "{document} {invoice_number} from {seller}"
    assert client_for("alpha", "accountant").post(url, {"email_subject": "x", "email_body": "y"}).status_code == 403
