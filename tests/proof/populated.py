"""Tenant alpha with a row in every table, ids far from any other tenant's, and a marker in its text.

``populate_alpha()`` imports the demo MSP's billing data (onboarding/demo_data) into alpha,
runs October's month end, and adds what the import does not make: a tax category, a
schedule, a notification, drafts, a paid invoice, a credit note, a void, a PDF, an e-mail,
an accounting connection with its export run, mapping and failure. Each table's id
sequence first moves to a range of its own (table ``n`` → ids from ``(n + 1) × 10⁷``), so an
id names exactly one row of one table in alpha, and no row of any other tenant. Customer,
contract and ticket names carry ``MARKER``: a page on another tenant's host that shows it
has read alpha's data.

Meant to run inside a transaction that the caller rolls back (a module fixture): the rest
of the session sees alpha as it was (only its sequences stay advanced).
"""
from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal

from django.apps import apps
from django.db import connection
from django_tenants.utils import get_public_schema_name

MARKER = "Zq7ALPHA"
ID_RANGE = 10_000_000
CUTOFF = dt.date(2026, 10, 31)
# Rows every request may write whatever it is refused: sessions and sign-in attempts.
VOLATILE_TABLES = {"django_session", "axes_accessattempt", "axes_accesslog", "axes_accessfailurelog",
                   "axes_accessattemptexpiration"}
# Django's groups and permissions, which the product leaves empty (roles take their place).
UNUSED_TABLES = {"auth_group", "auth_group_permissions", "accounts_user_groups", "accounts_user_user_permissions",
                 # filled on first use in an MSP copied from the template schema (no group or permission is used)
                 "auth_permission", "django_content_type"}


def tenant_models() -> list:
    """Every concrete model stored in a tenant's schema (not the shared apps' tables)."""
    from django.conf import settings

    shared = {app.rsplit(".", 1)[-1] for app in settings.SHARED_APPS} - {app.rsplit(".", 1)[-1] for app in settings.TENANT_APPS}
    found = []
    for model in apps.get_models(include_auto_created=True):
        config = model._meta.app_config
        if model._meta.proxy or not model._meta.managed:
            continue
        if config.name.rsplit(".", 1)[-1] in shared or config.label in shared:
            continue
        found.append(model)
    return found


def tenant_tables(schema: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'"
                       " ORDER BY table_name", [schema])
        return [row[0] for row in cursor.fetchall()]


def fingerprint(schema: str) -> dict[str, tuple[int, str]]:
    """(row count, digest of every row) of each table in ``schema``, sessions and sign-in attempts left out."""
    result = {}
    with connection.cursor() as cursor:
        for table in tenant_tables(schema):
            if table in VOLATILE_TABLES:
                continue
            cursor.execute(f'SELECT count(*), md5(coalesce(string_agg(md5(t::text), \'\' ORDER BY md5(t::text)), \'\')) '
                           f'FROM "{schema}"."{table}" t')
            result[table] = cursor.fetchone()
    return result


def row_counts(schema: str) -> dict[str, int]:
    """Rows in each table of ``schema`` (sessions and sign-in attempts left out), in one query."""
    tables = [t for t in tenant_tables(schema) if t not in VOLATILE_TABLES]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{schema}\".\"{t}\"" for t in tables))
        return dict(cursor.fetchall())


