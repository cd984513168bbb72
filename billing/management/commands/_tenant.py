"""Commands that act for one MSP name it explicitly (docs/architecture.md: tenant context is explicit)."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError
from django.db.models import Q

from msp_billing.tenants.models import Msp


def msp_from_option(value: str) -> Msp:
    """The MSP whose sub-domain or schema name is ``value`` (never the public schema)."""
    value = (value or "").strip().lower()
    msp = Msp.objects.filter(Q(subdomain=value) | Q(schema_name=value)).exclude(
        schema_name=settings.PUBLIC_SCHEMA_NAME).first()
    if msp is None:
        raise CommandError(f"No MSP with the sub-domain or schema “{value}”.")
    return msp


def acting_user_from_option(email: str | None):
    """The user an import is recorded against in the audit log (in the MSP's schema)."""
    if not email:
        return None
    from msp_billing.accounts.models import User

    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise CommandError(f"No user {email} at this MSP.")
    return user


def file_bytes_from_option(path: str) -> bytes:
    """The bytes of the file a command was given, or a one-line error that says why not."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
