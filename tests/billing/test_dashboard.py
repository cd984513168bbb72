"""The billing dashboard: every figure equals the list it links to, parts and expenses have
a state that Approve & Post moves, charts carry their table, saved widgets are the user's
own, and the page reads a fixed number of queries however much work is unbilled."""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_tenants.utils import schema_context

from billing.models import SavedWidget
from billing.readiness import ready_charges, ready_time_allocations
from billing.unbilled import unbilled_figures
from contracts.models import BlockLedgerEntry
from invoices.models import Invoice, InvoiceLine
from msp_billing.accounts.models import User
from msp_billing.tenants.today import tenant_today
from tests.support import body
from tests.tickets.builders import block, catalogue, contract, customer, eur, rate_line, technician, ticket
from tickets import services as ticket_services
from tickets.models import Charge

ADMIN = "billing-admin@alpha.example"


def _log(tk, tech, work_type, days_ago: int, minutes: int):
    return ticket_services.time_entry_log(ticket=tk, technician=tech, work_type=work_type,
                                          date=tenant_today() - dt.timedelta(days=days_ago), minutes=minutes)


@pytest.fixture
def world(tenant):
    """Alpha with approval on. Two customers billed hourly at 120 and 90; time of several ages
    (ready, waiting on done tickets, in progress on an open ticket); a part waiting on a done
    ticket and one on the contract itself; a block 80 % used; a contract ending next month;
    two issued invoices, one overdue."""
    tenant.time_approval_required = True
    tenant.save(update_fields=["time_approval_required"])
    remote, onsite, ooh, engineer = catalogue()
    tech = technician(engineer)
    acme, globex = customer("Acme Ltd"), customer("Globex plc")
    acme_hourly = contract(acme, "hourly", name="Acme T&M", rounding_increment=15)
    rate_line(acme_hourly, "120")
    globex_hourly = contract(globex, "hourly", name="Globex T&M", rounding_increment=15,
                             end_date=tenant_today() + dt.timedelta(days=30), auto_renew=True)
    rate_line(globex_hourly, "90")
    for cust, hourly in ((acme, acme_hourly), (globex, globex_hourly)):
        cust.default_hourly_contract = hourly
        cust.save()
    done_acme, done_globex, open_acme = ticket(acme), ticket(globex), ticket(acme)
    entries = {
        "recent": _log(done_acme, tech, remote, 5, 60),      # 120.00, 0–30
        "month_old": _log(done_acme, tech, remote, 45, 90),  # 180.00, 31–60
        "older": _log(done_globex, tech, remote, 75, 60),    # 90.00, 61–90
        "oldest": _log(done_globex, tech, remote, 120, 30),  # 45.00, > 90
        "open": _log(open_acme, tech, remote, 2, 60),        # 120.00, in progress
    }
    part = ticket_services.charge_add(ticket=done_acme, description="SSD", date=tenant_today() - dt.timedelta(days=3),
                                      quantity=Decimal("2"), unit_price=eur("49.995"), markup_percent=Decimal("10"))
    on_contract = ticket_services.charge_add(contract=globex_hourly, description="Licence", date=tenant_today() - dt.timedelta(days=1),
                                             quantity=Decimal("1"), unit_price=eur("30"))
    for tk in (done_acme, done_globex):
        ticket_services.ticket_set_status(ticket_id=tk.pk, status="resolved")
    admin = User.objects.get(email=ADMIN)
    # Approve the recent and the oldest entry: they are ready; the other two wait.
    ticket_services.time_entries_approve(
        seen={e.pk: ticket_services.entry_fingerprint(e) for e in (entries["recent"], entries["oldest"])}, acting_user=admin)
    blocks = contract(acme, "block_hours", name="Acme block", priority=20, alert_thresholds="75,90,100")
    bought = block(blocks, minutes=600)
    BlockLedgerEntry.objects.create(block=bought, entry_date=tenant_today(), minutes=480, source="test")
    today = tenant_today()
    issued = Invoice.objects.create(customer=acme, status="issued", currency="EUR", number="T-1", issue_date=today - dt.timedelta(days=40),
                                    due_date=today - dt.timedelta(days=10), total=Decimal("500.00"), subtotal=Decimal("500.00"))
    InvoiceLine.objects.create(invoice=issued, description="Support", gross_amount=Decimal("500.00"), amount=Decimal("500.00"),
                               taxable_amount=Decimal("500.00"),
                               contract=acme_hourly)
    current = Invoice.objects.create(customer=globex, status="issued", currency="EUR", number="T-2", issue_date=today,
                                     due_date=today + dt.timedelta(days=30), total=Decimal("250.00"), subtotal=Decimal("250.00"))
    InvoiceLine.objects.create(invoice=current, description="Support", gross_amount=Decimal("250.00"), amount=Decimal("250.00"),
                               taxable_amount=Decimal("250.00"),
                               contract=globex_hourly)
    return {"entries": entries, "part": part, "on_contract": on_contract, "admin": admin, "tech": tech, "acme": acme,
            "globex": globex, "blocks": blocks, "ending": globex_hourly}


