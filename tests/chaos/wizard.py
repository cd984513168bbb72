"""The chaos run's fifth fault: the web killed while an admin's month end runs in it.

Create New Batch bills inside the web request (one transaction), and Generate issues the
numbers inside another. Here an admin does both over HTTP, as a browser would (sign in,
open the page, submit its form as it stands), while gunicorn is SIGKILLed the moment the
request's transaction has written. After the restart the admin simply submits again. What
must hold: the killed request left nothing half-made (no batch, or one whole batch), the
second submit bills each due allocation once, and the issued numbers have no gap.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
import time
from html.parser import HTMLParser

import requests

from tests.chaos.stack import http_ok, wait_for

OWNER = ("owner@chaos.example", "chaos-password-2026")
HOST = "chaos.localhost"


class _Forms(HTMLParser):
    """Every form of a page: its action and the fields a browser would send as the page stands."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._current: dict | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._current = {"id": attrs.get("id", ""), "action": attrs.get("action") or "", "method": (attrs.get("method") or "get").lower(),
                             "fields": []}
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and attrs.get("name") and "disabled" not in attrs:
            kind = (attrs.get("type") or "text").lower()
            if kind in ("checkbox", "radio") and "checked" not in attrs:
                return
            if kind not in ("submit", "button", "file"):
                self._current["fields"].append((attrs["name"], attrs.get("value", "on" if kind in ("checkbox", "radio") else "")))
        elif self._current is not None and tag == "textarea" and attrs.get("name"):
            self._textarea = attrs["name"]
            self._current["fields"].append((self._textarea, ""))

    def handle_data(self, data):
        if self._textarea and self._current is not None:
            name, value = self._current["fields"][-1]
            self._current["fields"][-1] = (name, value + data)

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._current = None


