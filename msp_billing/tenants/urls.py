"""Absolute URLs on a tenant's own host."""
from __future__ import annotations

from django.conf import settings


def tenant_host(subdomain: str) -> str:
    return f"{subdomain}.{settings.TENANT_BASE_DOMAIN}"


def tenant_url(tenant, path: str = "/") -> str:
    """``https://acme.example.com/path`` (with the local port when one is configured)."""
    domain = tenant.get_primary_domain()
    host = domain.domain if domain else tenant_host(tenant.subdomain)
    port = f":{settings.PUBLIC_URL_PORT}" if settings.PUBLIC_URL_PORT else ""
    return f"{settings.PUBLIC_URL_SCHEME}://{host}{port}{path}"
