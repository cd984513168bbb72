"""The import file itself: reading it, the schema check, and the problems and summary it yields."""
from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator

from onboarding.importing.checks import MAX_DEPTH, TooDeep, json_loads

SCHEMA_PATH = Path(settings.BASE_DIR) / "docs" / "import.schema.json"
# The order problems are listed in (the import itself takes the tax sections first).
SECTIONS = (
    "settings", "work_types", "roles", "rate_items", "products", "tax_rates", "tax_categories", "exclusion_sets",
    "technicians", "customers", "contracts", "tickets", "time_entries", "charges",
)
# What a contract's ``billed_through`` and a ``billed`` date stand for: noon, MSP time.
TOO_DEEP = f"arrays and objects are nested more than {MAX_DEPTH} deep; this is not an import file"


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProblem:
    """One invalid record or value, located by its JSON path."""

    parts: tuple[str | int, ...]
    message: str

    @property
    def path(self) -> str:
        return json_path(self.parts)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def sort_key(self):
        head = self.parts[0] if self.parts else ""
        section = SECTIONS.index(head) if head in SECTIONS else -1
        return (section, *[(0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.parts[1:]])


class ImportRejected(Exception):
    """The file has problems; nothing was saved."""

    def __init__(self, problems: Iterable[ImportProblem]):
        self.problems = sorted(problems, key=ImportProblem.sort_key)
        super().__init__(f"{len(self.problems)} problem(s); nothing was imported")


@dataclass
class ImportSummary:
    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    dry_run: bool = False

    def lines(self) -> list[str]:
        kinds = list(dict.fromkeys([*self.created, *self.updated, *self.unchanged]))
        lines = []
        for kind in kinds:
            parts = [f"{n} {label}" for label, n in (("created", self.created[kind]), ("updated", self.updated[kind]),
                                                     ("unchanged", self.unchanged[kind])) if n]
            lines.append(f"{kind}: {', '.join(parts)}")
        return lines


def json_path(parts: Iterable[str | int]) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def shown(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    return str(value)


def natural_key(value: Any) -> str:
    return " ".join(value.split()).casefold() if isinstance(value, str) else ""


# --- reading and the schema ----------------------------------------------------------------


def import_document_load(raw: bytes | str) -> Any:
    """The parsed file; numbers become ``Decimal`` so money never passes through a float."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected([ImportProblem((), "the file is not UTF-8 text")]) from None
    try:
        return json_loads(raw)
    except json.JSONDecodeError as error:
        raise ImportRejected(
            [ImportProblem((), f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}")]
        ) from None
    except TooDeep:
        raise ImportRejected([ImportProblem((), TOO_DEEP)]) from None


@functools.cache
def import_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(import_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def _schema_message(error) -> list[tuple[tuple, str]]:
    """One or more (path, message) for a jsonschema error, phrased for people."""
    path = tuple(error.absolute_path)
    kind, value, schema = error.validator, error.validator_value, error.schema
    if kind == "required":
        # One error per missing property, all with the same list: find this one's name.
        missing = [name for name in value if isinstance(error.instance, dict) and name not in error.instance
                   and error.message.startswith(repr(name))]
        return [((*path, name), "is required") for name in missing[:1]] or [(path, error.message)]
    if kind == "additionalProperties":
        known = set(schema.get("properties", {}))
        extra = [name for name in error.instance if name not in known]
        return [((*path, name), "is not a field of this record") for name in extra]
    description = schema.get("description")
    if kind == "pattern" and value == "\\S":
        return [(path, "must not be blank")]
    if kind in ("anyOf", "oneOf") or (kind == "pattern" and description):
        return [(path, f"{shown(error.instance)} is not {description}" if description else error.message)]
    if kind == "format" and value == "date":
        return [(path, f"{shown(error.instance)} is not a date (YYYY-MM-DD)")]
    if kind == "format" and value == "email":
        return [(path, f"{shown(error.instance)} is not an e-mail address")]
    if kind == "enum":
        return [(path, f"{shown(error.instance)} is not one of {', '.join(shown(v) for v in value)}")]
    if kind == "const":
        return [(path, f"must be {shown(value)}")]
    if kind == "type":
        expected = " or ".join(value) if isinstance(value, list) else value
        article = "an" if expected[0] in "aeiou" else "a"
        return [(path, f"must be {article} {expected}, not {shown(error.instance)}")]
    if kind == "minLength" and value == 1:
        return [(path, "must not be empty")]
    simple = {
        "minimum": "must be at least {}", "maximum": "must be at most {}", "exclusiveMinimum": "must be more than {}",
        "maxLength": "must be at most {} characters", "minItems": "must have at least {} items",
    }
    if kind in simple:
        return [(path, simple[kind].format(value))]
    if kind == "uniqueItems":
        return [(path, "lists the same item twice")]
    return [(path, error.message)]


def schema_problems(document: Any) -> list[ImportProblem]:
    return schema_check(document)[0]


def schema_check(document: Any) -> tuple[list[ImportProblem], set[tuple]]:
    """Every schema problem, and the records (paths of JSON objects in lists) they make unusable.

    A record with a wrong or missing value is not imported; an unknown field alone does not
    stop it, so its references are still checked and reported.
    """
    problems: dict[tuple, ImportProblem] = {}
    blocked: set[tuple] = set()
    for error in _validator().iter_errors(document):
        for path, message in _schema_message(error):
            # One message per value is enough (a bad date fails both its pattern and its format).
            problems.setdefault(path, ImportProblem(path, message))
        if error.validator != "additionalProperties":
            blocked.add(_enclosing_record(document, tuple(error.absolute_path)))
    return list(problems.values()), blocked


def _enclosing_record(document: Any, path: tuple) -> tuple:
    """The path of the innermost object-in-a-list that contains ``path`` (or its section, or ``()``)."""
    found: tuple = path[:1]
    node = document
    for depth, part in enumerate(path):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and isinstance(node, dict):
            found = path[: depth + 1]
    return found
