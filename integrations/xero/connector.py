"""Xero (xero-python) behind the one connector interface (``integrations/base.py``).

What it sends, and why, is in ``docs/integrations-xero.md``. In short:

* OAuth 2 at the configured identity URLs; tokens come from and go back to the encrypted
  ``AccountingConnection`` (the newest refresh token is stored the moment Xero rotates it).
  A token within 60 s of expiry is refreshed before the call; a 401 refreshes once and
  retries; a dead refresh token raises ``ConnectionLost``.
* Every HTTP call goes through :meth:`XeroConnector._call`, which logs it
  (``IntegrationLog``) and turns HTTP outcomes into the interface's exceptions: 429 →
  ``RateLimited`` with Xero's ``Retry-After`` (the SDK's own sleeping retry is off);
  5xx / network → ``TemporaryFailure``; 401/403 after a refresh → ``ConnectionLost``.
* Invoices go 50 to a ``PUT /Invoices?summarizeErrors=false`` with an ``Idempotency-Key``
  made from the documents' keys and a digest of the payload; credit notes likewise to
  ``/CreditNotes`` and are then allocated to the invoice they correct.
  ``Invoice # must be unique`` for one of ours means it is already there (a resend with a
  changed payload): it is found by number and adopted when contact and total match.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

import requests
import urllib3
from xero_python.accounting import models as xm
from xero_python.api_client.serializer import serialize
from xero_python.exceptions import ApiException, RateLimitException

from contracts.models import Contract
from integrations import keys, store
from integrations.base import (
    ConnectionLost,
    Connector,
    DocumentResult,
    IntegrationError,
    LocalItem,
    RateLimited,
    RemotePayment,
    RemoteRecord,
    TemporaryFailure,
)
from integrations.models import AccountingConnection, RemoteMapping
from integrations.xero import mapping
from integrations.xero.client import (
    SCOPES,
    TokenRefreshFailed,
    XeroCredentials,
    XeroEndpoints,
    accounting_api,
    build_api_client,
    identity_api,
)
from invoices.models import Invoice

logger = logging.getLogger(__name__)

PAGE_SIZE = 100
ACCESS_TOKEN_MARGIN = 60  # seconds: refresh this close to expiry (as the SDK does)
REFRESH_TOKEN_LIFETIME = 60 * 24 * 3600  # Xero: 60 days, rolling
DUPLICATE_NUMBER = "Invoice # must be unique."
DUPLICATE_CREDIT_NUMBER = "Credit Note # must be unique."
ZERO_ID = "00000000-0000-0000-0000-000000000000"  # Xero's id on an element it did not save


class XeroConnector(Connector):
    system = "xero"
    label = "Xero"
    export_batch_size = 50  # Xero: about 50 documents per request
    owns_taxes = False

    # Tests (and a staging set-up) point these at another Xero; None: settings / environment.
    endpoints: ClassVar[XeroEndpoints | None] = None
    credentials: ClassVar[XeroCredentials | None] = None
    scopes: ClassVar[tuple[str, ...]] = SCOPES

    def __init__(self, connection, *, export_run=None) -> None:
        super().__init__(connection, export_run=export_run)
        self._client = None
        self._api = None
        self._token: dict[str, Any] | None = None
        self.day_remaining: int | None = None  # X-DayLimit-Remaining of the last answer
        self.minute_remaining: int | None = None
        self._tax_rates: list[RemoteRecord] | None = None  # GET /TaxRates, once per connector (a task run)

    # --- configuration ---------------------------------------------------------------------------

    @classmethod
    def _endpoints(cls) -> XeroEndpoints:
        return cls.endpoints or XeroEndpoints.configured()

    @classmethod
    def settings_missing(cls) -> list[str]:
        credentials = cls.credentials or XeroCredentials.configured()
        return [name for name, value in (("XERO_CLIENT_ID", credentials.client_id),
                                         ("XERO_CLIENT_SECRET", credentials.client_secret)) if not value]

    @classmethod
    def _credentials(cls) -> XeroCredentials:
        credentials = cls.credentials or XeroCredentials.configured()
        if not credentials.client_id or not credentials.client_secret:
            raise IntegrationError("Set XERO_CLIENT_ID and XERO_CLIENT_SECRET to connect Xero.", code="not_configured")
        return credentials

    @property
    def tenant_id(self) -> str:
        return self.connection.remote_tenant_id

    @property
    def client(self):
        if self._client is None:
            self._client = build_api_client(credentials=self._credentials(), endpoints=self._endpoints(),
                                            token_getter=self._token_getter, token_saver=self._token_saver)
        return self._client

    @property
    def api(self):
        if self._api is None:
            self._api = accounting_api(self.client, self._endpoints())
        return self._api

    # --- OAuth 2 ---------------------------------------------------------------------------------

    @classmethod
    def authorization_url(cls, *, state: str, redirect_uri: str) -> str:
        query = urlencode({"response_type": "code", "client_id": cls._credentials().client_id,
                           "redirect_uri": redirect_uri, "scope": " ".join(cls.scopes), "state": state})
        return f"{cls._endpoints().authorize_url}?{query}"

    @classmethod
    def complete_authorization(cls, *, code: str, redirect_uri: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Code → tokens (token endpoint), then which organisation they reach (``/Connections``)."""
        if params.get("error"):
            raise IntegrationError(f"Xero refused the connection: {params.get('error')}", code=str(params["error"]))
        credentials, endpoints = cls._credentials(), cls._endpoints()
        log = cls(None)
        started = time.monotonic()
        try:
            response = requests.post(endpoints.token_url, data={"grant_type": "authorization_code", "code": code,
                                                                 "redirect_uri": redirect_uri},
                                     auth=(credentials.client_id, credentials.client_secret), timeout=30)
        except requests.RequestException as error:
            log.log_call(operation="token.exchange", outcome="failed", request_summary="POST token (authorization_code)",
                         error=str(error), started=started)
            raise TemporaryFailure(f"Xero's token endpoint could not be reached: {error}") from error
        if response.status_code != 200:
            body = _json_or_text(response.text)
            problem = body.get("error", "") if isinstance(body, dict) else ""
            log.log_call(operation="token.exchange", outcome="failed", request_summary="POST token (authorization_code)",
                         http_status=response.status_code, error_code=problem, error=response.text[:2000], started=started)
            raise IntegrationError(f"Xero refused the authorization code ({problem or response.status_code}).",
                                   code=problem, http_status=response.status_code)
        token = response.json()
        log.log_call(operation="token.exchange", outcome="ok", request_summary="POST token (authorization_code)",
                     http_status=200, started=started)
        sdk_token = _sdk_token(access_token=token["access_token"], refresh_token=token.get("refresh_token", ""),
                               expires_at=time.time() + float(token.get("expires_in") or 1800), scope=token.get("scope", ""))
        client = build_api_client(credentials=credentials, endpoints=endpoints, token_getter=lambda: sdk_token,
                                  token_saver=lambda new: sdk_token.update(new))
        started = time.monotonic()
        try:
            connections = identity_api(client, endpoints).get_connections()
        except (ApiException, urllib3.exceptions.HTTPError) as error:
            log.log_call(operation="connections.get", outcome="failed", request_summary="GET /Connections",
                         http_status=getattr(error, "status", None), error=str(error)[:2000], started=started)
            raise IntegrationError("Xero did not say which organisation was connected.") from error
        organisations = [c for c in connections if (c.tenant_type or "ORGANISATION") == "ORGANISATION"]
        log.log_call(operation="connections.get", outcome="ok" if organisations else "failed",
                     request_summary="GET /Connections", http_status=200, started=started,
                     error="" if organisations else "No organisation was authorised.")
        if not organisations:
            raise IntegrationError("No Xero organisation was authorised; choose one on Xero's consent page.",
                                   code="no_organisation")
        chosen = organisations[0]
        return {
            "access_token": sdk_token["access_token"], "refresh_token": sdk_token["refresh_token"],
            "expires_in": token.get("expires_in"), "refresh_expires_in": REFRESH_TOKEN_LIFETIME,
            "remote_tenant_id": str(chosen.tenant_id), "remote_name": chosen.tenant_name or "",
            "scopes": token.get("scope", " ".join(cls.scopes)),
        }

    def disconnect(self) -> None:
        """Revoke the refresh token: Xero then drops every connection made with it."""
        started = time.monotonic()
        try:
            self.client.revoke_oauth2_token()
        except (ApiException, urllib3.exceptions.HTTPError, TokenRefreshFailed) as error:
            self.log_call(operation="token.revoke", outcome="failed", request_summary="POST revocation",
                          http_status=getattr(error, "status", None), error=str(error)[:2000], started=started)
            raise IntegrationError(f"Xero did not confirm the revocation: {error}") from error
        self.log_call(operation="token.revoke", outcome="ok", request_summary="POST revocation", http_status=200,
                      started=started)

    # tokens as the SDK wants them; stored the moment they change

    def _token_getter(self) -> dict[str, Any]:
        if self._token is None:
            expires = self.connection.access_expires_at
            self._token = _sdk_token(access_token=self.connection.access_token, refresh_token=self.connection.refresh_token,
                                     expires_at=expires.timestamp() if expires else 0.0, scope=self.connection.scopes)
        return self._token

    def _token_saver(self, token: dict[str, Any]) -> None:
        if not token.get("access_token"):  # revocation hands over an empty token
            self._token = None
            return
        self._token = dict(token)
        self.store_tokens(access_token=token["access_token"], refresh_token=token.get("refresh_token") or "",
                          expires_in=token.get("expires_in"), refresh_expires_in=REFRESH_TOKEN_LIFETIME)

    def _refresh(self, *, reason: str) -> None:
        """Refresh through the SDK (``XeroToken`` → our token URL → ``_token_saver``)."""
        started = time.monotonic()
        try:
            self.client.refresh_oauth2_token()
        except TokenRefreshFailed as error:
            self._refresh_failed(error, reason=reason, started=started)
        self.log_call(operation="token.refresh", outcome="ok", request_summary=f"POST token ({reason})", http_status=200,
                      started=started)

    def _refresh_failed(self, error: TokenRefreshFailed, *, reason: str, started: float | None = None):
        self.log_call(operation="token.refresh", outcome="failed", request_summary=f"POST token ({reason})",
                      http_status=error.status, error_code=error.error, error=error.detail[:2000], started=started)
        if error.status is not None and 400 <= error.status < 500:
            raise ConnectionLost(f"Xero no longer accepts our refresh token ({error.error or error.status}); "
                                 "reconnect Xero.", code=error.error or "invalid_grant", http_status=error.status,
                                 revoked=error.error not in ("invalid_grant", "")) from error
        raise TemporaryFailure(f"Xero's token endpoint failed: {error.detail[:200]}", http_status=error.status) from error

    def _ensure_fresh_token(self) -> None:
        token = self._token_getter()
        if not token.get("refresh_token"):
            raise ConnectionLost("Xero is not connected (no refresh token); reconnect Xero.", code="no_token")
        if (token.get("expires_at") or 0) <= time.time() + ACCESS_TOKEN_MARGIN:
            self._refresh(reason="expiring")

    # --- every HTTP call -------------------------------------------------------------------------

    def _call(self, operation: str, summary: str, method: Callable[..., Any], *, invoice_id: int | None = None,
              idempotency_key: str = "", **kwargs: Any) -> Any:
        """Call ``method(tenant_id, **kwargs)``, log it, translate failures (see the module docstring)."""
        self._ensure_fresh_token()
        if idempotency_key:
            kwargs["idempotency_key"] = idempotency_key
        log = {"operation": operation, "request_summary": summary, "invoice_id": invoice_id,
               "idempotency_key": idempotency_key}
        for attempt in (1, 2):
            started = time.monotonic()
            try:
                result = method(self.tenant_id, **kwargs)
            except TokenRefreshFailed as error:  # the SDK refreshed by itself (clock at the margin) and failed
                self._refresh_failed(error, reason="sdk", started=started)
            except RateLimitException as error:
                headers = error.headers or {}
                problem = headers.get("X-Rate-Limit-Problem", "") or ""
                retry_after = _seconds(headers.get("Retry-After"), default=60)
                self._note_limits(headers)
                self.log_call(outcome="failed", http_status=429, error_code=f"rate_limit_{problem}".rstrip("_"),
                              error=f"Xero rate limit ({problem or 'unknown'}): retry after {retry_after} s", started=started, **log)
                raise RateLimited(f"Xero's {problem or ''} rate limit was reached; retrying in {retry_after} s.".replace("  ", " "),
                                  retry_after=retry_after, problem=problem) from error
            except ApiException as error:
                status = getattr(error.http_resp, "status", None) or getattr(error, "_status", None)
                detail = _error_detail(error)
                self.log_call(outcome="failed", http_status=status, error_code=str(status or ""), error=detail[:2000],
                              started=started, **log)
                if status == 401 and attempt == 1:
                    self._refresh(reason="401")
                    continue
                if status in (401, 403):
                    raise ConnectionLost(f"Xero refused access to the organisation ({detail[:200]}); reconnect Xero.",
                                         code=str(status), http_status=status, revoked=True) from error
                if status is None or status >= 500:
                    raise TemporaryFailure(f"Xero failed ({status}): {detail[:200]}", http_status=status) from error
                raise IntegrationError(f"Xero refused {summary}: {detail[:500]}", code=str(status), http_status=status) from error
            except (urllib3.exceptions.HTTPError, OSError) as error:
                self.log_call(outcome="failed", error_code="network", error=str(error)[:2000], started=started, **log)
                raise TemporaryFailure(f"Xero could not be reached: {error}") from error
            self._note_limits(self.client.last_response.getheaders())
            self.log_call(outcome="ok", http_status=self.client.last_response.status, started=started, **log)
            return result
        raise AssertionError("unreachable")

    def _note_limits(self, headers: Mapping[str, str]) -> None:
        day, minute = headers.get("X-DayLimit-Remaining"), headers.get("X-MinLimit-Remaining")
        if day is not None:
            self.day_remaining = int(day)
        if minute is not None:
            self.minute_remaining = int(minute)

    def _paged(self, operation: str, label: str, method: Callable[..., Any], attribute: str, **kwargs: Any) -> list[Any]:
        found, page = [], 1
        while True:
            answer = self._call(operation, f"GET {label} page {page}", method, page=page, **kwargs)
            rows = getattr(answer, attribute) or []
            found.extend(rows)
            if len(rows) < PAGE_SIZE:
                return found
            page += 1

    # --- catalogue and customers -----------------------------------------------------------------

    def fetch_customers(self) -> list[RemoteRecord]:
        contacts = self._paged("customer.list", "/Contacts", self.api.get_contacts, "contacts")
        return [mapping.contact_to_record(contact) for contact in contacts
                if contact.contact_status in (None, "ACTIVE") and not (contact.is_supplier and not contact.is_customer)]

    def fetch_items(self) -> list[RemoteRecord]:
        answer = self._call("item.list", "GET /Items", self.api.get_items)
        return [mapping.item_to_record(item) for item in (answer.items or []) if item.is_sold is not False]

    def fetch_tax_codes(self) -> list[RemoteRecord]:
        answer = self._call("tax_rate.list", "GET /TaxRates", self.api.get_tax_rates)
        return [mapping.tax_rate_to_record(rate) for rate in (answer.tax_rates or [])]

    def create_customers(self, customers: Sequence[Any]) -> dict[int, RemoteRecord]:
        """One ``PUT /Contacts`` per 50; a name Xero already has is that contact (matched on the legal name)."""
        created: dict[int, RemoteRecord] = {}
        for chunk in _chunks(list(customers), self.export_batch_size):
            contacts = [mapping.customer_to_contact(customer, contact_number=keys.object_key("cus", customer.pk))
                        for customer in chunk]
            body = xm.Contacts(contacts=contacts)
            key = self._request_key("con", [keys.object_key("cus", c.pk) for c in chunk], body)
            answer = self._call("customer.create", f"PUT /Contacts ({len(chunk)})", self.api.create_contacts,
                                contacts=body, summarize_errors=False, idempotency_key=key)
            clashes = []
            for customer, element in zip(chunk, answer.contacts or [], strict=False):
                messages = mapping.validation_messages(element)
                if not messages and element.contact_id:
                    created[customer.pk] = mapping.contact_to_record(element)
                elif any("already assigned to another contact" in message for message in messages):
                    clashes.append(customer)
                else:
                    self.log_call(operation="customer.create", outcome="failed", request_summary=customer.legal_name[:200],
                                  error_code="validation", error="; ".join(messages) or "Xero did not create the contact",
                                  idempotency_key=key)
            for customer in clashes:
                existing = self._contact_named(customer.legal_name)
                if existing is not None:
                    created[customer.pk] = existing
        return created

    def _contact_named(self, name: str) -> RemoteRecord | None:
        where = 'Name=="{}"'.format(name.strip().replace('"', '\\"'))
        answer = self._call("customer.find", f"GET /Contacts {where}"[:500], self.api.get_contacts, where=where)
        contacts = [c for c in (answer.contacts or []) if (c.name or "").strip().lower() == name.strip().lower()]
        return mapping.contact_to_record(contacts[0]) if contacts else None

    def create_items(self, items: Sequence[LocalItem]) -> dict[tuple[str, int], RemoteRecord]:
        """One ``PUT /Items`` per 50 at our price; a code Xero already has is that item."""
        created: dict[tuple[str, int], RemoteRecord] = {}
        account_codes = self._account_codes()
        default_account = self._option("sales_account_code", mapping.DEFAULT_SALES_ACCOUNT)
        for chunk in _chunks(list(items), self.export_batch_size):
            codes = [mapping.item_code_for(item) for item in chunk]
            body = xm.Items(items=[
                mapping.local_item_to_item(item, code=code, account_code=account_codes.get(item.accounting_code, item.accounting_code)
                                           if item.accounting_code else default_account)
                for item, code in zip(chunk, codes, strict=True)])
            key = self._request_key("itm", [keys.object_key(item.local_type, item.local_id) for item in chunk], body)
            answer = self._call("item.create", f"PUT /Items ({len(chunk)})", self.api.create_items, items=body,
                                summarize_errors=False, idempotency_key=key)
            existing = None
            for item, code, element in zip(chunk, codes, answer.items or [], strict=False):
                messages = mapping.validation_messages(element)
                if not messages and element.item_id:
                    created[(item.local_type, item.local_id)] = mapping.item_to_record(element)
                    continue
                if any("already exists" in message for message in messages):
                    if existing is None:
                        existing = {record.code.upper(): record for record in self.fetch_items()}
                    if code.upper() in existing:
                        created[(item.local_type, item.local_id)] = existing[code.upper()]
                        continue
                self.log_call(operation="item.create", outcome="failed", request_summary=f"{code} {item.name}"[:200],
                              error_code="validation", error="; ".join(messages) or "Xero did not create the item",
                              idempotency_key=key)
        return created

    # --- documents ---------------------------------------------------------------------------------

    def export_documents(self, documents: Sequence[Any]) -> list[DocumentResult]:
        """Invoices in one ``PUT /Invoices``, credit notes in one ``PUT /CreditNotes`` (at most 50)."""
        documents = list(documents)
        if len(documents) > self.export_batch_size:
            raise ValueError(f"At most {self.export_batch_size} documents per call")
        results: dict[int, DocumentResult] = {}
        ctx = self._export_context(documents, results)
        invoices = [d for d in documents if d.pk not in results and d.kind != "credit_note"]
        credits = [d for d in documents if d.pk not in results and d.kind == "credit_note"]
        if invoices:
            results.update(self._send(invoices, ctx, credit=False))
        if credits:
            exported_now = {pk: result.remote_id for pk, result in results.items() if result.ok}
            results.update(self._send(credits, ctx, credit=True, exported_now=exported_now))
        for document in documents:  # one log row per document: the invoice's own history
            result = results[document.pk]
            self.log_call(operation="credit_note.export" if document.kind == "credit_note" else "invoice.export",
                          outcome="ok" if result.ok else "failed", invoice_id=document.pk,
                          idempotency_key=keys.document_key(document.pk, limit=128),
                          request_summary=f"{document.number} {document.total} {document.currency}",
                          remote_id=result.remote_id, error=result.error, error_code=result.error_code)
        return [results[document.pk] for document in documents]

    def _send(self, documents: list[Any], ctx: mapping.ExportContext, *, credit: bool,
              exported_now: Mapping[int, str] | None = None) -> dict[int, DocumentResult]:
        results: dict[int, DocumentResult] = {}
        ready, payloads = [], []
        for document in documents:
            lines = list(document.lines.all())
            try:
                payload = (mapping.credit_note_to_xero if credit else mapping.invoice_to_xero)(document, lines, ctx)
            except mapping.MappingError as error:
                results[document.pk] = DocumentResult(document.pk, ok=False, error=error.message, error_code=error.code)
                continue
            ready.append(document)
            payloads.append(payload)
        if not ready:
            return results
        document_keys = [keys.document_key(document.pk, limit=128) for document in ready]
        kind = "credit_note" if credit else "invoice"
        if credit:
            body = xm.CreditNotes(credit_notes=payloads)
            key = self._request_key("cn", document_keys, body)
            answer = self._call("credit_notes.put", _numbers("PUT /CreditNotes", ready), self.api.create_credit_notes,
                                credit_notes=body, summarize_errors=False, unitdp=4, idempotency_key=key)
            elements = answer.credit_notes or []
        else:
            body = xm.Invoices(invoices=payloads)
            key = self._request_key("inv", document_keys, body)
            answer = self._call("invoices.put", _numbers("PUT /Invoices", ready), self.api.create_invoices,
                                invoices=body, summarize_errors=False, unitdp=4, idempotency_key=key)
            elements = answer.invoices or []
        if len(elements) != len(ready):
            raise TemporaryFailure(f"Xero answered {len(elements)} documents for {len(ready)} sent")
        duplicates = []
        for document, element in zip(ready, elements, strict=True):
            messages = mapping.validation_messages(element)
            remote_id = str((element.credit_note_id if credit else element.invoice_id) or "")
            if not messages and not getattr(element, "has_errors", False) and remote_id and remote_id != ZERO_ID:
                results[document.pk] = DocumentResult(document.pk, ok=True, remote_id=remote_id,
                                                      remote_url=self.document_url(remote_id, kind=kind))
            elif (DUPLICATE_CREDIT_NUMBER if credit else DUPLICATE_NUMBER) in messages:
                duplicates.append((document, messages))
            else:
                results[document.pk] = DocumentResult(document.pk, ok=False, error="; ".join(messages) or "Xero refused it",
                                                      error_code="validation")
        if duplicates:
            results.update(self._adopt_existing(duplicates, ctx, credit=credit))
        if credit:
            self._allocate([d for d in ready if results.get(d.pk) and results[d.pk].ok], results, exported_now or {})
        return results

    def _adopt_existing(self, duplicates: list[tuple[Any, list[str]]], ctx: mapping.ExportContext, *,
                        credit: bool) -> dict[int, DocumentResult]:
        """Our number is already in Xero: it is ours when the contact and the total match (an earlier send)."""
        numbers = [document.number for document, _ in duplicates]
        kind = "credit_note" if credit else "invoice"
        if credit:
            where = " OR ".join(f'CreditNoteNumber=="{number}"' for number in numbers)
            answer = self._call("credit_note.find", f"GET /CreditNotes {len(numbers)} numbers", self.api.get_credit_notes,
                                where=where)
            found = {(c.credit_note_number, str(c.contact.contact_id)): c for c in (answer.credit_notes or [])
                     if c.status not in ("DELETED", "VOIDED")}
        else:
            answer = self._call("invoice.find", f"GET /Invoices {len(numbers)} numbers", self.api.get_invoices,
                                invoice_numbers=numbers, page=1)
            found = {(i.invoice_number, str(i.contact.contact_id)): i for i in (answer.invoices or [])
                     if i.status not in ("DELETED", "VOIDED")}
        results = {}
        for document, messages in duplicates:
            remote = found.get((document.number, ctx.contact_ids.get(document.customer_id)))
            total = abs(document.total)
            if remote is not None and Decimal(str(remote.total)) == total:
                remote_id = str(remote.credit_note_id if credit else remote.invoice_id)
                results[document.pk] = DocumentResult(document.pk, ok=True, remote_id=remote_id,
                                                      remote_url=self.document_url(remote_id, kind=kind))
            else:
                results[document.pk] = DocumentResult(
                    document.pk, ok=False, error_code="duplicate_number",
                    error=f"{document.number} already exists in Xero with another contact or total; "
                          "void or renumber it there, then retry.")
        return results

    def _allocate(self, credits: list[Any], results: dict[int, DocumentResult], exported_now: Mapping[int, str]) -> None:
        """Apply each pushed credit note to its invoice in Xero, as it is applied here.

        At most what the invoice still owed before this credit: a credit beyond that (the
        invoice was paid) stays unallocated in Xero, as the refund owed it is here.
        """
        for credit in credits:
            invoice = credit.credited_invoice
            if invoice is None:
                continue
            invoice_remote_id = exported_now.get(invoice.pk) or (invoice.remote_id if invoice.exported_to == self.system else "")
            credit_total = abs(credit.total)
            owed_before = invoice.total - invoice.amount_paid - invoice.amount_credited + credit_total
            amount = min(credit_total, max(owed_before, Decimal("0")))
            if not invoice_remote_id or amount <= 0:
                continue
            key = f"alloc-{keys.document_key(credit.pk, limit=100)}"
            try:
                answer = self._call("credit_note.allocate", f"PUT /CreditNotes/{{id}}/Allocations {credit.number} → {invoice.number}",
                                    self.api.create_credit_note_allocation, credit_note_id=results[credit.pk].remote_id,
                                    allocations=mapping.allocation_for(credit, invoice_remote_id=invoice_remote_id, amount=amount),
                                    summarize_errors=False, idempotency_key=key, invoice_id=credit.pk)
            except (RateLimited, ConnectionLost, TemporaryFailure):
                raise  # the chunk is resent as it was; the allocation's key makes its repeat harmless
            except IntegrationError:
                continue  # logged; the credit note itself is in Xero
            for element in answer.allocations or []:
                messages = mapping.validation_messages(element)
                if messages:
                    self.log_call(operation="credit_note.allocate", outcome="failed", invoice_id=credit.pk,
                                  request_summary=f"allocate {credit.number} to {invoice.number}", error_code="validation",
                                  error="; ".join(messages), idempotency_key=key)

    def _export_context(self, documents: list[Any], results: dict[int, DocumentResult]) -> mapping.ExportContext:
        """Contacts (created when missing), tax types (matched when missing), codes; failures go to ``results``."""

        customers = {document.customer_id: document.customer for document in documents}
        mapped = store.mappings_for(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER, local_ids=customers)
        contact_ids = {int(local_id): m.remote_id for local_id, m in mapped.items()}
        missing = [customer for customer_id, customer in customers.items() if customer_id not in contact_ids]
        if missing:
            # The customers of the run's later documents go in the same requests: a first export creates
            # its contacts 50 to a request, not a few with every chunk.
            wanted = missing + self.customers_ahead(exclude=customers)
            # Never a second contact of the same name: an exact twin is linked, a close one stops the document.
            adopt, refuse = self.customer_twins(wanted)
            for customer_id, record in adopt.items():
                store.mapping_set(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER, local_id=customer_id,
                                  remote_id=record.remote_id, remote_name=record.name, remote_code=record.code)
                contact_ids[customer_id] = record.remote_id
            for document in documents:
                if document.customer_id in refuse:
                    results[document.pk] = DocumentResult(document.pk, ok=False, error_code="name_match",
                                                          error=refuse[document.customer_id])
            wanted = [customer for customer in wanted if customer.pk not in adopt and customer.pk not in refuse]
            for chunk in _chunks(wanted, self.export_batch_size):
                for customer_id, record in self.create_customers(chunk).items():
                    store.mapping_set(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER, local_id=customer_id,
                                remote_id=record.remote_id, remote_name=record.name, remote_code=record.code)
                    contact_ids[customer_id] = record.remote_id
        for document in documents:
            if document.customer_id not in contact_ids and document.pk not in results:
                results[document.pk] = DocumentResult(document.pk, ok=False, error_code="contact",
                                                      error=f"Xero did not create the contact {document.customer.legal_name}.")

        lines = [line for document in documents for line in document.lines.all()]
        tax_types = self._tax_types(lines)
        contract_ids = {line.contract_id for line in lines if line.contract_id}
        names = dict(Contract.objects.filter(pk__in=contract_ids).values_list("pk", "name")) if contract_ids else {}
        if "short_code" not in (self.connection.options or {}):
            self._remember_short_code()
        return mapping.ExportContext(
            contact_ids=contact_ids, item_codes=store.xero_item_codes(), tax_types=tax_types,
            account_codes=self._account_codes(), contract_names=names,
            no_tax_type=self._option("no_tax_type", mapping.NO_TAX_TYPE),
            default_account_code=self._option("sales_account_code", mapping.DEFAULT_SALES_ACCOUNT),
        )

    def _tax_types(self, lines: Iterable[Any]) -> dict[str, str]:
        """The tax mapping; keys nobody mapped yet are matched exactly against Xero's rates (one call) and saved."""

        known = {m.local_id: m.remote_code or m.remote_id for m in
                 RemoteMapping.objects.filter(system=self.system, local_type=RemoteMapping.LocalType.TAX_RATE)}
        wanted: dict[str, mapping.LocalTax] = {}
        for line in lines:
            taxes = list(line.taxes.all())
            key = mapping.tax_key(tax.code for tax in taxes)
            if key and key not in known and key not in wanted:
                wanted[key] = mapping.LocalTax(key=key, components=tuple((tax.percent, tax.compound) for tax in taxes))
        if wanted:
            if self._tax_rates is None:
                self._tax_rates = self.fetch_tax_codes()
            remote = self._tax_rates
            for key, tax_type in mapping.suggest_tax_types(list(wanted.values()), remote).items():
                name = next((r.name for r in remote if r.code == tax_type), tax_type)
                store.mapping_set(system=self.system, local_type=RemoteMapping.LocalType.TAX_RATE, local_id=key,
                            remote_id=tax_type, remote_name=name, remote_code=tax_type, extra={"matched": "percent"})
                known[key] = tax_type
        return known

    def _account_codes(self) -> dict[str, str]:

        return {m.local_id: m.remote_code or m.remote_id for m in
                RemoteMapping.objects.filter(system=self.system, local_type=RemoteMapping.LocalType.ACCOUNT)}

    def _option(self, name: str, default: str) -> str:
        return str((self.connection.options or {}).get(name) or default)

    def _remember_short_code(self) -> None:
        """The organisation's short code makes deep links open the right organisation (read once)."""

        answer = self._call("organisation.get", "GET /Organisation", self.api.get_organisations)
        organisation = (answer.organisations or [None])[0]
        if organisation is None:
            return
        options = dict(self.connection.options or {})
        options.update(short_code=organisation.short_code or "", base_currency=mapping._enum_value(organisation.base_currency) or "")
        self.connection.options = options
        AccountingConnection.objects.filter(pk=self.connection.pk).update(options=options)

    def _request_key(self, prefix: str, object_keys: Sequence[str], body: Any) -> str:
        """Idempotency-Key: the same documents *and* the same payload give the same key (≤ 128).

        A resend after a crash or a 429 is byte-for-byte the same request, so Xero answers
        with its first answer. After a per-document refusal the admin fixes the cause and
        retries: the payload differs, so Xero processes it instead of replaying the refusal.
        """
        digest = hashlib.sha256(json.dumps(serialize(body), sort_keys=True, default=str).encode()).hexdigest()[:24]
        return f"{keys.chunk_key(object_keys, prefix=f'x{prefix}', limit=40)}-{digest}"

    # --- payments back ---------------------------------------------------------------------------

    def fetch_payments(self, *, since: dt.datetime | None) -> list[RemotePayment]:
        """Payments on our exported invoices, and credits applied in Xero from credit notes we did not send."""

        modified = {"if_modified_since": since} if since is not None else {}
        payments = self._paged("payment.list", "/Payments", self.api.get_payments, "payments",
                               where='PaymentType=="ACCRECPAYMENT"', **modified)
        found = [p for p in (mapping.payment_to_remote(payment) for payment in payments) if p is not None]
        credit_notes = self._paged("credit_note.list", "/CreditNotes", self.api.get_credit_notes, "credit_notes",
                                   where='Type=="ACCRECCREDIT"', **modified)
        ours = set(Invoice.objects.filter(exported_to=self.system, kind=Invoice.Kind.CREDIT_NOTE)
                   .exclude(remote_id="").values_list("remote_id", flat=True))
        for credit_note in credit_notes:
            if str(credit_note.credit_note_id) in ours or credit_note.status in ("DELETED", "VOIDED"):
                continue
            for allocation in credit_note.allocations or []:
                remote = mapping.allocation_to_remote(allocation, credit_note_number=credit_note.credit_note_number or "")
                if remote is not None:
                    found.append(remote)
        exported = set(Invoice.objects.filter(exported_to=self.system, kind=Invoice.Kind.INVOICE,
                                              remote_id__in={p.invoice_remote_id for p in found})
                       .values_list("remote_id", flat=True))
        return [payment for payment in found if payment.invoice_remote_id in exported]

    def document_url(self, remote_id: str, *, kind: str = "invoice") -> str:
        page = (f"/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={remote_id}" if kind == "credit_note"
                else f"/AccountsReceivable/View.aspx?InvoiceID={remote_id}")
        web = self._endpoints().web_url
        short_code = (self.connection.options or {}).get("short_code") if self.connection is not None else ""
        if short_code:
            return f"{web}/organisationlogin/default.aspx?shortcode={short_code}&redirecturl={page}"
        return f"{web}{page}"


