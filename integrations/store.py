"""What a connector reads and writes about itself: its tokens and its remote mappings.

The connectors (``integrations.base``) and the services both use these; keeping them apart
from ``integrations.services`` lets a connector store a refreshed token or a new mapping
without importing the export machinery that drives it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.utils import timezone

from integrations.models import AccountingConnection, RemoteMapping, System


def token_expiry(seconds: float | None) -> dt.datetime | None:
    """When a token given ``seconds`` to live expires (None: not said)."""
    return timezone.now() + dt.timedelta(seconds=float(seconds)) if seconds else None


def connection_tokens_update(*, connection: AccountingConnection, access_token: str, refresh_token: str,
                             expires_in: float | None = None, refresh_expires_in: float | None = None) -> None:
    """Persist refreshed tokens at once — the old refresh token may already be dead."""
    connection.access_token = access_token
    if refresh_token:
        connection.refresh_token = refresh_token
    connection.access_expires_at = token_expiry(expires_in)
    if refresh_expires_in:
        connection.refresh_expires_at = token_expiry(refresh_expires_in)
    fields = ["access_token_encrypted", "refresh_token_encrypted", "access_expires_at", "refresh_expires_at", "updated_at"]
    # Outside any caller's transaction would be ideal; an UPDATE of one row is the next best.
    connection.save(update_fields=fields)


def mapping_get(*, system: str, local_type: str, local_id: int | str) -> RemoteMapping | None:
    return RemoteMapping.objects.filter(system=system, local_type=local_type, local_id=str(local_id)).first()


def mappings_for(*, system: str, local_type: str, local_ids: Iterable[int | str]) -> dict[str, RemoteMapping]:
    ids = [str(value) for value in local_ids]
    return {m.local_id: m for m in RemoteMapping.objects.filter(system=system, local_type=local_type, local_id__in=ids)}


def mapping_set(*, system: str, local_type: str, local_id: int | str, remote_id: str, remote_name: str = "",
                remote_code: str = "", extra: dict | None = None) -> RemoteMapping:
    mapping, _ = RemoteMapping.objects.update_or_create(
        system=system, local_type=local_type, local_id=str(local_id),
        defaults={"remote_id": str(remote_id), "remote_name": remote_name[:500], "remote_code": remote_code[:100],
                  "extra": extra or {}})
    return mapping


def xero_item_codes() -> dict[tuple[str, int], str]:
    """(local_type, local id) → Xero item code, for products / rate items matched to a Xero item."""
    return {
        (mapping.local_type, int(mapping.local_id)): mapping.remote_code
        for mapping in RemoteMapping.objects.filter(
            system=System.XERO, local_type__in=[RemoteMapping.LocalType.PRODUCT, RemoteMapping.LocalType.RATE_ITEM]
        ).exclude(remote_code="")
    }