def _separate_id_ranges(schema: str) -> None:
    """Give every id sequence of ``schema`` a range of its own, past anything the other tenants have."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT sequencename, coalesce(last_value, 0) FROM pg_sequences WHERE schemaname = %s ORDER BY sequencename",
                       [schema])
        for n, (sequence, last) in enumerate(cursor.fetchall()):
            start = (n + 1) * ID_RANGE
            if last < start:
                cursor.execute("SELECT setval(%s, %s)", [f'"{schema}"."{sequence}"', start])


def _marked(text: str) -> bytes:
    """The demo data with ``MARKER`` before every customer, contract and ticket name (wherever it is referenced)."""
    document = json.loads(text)
    names = {record[key] for part, keys in (("customers", ("legal_name", "display_name")), ("contracts", ("name",)),
                                            ("tickets", ("title",)))
             for record in document.get(part, []) for key in keys if record.get(key)}
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(json.dumps(name), json.dumps(f"{MARKER} {name}"))
    return text.encode()


def populate_alpha() -> dict:
    """Fill alpha (the active schema must be public or alpha); return what tests want to know."""
    from billing import services as billing
    from benchmark.rollup import tenant_rollup
    from benchmark.services import benchmark_opt_in_set, technician_cost_rate_set
    from billing.models import BillingSchedule, SavedWidget
    from invoices.delivery import invoices_email
    from tickets.models import Ticket
    from tickets.timers import timer_start
    from contracts.models import Contract, Customer, ExclusionSet, Notification, Role, TaxCategory, TaxRate
    from integrations.models import AccountingConnection, ExportRun, IntegrationLog, RemoteMapping
    from invoices import services as invoices
    from invoices.mail import invoice_email_send
    from invoices.models import Invoice
    from invoices.pdf import invoice_pdf_ensure
    from msp_billing.accounts.models import User
    from msp_billing.tenants.models import Msp
    from onboarding.demo import DEMO_DATA
    from onboarding.importing import billing_data_import
    from onboarding.importing.document import import_document_load

    connection.set_schema_to_public()
    connection.set_tenant(Msp.objects.get(schema_name="alpha"))
    _separate_id_ranges("alpha")
    owner = User.objects.get(email="owner@alpha.example")
    User.objects.create_user(f"marked-{MARKER.lower()}@alpha.example", "x" * 20, role="technician",
                             full_name=f"{MARKER} Technician")
    billing_data_import(document=import_document_load(_marked(DEMO_DATA.read_text())), acting_user=owner)

    ExclusionSet.objects.order_by("pk").first().roles.add(Role.objects.order_by("pk").first())
    TaxCategory.objects.create(code="LABOUR", name=f"{MARKER} labour", taxable=False)
    BillingSchedule.load()
    Notification.objects.create(kind=Notification._meta.get_field("kind").choices[0][0], contract=Contract.objects.first(),
                                key=f"{MARKER}-notice", message=f"{MARKER} notice")

    batch = billing.batch_run(name=f"{MARKER} October", cutoff=CUTOFF, selection=billing.selection_everything_due(cutoff=CUTOFF),
                              consolidated=False, acting_user=owner)
    issued = billing.batch_generate(batch_id=batch.pk, acting_user=owner, issue_date=CUTOFF)
    # A second batch left in drafts (its own page, its own delete).
    customer = Customer.objects.order_by("pk").last()
    vat = TaxRate.objects.create(code="VAT19", name="VAT 19 %", percent=Decimal("19"), effective_from=dt.date(2020, 1, 1))
    draft = invoices.invoice_create_draft(customer=customer, acting_user=owner, lines=[invoices.LineInput(
        description=f"{MARKER} draft line", quantity=Decimal(2), unit_price=Decimal("50"), tax_rate_codes=(vat.code,))])
    paid_id, credited_id, void_id, emailed_id = issued[:4]
    total = Invoice.objects.get(pk=paid_id).total
    invoices.payment_record(invoice_id=paid_id, amount=total, date=CUTOFF, reference=f"{MARKER} payment", acting_user=owner)
    credit = invoices.credit_note_create(invoice_id=credited_id, reason=f"{MARKER} credit", acting_user=owner, issue_date=CUTOFF)
    invoices.invoice_void(invoice_id=void_id, acting_user=owner, reason=f"{MARKER} void")
    for invoice_id in (paid_id, emailed_id):
        invoice_pdf_ensure(invoice_id=invoice_id)
    email = invoice_email_send(invoice_id=emailed_id, acting_user=owner)

    accounting = AccountingConnection.objects.create(system="quickbooks", remote_tenant_id="4620816365", remote_name=f"{MARKER} Books",
                                                     connected_by=owner)
    run = ExportRun.objects.create(system="quickbooks", state=ExportRun.State.DONE_WITH_ERRORS, document_ids=issued[4:6], total=2,
                                   done=1, failed=1, failed_ids=issued[5:6], created_by=owner)
    RemoteMapping.objects.create(system="quickbooks", local_type=RemoteMapping.LocalType.choices[0][0], local_id=str(customer.pk),
                                 remote_id="58", remote_name=f"{MARKER} remote")
    failure = IntegrationLog.objects.create(system="quickbooks", operation="invoice.export", invoice_id=issued[5], export_run=run,
                                            outcome=IntegrationLog.Outcome.FAILED, http_status=400, error=f"{MARKER} refused")
    # What the later pages keep: a batch left in drafts, an e-mail job, a saved widget, a
    # running timer, the benchmark's settings, a cost rate and a nightly roll-up.
    later = billing.batch_run(name=f"{MARKER} November", cutoff=CUTOFF + dt.timedelta(days=30),
                              selection=billing.selection_everything_due(cutoff=CUTOFF + dt.timedelta(days=30)),
                              consolidated=False, acting_user=owner)
    invoices_email(invoice_ids=issued[6:8], acting_user=owner)
    technician = User.objects.filter(role="technician").order_by("pk").first()
    SavedWidget.objects.create(user=owner, title=f"{MARKER} widget", customer=customer)
    timer_start(user=technician, ticket=Ticket.objects.filter(billed_at__isnull=True).order_by("pk").first())
    benchmark_opt_in_set(opted_in=True, acting_user=owner)
    technician_cost_rate_set(technician=technician, cost_rate=Decimal("42"), acting_user=owner)
    tenant_rollup(today=CUTOFF)
    # The API: the owner's token, an answer kept for its Idempotency-Key, a device count
    # reported for a class its contract does not have.
    from api.models import IdempotentRequest
    from api.services import token_create
    from contracts.services import device_report_unmatched

    token, _ = token_create(user=owner, name=f"{MARKER} feed", expires_on=dt.date.today() + dt.timedelta(days=30))
    IdempotentRequest.objects.create(token=token, key=f"{MARKER}-key", fingerprint="0" * 64, status=201,
                                     content_type="application/json", body=b"{}")
    device_report_unmatched(contract=Contract.objects.filter(type=Contract.Type.REMOTE_MONITORING).first() or Contract.objects.first(),
                            device_class_name=f"{MARKER} firewalls", count=3, acting_user=owner)
    # A webhook subscription with one event and a failed attempt (nothing listens on port 9).
    from django.test import override_settings

    from webhooks import services as webhooks

    with override_settings(WEBHOOKS_ALLOW_PRIVATE=True):
        hook = webhooks.subscription_create(url="http://127.0.0.1:9/hook", events=["invoice.issued"],
                                            description=f"{MARKER} receiver", acting_user=owner)
        event = webhooks.event_raise("invoice.issued", {"invoice": {"number": f"{MARKER}-1"}})
        webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)
    # A leak dismissed with its reason (the demo's data has no leak to dismiss through the page).
    from leaks.models import LeakDismissal

    LeakDismissal.objects.create(kind="time_unrouted", key=f"entry:{MARKER}", fingerprint="0" * 32,
                                 reason=f"{MARKER} billed elsewhere", dismissed_by=owner)
    return {"owner": owner, "batch": batch.pk, "later_batch": later.pk, "issued": issued, "draft": draft.pk, "credit_note": credit.pk,
            "email": email.pk, "connection": accounting.pk, "run": run.pk, "failure": failure.pk,
            "webhook": hook.pk}


def empty_tables(schema: str) -> list[str]:
    return sorted(table for table, count in row_counts(schema).items() if count == 0 and table not in UNUSED_TABLES)


def id_tables(schema: str) -> list[str]:
    """The tables of ``schema`` with an integer ``id`` (sessions and sign-in attempts left out)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name FROM information_schema.columns WHERE table_schema = %s AND column_name = 'id'"
                       " AND data_type IN ('integer', 'bigint') ORDER BY table_name", [schema])
        return [table for (table,) in cursor.fetchall() if table not in VOLATILE_TABLES]


def ids_by_table(schema: str, *, per_table: int = 3) -> dict[str, list[int]]:
    """The first ``per_table`` ids of each table with an integer ``id`` (those made after the ranges moved first),
    then its newest ten (what the set-up made last, such as a batch left in drafts)."""
    found: dict[str, list[int]] = defaultdict(list)
    with connection.cursor() as cursor:
        for table in id_tables(schema):
            cursor.execute(f'SELECT id FROM "{schema}"."{table}" ORDER BY id >= %s DESC, id LIMIT %s', [ID_RANGE, per_table])
            first = [row[0] for row in cursor.fetchall()]
            cursor.execute(f'SELECT id FROM "{schema}"."{table}" ORDER BY id DESC LIMIT 10')
            found[table] = first + [pk for (pk,) in reversed(cursor.fetchall()) if pk not in first]
    return dict(found)


def public_schema() -> str:
    return get_public_schema_name()