def _csv_rows(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(body(response).decode())))


def _unbilled_widget_links(context) -> list[tuple[str, object]]:
    links = [(url, figure) for _key, _label, figure, url in context["states"]]
    links += [(url, figure) for _key, _label, figure, url in context["ages"]]
    links += [(url, figure) for _label, figure, url in context["types"]]
    links += [(url, figure) for _customer, figure, url in context["customers"]]
    links += [(context["older_url"], context["board"].unbilled.older), (context["total_url"], context["board"].unbilled.total)]
    for widget, figure, url in context["widgets"]:
        links.append((url, figure))
    return links


def test_each_unbilled_widget_equals_the_list_it_opens_and_its_csv(client_for, world):
    client = client_for("alpha", "billing_admin")
    SavedWidget.objects.create(user=world["admin"], title="Acme, a month or more", customer=world["acme"], age="31-60")
    SavedWidget.objects.create(user=world["admin"], title="My time", technician=world["tech"])
    response = client.get("/dashboard/")
    assert response.status_code == 200
    board = response.context["board"]
    # The figures a billing admin reads: ready 120 + 45 + 30 (part on the contract), waiting 180 + 90 + 109.99 (2 × 49.995 + 10 %).
    assert board.unbilled.by_state["ready"].amounts == {"EUR": Decimal("195.00")}
    assert board.unbilled.by_state["waiting"].amounts == {"EUR": Decimal("379.99")}
    assert board.unbilled.by_state["in_progress"].amounts == {"EUR": Decimal("120.00")}
    assert board.unbilled.by_age["over-90"].amounts == {"EUR": Decimal("45.00")}
    assert board.unbilled.older.items == 3  # 45, 75 and 120 days old, over the MSP's 30 days
    links = _unbilled_widget_links(response.context)
    assert len(links) >= 14
    for url, figure in links:
        page = client.get(url)
        assert page.status_code == 200, url
        totals = page.context["totals"]
        expected = figure.amounts if figure else {}
        assert totals.amounts == expected, url
        assert totals.items == (figure.items if figure else 0), url
        rows = _csv_rows(client.get(url + ("&" if "?" in url else "?") + "format=csv"))
        assert len(rows) == totals.items, url
        by_currency: dict[str, Decimal] = {}
        for row in rows:
            by_currency[row["Currency"]] = by_currency.get(row["Currency"], Decimal(0)) + Decimal(row["Amount"])
        assert by_currency == expected, url
    assert "Acme, a month or more" in response.content.decode()
    saved = dict((w.title, f) for w, f, _u in response.context["widgets"])
    assert saved["Acme, a month or more"].amounts == {"EUR": Decimal("180.00")}


def test_ready_matches_what_a_batch_would_bill_today(world):
    today = tenant_today()
    totals = unbilled_figures(today=today, attention_days=30, filters={"state": "ready"}).total
    time = sum(a.amount.amount for a in ready_time_allocations(cutoff=today).filter(bucket__in=("charged", "overage")))
    charges = ready_charges(cutoff=today)
    assert {c.pk for c in charges} == {world["on_contract"].pk}
    assert totals.amounts["EUR"] == time + Decimal("30.00")


