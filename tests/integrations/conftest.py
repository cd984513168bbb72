"""Integration tests: encryption keys, plain-http OAuth (tests only), the URLs, the fake QuickBooks."""
from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet

# Set at import, before any test or process the tests start reads them (process_env copies os.environ).
os.environ.setdefault("INTEGRATION_FERNET_KEYS", f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}")
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the fakes speak plain http on 127.0.0.1

URLS = "tests.integrations.urls"


@pytest.fixture(scope="session")
def qbo_server():
    """One fake QuickBooks for the session; its URLs go into the environment (workers inherit them)."""
    from tests.fakes.quickbooks import FakeQuickBooks
    from tests.integrations.committed import fake_in_environ

    fake = FakeQuickBooks().start()
    with fake_in_environ(fake):
        yield fake
    fake.stop()


@pytest.fixture
def qbo(qbo_server):
    qbo_server.reset()
    yield qbo_server
    qbo_server.reset()


@pytest.fixture
def connected(tenant, qbo):
    """Alpha connected to the fake's company (as after the OAuth dance)."""
    from integrations.models import AccountingConnection
    from integrations.services import connection_store
    from tests.invoices.builders import admin

    company = qbo.company()
    tokens = qbo.issue_tokens(company.realm)
    connection = connection_store(system="quickbooks", acting_user=admin(), tokens={
        "access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"],
        "expires_in": tokens["expires_in"], "refresh_expires_in": tokens["x_refresh_token_expires_in"],
        "remote_tenant_id": company.realm, "remote_name": company.name})
    return AccountingConnection.objects.get(pk=connection.pk)


@pytest.fixture
def admin_client(client_for):
    return client_for("alpha", "billing_admin")
