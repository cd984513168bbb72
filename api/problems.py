"""Errors as RFC 9457 problem details (``application/problem+json``).

Every refusal of the API has the same shape: ``type``, ``title``, ``status``, ``detail``
and, for refused input, ``errors`` (field → messages, the same messages the pages show)."""

import json

from django.core.exceptions import ValidationError
from django.http import HttpResponse
from ninja import Schema

PROBLEM_CONTENT_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 413: "Request too large", 422: "Unprocessable content", 429: "Too many requests",
}


class Problem(Schema):
    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: dict[str, list[str]] | None = None


def problem(status: int, detail: str = "", *, errors: dict[str, list[str]] | None = None,
            headers: dict[str, str] | None = None) -> HttpResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def service_errors(error: ValidationError) -> dict[str, list[str]]:
    """A service's ``ValidationError`` as field → messages (``__all__`` for the whole request)."""
    if hasattr(error, "error_dict"):
        return {("__all__" if field == "__all__" else field): [m for e in errors for m in e.messages]
                for field, errors in error.error_dict.items()}
    return {"__all__": list(error.messages)}


def validation_errors(errors: list[dict]) -> dict[str, list[str]]:
    """Ninja's (pydantic's) request errors as field → messages; the field is the last part of its location."""
    found: dict[str, list[str]] = {}
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path", "header", "payload")]
        field = ".".join(location) or "__all__"
        found.setdefault(field, []).append(str(error.get("msg", "Invalid value.")))
    return found
