"""``/api/v1/``: the API's operations, each POST made idempotent by its ``Idempotency-Key``,
and a problem-details 404 for any other path under the prefix."""
from __future__ import annotations

from functools import wraps

from django.db import transaction
from django.http import HttpResponse
from django.urls import URLPattern, re_path

from api.core import api
from api.problems import PROBLEM_CONTENT_TYPE, problem
from api.services import (
    IDEMPOTENCY_HEADER,
    MAX_KEY_LENGTH,
    idempotency_claim,
    idempotency_forget,
    idempotency_store,
    request_fingerprint,
    token_for,
)

# Answers that describe the caller rather than the request are not replayed.
NOT_STORED = {401, 403, 429}


def idempotent(view):
    """A POST with an ``Idempotency-Key`` runs once per token and key: the first answer is
    stored in the same transaction as what the POST did, and a repeat (even a concurrent one,
    which waits for the first) gets that answer back (``Idempotent-Replayed: true``). The same
    key with another body is refused (422)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method != "POST" or key is None:
            return _method_problem(view(request, *args, **kwargs))
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            return problem(422, f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
                           errors={IDEMPOTENCY_HEADER: ["1 to 200 characters."]})
        token = token_for(request.headers.get("Authorization", ""))
        if token is None:
            return view(request, *args, **kwargs)  # answers 401
        request.api_token = token  # TokenAuth takes it from here rather than looking it up again
        fingerprint = request_fingerprint(request.method, request.path, request.body)
        with transaction.atomic():
            first = idempotency_claim(token=token, key=key, fingerprint=fingerprint)
            if first is None:
                response = _method_problem(view(request, *args, **kwargs))
                if response.status_code >= 500 or response.status_code in NOT_STORED or response.streaming:
                    idempotency_forget(token=token, key=key)
                else:
                    idempotency_store(token=token, key=key, status=response.status_code,
                                      content_type=response.get("Content-Type", ""), body=response.content)
                return response
        if first.fingerprint != fingerprint:
            return problem(422, "This Idempotency-Key was used with another request; use a new key for a new request.")
        replay = HttpResponse(bytes(first.body), status=first.status, content_type=first.content_type or PROBLEM_CONTENT_TYPE)
        replay["Idempotent-Replayed"] = "true"
        return replay

    return wrapped


def _method_problem(response):
    """A method the path does not take: 405 as problem details, with its Allow header."""
    if response.status_code != 405 or response.get("Content-Type") == PROBLEM_CONTENT_TYPE:
        return response
    return problem(405, "This path does not take this method.", headers={"Allow": response.get("Allow", "")})


def _open_to_token_holders(view):
    """The API checks its tokens and roles itself (api.core); the pages' sign-in does not apply."""
    view.required_capability = None
    return view


def _not_found(request, rest: str = ""):
    return problem(404, "There is no such API path; see /api/v1/docs.")


def _patterns():
    patterns, _, _ = api.urls
    wrapped = []
    for pattern in patterns:
        view = _open_to_token_holders(idempotent(pattern.callback))
        wrapped.append(URLPattern(pattern.pattern, view, pattern.default_args, pattern.name))
    return wrapped


app_name = "api"
urlpatterns = [*_patterns(), re_path(r"^(?P<rest>.*)$", _open_to_token_holders(_not_found))]
