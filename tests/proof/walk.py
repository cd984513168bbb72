"""Alpha filled with data, signed-in clients for alpha and beta, and a page of alpha for every route.

``alpha_walk(django_db_blocker)`` fills alpha (``populated.py``) inside a transaction that it
rolls back on exit, and finds for each route of the URLconf with id parameters ids of alpha
that give a page there: a GET, or for a POST-only route a POST rolled back, that is not 404.
"""
from __future__ import annotations

from contextlib import contextmanager

from django.db import connection, transaction
from django.test import Client
from django_tenants.utils import schema_context

from msp_billing.accounts.models import User
from tests.proof.ids import foreign_keys, model_of, tables_for, words
from tests.proof.populated import ids_by_table, populate_alpha, tenant_models
from tests.proof.routes import SAMPLES, tenant_routes
from tests.support import ROLES, body, email_for

ID_ROUTES = [route for route in tenant_routes() if route.id_parameters]
VISITOR = "visitor"


def _signed_in(subdomain: str, role: str) -> Client:
    client = Client(HTTP_HOST=f"{subdomain}.localhost")
    if role != VISITOR:
        with schema_context(subdomain):
            client.force_login(User.objects.get(email=email_for(subdomain, role)))
    return client


def _probe(client: Client, path: str):
    """GET ``path``; for a POST-only route, POST it — either way rolled back."""
    with transaction.atomic():
        response = client.get(path)
        if response.status_code == 405:
            response = client.post(path, {})
        transaction.set_rollback(True)
    connection.set_schema_to_public()
    return response


def body_of(response) -> str:
    return body(response).decode(errors="replace")


def _id_values(route, ids: dict[str, list[int]]):
    """Candidate {parameter: id} for ``route``, likeliest first; a child's parent comes from its foreign key."""
    names = route.id_parameters
    hints = {name: words(name) | words(route.segment_before(name)) for name in names}
    fixed = {name: SAMPLES.get(name, "x") for converter, name in route.parameters if converter != "int"}
    if len(names) == 1:
        [name] = names
        for rank, table in enumerate(tables_for(hints[name])):
            for value in ids.get(table, [])[: None if rank < 2 else 3]:
                yield {**fixed, name: value}
        return
    *parents, child = names
    for child_table in tables_for(hints[child])[:4]:
        keys = foreign_keys(child_table)
        values = ids.get(child_table, [])
        for value in dict.fromkeys(values[:10] + values[-10:]):
            combos = [{}]
            for parent in parents:
                # The tables the parameter's words name (a user's id is no batch's id), else the likeliest four.
                tables = [t for t in tables_for(hints[parent])[:4] if words(model_of(t).__name__) & hints[parent]] \
                    or tables_for(hints[parent])[:4]
                linked = [(column, table) for column, table in keys.items() if table in tables]
                if linked:
                    column, _ = linked[0]
                    with connection.cursor() as cursor:
                        cursor.execute(f'SELECT "{column}" FROM "alpha"."{child_table}" WHERE id = %s', [value])
                        choices = [cursor.fetchone()[0]]
                elif link := _link_table(child_table, tables):
                    # A table between the two (a batch's invoices): the parents this child is linked to.
                    table, parent_column, child_column = link
                    with connection.cursor() as cursor:
                        cursor.execute(f'SELECT "{parent_column}" FROM "alpha"."{table}" WHERE "{child_column}" = %s LIMIT 3',
                                       [value])
                        choices = [row[0] for row in cursor.fetchall()] or [v for t in tables for v in ids.get(t, [])[:5]]
                else:
                    choices = [v for table in tables for v in ids.get(table, [])[:5]]
                combos = [{**combo, parent: choice} for combo in combos for choice in choices]
            for combo in combos:
                yield {**fixed, **combo, child: value}


def _link_table(child_table: str, parent_tables: list[str]) -> tuple[str, str, str] | None:
    """(table, parent column, child column) of a table with foreign keys to the child and to one of the parents."""
    for model in tenant_models():
        keys = foreign_keys(model._meta.db_table)
        child_columns = [column for column, table in keys.items() if table == child_table]
        parent_columns = [column for column, table in keys.items() if table in parent_tables and table != child_table]
        if child_columns and parent_columns:
            return model._meta.db_table, parent_columns[0], child_columns[0]
    return None


@contextmanager
def alpha_walk(django_db_blocker, *, prefer=None):
    """Alpha filled, signed-in clients for both tenants, and for each id route a path of alpha that gives a page.

    ``prefer(page)``: keep looking (a few dozen ids more) for a page it accepts, such as one with a form."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            populated = populate_alpha()
            connection.set_schema_to_public()
            clients = {(tenant, role): _signed_in(tenant, role) for tenant in ("alpha", "beta") for role in (*ROLES, VISITOR)}
            with schema_context("alpha"):
                ids = ids_by_table("alpha", per_table=60)
            found, missing = {}, []
            for route in ID_ROUTES:
                first_found = None
                for attempt, values in enumerate(_id_values(route, ids)):
                    if attempt >= 200 or first_found is not None and attempt >= first_found + 40:
                        break
                    path = route.path(**values)
                    response = _probe(clients["alpha", "owner"], path)
                    if response.status_code != 404:
                        page = body_of(response) if response.status_code == 200 else ""
                        if route.template not in found:
                            found[route.template], first_found = (path, response.status_code, page), attempt
                        if prefer is None or prefer(page):
                            found[route.template] = (path, response.status_code, page)
                            break
                if route.template not in found:
                    missing.append(route.template)
            yield {"populated": populated, "clients": clients, "found": found, "missing": missing}
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)
            connection.set_schema_to_public()


