"""xero-python, configured: where it connects, how it refreshes, and no sleeping on 429.

Three things the SDK does not do the way we need (``docs/accounting-apis.md``):

* **Where**: ``AccountingApi`` and ``IdentityApi`` take a ``base_url``; the token and
  revocation URLs are class attributes of ``TokenApi``. :class:`XeroToken` overrides
  ``call_refresh_token_api`` (and revocation) to use the configured URLs, so the same code
  talks to identity.xero.com in production and to the fake Xero in tests.
* **Refresh**: the client asks ``oauth2_token_getter`` for the token before every call,
  refreshes it itself within 60 s of expiry and hands the new one to
  ``oauth2_token_saver`` — the connector stores it at once (refresh tokens rotate).
* **Configuration**: ``Configuration(oauth2_token=...)`` returns a copy of the first
  configuration ever made in the process, ignoring its arguments (see
  :func:`fresh_configuration`); each client gets its own instead.
* **429**: the SDK's urllib3 pool retries a 429 on GET/PUT and *sleeps* the whole
  ``Retry-After`` (a daily limit can mean hours, inside a Celery worker). Retries are
  switched off on the pool; the connector raises ``RateLimited`` and Celery waits.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient
from xero_python.api_client.configuration import Configuration
from xero_python.api_client.oauth2 import OAuth2Token, TokenApi
from xero_python.exceptions import HTTPStatusException
from xero_python.identity import IdentityApi

SCOPES = ("offline_access", "accounting.transactions", "accounting.contacts", "accounting.settings")


def _setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    if value in (None, ""):
        value = os.environ.get(name, default)
    return value or default


@dataclass(frozen=True)
class XeroEndpoints:
    """Where Xero is. Production defaults; every one can be set in settings or the environment."""

    api_url: str = "https://api.xero.com/api.xro/2.0"
    identity_api_url: str = "https://api.xero.com"  # /Connections
    authorize_url: str = "https://login.xero.com/identity/connect/authorize"
    token_url: str = "https://identity.xero.com/connect/token"
    revoke_url: str = "https://identity.xero.com/connect/revocation"
    web_url: str = "https://go.xero.com"

    @classmethod
    def configured(cls) -> XeroEndpoints:
        base = cls()
        return cls(
            api_url=_setting("XERO_API_URL", base.api_url),
            identity_api_url=_setting("XERO_IDENTITY_API_URL", base.identity_api_url),
            authorize_url=_setting("XERO_AUTHORIZE_URL", base.authorize_url),
            token_url=_setting("XERO_TOKEN_URL", base.token_url),
            revoke_url=_setting("XERO_REVOKE_URL", base.revoke_url),
            web_url=_setting("XERO_WEB_URL", base.web_url),
        )


@dataclass(frozen=True)
class XeroCredentials:
    client_id: str
    client_secret: str

    @classmethod
    def configured(cls) -> XeroCredentials:
        return cls(client_id=_setting("XERO_CLIENT_ID"), client_secret=_setting("XERO_CLIENT_SECRET"))


class TokenRefreshFailed(Exception):
    """The token endpoint refused a refresh (``error`` = OAuth error such as ``invalid_grant``) or failed.

    Not an ``HTTPStatusException`` on purpose: the SDK refreshes inside an accounting call
    and would otherwise report it as that call's own 400.
    """

    def __init__(self, *, status: int | None, error: str = "", detail: str = "") -> None:
        super().__init__(f"token refresh failed ({status}): {error or detail}")
        self.status = status
        self.error = error
        self.detail = detail


class XeroToken(OAuth2Token):
    """``OAuth2Token`` that refreshes and revokes at the configured identity URLs."""

    def __init__(self, client_id: str, client_secret: str, *, token_url: str, revoke_url: str) -> None:
        super().__init__(client_id=client_id, client_secret=client_secret)
        self.token_url = token_url
        self.revoke_url = revoke_url

    def call_refresh_token_api(self, token_api: TokenApi) -> dict[str, Any]:
        token_api.refresh_token_url = self.token_url
        try:
            return super().call_refresh_token_api(token_api)
        except HTTPStatusException as error:
            body = error.body.decode(errors="replace") if isinstance(error.body, bytes) else str(error.body or "")
            try:
                problem = str(json.loads(body).get("error", ""))
            except (ValueError, AttributeError):
                problem = ""
            raise TokenRefreshFailed(status=error.status, error=problem, detail=body) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise TokenRefreshFailed(status=None, detail=str(error)) from error

    def revoke_access_token(self, api_client: ApiClient) -> bool:
        # The SDK builds its TokenApi inside this method with the class's revoke URL.
        if not self.can_refresh_access_token():
            return False
        token_api = TokenApi(api_client, self.client_id, self.client_secret)
        token_api.revoke_token_url = self.revoke_url
        token_api.revoke_token(self.refresh_token)
        empty = {"access_token": None, "refresh_token": None, "scope": None, "expires_at": None,
                 "expires_in": None, "token_type": "Bearer", "id_token": None}
        self.update_token(**empty)
        api_client.set_oauth2_token(empty)
        return True


def build_api_client(*, credentials: XeroCredentials, endpoints: XeroEndpoints,
                     token_getter: Callable[[], dict[str, Any]],
                     token_saver: Callable[[dict[str, Any]], None]) -> ApiClient:
    token = XeroToken(credentials.client_id, credentials.client_secret,
                      token_url=endpoints.token_url, revoke_url=endpoints.revoke_url)
    client = ApiClient(fresh_configuration(token), oauth2_token_getter=token_getter, oauth2_token_saver=token_saver)
    disable_sdk_retries(client)
    return client


def fresh_configuration(token: OAuth2Token) -> Configuration:
    """A new ``Configuration`` holding *this* token.

    ``Configuration``'s metaclass hands every later ``Configuration(...)`` a shallow copy of
    the first one ever made in the process and ignores the arguments: every client would
    share the first connection's ``OAuth2Token`` (its client id, its token URL, and one
    mutable object for all tenants and threads of a worker). ``type.__call__`` builds a real
    instance instead.
    """
    return type.__call__(Configuration, oauth2_token=token)


def disable_sdk_retries(client: ApiClient) -> None:
    """No urllib3 retries at all: a 429 comes straight back (no sleeping), and so does a
    dropped connection (the task decides when to try again, with the same idempotency key)."""
    client.rest_client.pool_manager.connection_pool_kw["retries"] = False


def accounting_api(client: ApiClient, endpoints: XeroEndpoints) -> AccountingApi:
    return AccountingApi(client, base_url=endpoints.api_url)


def identity_api(client: ApiClient, endpoints: XeroEndpoints) -> IdentityApi:
    return IdentityApi(client, base_url=endpoints.identity_api_url)