# --- helpers --------------------------------------------------------------------------------------


def _sdk_token(*, access_token: str, refresh_token: str, expires_at: float, scope: str | Sequence[str]) -> dict[str, Any]:
    scopes = scope.split() if isinstance(scope, str) else list(scope)
    return {"access_token": access_token, "refresh_token": refresh_token, "token_type": "Bearer",
            "expires_in": max(0, int(expires_at - time.time())), "expires_at": expires_at, "scope": scopes or list(SCOPES)}


def _numbers(prefix: str, documents: Sequence[Any]) -> str:
    return f"{prefix} ({len(documents)}): " + ", ".join(str(d.number) for d in documents)


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _seconds(value: Any, *, default: float) -> float:
    try:
        return max(1.0, float(value))
    except (TypeError, ValueError):
        return default


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_detail(error: ApiException) -> str:
    """Xero's own words: ``Message`` + the first validation errors, or ``Detail`` / ``Title``."""
    body = error.body
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    data = _json_or_text(body or "")
    if isinstance(data, dict):
        parts = [str(data.get("Message") or data.get("Detail") or data.get("Title") or "")]
        for element in data.get("Elements") or []:
            parts.extend(str(v.get("Message")) for v in element.get("ValidationErrors") or [])
        text = "; ".join(part for part in parts if part)
        if text:
            return text
    return (str(data) if data else "") or str(error.reason or error.status)