def test_receivables_blocks_and_renewals_equal_their_lists(client_for, world):
    contract(world["globex"], "block_hours", name="Globex block, none bought yet", priority=30)
    client = client_for("alpha", "billing_admin")
    board = client.get("/dashboard/").context["board"]
    assert board.receivables == {"EUR": (Decimal("750.00"), Decimal("500.00"))}
    outstanding = client.get(reverse("invoices:outstanding")).context["balances"]
    assert sum(b.outstanding for b in outstanding) == Decimal("750.00")
    assert sum(b.overdue for b in outstanding) == Decimal("500.00")
    rows = _csv_rows(client.get(reverse("invoices:outstanding") + "?format=csv"))
    assert sum(Decimal(r["Outstanding"]) for r in rows) == Decimal("750.00")
    aging = _csv_rows(client.get(reverse("invoices:aging") + "?format=csv"))
    assert sum(Decimal(r["Total"]) for r in aging) == Decimal("750.00")
    assert [b.contract for b in board.blocks_low] == [world["blocks"]]
    blocks_page = client.get(reverse("reports:blocks") + "?below=on")
    assert [b.contract for b in blocks_page.context["balances"]] == [world["blocks"]]
    assert board.blocks_low[0].percent_used == Decimal("80.0")
    renewals = client.get(reverse("reports:renewals") + "?within=90").context["contracts"]
    assert board.ending_count == len(renewals) == 1 and renewals[0] == world["ending"]


def test_approve_and_post_makes_a_waiting_part_ready_to_deliver(client_for, world):
    part = world["part"]
    assert part.state == Charge.State.WAITING
    client = client_for("alpha", "billing_admin")
    ticket_page = lambda: client.get(reverse("tickets:detail", args=[part.ticket_id])).content.decode()  # noqa: E731
    assert 'data-charge-state="waiting"' in ticket_page() and "Waiting for approval" in ticket_page()
    page = client.get(reverse("billing:approval"))
    assert "Parts and expenses waiting for approval" in page.content.decode()
    accountant = client_for("alpha", "accountant")
    assert accountant.post(reverse("billing:approval"), {"approve_charges": "1", "charge": part.pk}).status_code == 403
    response = client.post(reverse("billing:approval"), {"approve_charges": "1", "charge": part.pk})
    assert response.status_code == 302
    part.refresh_from_db()
    assert part.state == Charge.State.READY and part.approved_by == world["admin"]
    assert 'data-charge-state="ready"' in ticket_page()  # the ticket shows it too
    assert part.pk in set(ready_charges(cutoff=tenant_today()).values_list("pk", flat=True))
    again = client.post(reverse("billing:approval"), {"approve_charges": "1", "charge": part.pk})
    assert again.status_code == 409 and "already approved" in again.content.decode()
    assert client.post(reverse("billing:approval"), {"approve_charges": "1", "charge": "x"}).status_code == 400


def test_charts_render_as_svg_with_a_table(client_for, world):
    html = client_for("alpha", "billing_admin").get("/dashboard/").content.decode()
    assert html.count('<svg viewBox="0 0 640 240"') == 2  # unbilled by age, invoiced per month
    assert "<caption>Unbilled work by age, EUR</caption>" in html
    assert "<caption>Invoiced per month by contract type, EUR</caption>" in html
    assert 'aria-hidden="true"' in html
    revenue = client_for("alpha", "billing_admin").get(reverse("reports:revenue"))
    chart = revenue.context["charts"][0]
    assert chart.totals[-1] == Decimal("250.00") and sum(chart.totals) == Decimal("750.00")
    rows = _csv_rows(client_for("alpha", "billing_admin").get(reverse("reports:revenue") + "?format=csv"))
    assert sum(Decimal(r["Amount"]) for r in rows) == Decimal("750.00")
    assert {r["Contract type"] for r in rows} == {"Hourly"}


