"""The API object: token authentication, the role checks, problem details for every refusal,
and the OpenAPI document saying so (4xx answers as ``application/problem+json``)."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from api.endpoints import billing, catalogue, contracts, customers, invoices, tickets
from api.problems import PROBLEM_CONTENT_TYPE, problem, service_errors, validation_errors
from api.services import RateLimited, rate_limit_check, token_for

class TokenAuth(HttpBearer):
    """``Authorization: Bearer msp_…``: the token's user becomes ``request.user``; then the rate limit."""

    def __call__(self, request):
        token = getattr(request, "api_token", None) or token_for(request.headers.get("Authorization", ""))
        if token is None:
            return None
        request.user = token.user
        request.api_token = token
        rate_limit_check(token)
        return token

    def authenticate(self, request, token):  # pragma: no cover - __call__ does the work
        return None


class ProblemAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        schema["info"]["description"] = (
            "The MSP's own data, on the MSP's own host. Authenticate with `Authorization: Bearer <token>` "
            "(Settings → API tokens). A token acts with its user's role. Every POST takes an `Idempotency-Key`. "
            "Refusals are RFC 9457 problem details."
        )
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for code, response in operation.get("responses", {}).items():
                    if str(code).startswith("4") and "content" in response:
                        response["content"] = {PROBLEM_CONTENT_TYPE: response["content"]["application/json"]}
                    if str(code) == "429":
                        response["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                               "description": "Seconds until the token may call again."}}
        return schema


api = ProblemAPI(title="MSP Billing API", version="1.0", urls_namespace="api", auth=TokenAuth(),
                 openapi_url="schema/", docs_url="docs")


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem(401, "Send a valid, unexpired API token of this MSP: `Authorization: Bearer <token>`.",
                   headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    return problem(429, f"This token made too many requests; try again in {exc.retry_after} s.",
                   headers={"Retry-After": str(exc.retry_after)})


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return problem(403, str(exc) or "Your role does not allow this.")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem(404, str(exc) or "Not found.")


@api.exception_handler(ValidationError)
def _refused(request, exc: ValidationError):
    errors = service_errors(exc)
    detail = " ".join(message for messages in errors.values() for message in messages)
    return problem(422, detail, errors=errors)


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc: NinjaValidationError):
    return problem(422, "The request does not match the schema.", errors=validation_errors(exc.errors))


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    return problem(exc.status_code, str(exc))



for module, prefix in ((customers, "/customers"), (contracts, "/contracts"), (catalogue, ""), (tickets, ""),
                       (invoices, ""), (billing, "/batches")):
    api.add_router(prefix, module.router)
