"""QuickBooks Online OAuth with the real intuit-oauth / python-quickbooks against the fake on 127.0.0.1."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptography.fernet import Fernet
from django.urls import reverse

from integrations import crypto, registry
from integrations.models import AccountingConnection, ExportRun, IntegrationLog
from integrations.quickbooks.connector import QuickBooksConnector
from tests.integrations.conftest import URLS
from tests.invoices.builders import admin, customer, issued, line

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLS)]


def connect_through_views(client, qbo, *, realm: str | None = None):
    """Admin clicks Connect, 'signs in' at the fake, and comes back to the callback."""
    response = client.post(reverse("integrations:connect", args=["quickbooks"]))
    assert response.status_code == 302
    authorize = response["Location"]
    assert authorize.startswith(qbo.base_url + "/oauth2/authorize?")
    query = parse_qs(urlparse(authorize).query)
    assert query["scope"] == ["com.intuit.quickbooks.accounting"] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://alpha.localhost/integrations/accounting/quickbooks/callback/"]
    granted = requests.get(authorize + (f"&realm={realm}" if realm else ""), allow_redirects=False, timeout=10)
    assert granted.status_code == 302
    back = urlparse(granted.headers["Location"])
    return client.get(back.path + "?" + back.query)


def test_connect_discovery_token_and_wizard_redirect(tenant, qbo, admin_client):
    response = connect_through_views(admin_client, qbo)
    assert response.status_code == 302 and response["Location"] == reverse("integrations:wizard", args=["welcome"])
    connection = AccountingConnection.objects.get(system="quickbooks")
    assert connection.status == "connected" and connection.remote_tenant_id == qbo.company().realm
    assert connection.remote_name == "Fake Company"
    # Tokens are stored encrypted: the columns hold Fernet tokens, not the secrets.
    assert connection.refresh_token.startswith("rt-") and connection.access_token.startswith("at-")
    assert "rt-" not in connection.refresh_token_encrypted and connection.refresh_token not in connection.refresh_token_encrypted
    assert qbo.calls_to("/.well-known/openid_configuration/") >= 2  # AuthClient reads discovery each time it is built
    assert qbo.calls_to("/oauth2/v1/tokens/bearer") == 1


def test_callback_with_a_foreign_state_is_refused(tenant, qbo, admin_client):
    admin_client.post(reverse("integrations:connect", args=["quickbooks"]))
    response = admin_client.get(reverse("integrations:callback", args=["quickbooks"]) + "?code=x&state=forged&realmId=1")
    assert response.status_code == 400
    assert not AccountingConnection.objects.exists()


def test_callback_without_starting_is_refused(tenant, qbo, admin_client):
    response = admin_client.get(reverse("integrations:callback", args=["quickbooks"]) + "?code=x&state=y")
    assert response.status_code == 400


def test_a_denied_authorization_connects_nothing(tenant, qbo, admin_client):
    response = admin_client.post(reverse("integrations:connect", args=["quickbooks"]))
    denied = requests.get(response["Location"] + "&deny=1", allow_redirects=False, timeout=10)
    back = urlparse(denied.headers["Location"])
    response = admin_client.get(back.path + "?" + back.query)
    assert response.status_code == 302 and not AccountingConnection.objects.exists()


def test_refresh_on_401_stores_the_newest_refresh_token_every_time(connected, qbo):
    first_refresh = connected.refresh_token
    qbo.expire_access_tokens()
    connector = QuickBooksConnector(connected)
    assert connector.fetch_customers() == []  # 401 → refresh → new client → the call again
    connected.refresh_from_db()
    second_refresh = connected.refresh_token
    assert second_refresh != first_refresh and second_refresh in qbo.refresh_tokens
    assert first_refresh in qbo.dead_refresh_tokens
    qbo.expire_access_tokens()
    QuickBooksConnector(AccountingConnection.objects.get(pk=connected.pk)).fetch_items()
    connected.refresh_from_db()
    assert connected.refresh_token not in (first_refresh, second_refresh)
    assert connected.refresh_token in qbo.refresh_tokens
    operations = list(IntegrationLog.objects.order_by("id").values_list("operation", "outcome"))
    assert operations.count(("oauth.refresh", "ok")) == 2
    assert ("customer.query", "failed") in operations and ("customer.query", "ok") in operations


def test_a_stale_connector_object_uses_the_token_another_refreshed(connected, qbo):
    """Two workers: the second must not spend the (rotated, now dead) refresh token again."""
    one = QuickBooksConnector(AccountingConnection.objects.get(pk=connected.pk))
    two = QuickBooksConnector(AccountingConnection.objects.get(pk=connected.pk))
    qbo.expire_access_tokens()
    one.fetch_customers()
    two.fetch_customers()  # its 401 leads to the refreshed row, not to invalid_grant
    connected.refresh_from_db()
    assert connected.status == "connected"


def test_a_dead_refresh_token_expires_the_connection_and_shows_reconnect(connected, qbo, admin_client):
    qbo.kill_refresh_tokens()
    qbo.expire_access_tokens()
    invoice = issued(customer("Dead Token GmbH"), [line("x", "1", "10", taxes=())])
    from integrations import services

    run = services.export_run_create(document_ids=[invoice.pk], acting_user=admin())
    step = services.export_run_execute(run_id=run.pk)
    assert step.state == ExportRun.State.PAUSED
    connected.refresh_from_db()
    assert connected.status == "expired" and "reconnect" in connected.last_error
    log = IntegrationLog.objects.get(operation="oauth.refresh")
    assert log.outcome == "failed" and log.error_code == "invalid_grant" and log.http_status == 400
    page = admin_client.get(reverse("integrations:accounting")).content.decode()
    assert "Expired — reconnect" in page and ">Reconnect</button>" in page
    # Reconnecting resumes the paused export.
    response = connect_through_views(admin_client, qbo, realm=connected.remote_tenant_id)
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.state == ExportRun.State.QUEUED
    assert services.export_run_execute(run_id=run.pk).state == ExportRun.State.DONE
    assert qbo.count("Invoice") == 1


def test_revoked_access_is_shown_as_revoked(connected, qbo):
    qbo.inject("query", 401, {"Fault": {"Error": [{"Message": "revoked", "code": "3200"}], "type": "AUTHENTICATION"}},
               times=2)
    connector = QuickBooksConnector(connected)
    from integrations.base import ConnectionLost

    with pytest.raises(ConnectionLost) as raised:
        connector.fetch_customers()
    assert raised.value.revoked


def test_disconnect_revokes_and_forgets_tokens(connected, qbo, admin_client):
    refresh = connected.refresh_token
    response = admin_client.post(reverse("integrations:disconnect", args=["quickbooks"]))
    assert response.status_code == 302
    connected.refresh_from_db()
    assert connected.status == "disconnected"
    assert connected.refresh_token_encrypted == "" and connected.access_token_encrypted == ""
    assert refresh in qbo.dead_refresh_tokens and refresh not in qbo.refresh_tokens
    assert IntegrationLog.objects.filter(operation="oauth.revoke", outcome="ok").exists()
    assert registry.active_connection() is None and not registry.owns_taxes()


def test_owns_taxes_while_connected(connected):
    assert registry.owns_taxes()
    connected.status = "expired"
    connected.save()
    assert not registry.owns_taxes()


def test_tokens_survive_key_rotation(connected, monkeypatch):
    old_keys = crypto.os.environ[crypto.ENV_NAME]
    secret = connected.refresh_token
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv(crypto.ENV_NAME, f"{new_key},{old_keys}")
    connection = AccountingConnection.objects.get(pk=connected.pk)
    assert connection.refresh_token == secret  # old key still decrypts
    rotated = crypto.reencrypt(connection.refresh_token_encrypted)
    assert Fernet(new_key.encode()).decrypt(rotated.encode()).decode() == secret
    connection.refresh_token = secret  # new writes use the first key
    assert Fernet(new_key.encode()).decrypt(connection.refresh_token_encrypted.encode()).decode() == secret
    monkeypatch.setenv(crypto.ENV_NAME, new_key)  # old key retired
    assert crypto.decrypt(rotated) == secret
    with pytest.raises(crypto.InvalidToken):
        crypto.decrypt(connected.refresh_token_encrypted)


def test_connecting_a_second_system_is_refused_while_one_is_active(connected, admin_client):
    from django.core.exceptions import ValidationError

    from integrations.services import connection_store

    with pytest.raises(ValidationError):
        connection_store(system="xero", tokens={"access_token": "a", "refresh_token": "r"}, acting_user=admin())


def test_roles(connected, client_for):
    technician = client_for("alpha", "technician")
    accountant = client_for("alpha", "accountant")
    assert technician.get(reverse("integrations:accounting")).status_code == 403
    assert accountant.get(reverse("integrations:accounting")).status_code == 200
    assert accountant.post(reverse("integrations:connect", args=["quickbooks"])).status_code == 403
    assert accountant.post(reverse("integrations:disconnect", args=["quickbooks"])).status_code == 403
    assert accountant.get(reverse("integrations:callback", args=["quickbooks"]) + "?code=x&state=y").status_code == 403
    assert technician.post(reverse("integrations:disconnect", args=["quickbooks"])).status_code == 403


def test_unknown_system_is_404(tenant, admin_client):
    assert admin_client.post(reverse("integrations:connect", args=["sage"])).status_code == 404
    assert admin_client.post(reverse("integrations:disconnect", args=["sage"])).status_code == 404
