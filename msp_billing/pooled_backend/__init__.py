"""The database backend for PostgreSQL behind a PgBouncer in transaction mode.

``DATABASE_POOL_MODE=transaction`` (off by default: direct connections are unchanged) makes
the ``default`` database use ``msp_billing.pooled_backend``: every statement carries its
MSP's ``search_path`` (see ``base.py``), server-side cursors and prepared statements are
off. ``DATABASE_DIRECT_URL`` (optional) is the PostgreSQL behind the pool, for what needs a
session of its own: ``pg_dump`` of the MSP template (without it, new MSPs are made by
migrations). This module is imported by the settings and so imports nothing of Django's
database layer.
"""
from __future__ import annotations

from msp_billing.settings.urls import database_from_url

ENGINE = "msp_billing.pooled_backend"
MODES = ("", "off", "transaction")


def pooled_database(database: dict, mode: str, direct_url: str = "") -> dict:
    """``database`` (a DATABASES entry) as it must be for ``mode``: unchanged unless ``transaction``."""
    mode = (mode or "").strip().lower()
    if mode not in MODES:
        raise ValueError(f"DATABASE_POOL_MODE must be one of {', '.join(m for m in MODES if m)} (or empty), not {mode!r}")
    if mode != "transaction":
        return database
    options = {key: value for key, value in database.get("OPTIONS", {}).items() if key != "server_side_binding"}
    # psycopg prepares a statement after 5 runs: PgBouncer < 1.21 in transaction mode sends the
    # next run to a server connection that never saw it. Client-side binding (psycopg's
    # ClientCursor) is what lets the search_path travel in the statement's own message.
    options["prepare_threshold"] = None
    pooled = {**database, "ENGINE": ENGINE, "OPTIONS": options,
              # A server-side cursor (.iterator()) is a session object: the next FETCH may reach another server.
              "DISABLE_SERVER_SIDE_CURSORS": True}
    if direct_url:
        direct = database_from_url(direct_url)  # the same database name behind the pool
        pooled["DIRECT"] = {key: direct[key] for key in ("HOST", "PORT", "USER", "PASSWORD")}
    return pooled
