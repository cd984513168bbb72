"""Hostile values in every form and import: never a 500, never half a write.

The forms are found, not listed: every route of the URLconf is opened on alpha (filled with
data, see ``populated.py``) as its owner, and every POST form of the page is posted back
with some fields replaced by values hypothesis picks — huge and tiny numbers, NaN and
Infinity, NUL and control characters, 10,000-character strings, impossible dates, ids of
other tenants' rows and of alpha's other tables. Each post runs in a savepoint rolled back
afterwards. The answer is below 500; a refused post (4xx, or the form shown again with its
errors) leaves every table's row count as it was; an accepted post leaves every invoice
equal to the sum of its printed lines. The imports (the JSON billing data and the time CSV)
get the same values in their cells.

Bounded for CI: ``PROOF_EXAMPLES`` examples per form (3 by default; more for a deeper run,
e.g. ``PROOF_EXAMPLES=100``), the same examples each run unless ``PROOF_RANDOM=1``.
"""
from __future__ import annotations

import copy
import io
import json
import os
from collections import Counter
from urllib.parse import urljoin

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.proof.forms import Field, post_forms
from tests.proof.ids import model_of
from tests.proof.populated import id_tables, row_counts
from tests.proof.routes import sample_path, tenant_routes
from tests.proof.walk import alpha_walk, body_of

pytestmark = pytest.mark.django_db

FIGURES: Counter = Counter()
EXAMPLES = int(os.environ.get("PROOF_EXAMPLES", 3))
PROFILE = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=not os.environ.get("PROOF_RANDOM"),
                   suppress_health_check=list(HealthCheck), print_blob=True)
ROUTES = [route for route in tenant_routes() if not route.template.startswith("/accounts/")]

NUMBERS = ["1e30", "-1e30", "1e308", "1e-400", "9" * 400, "-0", "0", "-1", "0.0000000001", "2147483648", "-9223372036854775809",
           "NaN", "nan", "Infinity", "-Infinity", "inf", "1,5", "١٢٣", "0x1F", "1_000"]
TEXTS = ["", " ", "\x00", "a\x00b", "\x01\x02\x1b[31m\x7f", "\u202eevil", "x" * 10_000, "😀" * 300, "<script>alert(1)</script>",
         "' OR 1=1 --", "{{ 7*7 }}", "\r\n\r\n", "\ufeff"]
DATES = ["2026-02-30", "2026-13-01", "0000-00-00", "0001-01-01", "9999-12-31", "99999-01-01", "1899-12-31", "31/12/2026",
         "2026-1-1T25:61", "today"]
# Ids that are not alpha's: other tenants use small ids, alpha's are 10⁷ and more (populated.py).
OTHER_IDS = ["1", "2", "3", "4", "25", "10000001", "99999999999"]
HOSTILE = st.one_of(st.sampled_from(NUMBERS + TEXTS + DATES + OTHER_IDS),
                    st.integers(min_value=-(10**40), max_value=10**40).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40))


def _value_for(field: Field):
    """The field's own value (so the rest of the form stays valid), or a hostile one."""
    hostile = HOSTILE
    if field.kind == "select" and field.options:
        hostile = st.one_of(HOSTILE, st.sampled_from(field.options))
    return st.one_of(st.just(field.value), hostile)


@pytest.fixture(scope="module")
def forms(django_db_setup, django_db_blocker):
    """(route, page path, target, form) for every POST form on every page alpha's owner opens."""
    with alpha_walk(django_db_blocker, prefer=lambda page: any(form.editable() for form in post_forms(page))) as walk:
        owner = walk["clients"]["alpha", "owner"]
        found = {}
        with django_db_blocker.unblock():
            for route in ROUTES:
                if route.id_parameters and route.template not in walk["found"]:
                    continue  # test_cross_tenant names every route the walk could not open
                path = walk["found"][route.template][0] if route.id_parameters else sample_path(route)
                with transaction.atomic():
                    response = owner.get(path)
                    transaction.set_rollback(True)
                connection.set_schema_to_public()
                if response.status_code != 200 or response.streaming:
                    continue
                for form in post_forms(body_of(response)):
                    if form.editable():
                        target = urljoin(path, form.action) if form.action else path
                        found.setdefault(route.template, []).append((path, target, form))
        yield {"forms": found, "owner": owner}


def _shown_again_with_errors(body: str) -> bool:
    return 'class="errorlist' in body or 'class="form-errors' in body


def _invoices_add_up() -> list[str]:
    """Invoices whose total differs from the sum of their lines' amounts and taxes (none, ever)."""
    with connection.cursor() as cursor:
        cursor.execute("""SELECT i.number, i.total, coalesce(sum(l.amount + l.tax_amount), 0)
                            FROM alpha.invoices_invoice i LEFT JOIN alpha.invoices_invoiceline l ON l.invoice_id = i.id
                           GROUP BY i.id HAVING i.total <> coalesce(sum(l.amount + l.tax_amount), 0)""")
        return [f"{number}: {total} ≠ {lines}" for number, total, lines in cursor.fetchall()]


def _last_ids() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(f"SELECT '{t}', coalesce(max(id), 0) FROM alpha.\"{t}\"" for t in id_tables("alpha")))
        return dict(cursor.fetchall())


def _new_rows_invalid(last: dict[str, int]) -> list[str]:
    """Rows the post added that their own model would not accept (a half-filled object)."""
    from django.core.exceptions import ValidationError

    problems = []
    connection.set_schema("alpha")
    for table, previous in last.items():
        model = model_of(table)
        if model is None or not hasattr(model, "objects"):
            continue
        for row in model.objects.filter(pk__gt=previous)[:20]:
            try:
                row.full_clean(validate_unique=False, validate_constraints=False)
            except ValidationError as error:
                problems.append(f"{table} {row.pk}: {error.message_dict}")
    connection.set_schema_to_public()
    return problems


