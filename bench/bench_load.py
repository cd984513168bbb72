"""Load: technicians log time while an admin runs a month end and others read the dashboard.

A deployment of its own under a temporary folder (tests/chaos/stack.py: PostgreSQL and Redis
on Unix sockets, gunicorn with the production settings plus one bare view, a Celery worker),
holding the demo MSP's data as tenant ``chaos``. An asyncio client (one connection per
request, as a browser behind a TLS proxy: ``X-Forwarded-Proto: https``) signs each virtual
user in through the sign-in page, then:

1. baseline: BENCH_LOAD_USERS users request the bare view (``/bench/bare/``: the same
   middleware, no query, no template) for BENCH_LOAD_SECONDS;
2. the dashboard alone, and time logging alone (POST of the ticket page's time form), the same way;
3. mixed: technicians logging time and readers on the dashboard while the admin creates
   and generates the month-end batch through its pages.

Prints requests per second of the dashboard and of time logging as ratios to the bare
view, then for the mixed phase: errors (5xx, refused connections), deadlocks (in the
PostgreSQL log), p95 per page. Run: ``python -m bench load`` (BENCH_LOAD_USERS=4,
BENCH_LOAD_SECONDS=10 by default; gunicorn BENCH_LOAD_WORKERS=2).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
USERS = int(os.environ.get("BENCH_LOAD_USERS", 4))
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", 10))
WORKERS = int(os.environ.get("BENCH_LOAD_WORKERS", 2))
HOST = "chaos.localhost"
PASSWORD = "load-password-2026"


class Session:
    """One virtual user: its cookies, and every request's (page, status, seconds)."""

    def __init__(self, port: int, samples: list) -> None:
        self.port, self.samples, self.cookies = port, samples, {}

    async def request(self, method: str, path: str, data: dict | None = None, *, page: str | None = None):
        body = urlencode(data or {}, doseq=True).encode() if method == "POST" else b""
        headers = {"Host": HOST, "Connection": "close", "X-Forwarded-Proto": "https", "User-Agent": "bench-load"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "POST":
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(len(body)),
                            "Origin": f"https://{HOST}", "Referer": f"https://{HOST}{path}",
                            "X-CSRFToken": self.cookies.get("csrftoken", "")})
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"{method} {path} HTTP/1.1\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
                         + b"\r\n" + body)
            await writer.drain()
            raw = await reader.read(-1)
            writer.close()
        except OSError:
            self.samples.append((page or path, 599, time.perf_counter() - started))
            return 599, {}, ""
        seconds = time.perf_counter() - started
        head, _, content = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 599
        response_headers = defaultdict(list)
        for line in lines[1:]:
            name, _, value = line.partition(":")
            response_headers[name.strip().lower()].append(value.strip())
        for cookie in response_headers.get("set-cookie", []):
            for morsel in SimpleCookie(cookie).values():
                self.cookies[morsel.key] = morsel.value
        self.samples.append((page or path, status, seconds))
        return status, response_headers, content.decode("utf-8", errors="replace")

    async def sign_in(self, email: str) -> None:
        _, _, page = await self.request("GET", "/accounts/login/", page="sign-in")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
        status, headers, _ = await self.request("POST", "/accounts/login/", {"csrfmiddlewaretoken": token, "username": email,
                                                                             "password": PASSWORD}, page="sign-in")
        if status != 302:
            raise RuntimeError(f"{email} could not sign in: {status}")


