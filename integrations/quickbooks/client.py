"""python-quickbooks, configured: the HTTP status read before the body is parsed.

python-quickbooks parses every answer as JSON and raises one exception type for all of
them; a 429 or a 5xx must instead reach the export service as ``RateLimited`` (with
``Retry-After``) or ``TemporaryFailure`` so that Celery, not the worker, waits.
"""
from __future__ import annotations

from collections.abc import Mapping

import requests
from quickbooks import QuickBooks

from integrations.base import RateLimited, TemporaryFailure


class QuickBooksClient(QuickBooks):
    """python-quickbooks with the HTTP status read before the body is parsed."""

    last_response: requests.Response | None = None

    def process_request(self, request_type, url, headers="", params="", data=""):
        try:
            response = super().process_request(request_type, url, headers=headers, params=params, data=data)
        except requests.RequestException as error:
            raise TemporaryFailure(f"QuickBooks could not be reached: {error}") from error
        self.last_response = response
        if response.status_code == 429:
            raise RateLimited("QuickBooks rate limit reached", retry_after=retry_after(response.headers),
                              code="429", problem="minute")
        if response.status_code >= 500:
            raise TemporaryFailure(f"QuickBooks answered {response.status_code}: {response.text[:300]}",
                                   http_status=response.status_code, code=str(response.status_code))
        return response


def retry_after(headers: Mapping[str, str]) -> float:
    try:
        return float(headers.get("Retry-After") or 60)
    except ValueError:
        return 60.0
