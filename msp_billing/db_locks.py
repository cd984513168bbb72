"""A PostgreSQL advisory lock held across transactions, directly or behind a transaction pooler."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, connections


@contextmanager
def advisory_lock_try(key: str) -> Iterator[bool]:
    """Try once to take the lock named ``key`` for the block; yields whether it was taken.

    Released at the block's end, or when the process dies (its connection closes). Directly on
    PostgreSQL: a session lock on the app's connection. Behind a transaction-pooling PgBouncer a
    session lock would stay on whichever server connection took it (the unlock may reach
    another): there the lock is a transaction lock in a transaction kept open on a connection
    of its own — which holds one server connection of the pool for the block.
    """
    if not getattr(connection, "transaction_pooled", False):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
            held = bool(cursor.fetchone()[0])
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
        return
    own = connections.create_connection(connection.alias)
    try:
        own.set_autocommit(False)
        with own.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", [key])
            held = bool(cursor.fetchone()[0])
        yield held
    finally:
        try:
            if own.connection is not None:
                own.rollback()
        finally:
            own.close()