def _prepare(folder: Path):
    """The stack's database (tenant chaos with the demo data), passwords for its users, open tickets."""
    from tests.chaos.scenario import build_tenant, keep_template, services_from_template

    postgres, redis, template = services_from_template(folder)
    from tests.chaos.stack import stack_env

    env = stack_env(folder, postgres, redis, settings="bench.settings_load", DJANGO_SECRET_KEY="bench-load-not-secret",
                    DJANGO_SECURE_SSL_REDIRECT="false", DJANGO_ALLOWED_HOSTS=".localhost,localhost",
                    DJANGO_SECURE_HSTS_SECONDS="0", EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
    os.environ.update(env)
    import django

    django.setup()
    if template is not None:
        build_tenant()
        keep_template(postgres, template)
    from django_tenants.utils import schema_context

    from msp_billing.accounts.models import User
    from tickets.models import Ticket

    with schema_context("chaos"):
        users = {"admin": "owner@chaos.example"}
        for user in User.objects.all():
            user.set_password(PASSWORD)
            user.save(update_fields=["password"])
        users["technicians"] = list(User.objects.filter(technician_profile__isnull=False).values_list("email", flat=True))
        users["readers"] = list(User.objects.filter(role__in=["owner", "billing_admin"]).values_list("email", flat=True))
        tickets = list(Ticket.objects.filter(billed_at=None).exclude(status__in=["resolved", "closed"]).values_list("pk", flat=True))
    return postgres, redis, env, users, tickets


def _time_form(page: str) -> dict:
    from tests.proof.forms import post_forms

    for form in post_forms(page):
        data = form.data()
        if "work_type" in data or any(f.name == "work_type" for f in form.fields):
            work_type = next(f for f in form.fields if f.name == "work_type")
            data["work_type"] = [next(o for o in work_type.options if o)]
            data["date"] = [dt.date.today().isoformat()]
            data["duration"] = ["15"]
            return {"action": form.action, "data": data}
    raise RuntimeError("no time form on the ticket page")


async def _loop(until: float, step) -> None:
    while time.perf_counter() < until:
        await step()


async def _phase(port: int, kinds: dict[str, int], users: dict, tickets: list[int], seconds: float) -> list:
    """Run the virtual users of ``kinds`` ({"bare": n, "dashboard": n, "time": n, "month_end": 0/1}) for ``seconds``."""
    samples: list = []
    sessions = []
    for kind, count in kinds.items():
        for n in range(count):
            session = Session(port, samples)
            email = (users["technicians"][n % len(users["technicians"])] if kind == "time" else
                     users["admin"] if kind == "month_end" else users["readers"][n % len(users["readers"])])
            await session.sign_in(email)
            sessions.append((kind, n, session))
    samples.clear()  # sign-ins are not part of the figures
    until = time.perf_counter() + seconds
    tasks = []
    for kind, n, session in sessions:
        if kind == "bare":
            tasks.append(_loop(until, lambda s=session: s.request("GET", "/bench/bare/", page="bare view")))
        elif kind == "dashboard":
            tasks.append(_loop(until, lambda s=session: s.request("GET", "/dashboard/", page="dashboard")))
        elif kind == "time":
            ticket = tickets[n % len(tickets)]

            async def log_time(s=session, ticket=ticket):
                _, _, page = await s.request("GET", f"/tickets/{ticket}/", page="ticket page")
                form = _time_form(page)
                await s.request("POST", form["action"] or f"/tickets/{ticket}/time/", form["data"], page="log time (POST)")

            tasks.append(_loop(until, log_time))
        elif kind == "month_end":
            tasks.append(_month_end(session))
    await asyncio.gather(*tasks)
    return samples


async def _month_end(session: Session) -> None:
    from tests.proof.forms import post_forms

    _, _, page = await session.request("GET", "/billing/batches/new/", page="batch page")
    [form] = [f for f in post_forms(page) if any(field.name == "name" for field in f.fields)][:1] or [None]
    if form is None:
        raise RuntimeError("no run form on the batch page")
    data = form.data()
    data["name"] = ["Month end under load"]
    status, headers, _ = await session.request("POST", form.action or "/billing/batches/new/", data, page="month-end run (POST)")
    location = (headers.get("location") or [""])[0]
    match = re.search(r"/billing/batches/(\d+)/", location)
    if match:
        batch = match[1]
        _, _, page = await session.request("GET", f"/billing/batches/{batch}/", page="batch page")
        data = {"csrfmiddlewaretoken": session.cookies.get("csrftoken", "")}
        await session.request("POST", f"/billing/batches/{batch}/generate/", data, page="generate invoices (POST)")
    print(f"  month end: run answered {status} {location}", flush=True)


def _time_entries() -> int:
    from django_tenants.utils import schema_context

    from tickets.models import TimeEntry

    with schema_context("chaos"):
        return TimeEntry.objects.count()


def _rps(samples: list, page: str, seconds: float) -> float:
    return sum(1 for p, status, _ in samples if p == page and status < 500) / seconds


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def main() -> None:
    from tests.chaos.stack import celery, gunicorn
    from tests.support import free_port

    folder = Path(tempfile.mkdtemp(prefix="msp-load-"))
    postgres, redis, env, users, tickets = _prepare(folder)
    port = free_port()
    (folder / "logs").mkdir()
    web = gunicorn(env, port, folder / "logs" / "web.log", workers=WORKERS)
    worker = celery(env, folder / "logs" / "worker.log", "worker", "--pool=solo", "--loglevel=WARNING", "--without-gossip",
                    "--without-mingle")
    try:
        web.start()
        worker.start()
        print(f"gunicorn (production settings, {WORKERS} workers) on the demo data; {USERS} users per phase, {SECONDS:.0f} s each",
              flush=True)
        bare = asyncio.run(_phase(port, {"bare": USERS}, users, tickets, SECONDS))
        dashboard = asyncio.run(_phase(port, {"dashboard": USERS}, users, tickets, SECONDS))
        logging = asyncio.run(_phase(port, {"time": USERS}, users, tickets, SECONDS))
        base = _rps(bare, "bare view", SECONDS)
        dash, logged = _rps(dashboard, "dashboard", SECONDS), _rps(logging, "log time (POST)", SECONDS)
        print(f"bare view {base:.1f} req/s; dashboard {dash:.1f} req/s = {dash / base:.3f}× bare; "
              f"time logging {logged:.1f} posts/s = {logged / base:.3f}× bare", flush=True)
        entries_before = _time_entries()
        mixed = asyncio.run(_phase(port, {"time": USERS, "dashboard": max(1, USERS // 2), "month_end": 1}, users, tickets,
                                   SECONDS))
        errors = [(p, s) for p, s, _ in mixed + bare + dashboard + logging if s >= 500]
        deadlocks = sum(log.read_text(errors="replace").count("deadlock detected")
                        for log in (folder / "postgres.log", folder / "logs" / "web.log", folder / "logs" / "worker.log")
                        if log.exists())
        by_page = defaultdict(list)
        statuses = defaultdict(lambda: defaultdict(int))
        for page, status, seconds in mixed:
            by_page[page].append(seconds)
            statuses[page][status] += 1
        posted = sum(1 for p, s, _ in mixed if p == "log time (POST)" and s == 302)
        print(f"mixed: {len(mixed)} requests, errors {len(errors)}, deadlock failures {deadlocks}; "
              f"{_time_entries() - entries_before} time entries stored for {posted} accepted posts", flush=True)
        for page, values in sorted(by_page.items()):
            print(f"  {page:28s} n={len(values):5d}  p50 {statistics.median(values) * 1000:7.0f} ms  "
                  f"p95 {_p95(values) * 1000:7.0f} ms  statuses {dict(statuses[page])}", flush=True)
        if errors:
            print(f"  errors: {errors[:10]}", flush=True)
    finally:
        worker.stop()
        stack_stop(folder, postgres, redis, web)


def stack_stop(folder: Path, postgres, redis, *processes) -> None:
    """Stop the benchmark's processes, then its embedded Redis and PostgreSQL; remove their folder."""
    from django.db import connection

    for process in processes:
        process.stop()
    connection.close()
    redis.stop()
    postgres.stop()
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    main()
