"""A fake Xero on 127.0.0.1 that speaks the wire format xero-python expects.

The real client library (xero-python) talks to it over HTTP, so the connector's code is the
code that would run against api.xero.com. What it does, as Xero documents it:

* **OAuth 2** (identity.xero.com): ``/identity/connect/authorize`` (consent is granted at
  once and the browser is redirected with ``code`` and ``state``), ``/identity/connect/token``
  (``authorization_code`` and ``refresh_token`` grants; refresh tokens rotate, a used one
  stays usable for a grace period, a dead one answers 400 ``invalid_grant``),
  ``/identity/connect/revocation``, and ``/connections`` (which organisations a token may
  reach). Access tokens last 30 minutes; an expired or unknown one answers 401.
* **Accounting API** under ``/api.xro/2.0``: ``Contacts``, ``Items``, ``TaxRates``,
  ``Accounts``, ``Organisation``, ``Invoices`` (PUT creates, POST updates or creates, GET with
  ``IDs`` / ``InvoiceNumbers`` / ``ContactIDs`` / ``Statuses`` / ``page`` / ``where`` /
  ``If-Modified-Since``), ``CreditNotes`` (and their ``Allocations``), ``Payments``.
  ``summarizeErrors=false`` answers 200 with ``HasErrors`` / ``ValidationErrors`` on each
  failed element and saves the others; otherwise one invalid element makes the whole
  request a 400 ``ValidationException`` and nothing is saved.
* **Idempotency-Key**: a repeated key (same organisation) answers with the first answer.
* **Rate limits** per organisation: calls per rolling minute, per rolling day and in flight
  at once (:class:`Limits`); a call over a limit answers 429 with ``Retry-After`` and
  ``X-Rate-Limit-Problem: minute|day|concurrent``; other answers carry
  ``X-MinLimit-Remaining`` / ``X-DayLimit-Remaining``.
* **Failures on demand**: :meth:`FakeXero.fail` makes the next matching calls answer 500 (or
  any status).

Every accounting request, and every answer to one, is checked against Xero's published
OpenAPI file by :class:`tests.fakes.openapi.SpecCheck`; problems are collected in
``fake.spec.problems`` and the fixtures fail a test that leaves any.

Time is the fake's own clock (:meth:`FakeXero.advance`) so tests can step past a
``Retry-After`` of an hour without waiting for it.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest

from tests.fakes.openapi import SpecCheck

API_PREFIX = "/api.xro/2.0"
ACCESS_TOKEN_SECONDS = 1800
REFRESH_TOKEN_SECONDS = 60 * 24 * 3600
REFRESH_GRACE_SECONDS = 1800
ZERO_ID = "00000000-0000-0000-0000-000000000000"
CENT = Decimal("0.01")


@dataclass
class Limits:
    """Xero's per-organisation limits (defaults: 60 a minute, 5,000 a day, 5 at once)."""

    per_minute: int = 60
    per_day: int = 5000
    concurrent: int = 5
    minute_seconds: float = 60  # length of the "minute" window (tests shorten it to see a retry happen)
    day_seconds: float = 86400  # length of the "day" window (the benchmark shortens both alike)

    @classmethod
    def scaled(cls, minute_seconds: float) -> Limits:
        """Xero's figures with the minute lasting ``minute_seconds`` and the day scaled alike."""
        return cls(minute_seconds=minute_seconds, day_seconds=86400 * minute_seconds / 60)

    def allowed(self) -> dict[str, tuple[int, float]]:
        """What the limiter allows: window → (calls, per seconds)."""
        return {"minute": (self.per_minute, self.minute_seconds), "day": (self.per_day, self.day_seconds)}


@dataclass
class Call:
    """One request the fake received, and its answer."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    tenant_id: str = ""
    replayed: bool = False
    answer: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)
    received_at: float = field(default_factory=time.monotonic)

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path.removeprefix(API_PREFIX)}"


@dataclass
class Failure:
    method: str
    path: str
    status: int
    times: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Grant:
    """One consent: the tokens issued from it and the organisations it reaches."""

    tenant_ids: list[str]
    scope: str
    revoked: bool = False


class XeroError(Exception):
    """An answer other than 200, raised inside a handler."""

    def __init__(self, status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


# --- wire formats ------------------------------------------------------------------------------


def ms_date(value: dt.date | dt.datetime) -> str:
    """``/Date(1541116800000+0000)/``: how Xero writes dates and times in JSON."""
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    else:
        stamp = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    return f"/Date({int(stamp.timestamp() * 1000)}+0000)/"


_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_date(value: Any) -> dt.date | None:
    """Xero accepts ``/Date(ms)/``, ``/Date(ms+0000)/`` and ``YYYY-MM-DD[Thh:mm:ss]``."""
    if value in (None, ""):
        return None
    text = str(value)
    match = _MS_DATE.match(text)
    if match:
        return dt.datetime.fromtimestamp(int(match.group(1)) / 1000, tz=dt.UTC).date()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"'{text}' is not a valid date") from None


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def plain(value: Any) -> Any:
    """JSON numbers out of Decimals (Xero writes amounts as numbers with 2 places)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _validation_error(message: str) -> dict[str, str]:
    return {"Message": message}


# --- default organisation --------------------------------------------------------------------


def _tax_rate(tax_type: str, name: str, components: list[tuple[str, str, bool]], *, report: str = "OUTPUT",
              revenue: bool = True, status: str = "ACTIVE") -> dict[str, Any]:
    simple = sum((Decimal(rate) for _, rate, compound in components if not compound), Decimal("0"))
    effective = simple
    for _, rate, compound in components:
        if compound:
            effective += (Decimal("100") + simple) * Decimal(rate) / 100
    return {
        "Name": name, "TaxType": tax_type, "Status": status, "ReportTaxType": report,
        "CanApplyToAssets": True, "CanApplyToEquity": True, "CanApplyToExpenses": not revenue,
        "CanApplyToLiabilities": True, "CanApplyToRevenue": revenue,
        "DisplayTaxRate": float(effective.quantize(Decimal("0.0001"))), "EffectiveRate": float(effective.quantize(Decimal("0.0001"))),
        "TaxComponents": [{"Name": label, "Rate": float(Decimal(rate)), "IsCompound": compound, "IsNonRecoverable": False}
                          for label, rate, compound in components],
    }


