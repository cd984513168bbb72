"""Encryption at rest of OAuth tokens (and any other secret an integration keeps).

Keys come from the environment, never from the database or settings files:
``INTEGRATION_FERNET_KEYS`` is a comma-separated list of Fernet keys
(``Fernet.generate_key()``). The first key encrypts; every key decrypts, so a key is
rotated by putting the new key first and keeping the old one after it until every row is
re-encrypted — by its next token refresh, or at once per tenant with
``integrations.services.connections_reencrypt()``.
"""
from __future__ import annotations

import os
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.core.exceptions import ImproperlyConfigured

ENV_NAME = "INTEGRATION_FERNET_KEYS"

__all__ = ["ENV_NAME", "InvalidToken", "decrypt", "encrypt", "reencrypt"]


@lru_cache(maxsize=4)
def _fernet_for(raw: str) -> MultiFernet:
    keys = [part.strip() for part in raw.split(",") if part.strip()]
    if not keys:
        raise ImproperlyConfigured(f"{ENV_NAME} holds no key")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as error:
        raise ImproperlyConfigured(f"{ENV_NAME}: every key must be a url-safe base64 32-byte Fernet key") from error


def _fernet() -> MultiFernet:
    raw = os.environ.get(ENV_NAME, "")
    if not raw.strip():
        raise ImproperlyConfigured(
            f"Set {ENV_NAME} (comma-separated Fernet keys) before connecting an accounting system")
    return _fernet_for(raw)


def encrypt(value: str) -> str:
    """``""`` stays ``""`` (no secret stored); anything else is a Fernet token (text)."""
    if not value:
        return ""
    return _fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return ""
    return _fernet().decrypt(token.encode()).decode()


def reencrypt(token: str) -> str:
    """The same secret encrypted with the current first key (key rotation)."""
    if not token:
        return ""
    return _fernet().rotate(token.encode()).decode()
