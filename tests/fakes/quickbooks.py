"""A small, faithful QuickBooks Online on 127.0.0.1 for tests (and the benchmark).

Speaks the wire format python-quickbooks and intuit-oauth use (docs/integrations.md,
docs/accounting-apis.md):

* ``GET /.well-known/openid_configuration/`` — the discovery document;
* ``GET /oauth2/authorize`` — approves at once and redirects to ``redirect_uri`` with
  ``code``, ``state`` and ``realmId`` (a real user would sign in here);
* ``POST /oauth2/v1/tokens/bearer`` — ``authorization_code`` and ``refresh_token``
  grants; refresh tokens rotate (the old one dies at once); a dead one is 400
  ``invalid_grant``; no ``id_token`` (it would be checked against ``jwks_uri``);
* ``POST /oauth2/v1/tokens/revoke``;
* ``/v3/company/{realm}/query`` (the SQL subset the client sends), ``customer``,
  ``item``, ``invoice``, ``creditmemo``, ``payment``, ``account``, reads by id, and
  ``batch`` (at most 30 items, per-item faults);
* ``?requestid=``: a repeated request id answers the first answer again, doing nothing;
* faults: 401 (unknown / expired access token), 6240 duplicate name, 6140 duplicate
  document number, 2500 invalid reference, 429 with ``Retry-After`` (per-minute and
  batch limits, configurable), 500 and anything else injected with :meth:`inject`.

Everything is in memory, guarded by one lock; counters let tests prove what happened
(``count("Invoice")``, ``calls``).
"""
from __future__ import annotations

import base64
import copy
import itertools
import json
import math
import re
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret"
ENTITIES = {"customer": "Customer", "item": "Item", "invoice": "Invoice", "creditmemo": "CreditMemo",
            "payment": "Payment", "account": "Account", "taxcode": "TaxCode"}
BATCH_LIMIT = 30


def fault(code: str | int, message: str, detail: str = "", *, type_: str = "ValidationFault") -> dict:
    return {"Fault": {"Error": [{"Message": message, "Detail": detail or message, "code": str(code), "element": ""}],
                      "type": type_}, "time": _now_text()}


# QuickBooks Online's limits per company (realm): requests and batch requests per minute, at once.
REAL_LIMITS = {"per_minute": 500, "batch_per_minute": 40, "concurrent": 10}
API_ENDPOINTS = {"query", "batch", "companyinfo", *ENTITIES}  # calls the per-company limits count
NON_API_ENDPOINTS = {"/.well-known/openid_configuration/": "discovery", "/oauth2/authorize": "oauth.authorize",
                     "/oauth2/v1/tokens/bearer": "oauth.token", "/oauth2/v1/tokens/revoke": "oauth.revoke"}


def _currency_of(obj: dict, company: Company) -> str:
    """A customer's or document's currency: its CurrencyRef, else the company's home currency."""
    return str((obj.get("CurrencyRef") or {}).get("value") or company.home_currency).upper()


def _currency_fault(detail: str) -> dict:
    return fault(6000, "A business validation error has occurred while processing your request",
                 f"Business Validation Error: {detail}")


def _multicurrency_off_fault(company: Company, currency: str) -> dict:
    return _currency_fault(f"Multicurrency is not turned on for this company: everything is in its home currency "
                           f"{company.home_currency}, not {currency}.")


def throttle_fault() -> dict:
    """QuickBooks' answer (429) to a request over a limit."""
    return fault(3001, "message=ThrottleExceeded; errorCode=003001; statusCode=429", "The request limit was reached.",
                 type_="ThrottleExceeded")


def endpoint(method: str, path: str) -> str:
    """What a call was, for counting: the company API's entity or ``batch`` / ``query``, else the OAuth step."""
    path = urlparse(path).path
    match = re.match(r"^/v3/company/[^/]+/(?P<rest>.+)$", path)
    if match:
        return match["rest"].split("/")[0].lower()
    return NON_API_ENDPOINTS.get(path, f"{method} {path}")


def _now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S-00:00", time.gmtime())


@dataclass
class Injected:
    kind: str  # "token", "revoke", "query", "batch", an entity path ("invoice"), or "*"
    status: int
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    times: int = 1