def default_tax_rates() -> list[dict[str, Any]]:
    return [
        _tax_rate("OUTPUT2", "20% (VAT on Income)", [("VAT", "20", False)]),
        _tax_rate("RROUTPUT", "5% (VAT on Income)", [("VAT", "5", False)]),
        _tax_rate("OUTPUT", "19% Umsatzsteuer", [("USt", "19", False)]),
        _tax_rate("TAX001", "GST + QST", [("GST", "5", False), ("QST", "9.975", True)]),
        _tax_rate("ZERORATEDOUTPUT", "Zero Rated Income", [("VAT", "0", False)]),
        _tax_rate("EXEMPTOUTPUT", "Exempt Income", [("VAT", "0", False)], report="EXEMPTOUTPUT"),
        _tax_rate("NONE", "No VAT", [("VAT", "0", False)], report="NONE"),
        _tax_rate("INPUT2", "20% (VAT on Expenses)", [("VAT", "20", False)], report="INPUT", revenue=False),
    ]


def default_accounts() -> list[dict[str, Any]]:
    def account(code, name, kind, tax_type, **extra):
        return {"AccountID": str(uuid.uuid4()), "Code": code, "Name": name, "Type": kind, "TaxType": tax_type,
                "Status": "ACTIVE", "Class": extra.pop("klass", "REVENUE"), "EnablePaymentsToAccount": False,
                "ShowInExpenseClaims": False, "HasAttachments": False, **extra}

    return [
        account("090", "Business Bank Account", "BANK", "NONE", klass="ASSET", BankAccountNumber="0209087654321050",
                BankAccountType="BANK", CurrencyCode="EUR"),
        account("200", "Sales", "REVENUE", "OUTPUT2"),
        account("210", "Managed Services", "REVENUE", "OUTPUT2"),
        account("260", "Other Revenue", "REVENUE", "OUTPUT2"),
        account("310", "Cost of Goods Sold", "DIRECTCOSTS", "INPUT2", klass="EXPENSE"),
        account("400", "Advertising", "EXPENSE", "INPUT2", klass="EXPENSE"),
    ]


