"""Parse the service URLs the settings are configured with."""
from __future__ import annotations

from urllib.parse import unquote, urlsplit


def database_from_url(url: str) -> dict:
    """A Django DATABASES entry from ``postgres://user:pass@host:port/name``.

    A host that is a percent-encoded path (``%2Fvar%2Frun``) or a ``?host=/path`` query
    means a Unix socket folder, as libpq has it.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
        raise ValueError(f"DATABASE_URL must be a postgres:// URL, not {parts.scheme}://")
    host = unquote(parts.hostname or "") if parts.netloc else ""
    if "%2f" in parts.netloc.lower():
        host = unquote(parts.netloc.rsplit("@", 1)[-1])
    options = dict(pair.split("=", 1) for pair in parts.query.split("&") if "=" in pair)
    host = unquote(options.pop("host", host))
    return {
        "ENGINE": "django_tenants.postgresql_backend",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or "") if not host.startswith("/") else "",
        "OPTIONS": options,
    }


def with_redis_db(url: str, db: int) -> str:
    """The same Redis server, another logical database."""
    if url.startswith("unix://"):
        base = url.split("?", 1)[0]
        return f"{base}?db={db}"
    parts = urlsplit(url)
    return parts._replace(path=f"/{db}").geturl()


def celery_url_from_redis(url: str) -> str:
    """Celery (kombu) spells a Unix socket ``redis+socket://``; redis-py ``unix://``."""
    if url.startswith("unix://"):
        path, _, query = url[len("unix://"):].partition("?")
        db = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("db", "0")
        return f"redis+socket://{path}?virtual_host={db}"
    return url
