"""The signature on every delivery (docs/webhooks.md shows how a receiver checks it).

``Webhook-Signature: v1=<hex>``: HMAC-SHA256 with the subscription's secret over
``<Webhook-Timestamp> + "." + <raw body>``; the timestamp is Unix seconds, so a receiver can
refuse old (replayed) deliveries.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

SCHEME = "v1"


def secret_new() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return f"{SCHEME}=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers(*, secret: str, timestamp: int, body: bytes, event_id: str, event_type: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "MSP-Billing-Webhooks/1",
        "Webhook-Id": event_id,
        "Webhook-Event": event_type,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature(secret, timestamp, body),
    }