@dataclass
class Organisation:
    """One Xero organisation (tenant) and everything in it."""

    tenant_id: str
    name: str
    base_currency: str = "EUR"
    currencies: set[str] = field(default_factory=lambda: {"EUR", "USD", "GBP", "CAD"})
    short_code: str = "!fK2Q9"
    tax_rates: list[dict[str, Any]] = field(default_factory=default_tax_rates)
    accounts: list[dict[str, Any]] = field(default_factory=default_accounts)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotent: dict[tuple[str, str], tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    minute_calls: deque = field(default_factory=deque)
    day_calls: deque = field(default_factory=deque)
    in_flight: int = 0

    def tax_rate(self, tax_type: str) -> dict[str, Any] | None:
        return next((rate for rate in self.tax_rates if rate["TaxType"] == tax_type), None)

    def account(self, code: str) -> dict[str, Any] | None:
        return next((account for account in self.accounts if account["Code"] == code), None)

    def item_by_code(self, code: str) -> dict[str, Any] | None:
        return next((item for item in self.items.values() if item["Code"] == code), None)


# --- the server ---------------------------------------------------------------------------------


class FakeXero:
    """State and behaviour; :class:`_Handler` only moves bytes."""

    client_id = "FAKE-XERO-CLIENT-ID"
    client_secret = "fake-xero-client-secret"

    def __init__(self, *, spec: SpecCheck | None = None, limits: Limits | None = None) -> None:
        from tests.fakes.openapi import _validators

        _validators()  # Xero's OpenAPI file, found (or the test fails saying how to provide it) before the server starts
        self.spec = spec if spec is not None else SpecCheck()
        self.limits = limits or Limits()
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.calls: list[Call] = []
        self.failures: list[Failure] = []
        self.handler_delay = 0.0  # seconds each accounting call takes (to test the concurrent limit)
        self.on_request: Callable[[Call], None] | None = None  # runs as each accounting call arrives (tests kill workers here)
        self.organisations: dict[str, Organisation] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, tuple[Grant, float]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.grants: list[Grant] = []
        self.consent_tenants: list[str] | None = None
        self.org = self.add_organisation("Alpha Managed IT (Xero)")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeXero:
        fake = self

        class Handler(_Handler):
            xero = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-xero", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + API_PREFIX

    @property
    def authorize_url(self) -> str:
        return self.url + "/identity/connect/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/identity/connect/token"

    @property
    def revoke_url(self) -> str:
        return self.url + "/identity/connect/revocation"

    # -- the clock ------------------------------------------------------------------------------

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward (rate-limit windows and token lifetimes follow)."""
        with self.lock:
            self.clock_offset += seconds

    # -- set-up helpers for tests ---------------------------------------------------------------

    def add_organisation(self, name: str, **extra) -> Organisation:
        org = Organisation(tenant_id=str(uuid.uuid4()), name=name, **extra)
        self.organisations[org.tenant_id] = org
        return org

    def add_contact(self, name: str, org: Organisation | None = None, **fields) -> dict[str, Any]:
        org = org or self.org
        with self.lock:
            contact = self._new_contact(org, {"Name": name, **fields})
        return contact

    def add_item(self, code: str, name: str, *, price: str = "0", account_code: str = "200",
                 tax_type: str | None = None, org: Organisation | None = None) -> dict[str, Any]:
        org = org or self.org
        sales = {"UnitPrice": float(Decimal(price)), "AccountCode": account_code}
        if tax_type:
            sales["TaxType"] = tax_type
        with self.lock:
            return self._new_item(org, {"Code": code, "Name": name, "SalesDetails": sales, "IsSold": True})

    def fail(self, method: str, path: str, *, status: int = 500, times: int = 1, body: dict | None = None) -> None:
        """The next ``times`` calls of ``method path`` (path under /api.xro/2.0, e.g. ``/Invoices``) answer ``status``."""
        with self.lock:
            self.failures.append(Failure(method.upper(), path, status, times, body or {}))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is expired from now on (the client may not know yet)."""
        with self.lock:
            now = self.now()
            self.access_tokens = {token: (grant, min(expires, now - 1)) for token, (grant, expires) in self.access_tokens.items()}

    def kill_refresh_tokens(self) -> None:
        """Every refresh token is dead (as after 60 days unused): refreshing answers invalid_grant."""
        with self.lock:
            self.refresh_tokens.clear()

    def issue_tokens(self, *, org: Organisation | None = None, scope: str = "offline_access accounting.transactions accounting.contacts accounting.settings") -> dict[str, Any]:
        """Tokens as if the admin had consented (for tests that do not walk the OAuth dance)."""
        with self.lock:
            grant = Grant(tenant_ids=[(org or self.org).tenant_id], scope=scope)
            self.grants.append(grant)
            return self._token_answer(grant)

    # -- what happened ----------------------------------------------------------------------------

    def calls_to(self, method: str, path: str) -> list[Call]:
        return [call for call in self.calls if call.method == method.upper() and call.path == API_PREFIX + path]

    def api_calls(self) -> list[Call]:
        return [call for call in self.calls if call.path.startswith(API_PREFIX)]

    def invoices(self, org: Organisation | None = None, *, number: str | None = None) -> list[dict[str, Any]]:
        org = org or self.org
        found = [inv for inv in org.invoices.values() if number is None or inv.get("InvoiceNumber") == number]
        return sorted(found, key=lambda inv: inv["_seq"])

    # -- call counts (the export benchmark) -------------------------------------------------------

    def calls_by_endpoint(self, *, status: int | None = None) -> Counter:
        """Calls received, per endpoint (``PUT /Invoices``, ``GET /TaxRates``, ``POST /identity/connect/token`` …)."""
        with self.lock:
            return Counter(call_endpoint(call) for call in self.calls if status is None or call.status == status)

    def accounting_calls(self, *, accepted_only: bool = False) -> int:
        """Calls to the accounting API (what the per-organisation limits count)."""
        with self.lock:
            return sum(1 for call in self.calls if call.path.startswith(API_PREFIX)
                       and not (accepted_only and call.status == 429))

    def throttled(self) -> int:
        """429 answers given (minute, day or concurrent limit)."""
        with self.lock:
            return sum(1 for call in self.calls if call.status == 429)

    def clear_counts(self) -> None:
        """Forget the calls received and the limiter's windows (records stay)."""
        with self.lock:
            self.calls.clear()
            for org in self.organisations.values():
                org.minute_calls.clear()
                org.day_calls.clear()

    # -- the identity service -------------------------------------------------------------------

    def handle_identity(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            if method == "GET" and path == "/identity/connect/authorize":
                return self._authorize(dict(parse_qsl(query)))
            form = {key: values[0] for key, values in parse_qs(body.decode() if body else "").items()}
            if method == "POST" and path == "/identity/connect/token":
                return self._token(form, headers)
            if method == "POST" and path == "/identity/connect/revocation":
                return self._revoke(form, headers)
            if path.lower().startswith("/connections"):
                return self._connections(method, path, headers)
        return _json(404, {"error": "not_found"})

    def _authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            return _json(400, {"error": "unauthorized_client"})
        if not params.get("redirect_uri"):
            return _json(400, {"error": "invalid_request"})
        code = secrets.token_urlsafe(24)
        tenants = self.consent_tenants or [self.org.tenant_id]
        self.codes[code] = {"redirect_uri": params["redirect_uri"], "scope": params.get("scope", ""), "tenants": list(tenants)}
        separator = "&" if "?" in params["redirect_uri"] else "?"
        location = params["redirect_uri"] + separator + urlencode({"code": code, "state": params.get("state", "")})
        return 302, {"Location": location}, b""

    def _client_ok(self, form: dict[str, str], headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secret == self.client_secret

    def _token(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if not self._client_ok(form, headers):
            return _json(400, {"error": "invalid_client"})
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            code = self.codes.pop(form.get("code", ""), None)
            if code is None or code["redirect_uri"] != form.get("redirect_uri"):
                return _json(400, {"error": "invalid_grant"})
            grant = Grant(tenant_ids=code["tenants"], scope=code["scope"])
            self.grants.append(grant)
            return _json(200, self._token_answer(grant))
        if grant_type == "refresh_token":
            entry = self.refresh_tokens.get(form.get("refresh_token", ""))
            now = self.now()
            if (entry is None or entry["grant"].revoked or entry["expires_at"] < now
                    or (entry["used_at"] is not None and entry["used_at"] + REFRESH_GRACE_SECONDS < now)):
                return _json(400, {"error": "invalid_grant"})
            entry["used_at"] = entry["used_at"] or now
            return _json(200, self._token_answer(entry["grant"]))
        return _json(400, {"error": "unsupported_grant_type"})

    def _token_answer(self, grant: Grant) -> dict[str, Any]:
        access, refresh = "xat-" + secrets.token_urlsafe(24), "xrt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (grant, self.now() + ACCESS_TOKEN_SECONDS)
        self.refresh_tokens[refresh] = {"grant": grant, "expires_at": self.now() + REFRESH_TOKEN_SECONDS, "used_at": None}
        return {"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer",
                "refresh_token": refresh, "scope": grant.scope}

    def _revoke(self, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if not self._client_ok(form, headers):
            return _json(400, {"error": "invalid_client"})
        entry = self.refresh_tokens.get(form.get("token", ""))
        if entry is not None:
            entry["grant"].revoked = True
        return 200, {"Content-Type": "application/json"}, b""

    def _grant_for(self, headers: dict[str, str]) -> tuple[Grant | None, str]:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None, "AuthenticationUnsuccessful"
        entry = self.access_tokens.get(auth[7:].strip())
        if entry is None or entry[0].revoked:
            return None, "AuthenticationUnsuccessful"
        grant, expires_at = entry
        if expires_at <= self.now():
            stamp = dt.datetime.fromtimestamp(expires_at, tz=dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
            return None, f"TokenExpired: token expired at {stamp}"
        return grant, ""

    def _connections(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        grant, problem = self._grant_for(headers)
        if grant is None:
            return _json(401, _unauthorized(problem), {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if method == "GET":
            now = dt.datetime.fromtimestamp(self.now(), tz=dt.UTC).isoformat()
            return _json(200, [
                {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, tenant)), "authEventId": str(uuid.uuid4()), "tenantId": tenant,
                 "tenantType": "ORGANISATION", "tenantName": self.organisations[tenant].name,
                 "createdDateUtc": now, "updatedDateUtc": now}
                for tenant in grant.tenant_ids
            ])
        if method == "DELETE":
            connection_id = path.rsplit("/", 1)[-1]
            grant.tenant_ids = [t for t in grant.tenant_ids if str(uuid.uuid5(uuid.NAMESPACE_URL, t)) != connection_id]
            return 204, {}, b""
        return _json(405, {"error": "method_not_allowed"})

    # -- the accounting API ----------------------------------------------------------------------

    def handle_api(self, call: Call, raw_body: bytes) -> tuple[int, dict[str, str], bytes]:
        if self.on_request is not None:
            self.on_request(call)
        status, headers, data = self._handle_api(call, raw_body)
        org = self.organisations.get(call.tenant_id)
        if org is not None and status != 429:
            with self.lock:
                headers = {**self._remaining(org), **headers}
        return status, headers, data

    def _handle_api(self, call: Call, raw_body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = call.headers
        with self.lock:
            grant, problem = self._grant_for(headers)
            if grant is None:
                return _json(401, _unauthorized(problem), {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            tenant_id = headers.get("xero-tenant-id", "")
            if tenant_id not in grant.tenant_ids or tenant_id not in self.organisations:
                return _json(403, {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"})
            call.tenant_id = tenant_id
            org = self.organisations[tenant_id]
            limited = self._rate_limit(org)
            if limited is not None:
                return limited
            org.in_flight += 1
        try:
            if self.handler_delay:
                time.sleep(self.handler_delay)
            with self.lock:
                failure = self._take_failure(call)
                if failure is not None:
                    return _json(failure.status, failure.body or {
                        "Title": "An error occurred", "Status": failure.status,
                        "Detail": "An error occurred in Xero. Check the API Status page http://status.developer.xero.com for current service status."})
                key = headers.get("idempotency-key", "")
                if key:
                    if len(key) > 128:
                        return _json(400, {"ErrorNumber": 10, "Type": "ValidationException",
                                           "Message": "Idempotency-Key must be at most 128 characters"})
                    stored = org.idempotent.get((call.method, key))
                    if stored is not None:
                        call.replayed = True
                        return stored
                answer = self._dispatch(org, call, raw_body)
                if key and answer[0] < 500:
                    org.idempotent[(call.method, key)] = answer
                return answer
        finally:
            with self.lock:
                org.in_flight -= 1

    def _rate_limit(self, org: Organisation) -> tuple[int, dict[str, str], bytes] | None:
        now = self.now()
        while org.minute_calls and org.minute_calls[0] <= now - self.limits.minute_seconds:
            org.minute_calls.popleft()
        while org.day_calls and org.day_calls[0] <= now - self.limits.day_seconds:
            org.day_calls.popleft()
        problem, retry_after = None, 0
        if org.in_flight >= self.limits.concurrent:
            problem, retry_after = "concurrent", 1
        elif len(org.day_calls) >= self.limits.per_day:
            problem = "day"
            retry_after = org.day_calls[len(org.day_calls) - self.limits.per_day] + self.limits.day_seconds - now
        elif len(org.minute_calls) >= self.limits.per_minute:
            problem = "minute"
            retry_after = org.minute_calls[len(org.minute_calls) - self.limits.per_minute] + self.limits.minute_seconds - now
        if problem is not None:
            headers = {"Retry-After": str(max(1, math.ceil(retry_after))), "X-Rate-Limit-Problem": problem, **self._remaining(org)}
            return _json(429, {"Title": "Too Many Requests", "Status": 429, "Detail": f"Rate limit exceeded: {problem}"}, headers)
        org.minute_calls.append(now)
        org.day_calls.append(now)
        return None

    def _remaining(self, org: Organisation) -> dict[str, str]:
        return {"X-MinLimit-Remaining": str(max(0, self.limits.per_minute - len(org.minute_calls))),
                "X-DayLimit-Remaining": str(max(0, self.limits.per_day - len(org.day_calls))),
                "X-AppMinLimit-Remaining": "9999"}

    def _take_failure(self, call: Call) -> Failure | None:
        for failure in self.failures:
            if failure.method == call.method and API_PREFIX + failure.path == call.path and failure.times > 0:
                failure.times -= 1
                return failure
        return None

    def _dispatch(self, org: Organisation, call: Call, raw_body: bytes) -> tuple[int, dict[str, str], bytes]:
        resource = call.path.removeprefix(API_PREFIX).strip("/")
        parts = resource.split("/")
        query = {key: values[-1] for key, values in parse_qs(call.query, keep_blank_values=True).items()}
        try:
            body = json.loads(raw_body, parse_float=Decimal) if raw_body else None
        except ValueError:
            return _json(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": "Invalid Json data"})
        route = {
            ("GET", "Organisation"): self._get_organisation,
            ("GET", "Accounts"): self._get_accounts,
            ("GET", "TaxRates"): self._get_tax_rates,
            ("GET", "Contacts"): self._get_contacts,
            ("PUT", "Contacts"): self._put_contacts,
            ("POST", "Contacts"): self._put_contacts,
            ("GET", "Items"): self._get_items,
            ("PUT", "Items"): self._put_items,
            ("POST", "Items"): self._put_items,
            ("GET", "Invoices"): self._get_invoices,
            ("PUT", "Invoices"): self._put_invoices,
            ("POST", "Invoices"): self._put_invoices,
            ("GET", "CreditNotes"): self._get_credit_notes,
            ("PUT", "CreditNotes"): self._put_credit_notes,
            ("POST", "CreditNotes"): self._put_credit_notes,
            ("GET", "Payments"): self._get_payments,
            ("PUT", "Payments"): self._put_payments,
            ("POST", "Payments"): self._put_payments,
        }
        try:
            if len(parts) == 3 and parts[0] == "CreditNotes" and parts[2] == "Allocations" and call.method in ("PUT", "POST"):
                return _json(200, self._envelope(self._allocate(org, parts[1], body, query)))
            if len(parts) == 2 and call.method == "GET" and parts[0] in ("Invoices", "CreditNotes", "Contacts", "Items", "Payments"):
                return _json(200, self._envelope(self._get_one(org, parts[0], parts[1])))
            handler = route.get((call.method, resource))
            if handler is None:
                return _json(404, {"Title": "Not Found", "Status": 404, "Detail": f"No resource {call.method} {resource}"})
            return _json(200, self._envelope(handler(org, query, body, call)))
        except XeroError as error:
            return _json(error.status, error.body or {}, error.headers)

    def _envelope(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "MSP Billing",
                "DateTimeUTC": ms_date(self._utcnow()).replace("+0000", ""), **payload}

    def _utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.now(), tz=dt.UTC)

    def _stamp(self, record: dict[str, Any]) -> None:
        now = self._utcnow()
        record["UpdatedDateUTC"] = ms_date(now)
        record["_updated"] = now

    # --- reading ---

    def _modified_since(self, call: Call) -> dt.datetime | None:
        value = call.headers.get("if-modified-since")
        if not value:
            return None
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

    def _listing(self, records: list[dict[str, Any]], query: dict[str, str], call: Call, *, key: str,
                 page_size: int = 100) -> dict[str, Any]:
        since = self._modified_since(call)
        if since is not None:
            records = [record for record in records if record["_updated"] > since]
        if query.get("where"):
            records = [record for record in records if _where(query["where"], record)]
        records = sorted(records, key=lambda record: record["_seq"])
        answer: dict[str, Any] = {}
        if "page" in query:
            page = max(1, int(query["page"]))
            size = min(1000, int(query.get("pageSize") or page_size))
            count = len(records)
            records = records[(page - 1) * size: page * size]
            answer["pagination"] = {"page": page, "pageSize": size, "pageCount": max(1, math.ceil(count / size)), "itemCount": count}
        answer[key] = [_public(record) for record in records]
        return answer

    def _get_organisation(self, org: Organisation, query, body, call) -> dict[str, Any]:
        return {"Organisations": [{
            "OrganisationID": org.tenant_id, "Name": org.name, "LegalName": org.name, "PaysTax": True,
            "Version": "GLOBAL", "OrganisationType": "COMPANY", "BaseCurrency": org.base_currency, "CountryCode": "DE",
            "IsDemoCompany": False, "OrganisationStatus": "ACTIVE", "ShortCode": org.short_code,
            "Class": "STANDARD", "Edition": "BUSINESS", "Timezone": "WEUROPESTANDARDTIME",
            "OrganisationEntityType": "COMPANY", "FinancialYearEndDay": 31, "FinancialYearEndMonth": 12,
        }]}

    def _get_accounts(self, org: Organisation, query, body, call) -> dict[str, Any]:
        accounts = [account for account in org.accounts if not query.get("where") or _where(query["where"], account)]
        return {"Accounts": accounts}

    def _get_tax_rates(self, org: Organisation, query, body, call) -> dict[str, Any]:
        rates = [rate for rate in org.tax_rates if not query.get("where") or _where(query["where"], rate)]
        if query.get("TaxType"):
            rates = [rate for rate in rates if rate["TaxType"] == query["TaxType"]]
        return {"TaxRates": rates}

    def _get_contacts(self, org: Organisation, query, body, call) -> dict[str, Any]:
        records = list(org.contacts.values())
        if query.get("IDs"):
            wanted = set(query["IDs"].split(","))
            records = [record for record in records if record["ContactID"] in wanted]
        if query.get("includeArchived", "").lower() != "true":
            records = [record for record in records if record["ContactStatus"] == "ACTIVE"]
        if query.get("searchTerm"):
            term = query["searchTerm"].lower()
            records = [r for r in records if term in r["Name"].lower() or term in r.get("EmailAddress", "").lower()]
        return self._listing(records, query, call, key="Contacts")

    def _get_items(self, org: Organisation, query, body, call) -> dict[str, Any]:
        return self._listing(list(org.items.values()), query, call, key="Items")

    def _get_invoices(self, org: Organisation, query, body, call) -> dict[str, Any]:
        records = list(org.invoices.values())
        for param, name in (("IDs", "InvoiceID"), ("InvoiceNumbers", "InvoiceNumber"), ("Statuses", "Status")):
            if query.get(param):
                wanted = set(query[param].split(","))
                records = [record for record in records if record.get(name) in wanted]
        if query.get("ContactIDs"):
            wanted = set(query["ContactIDs"].split(","))
            records = [record for record in records if record["Contact"]["ContactID"] in wanted]
        return self._listing(records, query, call, key="Invoices")

    def _get_credit_notes(self, org: Organisation, query, body, call) -> dict[str, Any]:
        return self._listing(list(org.credit_notes.values()), query, call, key="CreditNotes")

    def _get_payments(self, org: Organisation, query, body, call) -> dict[str, Any]:
        return self._listing(list(org.payments.values()), query, call, key="Payments")

    def _get_one(self, org: Organisation, kind: str, ident: str) -> dict[str, Any]:
        store = {"Invoices": org.invoices, "CreditNotes": org.credit_notes, "Contacts": org.contacts,
                 "Items": org.items, "Payments": org.payments}[kind]
        record = store.get(ident)
        if record is None and kind == "Invoices":
            record = next((inv for inv in org.invoices.values() if inv.get("InvoiceNumber") == ident), None)
        if record is None:
            raise XeroError(404, {"Title": "Not Found", "Status": 404, "Detail": f"{kind[:-1]} {ident} not found"})
        return {kind: [_public(record)]}

    # --- writing: one element at a time, all or nothing unless summarizeErrors=false ---

    def _batch(self, org: Organisation, query: dict[str, str], body: Any, key: str,
               build: Callable[[Organisation, dict[str, Any]], tuple[list[str], Callable[[], dict[str, Any]]]]) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise XeroError(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": f"{key} element missing"})
        summarize = query.get("summarizeErrors", "true").lower() != "false"
        self._batch_numbers: set[str] = set()  # document numbers earlier in this request
        if summarize:
            checked = [(element, *build(org, element)) for element in body[key]]
            failed = [(element, errors) for element, errors, _ in checked if errors]
            if failed:
                raise XeroError(400, {"ErrorNumber": 10, "Type": "ValidationException",
                                      "Message": "A validation exception occurred",
                                      "Elements": [plain(_failed_element(element, errors, key)) for element, errors in failed]})
            return {key: [{**_public(save()), "StatusAttributeString": "OK"} for _, _, save in checked]}
        results = []
        for element in body[key]:  # one after the other: a later element sees the earlier ones saved
            errors, save = build(org, element)
            if errors:
                results.append(plain(_failed_element(element, errors, key)))
            else:
                results.append({**_public(save()), "StatusAttributeString": "OK"})
        return {key: results}

    def _put_contacts(self, org: Organisation, query, body, call) -> dict[str, Any]:
        def build(org, element):
            errors = []
            existing = org.contacts.get(element.get("ContactID") or "")
            name = (element.get("Name") or (existing or {}).get("Name") or "").strip()
            if not name:
                errors.append("The contact name must be specified.")
            clash = next((c for c in org.contacts.values() if c["Name"].lower() == name.lower()
                          and c["ContactStatus"] == "ACTIVE" and c is not existing), None)
            if clash is not None:
                errors.append(f"The contact name {name} is already assigned to another contact. "
                              "The contact name must be unique across all active contacts.")
            if element.get("ContactID") and existing is None:
                errors.append(f"Contact with ContactID {element['ContactID']} could not be found.")

            def save():
                if existing is not None:
                    existing.update({k: v for k, v in element.items() if k not in ("ContactID", "HasAttachments", "HasValidationErrors")})
                    self._stamp(existing)
                    return existing
                return self._new_contact(org, element)
            return errors, save

        return self._batch(org, query, body, "Contacts", build)

    def _new_contact(self, org: Organisation, element: dict[str, Any]) -> dict[str, Any]:
        contact = {k: v for k, v in element.items() if k not in ("HasAttachments", "HasValidationErrors")}
        contact.update(ContactID=str(uuid.uuid4()), ContactStatus="ACTIVE", HasAttachments=False, HasValidationErrors=False,
                       _seq=len(org.contacts) + 1)
        contact.setdefault("IsCustomer", True)
        contact.setdefault("IsSupplier", False)
        contact.setdefault("Addresses", [])
        contact.setdefault("Phones", [])
        contact.setdefault("ContactPersons", [])
        self._stamp(contact)
        org.contacts[contact["ContactID"]] = contact
        return contact

    def _put_items(self, org: Organisation, query, body, call) -> dict[str, Any]:
        upsert = call.method == "POST"

        def build(org, element):
            errors = []
            code = str(element.get("Code") or "").strip()
            existing = org.items.get(element.get("ItemID") or "") or (org.item_by_code(code) if upsert else None)
            if not code:
                errors.append("Item code must be specified.")
            elif existing is None and org.item_by_code(code) is not None:
                errors.append(f"Item code '{code}' already exists.")
            sales = element.get("SalesDetails") or {}
            if sales.get("AccountCode") and org.account(sales["AccountCode"]) is None:
                errors.append(f"Account code '{sales['AccountCode']}' is not a valid code for this document.")
            if sales.get("TaxType") and org.tax_rate(sales["TaxType"]) is None:
                errors.append(f"The TaxType code '{sales['TaxType']}' does not exist or cannot be used for this type of transaction.")

            def save():
                if existing is not None:
                    existing.update({k: v for k, v in element.items() if k != "ItemID"})
                    self._stamp(existing)
                    return existing
                return self._new_item(org, element)
            return errors, save

        return self._batch(org, query, body, "Items", build)

    def _new_item(self, org: Organisation, element: dict[str, Any]) -> dict[str, Any]:
        item = dict(element)
        item.update(ItemID=str(uuid.uuid4()), IsTrackedAsInventory=False, _seq=len(org.items) + 1)
        item.setdefault("IsSold", True)
        item.setdefault("IsPurchased", False)
        self._stamp(item)
        org.items[item["ItemID"]] = item
        return item

    def _put_invoices(self, org: Organisation, query, body, call) -> dict[str, Any]:
        return self._batch(org, query, body, "Invoices", lambda org, element: self._document(org, element, credit=False))

    def _put_credit_notes(self, org: Organisation, query, body, call) -> dict[str, Any]:
        return self._batch(org, query, body, "CreditNotes", lambda org, element: self._document(org, element, credit=True))

    def _document(self, org: Organisation, element: dict[str, Any], *, credit: bool):
        """Validate an invoice or credit note as Xero does; returns (errors, save)."""
        errors: list[str] = []
        kind = element.get("Type")
        allowed = ("ACCRECCREDIT", "ACCPAYCREDIT") if credit else ("ACCREC", "ACCPAY")
        if kind not in allowed:
            errors.append("Invalid Type" if kind else "The document type must be specified.")
        contact_ref = element.get("Contact") or {}
        contact = org.contacts.get(contact_ref.get("ContactID") or "")
        if contact_ref.get("ContactID") and contact is None:
            errors.append(f"Contact with ContactID {contact_ref['ContactID']} could not be found.")
        elif contact is None and not contact_ref.get("Name"):
            errors.append("A Contact must be specified for this type of transaction")
        number_field = "CreditNoteNumber" if credit else "InvoiceNumber"
        number = element.get(number_field)
        store = org.credit_notes if credit else org.invoices
        if number and kind in ("ACCREC", "ACCRECCREDIT"):
            if number in self._batch_numbers or any(
                    doc.get(number_field) == number and doc["Status"] not in ("DELETED", "VOIDED") for doc in store.values()):
                errors.append("Invoice # must be unique." if not credit else "Credit Note # must be unique.")
            self._batch_numbers.add(number)
        currency = element.get("CurrencyCode") or org.base_currency
        if currency not in org.currencies and currency != org.base_currency:
            errors.append(f"The currency {currency} has not been enabled for this organisation.")
        status = element.get("Status") or "DRAFT"
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            errors.append(f"Documents cannot be created with status {status}.")
        try:
            date = parse_date(element.get("Date")) or dt.datetime.fromtimestamp(self.now(), tz=dt.UTC).date()
            due = parse_date(element.get("DueDate"))
        except ValueError as error:
            errors.append(str(error))
            date, due = None, None
        if not credit and status == "AUTHORISED" and due is None and kind == "ACCREC":
            errors.append("Due Date is mandatory.")
        amount_types = element.get("LineAmountTypes") or "Exclusive"
        lines, subtotal, total_tax = [], Decimal("0"), Decimal("0")
        if not element.get("LineItems"):
            errors.append("Invoices must have at least one line item." if not credit else "Credit notes must have at least one line item.")
        for position, raw in enumerate(element.get("LineItems") or [], start=1):
            line, line_errors = self._line(org, raw, position, amount_types)
            errors.extend(line_errors)
            if not line_errors:
                lines.append(line)
                subtotal += line["LineAmount"]
                total_tax += line["TaxAmount"]

        def save() -> dict[str, Any]:
            nonlocal contact
            if contact is None:
                contact = self._new_contact(org, {"Name": contact_ref["Name"]})
            total = subtotal + total_tax
            ident = str(uuid.uuid4())
            doc = {
                "Type": kind, "Contact": _contact_ref(contact), "Date": ms_date(date), "DateString": f"{date.isoformat()}T00:00:00",
                "LineAmountTypes": amount_types, "LineItems": lines, "SubTotal": subtotal, "TotalTax": total_tax,
                "Total": total, "CurrencyCode": currency, "CurrencyRate": Decimal("1"), "Status": status,
                "Reference": element.get("Reference", ""), "HasAttachments": False, "HasErrors": False,
                "_seq": len(store) + 1,
            }
            if due is not None:
                doc.update(DueDate=ms_date(due), DueDateString=f"{due.isoformat()}T00:00:00")
            if credit:
                doc.update(CreditNoteID=ident, CreditNoteNumber=number or f"CN-{len(store) + 1:04d}", RemainingCredit=total,
                           Allocations=[], Payments=[], AppliedAmount=Decimal("0"))
            else:
                doc.update(InvoiceID=ident, InvoiceNumber=number or f"INV-{len(store) + 1:04d}", AmountDue=total,
                           AmountPaid=Decimal("0"), AmountCredited=Decimal("0"), Payments=[], CreditNotes=[],
                           Prepayments=[], Overpayments=[], IsDiscounted=False)
            self._stamp(doc)
            store[ident] = doc
            return doc

        return errors, save

    def _line(self, org: Organisation, raw: dict[str, Any], position: int, amount_types: str) -> tuple[dict[str, Any], list[str]]:
        errors: list[str] = []
        item = None
        if raw.get("ItemCode"):
            item = org.item_by_code(str(raw["ItemCode"]))
            if item is None:
                errors.append(f"Item code '{raw['ItemCode']}' is not valid.")
        sales = (item or {}).get("SalesDetails") or {}
        description = raw.get("Description") or (item or {}).get("Description") or (item or {}).get("Name") or ""
        if not description:
            errors.append("Description needs to be specified for each line item.")
        quantity = Decimal(str(raw.get("Quantity", "1")))
        unit = Decimal(str(raw["UnitAmount"])) if raw.get("UnitAmount") is not None else Decimal(str(sales.get("UnitPrice", "0")))
        account_code = raw.get("AccountCode") or sales.get("AccountCode")
        account = org.account(account_code) if account_code else None
        if account_code and (account is None or account["Type"] in ("BANK",)):
            errors.append(f"Account code '{account_code}' is not a valid code for this document.")
        elif not account_code:
            errors.append("Account code must be specified for each line item." if item is None
                          else f"Item '{item['Code']}' has no sales account.")
        tax_type = raw.get("TaxType") or sales.get("TaxType") or (account or {}).get("TaxType") or "NONE"
        rate = org.tax_rate(tax_type)
        if rate is None or rate["Status"] != "ACTIVE" or not rate["CanApplyToRevenue"]:
            errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of transaction.")
        gross = money(quantity * unit)
        discount = Decimal("0")
        if raw.get("DiscountAmount") is not None:
            discount = money(raw["DiscountAmount"])
        elif raw.get("DiscountRate") is not None:
            discount = money(gross * Decimal(str(raw["DiscountRate"])) / 100)
        line_amount = gross - discount
        if raw.get("LineAmount") is not None and money(raw["LineAmount"]) != line_amount:
            errors.append(f"Line {position}: the line total {money(raw['LineAmount'])} does not match the expected line total {line_amount}.")
        tax = Decimal("0")
        if rate is not None and amount_types != "NoTax":
            charged = Decimal("0")
            for component in rate["TaxComponents"]:
                base = line_amount + (charged if component["IsCompound"] else 0)
                charged += money(base * Decimal(str(component["Rate"])) / 100)
            tax = charged
        if raw.get("TaxAmount") is not None:
            given = money(raw["TaxAmount"])
            if abs(given - tax) > CENT:
                errors.append(f"Line {position}: the tax amount {given} differs from the calculated {tax} by more than 0.01.")
            tax = given
        line = {"LineItemID": str(uuid.uuid4()), "Description": description, "Quantity": quantity, "UnitAmount": unit,
                "AccountCode": account_code, "TaxType": tax_type, "TaxAmount": tax, "LineAmount": line_amount, "Tracking": []}
        if item is not None:
            line["ItemCode"] = item["Code"]
            line["Item"] = {"ItemID": item["ItemID"], "Code": item["Code"], "Name": item.get("Name", "")}
        if discount:
            line["DiscountAmount"] = discount
        return line, errors

    def _allocate(self, org: Organisation, credit_note_id: str, body: Any, query) -> dict[str, Any]:
        credit = org.credit_notes.get(credit_note_id)
        if credit is None:
            raise XeroError(404, {"Title": "Not Found", "Status": 404, "Detail": f"Credit note {credit_note_id} not found"})
        results, errors_found = [], []
        for element in (body or {}).get("Allocations") or []:
            invoice = org.invoices.get(((element.get("Invoice") or {}).get("InvoiceID")) or "")
            amount = money(element.get("Amount", 0))
            errors = []
            if invoice is None:
                errors.append("Invoice could not be found.")
            elif amount > invoice["AmountDue"]:
                errors.append("The amount being allocated is more than the outstanding amount on the invoice.")
            if amount > credit["RemainingCredit"]:
                errors.append("The amount being allocated is more than the remaining credit.")
            if credit["Status"] != "AUTHORISED":
                errors.append("Only authorised credit notes can be allocated.")
            if errors:
                errors_found.append({**element, "ValidationErrors": [_validation_error(e) for e in errors]})
                continue
            date = parse_date(element.get("Date")) or self._utcnow().date()
            allocation = {"AllocationID": str(uuid.uuid4()), "Amount": amount, "Date": ms_date(date), "IsDeleted": False,
                          "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"]},
                          "CreditNote": {"CreditNoteID": credit["CreditNoteID"], "CreditNoteNumber": credit["CreditNoteNumber"]}}
            credit["RemainingCredit"] -= amount
            credit["AppliedAmount"] = credit.get("AppliedAmount", Decimal("0")) + amount
            credit["Allocations"].append(allocation)
            if credit["RemainingCredit"] == 0:
                credit["Status"] = "PAID"
            invoice["AmountCredited"] += amount
            invoice["AmountDue"] -= amount
            invoice["CreditNotes"].append({"CreditNoteID": credit["CreditNoteID"], "CreditNoteNumber": credit["CreditNoteNumber"],
                                           "AppliedAmount": amount, "Total": credit["Total"]})
            if invoice["AmountDue"] == 0:
                invoice["Status"] = "PAID"
                invoice["FullyPaidOnDate"] = ms_date(date)
            self._stamp(credit)
            self._stamp(invoice)
            results.append(allocation)
        summarize = query.get("summarizeErrors", "true").lower() != "false"
        if errors_found and summarize:
            raise XeroError(400, {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                                  "Elements": [plain(element) for element in errors_found]})
        return {"Allocations": [plain(allocation) for allocation in results + errors_found]}

    def _put_payments(self, org: Organisation, query, body, call) -> dict[str, Any]:
        def build(org, element):
            errors = []
            invoice = org.invoices.get(((element.get("Invoice") or {}).get("InvoiceID")) or "")
            if invoice is None and (element.get("Invoice") or {}).get("InvoiceNumber"):
                invoice = next((i for i in org.invoices.values() if i["InvoiceNumber"] == element["Invoice"]["InvoiceNumber"]), None)
            account_ref = element.get("Account") or {}
            account = org.account(account_ref.get("Code", "")) or next(
                (a for a in org.accounts if a["AccountID"] == account_ref.get("AccountID")), None)
            amount = money(element.get("Amount", 0))
            if invoice is None:
                errors.append("Invoice could not be found.")
            elif invoice["Status"] != "AUTHORISED":
                errors.append("Payments can only be made against Authorised documents.")
            elif amount > invoice["AmountDue"]:
                errors.append("Payment amount exceeds the amount outstanding on this document.")
            if amount <= 0:
                errors.append("Payment amount must be greater than zero.")
            if account is None or not (account["Type"] == "BANK" or account["EnablePaymentsToAccount"]):
                errors.append("Account type is invalid for making a payment to/from.")
            try:
                date = parse_date(element.get("Date")) or self._utcnow().date()
            except ValueError as error:
                errors.append(str(error))
                date = None

            def save():
                payment = {"PaymentID": str(uuid.uuid4()), "Date": ms_date(date), "Amount": amount, "BankAmount": amount,
                           "Reference": element.get("Reference", ""), "CurrencyRate": Decimal("1"), "Status": "AUTHORISED",
                           "PaymentType": "ACCRECPAYMENT", "IsReconciled": False, "HasAccount": True,
                           "HasValidationErrors": False, "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
                           "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"],
                                       "Type": invoice["Type"], "Contact": _contact_ref(org.contacts[invoice["Contact"]["ContactID"]])},
                           "_seq": len(org.payments) + 1}
                self._stamp(payment)
                org.payments[payment["PaymentID"]] = payment
                invoice["AmountPaid"] += amount
                invoice["AmountDue"] -= amount
                invoice["Payments"].append({"PaymentID": payment["PaymentID"], "Date": payment["Date"], "Amount": amount})
                if invoice["AmountDue"] == 0:
                    invoice["Status"] = "PAID"
                    invoice["FullyPaidOnDate"] = ms_date(date)
                self._stamp(invoice)
                return payment
            return errors, save

        return self._batch(org, query, body, "Payments", build)

    def delete_payment(self, payment_id: str, org: Organisation | None = None) -> None:
        """A payment deleted in Xero (Status DELETED, the invoice owes it again)."""
        org = org or self.org
        with self.lock:
            payment = org.payments[payment_id]
            payment["Status"] = "DELETED"
            invoice = org.invoices[payment["Invoice"]["InvoiceID"]]
            invoice["AmountPaid"] -= payment["Amount"]
            invoice["AmountDue"] += payment["Amount"]
            invoice["Status"] = "AUTHORISED"
            self._stamp(payment)
            self._stamp(invoice)


_GUID = re.compile(r"/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?=/|$)")


def call_endpoint(call: Call) -> str:
    """``PUT /Invoices``, ``PUT /CreditNotes/{id}/Allocations``, ``POST /identity/connect/token`` …"""
    return f"{call.method} {_GUID.sub('/{id}', call.path.removeprefix(API_PREFIX))}"


def _contact_ref(contact: dict[str, Any]) -> dict[str, Any]:
    return {"ContactID": contact["ContactID"], "Name": contact["Name"], "Addresses": [], "Phones": [],
            "ContactGroups": [], "ContactPersons": [], "HasValidationErrors": False}


def _public(record: dict[str, Any]) -> dict[str, Any]:
    return plain({key: value for key, value in record.items() if not key.startswith("_")})


def _failed_element(element: dict[str, Any], errors: list[str], key: str) -> dict[str, Any]:
    failed = {k: v for k, v in element.items() if k not in ("HasAttachments",)}
    id_field = {"Invoices": "InvoiceID", "CreditNotes": "CreditNoteID", "Contacts": "ContactID", "Items": "ItemID",
                "Payments": "PaymentID"}[key]
    failed.setdefault(id_field, ZERO_ID)
    failed.update(HasErrors=True, StatusAttributeString="ERROR", ValidationErrors=[_validation_error(e) for e in errors])
    if key in ("Contacts", "Payments"):
        failed.pop("HasErrors")
        failed["HasValidationErrors"] = True
    if key == "Items":
        failed.pop("HasErrors")
    return failed


_WHERE_TERM = re.compile(r'^\s*([A-Za-z.]+)\s*==\s*(?:"([^"]*)"|Guid\("([^"]*)"\)|(true|false))\s*$')


def _where(expression: str, record: dict[str, Any]) -> bool:
    """The small part of Xero's ``where`` language the connector uses: ``A=="x" AND B==true``, ``... OR ...``."""
    return any(_where_all(part, record) for part in re.split(r"\s+OR\s+|\s*\|\|\s*", expression))


def _where_all(expression: str, record: dict[str, Any]) -> bool:
    for term in re.split(r"\s+AND\s+|\s*&&\s*", expression):
        match = _WHERE_TERM.match(term)
        if match is None:
            raise XeroError(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": f"Cannot parse where: {term}"})
        path, text, guid, boolean = match.groups()
        value: Any = record
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        expected: Any = text if text is not None else guid if guid is not None else boolean == "true"
        if value != expected:
            return False
    return True


def _unauthorized(detail: str) -> dict[str, Any]:
    return {"Type": None, "Title": "Unauthorized", "Status": 401, "Detail": detail, "Instance": str(uuid.uuid4()), "Extensions": {}}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(plain(body)).encode()
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, data


class _Handler(BaseHTTPRequestHandler):
    xero: FakeXero
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet test output
        pass

    def _serve(self) -> None:
        fake = self.xero
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        header_pairs = list(self.headers.items())
        headers = {key.lower(): value for key, value in header_pairs}
        try:
            decoded = json.loads(raw) if raw and "json" in headers.get("content-type", "") else raw.decode(errors="replace")
        except ValueError:
            decoded = raw.decode(errors="replace")
        call = Call(self.command, parts.path, parts.query, headers, decoded)
        with fake.lock:
            fake.calls.append(call)
        if parts.path.startswith(API_PREFIX):
            fake.spec.request(method=self.command, path=parts.path, query=parts.query, headers=header_pairs, body=raw)
            status, answer_headers, data = fake.handle_api(call, raw)
            fake.spec.response(method=self.command, path=parts.path, query=parts.query, headers=header_pairs, body=raw,
                               status=status, response_headers=answer_headers, data=data)
        else:
            status, answer_headers, data = fake.handle_identity(self.command, parts.path, parts.query, headers, raw)
        call.status = status
        call.response_headers = dict(answer_headers)
        try:
            call.answer = json.loads(data) if data else None
        except ValueError:
            call.answer = data
        try:
            self.send_response(status)
            for key, value in answer_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client died mid-request (a killed worker): Xero has done it anyway

    do_GET = do_PUT = do_POST = do_DELETE = _serve


# --- fixtures -----------------------------------------------------------------------------------


RUN_SPEC_CHECK = SpecCheck()  # every fake_xero of the run adds its findings here


@pytest.fixture(scope="session")
def xero_spec_check() -> SpecCheck:
    """The spec problems of every ``fake_xero`` in the run so far (the spec file is loaded once per process)."""
    return RUN_SPEC_CHECK


@contextmanager
def running_fake_xero(spec: SpecCheck | None = None, **kwargs) -> Iterator[FakeXero]:
    fake = FakeXero(spec=spec, **kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_xero() -> Iterator[FakeXero]:
    """A fresh fake Xero for one test; the test fails if anything broke Xero's published contract."""
    own = SpecCheck()
    with running_fake_xero(own) as fake:
        yield fake
    with RUN_SPEC_CHECK._lock:
        RUN_SPEC_CHECK.problems.extend(own.problems)
        RUN_SPEC_CHECK.checked += own.checked
    assert not own.problems, "requests or answers that break xero_accounting.yaml:\n" + "\n".join(own.problems)
