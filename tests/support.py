"""Helpers the tests share: tenants, users, clients, and real processes on the test database."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.db import connection

BASE_DIR = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"
TENANTS = ("alpha", "beta")
ROLES = ("owner", "billing_admin", "technician", "accountant")


def body(response) -> bytes:
    """What a response carries, whether streamed (CSV downloads, PDFs) or not."""
    return b"".join(response.streaming_content) if response.streaming else response.content


def email_for(subdomain: str, role: str) -> str:
    return f"{role.replace('_', '-')}@{subdomain}.example"


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes the tests start."""
    db = connection.settings_dict
    name = quote(db["NAME"], safe="")
    auth = quote(db["USER"], safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else "")
    if db["HOST"].startswith("/"):
        return f"postgres://{auth}@{quote(db['HOST'], safe='')}/{name}"
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{name}"


def process_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="msp_billing.settings.test", DATABASE_URL=test_database_url())
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running(command: list[str], *, env: dict[str, str], ready, timeout: float = 60, log: Path | None = None):
    """Run ``command`` until the block ends; wait until ``ready()`` is true first."""
    log_file = open(log, "wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{command[:4]} exited with {process.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{command[:4]} not ready after {timeout}s; see {log}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if log:
            log_file.close()


def celery_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "msp_billing", *args]


@contextmanager
def gunicorn(*, port: int, env: dict[str, str], workers: int = 2, log: Path | None = None):
    """gunicorn serving the project on ``port`` until the block ends, once ``/healthz`` answers
    (a 503 counts: a server with no worker or no database answers all the same)."""

    def ready() -> bool:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    command = [str(Path(sys.executable).with_name("gunicorn")), "msp_billing.wsgi:application",
               "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    with running(command, env=env, ready=ready, timeout=60, log=log) as process:
        yield process


# A worker started with this run's own MEDIA_ROOT (test runs on one machine share var/test-media)
# and the broker transport options given (a redelivery timeout of seconds instead of an hour).
WORKER_LAUNCHER = (
    "import os, sys; from django.conf import settings; settings.MEDIA_ROOT = os.environ['MSP_TEST_MEDIA_ROOT']; "
    "from msp_billing.celery import app; app.conf.broker_transport_options = {options!r}; app.worker_main(sys.argv[1:])"
)


def worker_process(env: dict, log: Path, *args: str, transport_options: dict | None = None) -> subprocess.Popen:
    """A Celery worker in a process group of its own (``os.killpg`` kills it as a dead machine would)."""
    command = [sys.executable, "-c", WORKER_LAUNCHER.format(options=transport_options or {}), "worker", *args]
    return subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(condition, *, timeout: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    """``condition()``'s first true result; an error when ``process`` exits or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode} while waiting for {what}; see {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout}s; see {log}")
        time.sleep(0.3)


def stop_process_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def sign_in(page, port: int, email: str, *, subdomain: str = "demo", password: str | None = None) -> None:
    """Sign in through the sign-in page in the browser (the demo MSP and its password by default)."""
    if password is None:
        from msp_billing.tenants.demo import DEMO_PASSWORD as password

    page.goto(f"http://{subdomain}.localhost:{port}/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@contextmanager
def committed_msp(django_db_blocker, *, name: str, subdomain: str, admin_email: str):
    """An MSP of its own, created through the real service and committed so that other
    processes and connections see it (a gunicorn server, a Celery worker, parallel
    threads); dropped with its schema on exit. Build its data with
    ``django_db_blocker.unblock()`` and ``schema_context(subdomain)``."""
    from msp_billing.tenants.services import MspRequest, msp_create

    with django_db_blocker.unblock():
        msp = msp_create(request=MspRequest(name=name, subdomain=subdomain, region="europe", currency="EUR",
                                            timezone="Europe/Berlin", admin_email=admin_email, admin_password=PASSWORD))
        connection.set_schema_to_public()
    try:
        yield msp
    finally:
        with django_db_blocker.unblock():
            connection.set_schema_to_public()
            msp.delete(force_drop=True)


@contextmanager
def committed_billing_msp(django_db_blocker, *, name: str, subdomain: str, build):
    """``committed_msp`` with a billing admin and a technician (``billing-admin@`` and
    ``technician@<subdomain>.example``, password ``PASSWORD``); yields what
    ``build(admin_email=..., tech_email=...)`` makes inside it."""
    from django_tenants.utils import schema_context

    from msp_billing.accounts.services import user_create

    admin, tech = email_for(subdomain, "billing_admin"), email_for(subdomain, "technician")
    with committed_msp(django_db_blocker, name=name, subdomain=subdomain, admin_email=admin):
        with django_db_blocker.unblock(), schema_context(subdomain):
            user_create(email=tech, role="technician", password=PASSWORD)
            world = build(admin_email=admin, tech_email=tech)
        yield world


@contextmanager
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd) for the test's duration; yields
    ``(port, messages)``, each message an ``email.message.EmailMessage`` with the envelope
    recipients in its ``X-Rcpt-To`` header (To and Cc arrive as SMTP recipients)."""
    from email import message_from_bytes, policy

    from aiosmtpd.controller import Controller

    received: list = []

    class Collect:
        async def handle_DATA(self, server, session, envelope):
            message = message_from_bytes(envelope.original_content, policy=policy.default)
            message["X-Rcpt-To"] = ", ".join(envelope.rcpt_tos)
            received.append(message)
            return "250 Message accepted for delivery"

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def deselect_unless_asked(config, items, marker: str) -> None:
    """Leave out the tests marked ``marker`` unless ``-m`` names it (the long runs asked for by name)."""
    if marker in (config.option.markexpr or ""):
        return
    chosen = [item for item in items if item.get_closest_marker(marker) is None]
    if len(chosen) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in chosen])
        items[:] = chosen
