"""API: time entries POSTed through the REST API (routed and rated by tickets.services), as a
ratio to a bare Django view that inserts one row, on the same gunicorn.

Reuses the load benchmark's stack (bench/bench_load.py: PostgreSQL and Redis of its own, the
demo data as tenant ``chaos``, gunicorn with the production settings plus the bench views,
its asyncio client). BENCH_API_CLIENTS concurrent clients (20) for BENCH_LOAD_SECONDS each:

1. baseline: POST ``/bench/insert/`` (one row into the API's idempotency table, no token check);
2. POST ``/api/v1/tickets/<id>/time-entries`` with a technician's token and a fresh Idempotency-Key;
3. for comparison, the same time logged through the ticket page's form (signed in, CSRF), the
   page flow the API shares its service with (``tickets.services.time_entry_log``).

Prints requests per second of each, the API's ratio to the bare view (goal ≥ 0.5) and to the
page, and p95 latencies.
Run: ``python -m bench api``.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import bench_load

BASE_DIR = Path(__file__).resolve().parent.parent
CLIENTS = int(os.environ.get("BENCH_API_CLIENTS", 20))


class ApiClient(bench_load.Session):
    """bench_load's client with a bearer token and a JSON body instead of cookies and a form."""

    def __init__(self, port: int, samples: list, secret: str | None) -> None:
        super().__init__(port, samples)
        self.secret = secret

    async def post_json(self, path: str, body: dict, page: str) -> int:
        data = json.dumps(body).encode()
        headers = {"Host": bench_load.HOST, "Connection": "close", "X-Forwarded-Proto": "https", "Content-Type": "application/json",
                   "Content-Length": str(len(data)), "Idempotency-Key": uuid.uuid4().hex}
        if self.secret:
            headers["Authorization"] = f"Bearer {self.secret}"
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(f"POST {path} HTTP/1.1\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
                         + b"\r\n" + data)
            await writer.drain()
            raw = await reader.read(-1)
            writer.close()
            status = int(raw.split(b" ", 2)[1])
        except (OSError, IndexError, ValueError):
            status = 599
        self.samples.append((page, status, time.perf_counter() - started))
        return status


def _tokens(tickets: list[int]) -> tuple[list[str], int]:
    from django_tenants.utils import schema_context

    from api.services import token_create
    from contracts.models import WorkType
    from msp_billing.accounts.models import User

    with schema_context("chaos"):
        technicians = User.objects.filter(technician_profile__isnull=False, is_active=True)
        secrets = [token_create(user=user, name="bench", expires_on=dt.date.today() + dt.timedelta(days=2))[1]
                   for user in technicians]
        work_type = WorkType.objects.filter(is_active=True).order_by("id").values_list("pk", flat=True).first()
    return secrets, work_type


def _ok_rps(samples: list, page: str, seconds: float) -> float:
    """Accepted requests per second (2xx; a refused post does not count as done)."""
    return sum(1 for p, status, _ in samples if p == page and 200 <= status < 300) / seconds


async def _phase(port: int, make_request, seconds: float) -> list:
    samples: list = []
    until = time.perf_counter() + seconds

    async def loop(n: int):
        client = make_request(n, samples)
        while time.perf_counter() < until:
            await client()

    await asyncio.gather(*(loop(n) for n in range(CLIENTS)))
    return samples


async def _page_phase(port: int, users: dict, tickets: list[int], seconds: float) -> list:
    """The ticket page's time form, POSTed by signed-in technicians (one GET for the form first)."""
    samples: list = []
    clients = []
    for n in range(CLIENTS):
        session = bench_load.Session(port, samples)
        await session.sign_in(users["technicians"][n % len(users["technicians"])])
        ticket = tickets[n % len(tickets)]
        _, _, page = await session.request("GET", f"/tickets/{ticket}/", page="ticket page")
        form = bench_load._time_form(page)
        clients.append((session, form["action"] or f"/tickets/{ticket}/time/", form["data"]))
    samples.clear()
    until = time.perf_counter() + seconds

    async def loop(session, action, data):
        while time.perf_counter() < until:
            data["csrfmiddlewaretoken"] = [session.cookies.get("csrftoken", "")]
            await session.request("POST", action, data, page="page time entry")

    await asyncio.gather(*(loop(*client) for client in clients))
    return [(p, 201 if s == 302 else s, t) for p, s, t in samples]


def main() -> None:
    from tests.chaos.stack import gunicorn
    from tests.support import free_port

    folder = Path(tempfile.mkdtemp(prefix="msp-api-"))
    postgres, redis, env, users, tickets = bench_load._prepare(folder)
    secrets, work_type = _tokens(tickets)
    env = {**env, "API_RATE_LIMIT": "1000000"}
    port = free_port()
    (folder / "logs").mkdir()
    web = gunicorn(env, port, folder / "logs" / "web.log", workers=bench_load.WORKERS)
    try:
        web.start()
        seconds = bench_load.SECONDS
        print(f"gunicorn (production settings, {bench_load.WORKERS} workers), {CLIENTS} clients, {seconds:.0f} s per phase", flush=True)

        def bare(n, samples):
            client = ApiClient(port, samples, None)
            return lambda: client.post_json("/bench/insert/", {}, "bare insert")

        def api(n, samples):
            client = ApiClient(port, samples, secrets[n % len(secrets)])
            ticket = tickets[n % len(tickets)]
            body = {"work_type": work_type, "date": dt.date.today().isoformat(), "minutes": 15, "notes": "bench"}
            return lambda: client.post_json(f"/api/v1/tickets/{ticket}/time-entries", body, "api time entry")

        base = asyncio.run(_phase(port, bare, seconds))
        logged = asyncio.run(_phase(port, api, seconds))
        paged = asyncio.run(_page_phase(port, users, tickets, seconds))
        for name, samples, page in (("bare insert", base, "bare insert"), ("API time entry", logged, "api time entry"),
                                    ("page time entry", paged, "page time entry")):
            statuses: dict = {}
            for _, status, _ in samples:
                statuses[status] = statuses.get(status, 0) + 1
            values = [s for _, _, s in samples]
            print(f"  {name:16s} {_ok_rps(samples, page, seconds):7.1f} req/s  p50 {statistics.median(values) * 1000:6.0f} ms  "
                  f"p95 {bench_load._p95(values) * 1000:6.0f} ms  statuses {statuses}", flush=True)
        base_rps, api_rps = _ok_rps(base, "bare insert", seconds), _ok_rps(logged, "api time entry", seconds)
        page_rps = _ok_rps(paged, "page time entry", seconds)
        print(f"API time-entry POST = {api_rps / base_rps:.3f}× the bare insert view (goal ≥ 0.5); "
              f"{api_rps / page_rps:.3f}× the ticket page's time form", flush=True)
    finally:
        bench_load.stack_stop(folder, postgres, redis, web)


if __name__ == "__main__":
    sys.path.insert(0, str(BASE_DIR))
    main()
