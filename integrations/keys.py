"""Idempotency keys, derived from what is being sent — never random.

A retry of the same export (a Celery retry, a worker killed and restarted, a second
click) sends the same key, and the accounting system answers with the first result
instead of creating a second document. The key names the MSP's schema (keys are
scoped per company in QuickBooks and per organisation in Xero, but one company could be
connected from two MSPs by mistake) and a version, raised only when an admin deliberately
re-exports a document that was deleted in the accounting system.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import connection

__all__ = ["chunk_key", "document_key", "object_key"]


def _fit(key: str, limit: int) -> str:
    """``key`` itself when short enough, else a readable prefix plus a hash of the whole key."""
    if len(key) <= limit:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return f"{key[: limit - 17]}-{digest}"


def document_key(invoice_id: int, *, version: int = 1, schema: str | None = None, limit: int = 50) -> str:
    """``inv-<schema>-<invoice id>-v<n>`` (credit notes are invoices too: their own id)."""
    schema = schema or connection.schema_name
    return _fit(f"inv-{schema}-{invoice_id}-v{version}", limit)


def object_key(kind: str, local_id: int | str, *, schema: str | None = None, limit: int = 50) -> str:
    """For customers and items created remotely: ``cus-<schema>-<id>``, ``product-<schema>-<id>``."""
    schema = schema or connection.schema_name
    return _fit(f"{kind}-{schema}-{local_id}", limit)


def chunk_key(keys: Iterable[str], *, prefix: str = "b", limit: int = 36) -> str:
    """One key for a batch request: a hash of its documents' keys in order (same chunk, same key)."""
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()
    return f"{prefix}-{digest}"[:limit]
