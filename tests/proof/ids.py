"""Which table an id parameter names, found from its name and the path around it.

``invoice_id`` → invoices_invoice; ``pk`` after ``/work-types/`` → contracts_worktype;
``log_id`` after ``/failures/`` → integrations_integrationlog. Tables are ranked by how many
of those words their model's name has (fewer other words first); callers try them in that
order, so a guess that is wrong costs a request, never a missed route.
"""
from __future__ import annotations

import re

from django.apps import apps

from tests.proof.populated import tenant_models


def singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def words(text: str) -> set[str]:
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return {singular(w) for w in re.split(r"[^a-zA-Z]+", text.lower()) if w and w not in ("id", "pk", "new", "edit")}


def tables_for(hint_words: set[str]) -> list[str]:
    """Tables of the tenant schema, best match first (all of them: the last ones are long shots)."""
    ranked = []
    for model in tenant_models():
        model_words = words(model.__name__)
        ranked.append((-len(hint_words & model_words), len(model_words - hint_words), model._meta.db_table))
    ranked.sort()
    return [table for *_, table in ranked]


def model_of(table: str):
    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table == table:
            return model
    return None


def foreign_keys(table: str) -> dict[str, str]:
    """column → table it points to, for ``table``'s foreign keys."""
    model = model_of(table)
    if model is None:
        return {}
    return {f.column: f.related_model._meta.db_table for f in model._meta.concrete_fields
            if f.is_relation and f.related_model is not None}
