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
from tests.proof.ids import foreign_keys, tables_for, words
from tests.proof.populated import ids_by_table, populate_alpha
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
                tables = tables_for(hints[parent])[:4]
                linked = [(column, table) for column, table in keys.items() if table in tables]
                if linked:
                    column, _ = linked[0]
                    with connection.cursor() as cursor:
                        cursor.execute(f'SELECT "{column}" FROM "alpha"."{child_table}" WHERE id = %s', [value])
                        choices = [cursor.fetchone()[0]]
                else:
                    choices = [v for table in tables for v in ids.get(table, [])[:5]]
                combos = [{**combo, parent: choice} for combo in combos for choice in choices]
            for combo in combos:
                yield {**fixed, **combo, child: value}


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