@dataclass
class Company:
    realm: str
    name: str
    entities: dict[str, dict[str, dict]] = field(default_factory=lambda: defaultdict(dict))
    ids: Any = field(default_factory=lambda: itertools.count(1))
    # Currencies (Preferences.CurrencyPrefs): off by default, as in a new QuickBooks company. With
    # multicurrency on, every customer and sales document carries CurrencyRef, a customer's currency
    # never changes, a document must be in its customer's currency, and ExchangeRate (home units per
    # foreign unit) defaults to ``exchange_rates`` — QuickBooks' own rate for the document's date.
    home_currency: str = "USD"
    multicurrency: bool = False
    exchange_rates: dict[str, Decimal] = field(default_factory=dict)


class FakeQuickBooks:
    def __init__(self, *, per_minute: int = 500, batch_per_minute: int = 40, window: float = 60.0,
                 tax_percent: Decimal = Decimal("0"), access_ttl: int = 3600) -> None:
        self.lock = threading.RLock()
        self.per_minute = per_minute
        self.batch_per_minute = batch_per_minute
        self.window = window
        self.tax_percent = tax_percent
        self.access_ttl = access_ttl
        self.latency = 0.0  # seconds each API call takes (tests that kill a worker mid-export)
        # Once this many invoices exist, API calls wait until ``released`` is set: a test can
        # kill a worker while it is certainly in the middle of an export.
        self.hold_after_invoices: int | None = None
        self.released = threading.Event()
        self.companies: dict[str, Company] = {}
        self.codes: dict[str, tuple[str, str]] = {}  # code → (realm, redirect_uri)
        self.access_tokens: dict[str, tuple[str, float]] = {}  # token → (realm, expires at)
        self.refresh_tokens: dict[str, str] = {}  # live refresh token → realm
        self.dead_refresh_tokens: set[str] = set()
        self.request_ids: dict[tuple[str, str, str], tuple[int, dict]] = {}
        self.injected: list[Injected] = []
        self.calls: list[tuple[str, str, str]] = []  # (method, path, requestid)
        self.hits: dict[tuple[str, str], deque] = defaultdict(deque)  # (realm, bucket) → times
        # Requests being answered at once per realm; ``concurrent`` (QuickBooks: 10 per company) is
        # off (None) unless a test or the benchmark sets it — see :meth:`with_real_limits`.
        self.concurrent: int | None = None
        self.in_flight: dict[str, int] = defaultdict(int)
        self.answers: Counter = Counter()  # (endpoint, HTTP status) → calls answered
        self.retry_afters: list[float] = []  # Retry-After of every 429 given
        self.next_realm = "9130350000000001"
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # --- life ----------------------------------------------------------------------------

    def start(self) -> FakeQuickBooks:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-quickbooks", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid_configuration/"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v3"

    def environ(self) -> dict[str, str]:
        """What the app needs to talk to this fake (settings read from the environment)."""
        return {"QBO_CLIENT_ID": CLIENT_ID, "QBO_CLIENT_SECRET": CLIENT_SECRET, "QBO_ENVIRONMENT": self.discovery_url,
                "QBO_API_URL": self.api_url, "QBO_APP_URL": f"{self.base_url}/app"}

    # --- test helpers ----------------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.companies.clear()
            self.codes.clear()
            self.access_tokens.clear()
            self.refresh_tokens.clear()
            self.dead_refresh_tokens.clear()
            self.request_ids.clear()
            self.injected.clear()
            self.calls.clear()
            self.hits.clear()
            self.per_minute, self.batch_per_minute, self.window, self.latency = 500, 40, 60.0, 0.0
            self.hold_after_invoices = None
            self.released.set()
            self.concurrent = None
            self.in_flight.clear()
            self.answers.clear()
            self.retry_afters.clear()

    def company(self, realm: str | None = None, *, name: str = "Fake Company") -> Company:
        with self.lock:
            realm = realm or self.next_realm
            if realm not in self.companies:
                company = Company(realm=realm, name=name)
                self.companies[realm] = company
                self._add(company, "Account", {"Name": "Sales of Product Income", "AccountType": "Income",
                                               "AccountSubType": "SalesOfProductIncome", "Active": True})
                self._add(company, "Account", {"Name": "Services", "AccountType": "Income",
                                               "AccountSubType": "ServiceFeeIncome", "Active": True})
                self._add(company, "TaxCode", {"Name": "TAX", "Taxable": True, "Active": True})
                self._add(company, "TaxCode", {"Name": "NON", "Taxable": False, "Active": True})
            return self.companies[realm]

    def add(self, entity: str, data: dict, realm: str | None = None) -> dict:
        """Something the MSP created in QuickBooks itself (customers, items, payments)."""
        with self.lock:
            company = self.company(realm)
            if entity == "Payment":
                return self._create_payment(company, data)
            return self._add(company, entity, data)

    def records(self, entity: str, realm: str | None = None) -> list[dict]:
        with self.lock:
            return [copy.deepcopy(obj) for obj in self.company(realm).entities[entity].values()]

    def count(self, entity: str, realm: str | None = None, **where: Any) -> int:
        return sum(1 for obj in self.records(entity, realm) if all(obj.get(k) == v for k, v in where.items()))

    def inject(self, kind: str, status: int, body: dict | None = None, *, headers: dict | None = None, times: int = 1) -> None:
        with self.lock:
            self.injected.append(Injected(kind, status, body, headers or {}, times))

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens = {token: (realm, 0.0) for token, (realm, _) in self.access_tokens.items()}

    def kill_refresh_tokens(self) -> None:
        with self.lock:
            self.dead_refresh_tokens.update(self.refresh_tokens)
            self.refresh_tokens.clear()

    def issue_tokens(self, realm: str | None = None) -> dict:
        """Tokens as if the user had connected (for tests that skip the browser dance)."""
        with self.lock:
            return self._tokens(self.company(realm).realm)

    def calls_to(self, path_part: str) -> int:
        with self.lock:
            return sum(1 for _, path, _ in self.calls if path_part in path)

    def enable_multicurrency(self, realm: str | None = None, *, home: str = "EUR",
                             rates: dict[str, Decimal] | None = None) -> Company:
        """Turn multicurrency on (QuickBooks: once on, never off) with ``home`` as the home currency."""
        with self.lock:
            company = self.company(realm)
            company.home_currency, company.multicurrency = home, True
            company.exchange_rates.update(rates or {})
            return company

    # --- rate limits and call counts (the export benchmark) ----------------------------------

    @classmethod
    def with_real_limits(cls, *, window: float = 60.0, **kwargs: Any) -> FakeQuickBooks:
        """QuickBooks Online's own limits per company (docs/accounting-apis.md): 500 requests and
        40 batch requests per ``window`` (a minute; shorter to run faster), 10 at once."""
        fake = cls(per_minute=REAL_LIMITS["per_minute"], batch_per_minute=REAL_LIMITS["batch_per_minute"],
                   window=window, **kwargs)
        fake.concurrent = REAL_LIMITS["concurrent"]
        return fake

    def rate_limits(self) -> dict[str, tuple[int, float]]:
        """What the limiter allows: bucket → (calls, per seconds). ``all`` counts every API call."""
        return {"all": (self.per_minute, self.window), "batch": (self.batch_per_minute, self.window)}

    def _answered(self, method: str, path: str, status: int, headers: dict | None) -> None:
        with self.lock:
            self.answers[(endpoint(method, path), status)] += 1
            if status == 429:
                self.retry_afters.append(float((headers or {}).get("Retry-After") or 0))

    def calls_by_endpoint(self, *, status: int | None = None) -> Counter:
        """Calls answered, per endpoint (``batch``, ``query``, ``oauth.token``, ``discovery`` …)."""
        with self.lock:
            found: Counter = Counter()
            for (name, answered), count in self.answers.items():
                if status is None or answered == status:
                    found[name] += count
            return found

    def api_calls(self, *, bucket: str = "all", accepted_only: bool = False) -> int:
        """Calls to the company API (what the per-company limits count); ``bucket="batch"``: batch calls only."""
        with self.lock:
            return sum(count for (name, status), count in self.answers.items()
                       if name in API_ENDPOINTS and (bucket == "all" or name == bucket)
                       and not (accepted_only and status == 429))

    def throttled(self) -> int:
        """429 answers given (every limit)."""
        with self.lock:
            return sum(count for (_, status), count in self.answers.items() if status == 429)

    def clear_counts(self) -> None:
        """Forget counted calls and the limiter's windows (records stay)."""
        with self.lock:
            self.calls.clear()
            self.answers.clear()
            self.retry_afters.clear()
            self.hits.clear()

    # --- internals -------------------------------------------------------------------------

    def _add(self, company: Company, entity: str, data: dict) -> dict:
        obj = copy.deepcopy(data)
        obj["Id"] = str(next(company.ids))
        obj["SyncToken"] = "0"
        obj.setdefault("Active", True) if entity in ("Customer", "Item", "Account") else None
        obj["MetaData"] = {"CreateTime": _now_text(), "LastUpdatedTime": _now_text()}
        obj["domain"] = "QBO"
        company.entities[entity][obj["Id"]] = obj
        return copy.deepcopy(obj)

    def _tokens(self, realm: str) -> dict:
        access, refresh = "at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = (realm, time.time() + self.access_ttl)
        self.refresh_tokens[refresh] = realm
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer", "expires_in": self.access_ttl,
                "x_refresh_token_expires_in": 8726400}

    def _rate_limited(self, realm: str, bucket: str, limit: int) -> float | None:
        """Seconds to wait, or None (and the hit counted)."""
        now = time.monotonic()
        hits = self.hits[(realm, bucket)]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return max(1.0, hits[0] + self.window - now)
        hits.append(now)
        return None

    def _take_injected(self, kind: str) -> Injected | None:
        for item in self.injected:
            if item.kind in (kind, "*"):
                item.times -= 1
                if item.times <= 0:
                    self.injected.remove(item)
                return item
        return None

    # -- entities --

    def _validate_and_create(self, company: Company, entity: str, body: dict) -> tuple[int, dict]:
        objects = company.entities[entity]
        if body.get("Id"):  # update (sparse or full): only what the connector needs
            existing = objects.get(str(body["Id"]))
            if existing is None:
                return 400, fault(610, "Object Not Found", f"{entity} {body['Id']} not found")
            if entity == "Customer" and body.get("CurrencyRef") and \
                    _currency_of(body, company) != _currency_of(existing, company):
                return 400, _currency_fault(f"The currency of customer {existing.get('DisplayName', '')} "
                                            f"({_currency_of(existing, company)}) cannot be changed.")
            existing.update({k: v for k, v in body.items() if k not in ("Id", "SyncToken", "MetaData")})
            existing["SyncToken"] = str(int(existing["SyncToken"]) + 1)
            existing["MetaData"]["LastUpdatedTime"] = _now_text()
            return 200, {entity: copy.deepcopy(existing), "time": _now_text()}
        if entity == "Customer":
            name = (body.get("DisplayName") or "").strip()
            if not name:
                return 400, fault(2020, "Required param missing, need to supply the required value for the API",
                                  "Required parameter DisplayName is missing in the request")
            if ":" in name:
                return 400, fault(2050, "Invalid String", "DisplayName cannot contain a colon (:).")
            if any(obj.get("DisplayName", "").lower() == name.lower() for obj in objects.values()):
                return 400, fault(6240, "Duplicate Name Exists Error",
                                  "The name supplied already exists. : Another customer, vendor or employee is already using this name. Please use a different name.")
            body = {**body, "FullyQualifiedName": name, "Balance": 0}
            currency = _currency_of(body, company)
            if currency != company.home_currency and not company.multicurrency:
                return 400, _multicurrency_off_fault(company, currency)
            if company.multicurrency:
                body["CurrencyRef"] = {"value": currency, "name": currency}
        elif entity == "Item":
            name = (body.get("Name") or "").strip()
            if not name:
                return 400, fault(2020, "Required param missing", "Name is required")
            if any(obj.get("Name", "").lower() == name.lower() for obj in objects.values()):
                return 400, fault(6240, "Duplicate Name Exists Error", "The name supplied already exists. : Name")
            income = (body.get("IncomeAccountRef") or {}).get("value")
            if income not in company.entities["Account"]:
                return 400, fault(2500, "Invalid Reference Id", "Invalid Reference Id : Accounts element id "
                                  f"{income} not found")
            body = {**body, "FullyQualifiedName": name}
        elif entity in ("Invoice", "CreditMemo"):
            status, result = self._check_sales_document(company, entity, body)
            if status != 200:
                return status, result
            body = result
        elif entity == "Payment":
            return 200, {"Payment": self._create_payment(company, body), "time": _now_text()}
        else:
            return 400, fault(2000, "Operation not supported", f"create {entity}")
        return 200, {entity: self._add(company, entity, body), "time": _now_text()}

    def _check_sales_document(self, company: Company, entity: str, body: dict) -> tuple[int, dict]:
        customer = (body.get("CustomerRef") or {}).get("value")
        if customer not in company.entities["Customer"]:
            return 400, fault(2500, "Invalid Reference Id", f"Invalid Reference Id : Customer {customer} not found")
        currency = _currency_of(body, company)
        if currency != company.home_currency and not company.multicurrency:
            return 400, _multicurrency_off_fault(company, currency)
        customer_currency = _currency_of(company.entities["Customer"][customer], company)
        if currency != customer_currency:
            return 400, _currency_fault(f"The transaction is in {currency} but customer "
                                        f"{company.entities['Customer'][customer].get('DisplayName', customer)} "
                                        f"uses {customer_currency}; a transaction must be in its customer's currency.")
        doc_number = body.get("DocNumber")
        if doc_number and any(obj.get("DocNumber") == doc_number for obj in company.entities[entity].values()):
            return 400, fault(6140, "Duplicate Document Number Error",
                              f"Duplicate Document Number Error : You must specify a different number. This number has already been used. DocNumber={doc_number}")
        if len(doc_number or "") > 21:
            return 400, fault(2050, "Invalid String", "DocNumber is too long (21 characters at most)")
        lines = body.get("Line") or []
        if not lines:
            return 400, fault(2020, "Required param missing", "Line is required")
        subtotal, tax = Decimal("0"), Decimal("0")
        for position, line in enumerate(lines, start=1):
            if line.get("DetailType") != "SalesItemLineDetail":
                return 400, fault(2000, "Unsupported line", f"line {position}: {line.get('DetailType')}")
            detail = line.get("SalesItemLineDetail") or {}
            item = (detail.get("ItemRef") or {}).get("value")
            if item not in company.entities["Item"]:
                return 400, fault(2500, "Invalid Reference Id", f"Invalid Reference Id : Item {item} not found")
            code = (detail.get("TaxCodeRef") or {}).get("value")
            if code not in ("TAX", "NON"):
                return 400, fault(6000, "A business validation error has occurred while processing your request",
                                  f"Make sure all your transactions have a GST/VAT rate before you save. line {position}")
            amount = Decimal(str(line.get("Amount")))
            qty, price = Decimal(str(detail.get("Qty", 0))), Decimal(str(detail.get("UnitPrice", 0)))
            if (qty * price).quantize(Decimal("0.01")) != amount:
                return 400, fault(6070, "Amount is not equal to UnitPrice * Qty",
                                  f"line {position}: {amount} != {qty} * {price}")
            subtotal += amount
            if code == "TAX":
                tax += (amount * self.tax_percent / 100).quantize(Decimal("0.01"))
        if "TxnTaxDetail" in body and (body["TxnTaxDetail"] or {}).get("TotalTax"):
            return 400, fault(6000, "A business validation error has occurred", "Tax is calculated by QuickBooks")
        total = subtotal + tax
        document = {**body, "TotalAmt": float(total), "TxnTaxDetail": {"TotalTax": float(tax)}}
        if company.multicurrency:
            rate = Decimal(1) if currency == company.home_currency else \
                Decimal(str(body.get("ExchangeRate") or company.exchange_rates.get(currency, Decimal(1))))
            document.update(CurrencyRef={"value": currency, "name": currency}, ExchangeRate=float(rate),
                            HomeTotalAmt=float((total * rate).quantize(Decimal("0.01"))))
        if entity == "Invoice":
            document["Balance"] = float(total)
        else:
            document["RemainingCredit"] = float(total)
        return 200, document

    def _create_payment(self, company: Company, body: dict) -> dict:
        payment = self._add(company, "Payment", body)
        for line in payment.get("Line", []):
            for linked in line.get("LinkedTxn", []):
                if linked.get("TxnType") == "Invoice":
                    invoice = company.entities["Invoice"].get(str(linked["TxnId"]))
                    if invoice is not None:
                        invoice["Balance"] = float(Decimal(str(invoice["Balance"])) - Decimal(str(line["Amount"])))
                        invoice.setdefault("LinkedTxn", []).append({"TxnId": payment["Id"], "TxnType": "Payment"})
                        invoice["MetaData"]["LastUpdatedTime"] = _now_text()
        return payment

    # -- query --

    QUERY = re.compile(
        r"^\s*select\s+(?P<what>.+?)\s+from\s+(?P<entity>\w+)\s*(?:where\s+(?P<where>.+?))?"
        r"\s*(?:order\s*by\s+(?P<order>[\w.]+(?:\s+(?:asc|desc))?))?\s*(?:startposition\s+(?P<start>\d+))?"
        r"\s*(?:maxresults\s+(?P<max>\d+))?\s*$", re.IGNORECASE | re.DOTALL)
    CONDITION = re.compile(
        r"^\s*(?P<field>[\w.]+)\s*(?P<op>=|>=|<=|>|<|\bin\b|\blike\b)\s*(?P<value>.+?)\s*$", re.IGNORECASE | re.DOTALL)

    def _query(self, company: Company, sql: str) -> tuple[int, dict]:
        match = self.QUERY.match(sql)
        if not match:
            return 400, fault(4000, "Error parsing query", f"QueryParserError: {sql[:200]}")
        entity = next((name for name in ENTITIES.values() if name.lower() == match["entity"].lower()), None)
        if entity is None:
            return 400, fault(4001, "Invalid query", f"QueryValidationError: {match['entity']}")
        conditions = []
        if match["where"]:
            for part in re.split(r"\s+and\s+", match["where"], flags=re.IGNORECASE):
                condition = self.CONDITION.match(part)
                if not condition:
                    return 400, fault(4000, "Error parsing query", f"QueryParserError: {part[:100]}")
                conditions.append((condition["field"], condition["op"].lower(), self._values(condition["value"])))
        rows = [obj for obj in company.entities[entity].values() if all(self._test(obj, *c) for c in conditions)]
        if not any(field_ == "Active" for field_, _, _ in conditions) and entity in ("Customer", "Item", "Account"):
            rows = [row for row in rows if row.get("Active", True)]
        if match["what"].strip().lower() == "count(*)":
            return 200, {"QueryResponse": {"totalCount": len(rows)}, "time": _now_text()}
        rows.sort(key=lambda row: int(row["Id"]))
        start = int(match["start"] or 1)
        maximum = min(int(match["max"] or 100), 1000)
        page = rows[start - 1:start - 1 + maximum]
        response: dict[str, Any] = {"startPosition": start, "maxResults": len(page)}
        if page:
            response[entity] = copy.deepcopy(page)
        return 200, {"QueryResponse": response, "time": _now_text()}

    @staticmethod
    def _values(text: str) -> list[Any]:
        text = text.strip()
        if text.startswith("("):
            text = text[1:-1]
        values = []
        for token in re.findall(r"'((?:\\'|[^'])*)'|([\w.:+-]+)", text):
            quoted, bare = token
            if bare:
                values.append({"true": True, "false": False}.get(bare.lower(), bare))
            else:
                values.append(quoted.replace("\\'", "'"))
        return values

    @staticmethod
    def _test(obj: dict, field_: str, op: str, values: list[Any]) -> bool:
        value: Any = obj
        for part in field_.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if op == "=":
            return str(value).lower() == str(values[0]).lower() if isinstance(values[0], bool) else value == values[0]
        if op == "in":
            return value in values
        if op == "like":
            pattern = "^" + re.escape(str(values[0])).replace("%", ".*") + "$"
            return value is not None and re.match(pattern, str(value), re.IGNORECASE) is not None
        if value is None:
            return False
        return {">": value > values[0], ">=": value >= values[0], "<": value < values[0], "<=": value <= values[0]}[op]


