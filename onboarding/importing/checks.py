"""Values no import file may carry, found before anything else looks at the file.

The JSON schema says what each field may hold; this says what the database and the
checks themselves can take at all, wherever it appears: text with a NUL character or an
unpaired surrogate (PostgreSQL cannot store either), numbers too large for any amount,
quantity or count (or NaN and Infinity), and arrays or objects nested so deeply that
reading them would exhaust the stack. Each problem comes with the path of the value.
"""
from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

# An import file nests a handful of levels ($.contracts[0].rate_lines[0].rate); far more is not one.
MAX_DEPTH = 32
# No amount, quantity or count in the product has 15 integer digits.
MAX_NUMBER = Decimal(10) ** 15
# Integers longer than this are read as Decimal (and then reported), never as a huge int.
_LONG_INTEGER = 30
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class TooDeep(Exception):
    """The file nests arrays and objects deeper than ``MAX_DEPTH``."""


def json_loads(text: str) -> Any:
    """``json.loads`` for import files: floats as Decimal, long integers as Decimal (so they are
    reported as too large rather than refused by Python's digit limit), NaN/Infinity kept as
    floats (reported as not numbers); ``TooDeep`` instead of a RecursionError."""
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=float,
                          parse_int=lambda digits: int(digits) if len(digits) <= _LONG_INTEGER else Decimal(digits))
    except RecursionError:
        raise TooDeep from None


def _text_problem(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "contains a NUL character (\\u0000), which cannot be stored; remove it"
    return f"contains \\u{ord(char):04x}, half of a surrogate pair, which is not text; fix the file's encoding"


def unstorable_values(document: Any) -> list[tuple[tuple, str]]:
    """(path parts, message) for every value that cannot be imported whatever its field.

    Raises ``TooDeep`` when the document nests deeper than ``MAX_DEPTH`` (walked without
    recursion, so any depth is safe to check)."""
    found: list[tuple[tuple, str]] = []
    stack: list[tuple[Any, tuple]] = [(document, ())]
    while stack:
        node, parts = stack.pop()
        if len(parts) > MAX_DEPTH:
            raise TooDeep
        if isinstance(node, dict):
            for key, value in node.items():
                message = _text_problem(key)
                if message:
                    found.append(((*parts, key.replace("\x00", "\\u0000")), f"the field name {message}"))
                    continue
                stack.append((value, (*parts, key)))
        elif isinstance(node, list):
            stack.extend((value, (*parts, index)) for index, value in enumerate(node))
        elif isinstance(node, str):
            message = _text_problem(node)
            if message:
                found.append((parts, message))
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, float):  # only NaN and Infinity are read as float
            found.append((parts, f"{node} is not a number"))
        elif isinstance(node, (int, Decimal)):
            if not Decimal(node).is_finite():
                found.append((parts, "is not a number"))
            elif abs(node) >= MAX_NUMBER:
                found.append((parts, "is far too large a number"))
    return sorted(found, key=lambda item: [(0, p) if isinstance(p, int) else (1, p) for p in item[0]])


def out_of_range_message(error: Exception) -> str:
    """A problem for a value the database or the calendar refused (numeric overflow, a date
    past year 9999), with the database's own first line as the detail."""
    detail = (str(error).splitlines() or [""])[0].strip()
    return f"a value in this record is out of range and cannot be stored ({detail})" if detail else (
        "a value in this record is out of range and cannot be stored")
