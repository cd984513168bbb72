"""Hold requests and answers to Xero's published OpenAPI description (openapi-core).

``xero_accounting.yaml`` is Xero's own description of the accounting API (where the tests
find it: :mod:`tests.fakes.xero_spec`).
The fake Xero (``tests/fakes/xero.py``) runs every request the connector sends and every
answer it gives through :class:`XeroSpec`, so the connector is held to Xero's contract and
the fake cannot drift into answers Xero would never give.

Two deliberate allowances, both written down in ``docs/integrations-xero.md``:

* the file fails openapi-core's own strict check (some boolean defaults are written as
  strings), so it is loaded with ``Config(spec_validator_cls=None)``;
* xero-python sends ``HasAttachments`` / ``HasErrors`` flags (model defaults) that the file
  marks ``readOnly`` and that Xero accepts: a ``readOnly`` complaint about exactly those two
  property names, carrying a boolean, is not a problem. Anything else is.

Answers with a status the file does not describe for the operation (401, 429, 500: Xero
documents them in prose only) cannot be checked against it; they are counted apart
(:attr:`SpecCheck.undescribed`) and their body must still be JSON or empty.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.datastructures import Headers, ImmutableMultiDict

# The file's server; requests are checked as if they had been sent there.
SPEC_ORIGIN = "https://api.xero.com"
SPEC_BASE_PATH = "/api.xro/2.0"
TOLERATED_READ_ONLY = frozenset({"HasAttachments", "HasErrors"})
UNDESCRIBED_STATUSES = frozenset({401, 403, 429, 500, 503})


@dataclass
class _Request:
    """openapi-core's request protocol, built from what the fake server received."""

    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: Any
    host_url: str = SPEC_ORIGIN


@dataclass
class _Response:
    status_code: int
    data: bytes
    content_type: str
    headers: Headers


class _BearerProvider:
    """Xero's ``OAuth2`` scheme on the wire: an ``Authorization: Bearer <token>`` header."""

    def __init__(self, scheme) -> None:
        self.scheme = scheme

    def __call__(self, parameters) -> str:
        from openapi_core.security.exceptions import SecurityProviderError

        value = parameters.header.get("Authorization", "")
        kind, _, token = value.partition(" ")
        if kind.lower() != "bearer" or not token.strip():
            raise SecurityProviderError("Missing bearer token.")
        return token


@cache
def _validators():
    """Load the file once per process (about a second) and build both validators."""
    from openapi_core import Config, OpenAPI
    from openapi_core.security.factories import SecurityProviderFactory
    from openapi_core.validation.request.validators import V30RequestValidator
    from openapi_core.validation.response.validators import V30ResponseValidator

    class Factory(SecurityProviderFactory):
        PROVIDERS = {**SecurityProviderFactory.PROVIDERS, "oauth2": _BearerProvider}

    import pytest

    from tests.fakes.xero_spec import XeroSpecUnavailable, xero_spec_path

    try:
        path = xero_spec_path()
    except XeroSpecUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    api = OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))
    return (V30RequestValidator(api.spec, security_provider_factory=Factory()),
            V30ResponseValidator(api.spec))


def _schema_problems(error: BaseException) -> list[str] | None:
    """The jsonschema errors under an openapi-core body error (None: not a schema error)."""
    cause = error.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors is None:
        return None
    problems = []
    for item in schema_errors:
        where = "/".join(str(part) for part in item.absolute_path)
        if (item.validator == "readOnly" and item.absolute_path and item.absolute_path[-1] in TOLERATED_READ_ONLY
                and isinstance(item.instance, bool)):
            continue
        problems.append(f"{where}: {item.message}")
    return problems


def _describe(error: BaseException) -> list[str]:
    problems = _schema_problems(error)
    if problems is not None:
        return [f"{error.__class__.__name__}: {problem}" for problem in problems]
    text = str(error)
    if error.__cause__ is not None:
        text = f"{text} ({error.__cause__})"
    return [f"{error.__class__.__name__}: {text}"]


@dataclass
class SpecCheck:
    """Problems found so far (thread-safe; the fake server answers on many threads)."""

    problems: list[str] = field(default_factory=list)
    checked: int = 0
    undescribed: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def request(self, *, method: str, path: str, query: str, headers: Mapping[str, str] | Iterable[tuple[str, str]],
                body: bytes | None) -> list[str]:
        """Check a request to ``/api.xro/2.0/...``; returns (and records) its problems."""
        request = self._request(method, path, query, headers, body)
        validator, _ = _validators()
        with self._lock:
            found = [problem for error in validator.iter_errors(request) for problem in _describe(error)]
            self.checked += 1
            self.problems.extend(f"request {method} {path}: {problem}" for problem in found)
        return found

    def response(self, *, method: str, path: str, query: str, headers: Mapping[str, str] | Iterable[tuple[str, str]],
                 body: bytes | None, status: int, response_headers: Mapping[str, str], data: bytes) -> list[str]:
        """Check the answer to a request (the request is needed to find the operation)."""
        request = self._request(method, path, query, headers, body)
        content_type = response_headers.get("Content-Type", "application/json").split(";")[0].strip()
        response = _Response(status, data, content_type, Headers(list(response_headers.items())))
        _, validator = _validators()
        with self._lock:
            self.checked += 1
            if status in UNDESCRIBED_STATUSES and not self._describes(request, status):
                self.undescribed[status] = self.undescribed.get(status, 0) + 1
                found = [] if not data or _is_json(data) else ["undescribed status with a body that is not JSON"]
            else:
                found = [problem for error in validator.iter_errors(request, response) for problem in _describe(error)]
            self.problems.extend(f"response {status} to {method} {path}: {problem}" for problem in found)
        return found

    def clear(self) -> None:
        with self._lock:
            self.problems.clear()
            self.undescribed.clear()
            self.checked = 0

    @staticmethod
    def _request(method, path, query, headers, body) -> _Request:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        header = Headers(list(pairs))
        content_type = (header.get("Content-Type") or "application/octet-stream").split(";")[0].strip().lower()
        from openapi_core.datatypes import RequestParameters

        parameters = RequestParameters(query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)), header=header)
        return _Request(method=method.lower(), path=path, body=body or None, content_type=content_type,
                        parameters=parameters)

    @staticmethod
    def _describes(request: _Request, status: int) -> bool:
        validator, _ = _validators()
        try:
            _, operation, _, _, _ = validator._find_path(request)
        except Exception:  # noqa: BLE001 - an unknown path is reported by the data check
            return True
        return str(status) in operation / "responses"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def spec_operation_ids(method: str, path: str) -> str | None:
    """The ``operationId`` the file gives a request (None: the file has no such operation)."""
    request = SpecCheck._request(method, path, "", {}, None)
    validator, _ = _validators()
    try:
        _, operation, _, _, _ = validator._find_path(request)
    except Exception:  # noqa: BLE001
        return None
    return (operation / "operationId").read_str()