def forms_of(html: str) -> list[dict]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class Admin:
    """A signed-in browser session against the chaos web, by address and Host header."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = requests.Session()
        self.session.headers["Host"] = HOST

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base + path, timeout=60, allow_redirects=True)

    def post(self, path: str, fields: list[tuple[str, str]]) -> requests.Response:
        token = self.session.cookies.get("csrftoken", "")
        return self.session.post(self.base + path, data=fields, timeout=120, allow_redirects=False,
                                 headers={"X-CSRFToken": token, "Referer": f"http://{HOST}{path}"})

    def sign_in(self) -> None:
        page = self.get("/accounts/login/")
        [form] = [f for f in forms_of(page.text) if f["method"] == "post"]
        fields = [(k, v) for k, v in form["fields"] if k not in ("username", "email", "password")]
        name = "username" if any(k == "username" for k, _ in form["fields"]) else "email"
        answer = self.post("/accounts/login/", fields + [(name, OWNER[0]), ("password", OWNER[1])])
        assert answer.status_code == 302, f"sign-in answered {answer.status_code}"

    def submit(self, path: str, form_id: str | None = None, action_ends: str | None = None) -> requests.Response:
        """Open ``path`` and submit its form (by id, or by the end of its action) as the page stands."""
        page = self.get(path)
        assert page.status_code == 200, f"{path} answered {page.status_code}"
        found = [f for f in forms_of(page.text) if f["method"] == "post" and
                 ((form_id and f["id"] == form_id) or (action_ends and f["action"].endswith(action_ends)))]
        assert found, f"no form {form_id or action_ends} on {path}"
        return self.post(found[0]["action"] or path, found[0]["fields"])


def log_more_time(count: int, day: dt.date) -> int:
    """``count`` entries on the demo's open tickets, dated ``day`` (after the scheduled run's cut-off),
    each ticket then resolved so that its time is due."""
    from django.core.exceptions import ValidationError

    from tickets import services
    from tickets.models import TechnicianProfile, Ticket, WorkType

    technicians = [profile.user for profile in TechnicianProfile.objects.select_related("user").order_by("pk")]
    work_types = list(WorkType.objects.filter(is_after_hours=False).order_by("pk"))
    logged = 0
    for ticket in Ticket.objects.order_by("pk"):
        if logged >= count:
            break
        try:
            services.time_entry_log(ticket=ticket, technician=technicians[logged % len(technicians)],
                                    work_type=work_types[logged % len(work_types)], date=day, minutes=15 + 5 * (logged % 9))
        except ValidationError:
            continue  # a closed or billed ticket takes no more time
        services.ticket_set_status(ticket_id=ticket.pk, status=Ticket.Status.RESOLVED)  # done: its time is due
        logged += 1
    return logged


def killed_mid_request(web, request, *, writing_transaction_open, rng) -> tuple[bool, object]:
    """Run ``request`` in a thread; SIGKILL gunicorn as soon as the request's transaction has written.
    Returns (whether it was mid-transaction when killed, the request's answer or error)."""
    outcome: dict = {}

    def call():
        try:
            outcome["answer"] = request()
        except requests.RequestException as error:
            outcome["answer"] = error

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    try:
        wait_for(lambda: writing_transaction_open() or not thread.is_alive(), timeout=60, what="the request writing", poll=0.005)
    except TimeoutError:
        pass
    time.sleep(rng.uniform(0.0, 0.05))
    mid = writing_transaction_open()
    web.kill()
    thread.join(timeout=30)
    return mid, outcome.get("answer")


def wizard_month_end(*, web, port: int, rng, note, writing_transaction_open) -> dict[str, bool]:
    """The fifth fault; returns its checks."""
    from django.db.models import Count
    from django.urls import reverse
    from django_tenants.utils import schema_context

    from billing.models import BatchInvoice, BillingBatch
    from billing.run import picked_time
    from billing.services import batch_invoices, selection_everything_due
    from invoices.models import Invoice, InvoiceLine
    from msp_billing.tenants.today import tenant_today

    with schema_context("chaos"):
        cutoff = tenant_today()
        logged = log_more_time(60, cutoff - dt.timedelta(days=1))
        due = set(picked_time(cutoff=cutoff, selection=selection_everything_due(cutoff=cutoff)).values_list("pk", flat=True))
        before = set(BillingBatch.objects.values_list("pk", flat=True))
        path = reverse("billing:batch_new", urlconf="msp_billing.urls_tenant") + f"?cutoff={cutoff.isoformat()}"
    print(f"wizard month end: {logged} entries logged, {len(due)} time allocations due at {cutoff}", flush=True)

    admin = Admin(port)
    admin.sign_in()
    mid, answer = killed_mid_request(web, lambda: admin.submit(path, form_id="batch-form"),
                                     writing_transaction_open=writing_transaction_open, rng=rng)
    moment = time.monotonic()
    web.start()
    wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/accounts/login/", HOST), timeout=60, what="the web back")
    print(f"killed the web during Create New Batch → Run ({'mid-transaction' if mid else 'after it committed'}; "
          f"the browser got {getattr(answer, 'status_code', type(answer).__name__)})", flush=True)

    def invoices_of(batch_ids):
        return Invoice.objects.filter(pk__in=BatchInvoice.objects.filter(batch_id__in=batch_ids).values("invoice_id"))

    def whole(batch_ids) -> bool:
        """Each batch whole: it has invoices, and every invoice has lines whose amounts make its subtotal."""
        invoices = list(invoices_of(batch_ids).prefetch_related("lines"))
        return (not batch_ids or bool(invoices)) and all(
            invoice.lines.all() and invoice.subtotal == sum((line.amount for line in invoice.lines.all()), start=0)
            for invoice in invoices)

    with schema_context("chaos"):
        after_kill = set(BillingBatch.objects.values_list("pk", flat=True)) - before
        left_whole = len(after_kill) <= 1 and whole(after_kill)
    if not after_kill:  # rolled back with the request: the admin runs it again
        admin = Admin(port)
        admin.sign_in()
        again = admin.submit(path, form_id="batch-form")
        assert again.status_code == 302, f"the second Run answered {again.status_code}"
    note("web killed mid Create New Batch → Run", time.monotonic() - moment)

    with schema_context("chaos"):
        new = set(BillingBatch.objects.values_list("pk", flat=True)) - before
        [batch_id] = new if len(new) == 1 else [None]
        lines = InvoiceLine.objects.filter(invoice__in=invoices_of(new)).exclude(time_allocation=None)
        billed = set(lines.values_list("time_allocation_id", flat=True))
        twice = (lines
                 .values("time_allocation").annotate(n=Count("pk")).filter(n__gt=1).count())
        drafts = list(batch_invoices(BillingBatch.objects.get(pk=batch_id)).values_list("pk", flat=True)) if batch_id else []
        numbers_before = set(Invoice.objects.exclude(number="").values_list("number", flat=True))
        generate = reverse("billing:batch_generate", urlconf="msp_billing.urls_tenant", args=[batch_id]) if batch_id else ""
        detail = reverse("billing:batch_detail", urlconf="msp_billing.urls_tenant", args=[batch_id]) if batch_id else ""

    # Generate, the web killed while it numbers the invoices; then Generate again where it rolled back.
    generated_once = False
    if batch_id:
        admin = Admin(port)
        admin.sign_in()
        mid, answer = killed_mid_request(web, lambda: admin.submit(generate, action_ends=generate),
                                         writing_transaction_open=writing_transaction_open, rng=rng)
        moment = time.monotonic()
        web.start()
        wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/accounts/login/", HOST), timeout=60, what="the web back")
        print(f"killed the web during Generate ({'mid-transaction' if mid else 'after it committed'})", flush=True)
        with schema_context("chaos"):
            still_draft = Invoice.objects.filter(pk__in=drafts, status=Invoice.Status.DRAFT).count()
        if still_draft:
            admin = Admin(port)
            admin.sign_in()
            again = admin.submit(generate, action_ends=generate)
            assert again.status_code == 302, f"the second Generate answered {again.status_code}"
        note("web killed mid Generate", time.monotonic() - moment)
        page = admin.get(detail) if not still_draft else None
        generated_once = page is None or page.status_code == 200

    with schema_context("chaos"):
        issued_numbers = sorted(Invoice.objects.filter(pk__in=drafts).values_list("number", flat=True))
        all_numbers = sorted(n for n in Invoice.objects.exclude(number="").values_list("number", flat=True))
        drafts_left = Invoice.objects.filter(pk__in=drafts, status=Invoice.Status.DRAFT).count()

    def serial(number: str) -> tuple[str, int]:
        prefix, digits = re.match(r"(.*?)(\d+)$", number).groups()
        return prefix, int(digits)

    by_prefix: dict[str, list[int]] = {}
    for number in all_numbers:
        prefix, value = serial(number)
        by_prefix.setdefault(prefix, []).append(value)
    gapless = all(sorted(values) == list(range(min(values), min(values) + len(values))) for values in by_prefix.values())
    return {
        "the killed Run left no batch or one whole batch": left_whole,
        f"the wizard's batch billed every due allocation once ({len(billed & due)} of {len(due)})":
            len(new) == 1 and due <= billed and twice == 0,
        f"Generate numbered every invoice of the batch once ({len(issued_numbers)} of {len(drafts)}), no number lost":
            drafts_left == 0 and len(set(issued_numbers)) == len(drafts) and not (set(issued_numbers) & numbers_before)
            and gapless and generated_once,
    }