class _Handler(BaseHTTPRequestHandler):
    fake: FakeQuickBooks
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    # -- plumbing --

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: dict | str | None = None, *, headers: dict | None = None) -> None:
        payload = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
        self.fake._answered(self.command, self.path, status, headers)
        self.send_response(status)
        content_type = "application/json" if not isinstance(body, str) else "text/html"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        body = self._body() if method == "POST" else b""
        fake = self.fake
        with fake.lock:
            fake.calls.append((method, url.path, query.get("requestid", "")))
        try:
            if url.path == "/.well-known/openid_configuration/":
                return self._send(200, self._discovery())
            if url.path == "/oauth2/authorize":
                return self._authorize(query)
            if url.path == "/oauth2/v1/tokens/bearer":
                return self._token(body)
            if url.path == "/oauth2/v1/tokens/revoke":
                return self._revoke(body)
            match = re.match(r"^/v3/company/(?P<realm>[^/]+)/(?P<rest>.+)$", url.path)
            if match:
                return self._api_at_once(method, match["realm"], match["rest"], query, body)
            return self._send(404, {"error": "not found"})
        except Exception as error:  # noqa: BLE001 — a fake should say what broke
            return self._send(500, fault(10000, "An application error has occurred while processing your request",
                                         f"fake: {type(error).__name__}: {error}", type_="SystemFault"))

    # -- OAuth --

    def _discovery(self) -> dict:
        base = self.fake.base_url
        return {"issuer": f"{base}/", "authorization_endpoint": f"{base}/oauth2/authorize",
                "token_endpoint": f"{base}/oauth2/v1/tokens/bearer", "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
                "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke", "jwks_uri": f"{base}/oauth2/v1/keys",
                "response_types_supported": ["code"], "scopes_supported": ["com.intuit.quickbooks.accounting", "openid"]}

    def _authorize(self, query: dict) -> None:
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code" or not query.get("redirect_uri"):
            return self._send(400, "invalid authorization request")
        fake = self.fake
        with fake.lock:
            realm = query.get("realm") or fake.company().realm  # ?realm= lets a test pick a company
            fake.company(realm)
            code = "code-" + secrets.token_urlsafe(16)
            fake.codes[code] = (realm, query["redirect_uri"])
        if query.get("deny"):
            target = query["redirect_uri"] + "?" + urlencode({"error": "access_denied", "state": query.get("state", "")})
        else:
            target = query["redirect_uri"] + "?" + urlencode({"code": code, "state": query.get("state", ""), "realmId": realm})
        self._send(302, None, headers={"Location": target})

    def _client_ok(self) -> bool:
        header = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        return header == expected

    def _token(self, raw: bytes) -> None:
        fake = self.fake
        with fake.lock:
            injected = fake._take_injected("token")
        if injected:
            return self._send(injected.status, injected.body, headers=injected.headers)
        if not self._client_ok():
            return self._send(401, {"error": "invalid_client"})
        form = {key: values[-1] for key, values in parse_qs(raw.decode()).items()}
        with fake.lock:
            if form.get("grant_type") == "authorization_code":
                entry = fake.codes.pop(form.get("code", ""), None)
                if entry is None or entry[1] != form.get("redirect_uri"):
                    return self._send(400, {"error": "invalid_grant"})
                return self._send(200, fake._tokens(entry[0]))
            if form.get("grant_type") == "refresh_token":
                token = form.get("refresh_token", "")
                realm = fake.refresh_tokens.pop(token, None)
                if realm is None:
                    return self._send(400, {"error": "invalid_grant"})
                fake.dead_refresh_tokens.add(token)  # rotated: the old one is dead from now on
                return self._send(200, fake._tokens(realm))
        return self._send(400, {"error": "unsupported_grant_type"})

    def _revoke(self, raw: bytes) -> None:
        fake = self.fake
        with fake.lock:
            injected = fake._take_injected("revoke")
        if injected:
            return self._send(injected.status, injected.body, headers=injected.headers)
        if not self._client_ok():
            return self._send(401, {"error": "invalid_client"})
        token = json.loads(raw or b"{}").get("token", "")
        with fake.lock:
            realm = fake.refresh_tokens.pop(token, None) or (fake.access_tokens.get(token) or (None,))[0]
            if realm is not None:
                fake.dead_refresh_tokens.add(token)
                for access, (token_realm, _) in list(fake.access_tokens.items()):
                    if token_realm == realm:
                        del fake.access_tokens[access]
                for refresh, token_realm in list(fake.refresh_tokens.items()):
                    if token_realm == realm:
                        del fake.refresh_tokens[refresh]
        return self._send(200, None)

    # -- API --

    def _api_at_once(self, method: str, realm: str, rest: str, query: dict, raw: bytes) -> None:
        """The limit on requests answered at once per company (when ``concurrent`` is set), around :meth:`_api`."""
        fake = self.fake
        with fake.lock:
            refused = fake.concurrent is not None and fake.in_flight[realm] >= fake.concurrent
            if not refused:
                fake.in_flight[realm] += 1
        if refused:
            return self._send(429, throttle_fault(), headers={"Retry-After": "1"})
        try:
            return self._api(method, realm, rest, query, raw)
        finally:
            with fake.lock:
                fake.in_flight[realm] -= 1

    def _api(self, method: str, realm: str, rest: str, query: dict, raw: bytes) -> None:
        fake = self.fake
        if fake.latency:
            time.sleep(fake.latency)
        if fake.hold_after_invoices is not None and fake.count("Invoice") >= fake.hold_after_invoices:
            fake.released.wait(timeout=120)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with fake.lock:
            entry = fake.access_tokens.get(token)
            if entry is None or entry[0] != realm or entry[1] < time.time():
                return self._send(401, fault(3200, "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                             "Token expired or invalid", type_="AUTHENTICATION"))
            company = fake.company(realm)
            kind = rest.split("/")[0].lower()
            request_id = query.get("requestid", "")
            if request_id:
                if len(request_id) > 50:
                    return self._send(400, fault(2050, "Invalid String", "requestid longer than 50 characters"))
                replay = fake.request_ids.get((realm, request_id, rest))
                if replay is not None:
                    return self._send(*replay)
            injected = fake._take_injected(kind)
            if injected:
                return self._send(injected.status, injected.body, headers=injected.headers)
            wait = fake._rate_limited(realm, "all", fake.per_minute)
            if wait is None and kind == "batch":
                wait = fake._rate_limited(realm, "batch", fake.batch_per_minute)
            if wait is not None:
                return self._send(429, fault(3001, "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                             "The request limit was reached.", type_="ThrottleExceeded"),
                                  headers={"Retry-After": str(math.ceil(wait))})
            status, body = self._api_call(method, company, rest, kind, raw)
            if request_id and status < 500:
                fake.request_ids[(realm, request_id, rest)] = (status, body)
            return self._send(status, body)

    def _api_call(self, method: str, company: Company, rest: str, kind: str, raw: bytes) -> tuple[int, dict]:
        fake = self.fake
        if kind == "query":
            return fake._query(company, raw.decode())
        if kind == "batch":
            return self._batch(company, json.loads(raw or b"{}"))
        if kind == "companyinfo":
            return 200, {"CompanyInfo": {"Id": "1", "CompanyName": company.name}, "time": _now_text()}
        entity = ENTITIES.get(kind)
        if entity is None:
            return 400, fault(2000, "Unsupported entity", kind)
        parts = rest.split("/")
        if method == "GET" and len(parts) == 2:
            obj = company.entities[entity].get(parts[1])
            if obj is None:
                return 400, fault(610, "Object Not Found", f"Object Not Found : {entity} {parts[1]}")
            return 200, {entity: copy.deepcopy(obj), "time": _now_text()}
        if method == "POST" and len(parts) == 1:
            return fake._validate_and_create(company, entity, json.loads(raw or b"{}"))
        return 400, fault(2000, "Unsupported operation", rest)

    def _batch(self, company: Company, body: dict) -> tuple[int, dict]:
        items = body.get("BatchItemRequest") or []
        if len(items) > BATCH_LIMIT:
            return 400, fault(1000, "Batch request too large", f"at most {BATCH_LIMIT} items per batch, got {len(items)}")
        responses = []
        for item in items:
            b_id = item.get("bId", "")
            if "Query" in item:
                status, result = self.fake._query(company, item["Query"])
            else:
                entity = next((name for name in ENTITIES.values() if name in item), None)
                if entity is None or item.get("operation") != "create":
                    responses.append({"bId": b_id, "Fault": fault(2000, "Unsupported batch item", str(item)[:100])["Fault"]})
                    continue
                status, result = self.fake._validate_and_create(company, entity, item[entity])
            if status == 200:
                result.pop("time", None)
                responses.append({"bId": b_id, **result})
            else:
                responses.append({"bId": b_id, "Fault": result["Fault"]})
        return 200, {"BatchItemResponse": responses, "time": _now_text()}
