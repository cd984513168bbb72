"""django-tenants' backend, for PostgreSQL behind a PgBouncer in transaction mode.

django-tenants runs ``SET search_path`` on its own when the tenant changes, and with
``TENANT_LIMIT_SET_CALLS`` not again. Behind a transaction-pooling PgBouncer each transaction
— each statement, in autocommit — may run on another server connection, whose session
``search_path`` is whatever its last client left: a query for one MSP can read another's tables.

Here every statement carries its MSP's path: ``SET LOCAL search_path TO "msp", "public";``
goes in front of it in the same message (the simple query protocol, one round trip). In
autocommit the two run as one implicit transaction, so on one server connection; inside a
transaction they run on the transaction's connection, and SET LOCAL ends with it. Nothing is
left on the server connection for the next client, and nothing is trusted from the last.

Not carried: statements that end or abort a transaction (``ROLLBACK`` must run even in a
failed transaction) and the few that must run outside a transaction block (``CREATE
DATABASE``). ``executemany``, ``copy`` and ``stream`` set the path first in the transaction,
opening one in autocommit. Server-side cursors (``.iterator()``) are refused: their FETCHes
would reach other server connections (``DISABLE_SERVER_SIDE_CURSORS`` is set with this backend).
"""
from __future__ import annotations

import re
import weakref
from contextlib import contextmanager, nullcontext

from django.core.exceptions import ImproperlyConfigured
from django.db import NotSupportedError
from django.db.backends.postgresql.base import Cursor
from django_tenants.postgresql_backend import base as tenants_base
from django_tenants.utils import quote_schema_name
from psycopg import pq, sql

_WITHOUT_PATH = re.compile(
    r"\s*(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE\s+TRANSACTION"
    r"|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM)\b",
    re.IGNORECASE,
)


class PooledCursor(Cursor):
    """Django's psycopg cursor (client-side binding) with the MSP's search_path in every statement."""

    def _path_statement(self, query) -> str | None:
        conn = self.connection
        wrapper = getattr(conn, "tenant_wrapper", lambda: None)()
        if wrapper is None:
            raise ImproperlyConfigured("a pooled cursor on a connection its database wrapper did not open")
        if conn.info.transaction_status == pq.TransactionStatus.INERROR:
            return None  # only ROLLBACK runs now; anything else fails as it would without the path
        if conn.pgconn.pipeline_status != pq.PipelineStatus.OFF:
            raise NotSupportedError("pipeline mode cannot carry the search_path behind a transaction pooler")
        if isinstance(query, (str, bytes)):
            head = query[:40].decode("utf-8", "replace") if isinstance(query, bytes) else query[:40]
            if _WITHOUT_PATH.match(head):
                return None
        return wrapper.search_path_statement

    def execute(self, query, params=None, **kwargs):
        statement = self._path_statement(query)
        if statement is None:
            return super().execute(query, params, **kwargs)
        if params is not None:
            statement = statement.replace("%", "%%")
        if isinstance(query, str):
            prefixed = f"{statement};\n{query}"
        elif isinstance(query, bytes):
            prefixed = f"{statement};\n".encode() + query
        else:
            prefixed = sql.SQL(f"{statement};\n") + query
        super().execute(prefixed, params, **kwargs)
        self.nextset()  # the statement's own result, not the SET's
        return self

    def _in_transaction(self):
        """A transaction for the path and what follows: psycopg's own in autocommit, else the one open."""
        return self.connection.transaction() if self.connection.autocommit else nullcontext()

    def executemany(self, query, params_seq, *, returning=False):
        statement = self._path_statement(query)
        if statement is None:
            return super().executemany(query, params_seq, returning=returning)
        with self._in_transaction():
            super().execute(statement)
            return super().executemany(query, params_seq, returning=returning)

    @contextmanager
    def copy(self, statement, params=None, *, writer=None):
        path = self._path_statement(statement)
        with nullcontext() if path is None else self._in_transaction():
            if path is not None:
                super().execute(path)
            with super().copy(statement, params, writer=writer) as copy:
                yield copy

    def stream(self, query, params=None, **kwargs):
        path = self._path_statement(query)
        with nullcontext() if path is None else self._in_transaction():
            if path is not None:
                super().execute(path)
            yield from super().stream(query, params, **kwargs)


class DatabaseWrapper(tenants_base.DatabaseWrapper):
    """The tenant's search_path set in every statement (``PooledCursor``), never on the session."""

    transaction_pooled = True
    _search_path_statement = None

    def set_tenant(self, tenant, include_public=True):
        super().set_tenant(tenant, include_public)
        self._search_path_statement = None

    @property
    def search_path_statement(self) -> str:
        if self._search_path_statement is None:
            self._handle_search_path()
            paths = ", ".join(quote_schema_name(name) for name in self._get_cursor_search_paths())  # validated there
            self._search_path_statement = f"SET LOCAL search_path TO {paths}"
        return self._search_path_statement

    def get_connection_params(self):
        params = super().get_connection_params()
        params["cursor_factory"] = PooledCursor
        params["prepare_threshold"] = None
        return params

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.tenant_wrapper = weakref.ref(self)
        return connection

    def _handle_search_path(self, cursor=None):
        if not self.schema_name:
            raise ImproperlyConfigured("Database schema not set. Did you forget to call set_schema() or set_tenant()?")

    def create_cursor(self, name=None):
        if name:
            raise NotSupportedError("server-side cursors do not survive transaction pooling: "
                                    "set DISABLE_SERVER_SIDE_CURSORS (DATABASE_POOL_MODE=transaction does)")
        return super().create_cursor(name)