def test_saved_widgets_belong_to_their_user_and_their_msp(client_for, world, other_tenant):
    admin, owner = client_for("alpha", "billing_admin"), client_for("alpha", "owner")
    response = admin.post(reverse("dashboard_widget_save"), {"title": "Globex old work", "customer": world["globex"].pk, "age": "61-90"})
    assert response.status_code == 302
    widget = SavedWidget.objects.get(title="Globex old work")
    assert widget.user == world["admin"]
    assert "Globex old work" in admin.get("/dashboard/").content.decode()
    assert "Globex old work" not in owner.get("/dashboard/").content.decode()
    assert owner.post(reverse("dashboard_widget_delete", args=[widget.pk])).status_code == 404
    assert client_for("alpha", "accountant").post(reverse("dashboard_widget_save"), {"title": "x"}).status_code == 403
    bad = admin.post(reverse("dashboard_widget_save"), {"title": "x", "age": "1000-2000"})
    assert bad.status_code == 400 and "not saved" in bad.content.decode()
    beta = client_for("beta", "billing_admin")
    assert "Globex old work" not in beta.get("/dashboard/").content.decode()
    assert beta.post(reverse("dashboard_widget_delete", args=[widget.pk])).status_code == 404
    with schema_context(other_tenant.schema_name):
        assert not SavedWidget.objects.filter(title="Globex old work").exists()
    assert admin.post(reverse("dashboard_widget_delete", args=[widget.pk])).status_code == 302
    assert not SavedWidget.objects.filter(pk=widget.pk).exists()


def test_recent_batches_and_invoices_are_searchable(client_for, world):
    client = client_for("alpha", "billing_admin")
    found = client.get("/dashboard/?invoice_q=T-2").context["board"].invoices
    assert [i.number for i in found] == ["T-2"]
    by_customer = client.get("/dashboard/?invoice_q=acme").context["board"].invoices
    assert [i.number for i in by_customer] == ["T-1"]
    part = client.get("/dashboard/?invoice_q=nothing-like-it&part=invoices", HTTP_HX_REQUEST="true")
    assert "No invoice matches" in part.content.decode() and "<html" not in part.content.decode()


def test_the_dashboard_reads_a_fixed_number_of_queries_whatever_the_rows(client_for, world):
    client = client_for("alpha", "billing_admin")
    client.get("/dashboard/")
    with CaptureQueriesContext(connection) as before:
        client.get("/dashboard/")
    tk = ticket(world["acme"])
    remote = world["entries"]["recent"].work_type
    for days in range(10, 70, 3):
        _log(tk, world["tech"], remote, days, 30)
        ticket_services.charge_add(ticket=tk, description="Cable", date=tenant_today() - dt.timedelta(days=days),
                                   quantity=Decimal("1"), unit_price=eur("5"))
    with CaptureQueriesContext(connection) as after:
        client.get("/dashboard/")
    assert len(after) == len(before)


def test_the_msp_chooses_from_what_age_unbilled_work_is_highlighted(client_for, world, tenant):
    owner = client_for("alpha", "owner")
    response = owner.post(reverse("settings:home"), {"name": tenant.name, "timezone": tenant.timezone, "unbilled_attention_days": "100"})
    assert response.status_code == 302
    board = client_for("alpha", "billing_admin").get("/dashboard/").context["board"]
    assert board.attention_days == 100
    assert board.unbilled.older.items == 1 and board.unbilled.older.amounts == {"EUR": Decimal("45.00")}
    refused = owner.post(reverse("settings:home"), {"name": tenant.name, "timezone": tenant.timezone, "unbilled_attention_days": "0"})
    assert refused.status_code == 400


def test_unrouted_figures_equal_the_unrouted_list(client_for, world):
    nobody = customer("Nobody Pays")
    tk = ticket(nobody)
    remote = world["entries"]["recent"].work_type
    _log(tk, world["tech"], remote, 4, 20)
    ticket_services.charge_add(ticket=tk, description="Toner", date=tenant_today(), quantity=Decimal("1"), unit_price=eur("40"))
    client = client_for("alpha", "billing_admin")
    board = client.get("/dashboard/").context["board"]
    listing = client.get(reverse("tickets:unrouted")).context
    assert board.unrouted_entries == listing["listing"].page.paginator.count == 1 and board.unrouted_minutes == 20
    assert board.unrouted_charges == len(listing["charges"]) == 1