def _post_hostile(client, target: str, form, payload: dict, *, htmx: bool) -> None:
    with transaction.atomic():
        before, last = row_counts("alpha"), _last_ids()
        response = client.post(target, payload, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))
        connection.set_schema_to_public()
        after = row_counts("alpha")
        broken = _invoices_add_up() + _new_rows_invalid(last)
        transaction.set_rollback(True)
    connection.set_schema_to_public()
    shown = {k: (v[:40] + "…" if isinstance(v, str) and len(v) > 40 else v) for k, v in payload.items()}
    assert response.status_code < 500, f"{target} answered {response.status_code} to {shown}"
    body = "" if response.streaming else response.content.decode(errors="replace")
    refused = response.status_code >= 400 or _shown_again_with_errors(body)
    FIGURES["refused" if refused else "accepted"] += 1
    if not refused and after != before:
        FIGURES["accepted with new rows"] += 1
    if refused:
        changed = {t: (before[t], after.get(t)) for t in before if before[t] != after.get(t)}
        assert not changed, f"{target} refused {shown} but wrote {changed}"
    assert not broken, f"{target} accepted {shown} and left objects not whole: {broken}"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_hostile_values_in_every_form_never_answer_500_nor_write_half(forms, route):
    client = forms["owner"]
    for path, target, form in forms["forms"].get(route.template, []):
        fields = form.editable()
        base = {name: values for name, values in form.data().items()}

        @PROFILE
        @given(st.fixed_dictionaries({f.name: _value_for(f) for f in fields}), st.booleans())
        def post(values, htmx):
            payload = {**base, **values}
            _post_hostile(client, target, form, payload, htmx=htmx)

        post()


def test_some_forms_were_found_on_every_kind_of_page(forms):
    """The walk above means something: it found the product's main forms."""
    with_forms = set(forms["forms"])
    for template in ("/customers/new/", "/contracts/<int:pk>/edit/", "/tickets/<int:ticket_id>/",
                     "/invoices/<int:invoice_id>/payments/new/", "/settings/users/<int:user_id>/"):
        assert template in with_forms, f"no form found on {template}: {sorted(with_forms)}"
    assert len(with_forms) >= 30
    print(f"\nhostile input: {sum(map(len, forms['forms'].values()))} forms on {len(with_forms)} pages, "
          f"{EXAMPLES} examples each; posts refused {FIGURES['refused']}, accepted {FIGURES['accepted']} "
          f"({FIGURES['accepted with new rows']} adding rows, each checked whole)")
    # The checks of accepted posts are exercised: some posts get through with hostile values.
    assert FIGURES["accepted with new rows"] > 0


# --- the imports -------------------------------------------------------------------------------------

def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _leaves(value, (*path, index))
    else:
        yield path


def _set(document, path, value):
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


@pytest.fixture(scope="module")
def import_document():
    from tests.onboarding.import_data import document

    return document()


JSON_HOSTILE = st.one_of(HOSTILE, st.sampled_from([None, True, 1e308, -1, 10**30, [], {}, [[[[]]]], {"a": {"b": {}}}]))


@PROFILE
@given(data=st.data())
def _hostile_import(data, document, paths):
    from onboarding.importing import ImportRejected, billing_data_import
    from onboarding.importing.document import import_document_load

    hostile = copy.deepcopy(document)
    for path in data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=4, unique=True)):
        _set(hostile, path, data.draw(JSON_HOSTILE))
    raw = json.dumps(hostile, default=str).encode()
    with transaction.atomic():
        before = row_counts("alpha")
        connection.set_schema("alpha")
        try:
            billing_data_import(document=import_document_load(raw), acting_user=None)
        except ImportRejected as rejected:
            assert rejected.problems, "a refused import names its problems"
            connection.set_schema_to_public()
            assert row_counts("alpha") == before, "a refused import wrote rows"
        connection.set_schema_to_public()
        transaction.set_rollback(True)


def test_hostile_values_in_the_json_import_are_refused_cleanly(db, import_document):
    _hostile_import(document=import_document, paths=[p for p in _leaves(import_document) if p])


CSV_HEADER = "Date,Customer,Ticket,Technician,Work Type,Hours,Notes,Billable"


@PROFILE
@given(cells=st.lists(st.one_of(HOSTILE, st.just("2026-03-02")), min_size=8, max_size=8), row_count=st.integers(1, 3))
def _hostile_csv(client, cells, row_count):
    rows = "\n".join(",".join(json.dumps(cell) for cell in cells) for _ in range(row_count))
    upload = io.BytesIO(f"{CSV_HEADER}\n{rows}\n".encode("utf-8", errors="surrogatepass"))
    upload.name = "time.csv"
    with transaction.atomic():
        before = row_counts("alpha")
        response = client.post("/billing/import/time/", {"file": upload}, follow=True)
        connection.set_schema_to_public()
        for form in post_forms(body_of(response)):
            data = form.data()
            if "fingerprint" in data:  # the preview: confirm it
                response = client.post(response.redirect_chain[-1][0], data)
        connection.set_schema_to_public()
        after = row_counts("alpha")
        transaction.set_rollback(True)
    connection.set_schema_to_public()
    assert response.status_code < 500, f"time CSV {cells!r} answered {response.status_code}"
    if response.status_code >= 400:
        assert after == before


def test_hostile_values_in_the_time_csv_import_never_answer_500(client_for):
    _hostile_csv(client_for("alpha", "owner"))

