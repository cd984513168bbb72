"""Alpha's ids on beta's host, for every route of the URLconf with an id, as every role: nothing.

Alpha is filled so every table has rows (``populated.py``); for each route with id parameters
the walk finds ids of alpha that give a page there (a GET, or for a POST-only route a POST
rolled back, that is not 404), then asks beta's host for the same path as each role and as
a visitor: a GET, and a POST of the form alpha's page shows (filled as alpha's owner would
send it). Every answer is 404, 403, 405 or a redirect to sign-in, none shows alpha's marker,
and neither tenant's tables change. A new view is walked as soon as it is in the URLconf; if
the walk finds no id of alpha giving a page there, ``populated.py`` lacks its data and the
test says so.

Every Celery task that takes an id (from the task registry) is run in beta's schema with
alpha's id: it fails with "does not exist" or does nothing, and touches neither tenant.

All of it runs in one transaction rolled back at the end of the module.
"""
from __future__ import annotations

import inspect
from collections import Counter

import pytest
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django_tenants.utils import schema_context

from tests.proof.forms import post_forms
from tests.proof.ids import tables_for, words
from tests.proof.populated import MARKER, empty_tables, fingerprint, ids_by_table
from tests.proof.walk import ID_ROUTES, VISITOR, alpha_walk, body_of
from tests.support import ROLES

pytestmark = pytest.mark.django_db

REFUSED = (403, 404, 405)
FIGURES: Counter = Counter()


@pytest.fixture(scope="module")
def walk(django_db_setup, django_db_blocker):
    with alpha_walk(django_db_blocker) as found:
        yield found


def test_alpha_has_rows_in_every_table(walk):
    empty = empty_tables("alpha")
    assert not empty, empty


# A draft inside a batch: the set-up's second batch does not yet give the walk one (to do).
def test_every_route_with_an_id_gives_a_page_in_alpha_with_one_of_its_ids(walk):
    missing = walk["missing"]
    assert not missing, f"no id of alpha gives a page here: give populated.py the data they show: {missing}"
    assert all(status < 500 for _, status, _ in walk["found"].values()), walk["found"]
    # The marker check below means something: alpha's own pages show it.
    assert sum(MARKER in page for _, _, page in walk["found"].values()) >= 10


def _post_data(page: str) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for form in post_forms(page):
        for name, values in form.data().items():
            data.setdefault(name, values)
    data.pop("csrfmiddlewaretoken", None)
    return data


def _refused(response, role: str) -> bool:
    if response.status_code == 302:
        return response["Location"].startswith("/accounts/login/")
    return response.status_code in REFUSED and role != VISITOR


@pytest.mark.parametrize("route", ID_ROUTES, ids=str)
def test_alphas_ids_on_betas_host_give_nothing_to_anyone(walk, route):
    if route.template not in walk["found"]:
        pytest.fail(f"no page of alpha found for {route}")
    path, _, page = walk["found"][route.template]
    data = _post_data(page)
    before = {schema: fingerprint(schema) for schema in ("alpha", "beta")}
    problems = []
    for role in (*ROLES, VISITOR):
        client = walk["clients"]["beta", role]
        for method, call in (("GET", lambda: client.get(path)), ("POST", lambda: client.post(path, data)),
                             ("htmx POST", lambda: client.post(path, data, HTTP_HX_REQUEST="true"))):
            response = call()
            FIGURES["requests"] += 1
            body = body_of(response)
            if not _refused(response, role):
                FIGURES["wrong grants"] += 1
                problems.append(f"{role} {method} {path} on beta: {response.status_code}")
            if MARKER in body or "@alpha.example" in body:
                FIGURES["cross-tenant reads"] += 1
                problems.append(f"{role} {method} {path} on beta shows alpha's data")
    connection.set_schema_to_public()
    after = {schema: fingerprint(schema) for schema in ("alpha", "beta")}
    for schema in before:
        changed = [table for table in before[schema] if before[schema][table] != after[schema].get(table)]
        if changed:
            FIGURES["cross-tenant writes"] += 1
            problems.append(f"POSTs of {path} on beta changed {schema}: {changed}")
    assert problems == []


def _id_tasks():
    from msp_billing.celery import app

    app.loader.import_default_modules()
    found = []
    for name, task in sorted(app.tasks.items()):
        if name.startswith("celery."):
            continue
        parameters = [p for p in inspect.signature(task.run).parameters if p.endswith("_id")]
        if parameters:
            found.append((name, parameters))
    return found


ID_TASKS = _id_tasks()


def test_the_task_registry_has_tasks_that_take_ids():
    assert {"invoices.tasks.invoice_pdf_render", "integrations.tasks.export_run_task"} <= {name for name, _ in ID_TASKS}


@pytest.mark.parametrize("name,parameters", ID_TASKS, ids=[name for name, _ in ID_TASKS])
def test_a_task_run_in_betas_schema_with_alphas_id_fails_cleanly(walk, name, parameters):
    from msp_billing.celery import app
    from msp_billing.tenants.models import Msp

    with schema_context("alpha"):
        ids = ids_by_table("alpha", per_table=1)
    kwargs = {p: next(ids[t][0] for t in tables_for(words(p) | words(name.rsplit(".", 1)[-1])) if ids.get(t)) for p in parameters}
    before = {schema: fingerprint(schema) for schema in ("alpha", "beta")}
    connection.set_tenant(Msp.objects.get(schema_name="beta"))
    with transaction.atomic():
        result = app.tasks[name].apply(kwargs=kwargs)
        connection.set_schema_to_public()
        after = {schema: fingerprint(schema) for schema in ("alpha", "beta")}
        transaction.set_rollback(True)
    FIGURES["tasks"] += 1
    if result.failed():
        assert isinstance(result.result, ObjectDoesNotExist), f"{name}({kwargs}) in beta: {result.result!r}"
    else:
        assert result.result in (None, "", 0, [], {}) or "not" in str(result.result).lower(), f"{name}({kwargs}) in beta did {result.result!r}"
    assert after == before, f"{name} in beta with alpha's id changed data"


def test_figures(walk):
    """Printed with -s: how much was walked, and that nothing leaked (the tests above fail on any)."""
    print(f"\ncross-tenant walk: {len(ID_ROUTES)} id routes × {len(ROLES) + 1} roles × 3 requests = {FIGURES['requests']} "
          f"requests on beta with alpha's ids; wrong grants {FIGURES['wrong grants']}, cross-tenant reads "
          f"{FIGURES['cross-tenant reads']}, cross-tenant writes {FIGURES['cross-tenant writes']}; {FIGURES['tasks']} id tasks")
    assert FIGURES["wrong grants"] == FIGURES["cross-tenant reads"] == FIGURES["cross-tenant writes"] == 0
