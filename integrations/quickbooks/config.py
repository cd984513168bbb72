"""QuickBooks Online settings: from Django settings when defined there, else from the environment.

``QBO_CLIENT_ID`` / ``QBO_CLIENT_SECRET``: the app's keys. ``QBO_ENVIRONMENT``:
``production``, ``sandbox``, or a discovery document URL (tests: the fake's).
``QBO_API_URL``: overrides the API base (``.../v3``). ``QBO_APP_URL``: where links to
documents point. ``QBO_MINOR_VERSION``: 75 unless set. ``QBO_BATCH_SIZE``: documents per
batch request, at most (and by default) 30.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from django.conf import settings

PRODUCTION_API = "https://quickbooks.api.intuit.com/v3"
SANDBOX_API = "https://sandbox-quickbooks.api.intuit.com/v3"
PRODUCTION_APP = "https://app.qbo.intuit.com/app"
SANDBOX_APP = "https://app.sandbox.qbo.intuit.com/app"


def _setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    return str(value) if value not in (None, "") else os.environ.get(name, default)


@dataclass(frozen=True)
class QboConfig:
    client_id: str
    client_secret: str
    environment: str
    api_url: str
    app_url: str
    minor_version: int
    batch_size: int = 30

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)


def qbo_config() -> QboConfig:
    environment = _setting("QBO_ENVIRONMENT", "production")
    sandbox = environment.lower() in ("sandbox", "sand")
    return QboConfig(
        client_id=_setting("QBO_CLIENT_ID"),
        client_secret=_setting("QBO_CLIENT_SECRET"),
        environment=environment,
        api_url=_setting("QBO_API_URL", SANDBOX_API if sandbox else PRODUCTION_API).rstrip("/"),
        app_url=_setting("QBO_APP_URL", SANDBOX_APP if sandbox else PRODUCTION_APP).rstrip("/"),
        minor_version=int(_setting("QBO_MINOR_VERSION", "75")),
        batch_size=max(1, min(30, int(_setting("QBO_BATCH_SIZE", "30")))),
    )
