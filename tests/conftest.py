"""One set of tenants for the whole session, created through the real sign-up service.

``alpha`` and ``beta`` have one user per role (``<role>@<sub>.example``); ``demo`` is the
demo MSP that `make run` seeds. They are committed once, before any test, so tests that
start real processes (a Celery worker, gunicorn) see them too.
"""
from __future__ import annotations

import os

import pytest
import pytest_django.fixtures as _pytest_django_fixtures
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tests.support import PASSWORD, ROLES, TENANTS, email_for, free_port, gunicorn, process_env, running, smtp_server

# Playwright's sync API keeps an event loop in the test thread; the ORM calls the tests
# make around it are ordinary blocking calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _test_database_whenever_used(original):
    """pytest-django (4.14) creates the test database only when a collected test is marked
    ``django_db``. A test that reaches the database through a session fixture alone (a worker,
    a server, committed data) needs it too — and must never touch the development database."""

    def aliases_for(items):
        aliases, serialized = original(items)
        if any("django_db_setup" in getattr(item, "fixturenames", ()) for item in items):
            aliases.add("default")
        return aliases, serialized

    return aliases_for


_pytest_django_fixtures._get_databases_for_setup = _test_database_whenever_used(_pytest_django_fixtures._get_databases_for_setup)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from msp_billing.accounts.services import user_create
    from msp_billing.tenants.demo import demo_ensure
    from msp_billing.tenants.services import MspRequest, msp_create, platform_ensure
    from onboarding.demo import demo_data_load

    name = connection.settings_dict["NAME"]
    if not name.startswith("test"):
        raise RuntimeError(f"refusing to set up test tenants in the database {name!r}: it is not a test database")
    with django_db_blocker.unblock():
        platform_ensure()
        from msp_billing.tenants.models import Msp

        for subdomain in TENANTS:
            if Msp.objects.filter(schema_name=subdomain).exists():
                continue  # kept from an earlier run with --reuse-db
            msp = msp_create(
                request=MspRequest(
                    name=f"{subdomain.title()} Managed IT",
                    subdomain=subdomain,
                    region="europe",
                    currency="EUR",
                    timezone="Europe/Berlin",
                    admin_email=email_for(subdomain, "owner"),
                    admin_password=PASSWORD,
                )
            )
            with schema_context(msp.schema_name):
                for role in ROLES[1:]:
                    user_create(email=email_for(subdomain, role), role=role, password=PASSWORD)
        demo_data_load(schema_name=demo_ensure().schema_name)
        connection.set_schema_to_public()
    yield
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        # Servers and workers the tests started may still hold connections; the test
        # database can only be dropped without them.
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _public_schema_after_each_test():
    yield
    connection.set_schema_to_public()


@pytest.fixture
def smtp_outbox(settings):
    """Django mails through a real SMTP server on 127.0.0.1 for the test; yields the messages it received."""
    with smtp_server() as (port, received):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
        yield received


@pytest.fixture
def tenant(db):
    """Tenant ``alpha``, activated for the test's own database work."""
    from msp_billing.tenants.models import Msp

    msp = Msp.objects.get(schema_name="alpha")
    connection.set_tenant(msp)
    return msp


@pytest.fixture
def other_tenant(db):
    from msp_billing.tenants.models import Msp

    return Msp.objects.get(schema_name="beta")


@pytest.fixture
def client_for(db):
    """``client_for("alpha", "technician")``: a browser-like client signed in on alpha's host."""

    def make(subdomain: str, role: str | None = None) -> Client:
        from msp_billing.accounts.models import User

        client = Client(HTTP_HOST=f"{subdomain}.localhost")
        if role:
            with schema_context(subdomain):
                client.force_login(User.objects.get(email=email_for(subdomain, role)))
        return client

    return make


# --- a real server and a real browser ------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker, tmp_path_factory):
    port = free_port()
    with django_db_blocker.unblock():
        env = process_env(PUBLIC_URL_PORT=str(port))
    with gunicorn(port=port, env=env, log=tmp_path_factory.mktemp("logs") / "gunicorn.log"):
        yield port


@pytest.fixture(scope="module")
def worker_env() -> dict[str, str]:
    """Extra environment of the module's ``server_worker`` (a module overrides it, e.g. to send
    e-mail through its own SMTP server)."""
    return {}


@pytest.fixture(scope="module")
def server_worker(server, worker_env, django_db_blocker, tmp_path_factory):
    """A real Celery worker for what the ``server`` queues (PDFs, e-mails): the same test database,
    broker and settings as gunicorn; tenant tasks run in the schema that queued them.

    Module-scoped although the server lives for the session: test modules that start their own
    worker count the workers and read what theirs did, so this one stops with the module that
    asked for it. Tasks left in the broker by earlier tests (tenants since dropped) are purged.
    """
    from msp_billing.celery import app
    from tests.support import celery_command

    name = f"server-worker-{server}@localhost"
    with django_db_blocker.unblock():
        env = process_env(PUBLIC_URL_PORT=str(server), **worker_env)
    app.control.purge()

    def ready() -> bool:
        return bool(app.control.inspect(destination=[name], timeout=0.5).ping())

    log = tmp_path_factory.mktemp("logs") / "server-worker.log"
    command = celery_command("worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO", "--without-heartbeat",
                             "--without-gossip", "--without-mingle", f"--hostname={name}")
    with running(command, env=env, ready=ready, timeout=90, log=log):
        yield log


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
