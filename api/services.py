"""API tokens (create, revoke, authenticate), the per-token rate limit and idempotent POSTs.

A token's secret is ``msp_`` + 40 random URL-safe characters, shown once; the table keeps
its SHA-256. Tokens live in the MSP's schema, so another MSP's token is unknown here (401)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from api.models import ApiToken, IdempotentRequest
from msp_billing.audit.services import audit_record
from msp_billing.tenants.today import tenant_today
from msp_billing.validation import Errors, check_date, clean_text

SECRET_PREFIX = "msp_"
MAX_TOKEN_DAYS = 366
LAST_USED_EVERY = dt.timedelta(minutes=1)  # last-used is written at most once a minute per token


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic
def token_create(*, user, name: str, expires_on: dt.date) -> tuple[ApiToken, str]:
    """A new token for ``user`` (acting as them, with their role) until the end of ``expires_on``;
    returns the row and the secret, which is not stored and cannot be shown again."""
    errors = Errors()
    name = clean_text(name)
    if not name or len(name) > 100:
        errors.add("name", "Name the token (where it is used) in at most 100 characters.")
    check_date(errors, "expires_on", expires_on)
    errors.raise_if_any()
    today = tenant_today()
    if expires_on <= today:
        errors.add("expires_on", "Pick a day after today.")
    elif expires_on > today + dt.timedelta(days=MAX_TOKEN_DAYS):
        errors.add("expires_on", f"A token lasts at most {MAX_TOKEN_DAYS} days; make a new one then.")
    errors.raise_if_any()
    secret = SECRET_PREFIX + secrets.token_urlsafe(30)
    end = timezone.make_aware(dt.datetime.combine(expires_on + dt.timedelta(days=1), dt.time.min))
    token = ApiToken.objects.create(user=user, name=name, prefix=secret[:10], digest=_digest(secret), expires_at=end)
    audit_record(actor=user, action="api_token_create", obj=user, after={"token": name, "expires_on": expires_on})
    return token, secret


@transaction.atomic
def token_revoke(*, token_id: int, user) -> ApiToken:
    """Revoke one of ``user``'s own tokens; at once, for every request after this one."""
    try:
        token = ApiToken.objects.select_for_update().get(pk=token_id, user=user)
    except ApiToken.DoesNotExist:
        raise ValidationError("No such token of yours.") from None
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=user, action="api_token_revoke", obj=user, after={"token": token.name})
    return token


def token_for(authorization: str) -> ApiToken | None:
    """The live token of an ``Authorization: Bearer <secret>`` header, with its active user; else None."""
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(SECRET_PREFIX) or len(secret) > 100:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=_digest(secret), revoked_at=None).first()
    now = timezone.now()
    if token is None or token.expires_at <= now or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- rate limit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimited(Exception):
    retry_after: int


def rate_limit_check(token: ApiToken) -> None:
    """A fixed window per token in Redis (``API_RATE_LIMIT`` requests per ``API_RATE_WINDOW``
    seconds); the key names the MSP's schema, as token ids repeat across MSPs."""
    limit, window = settings.API_RATE_LIMIT, settings.API_RATE_WINDOW
    now = time.time()
    slot = int(now // window)
    key = f"api:rate:{connection.schema_name}:{token.pk}:{slot}"
    cache.add(key, 0, timeout=window + 1)
    try:
        used = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=window + 1)
        used = 1
    if used > limit:
        raise RateLimited(retry_after=max(1, int((slot + 1) * window - now + 0.999)))


# --- idempotency --------------------------------------------------------------------------------

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\n" + path.encode() + b"\n" + body).hexdigest()


def idempotency_claim(*, token: ApiToken, key: str, fingerprint: str) -> IdempotentRequest | None:
    """Inside the caller's transaction: claim ``key`` for this request (None: go ahead) or return
    the first request's row. A concurrent request with the same key waits here until the first
    one's transaction ends (PostgreSQL's unique check), then reads its answer."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IdempotentRequest._meta.db_table} (token_id, key, fingerprint, content_type, body, created_at) "
            "VALUES (%s, %s, %s, '', ''::bytea, now()) ON CONFLICT (token_id, key) DO NOTHING RETURNING id",
            [token.pk, key, fingerprint],
        )
        inserted = cursor.fetchone()
    if inserted is not None:
        return None
    return IdempotentRequest.objects.get(token=token, key=key)


def idempotency_store(*, token: ApiToken, key: str, status: int, content_type: str, body: bytes) -> None:
    IdempotentRequest.objects.filter(token=token, key=key).update(status=status, content_type=content_type, body=body)


def idempotency_forget(*, token: ApiToken, key: str) -> None:
    IdempotentRequest.objects.filter(token=token, key=key).delete()


IDEMPOTENCY_KEPT = dt.timedelta(hours=24)


def idempotent_requests_expired():
    """Stored answers older than ``IDEMPOTENCY_KEPT``: a key is honoured for a day, as clients retry
    within minutes. Beat asks this of every MSP at once and cleans only where there are some."""
    return IdempotentRequest.objects.filter(created_at__lt=timezone.now() - IDEMPOTENCY_KEPT)


def idempotent_requests_forget() -> int:
    """Delete the expired stored answers (their keys may then be used again); returns how many."""
    deleted, _ = idempotent_requests_expired().delete()
    return deleted
