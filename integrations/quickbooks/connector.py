"""QuickBooks Online connector: intuit-oauth for OAuth 2, python-quickbooks for the API.

What QuickBooks needs and how it is met (docs/integrations.md §QuickBooks Online):

* the client does not refresh on 401: we refresh (under a row lock, so two workers never
  spend the same rotating refresh token), store the newest tokens at once, build a new
  client and repeat the call once;
* 429 and 5xx are read from the HTTP response before python-quickbooks parses it and
  raised as ``RateLimited`` (with ``Retry-After``) / ``TemporaryFailure`` — never slept on;
* invoices and credit notes go in batches of at most 30 with a deterministic ``bId``
  (the invoice id) and a ``requestid`` derived from the chunk, so a resend answers the
  first result; each document also carries its key in ``PrivateNote``, so a duplicate
  document number (6140) for a document we already created is recognised as ours;
* QuickBooks owns taxes: lines carry ``TAX`` / ``NON`` and no tax amounts;
* a document in a foreign currency carries ``CurrencyRef`` (and no ``ExchangeRate``:
  QuickBooks takes its rate for the document's date) and goes only to a QuickBooks
  customer in that currency — a customer's currency never changes in QuickBooks, so a
  mismatch is a failed document with a clear message, not a wrong booking.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Container, Mapping, Sequence
from decimal import Decimal
from functools import cached_property
from typing import Any, TypeVar

import requests
from django.db import transaction
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks.exceptions import AuthorizationException, QuickbooksException
from quickbooks.objects.item import Item as QboItem

from contracts.models import Product, RateItem
from integrations import keys, selectors, store
from integrations.base import (
    ConnectionLost,
    Connector,
    DocumentResult,
    IntegrationError,
    LocalItem,
    RemotePayment,
    RemoteRecord,
    TemporaryFailure,
)
from integrations.models import AccountingConnection, RemoteMapping, System
from integrations.quickbooks import mapping as bodies
from integrations.quickbooks.client import QuickBooksClient
from integrations.quickbooks.config import qbo_config
from invoices.models import Invoice, InvoiceLine

T = TypeVar("T")
BATCH_LIMIT = 30
PAGE = 1000
DUPLICATE_NAME = "6240"
DUPLICATE_DOCUMENT = "6140"
CURRENCY_MISMATCH = "currency_mismatch"
NAME_MATCH = "name_match"  # a customer of (nearly) that name is in QuickBooks already: not created


class QuickBooksConnector(Connector):
    system = System.QUICKBOOKS
    label = "QuickBooks Online"
    export_batch_size = BATCH_LIMIT
    owns_taxes = True

    def __init__(self, connection: AccountingConnection, *, export_run=None) -> None:
        super().__init__(connection, export_run=export_run)
        self.config = qbo_config()
        self.export_batch_size = self.config.batch_size
        self._auth: AuthClient | None = None
        self._qb: QuickBooksClient | None = None
        self._resume_checked = False

    @cached_property
    def home_currency(self) -> str:
        """The MSP's home currency: documents in it go without CurrencyRef (the QuickBooks company's own)."""
        return selectors.home_currency()

    # --- OAuth ---------------------------------------------------------------------------

    @classmethod
    def settings_missing(cls) -> list[str]:
        config = qbo_config()
        return [name for name, value in (("QBO_CLIENT_ID", config.client_id), ("QBO_CLIENT_SECRET", config.client_secret))
                if not value]

    @classmethod
    def _auth_client(cls, redirect_uri: str = "", **tokens: Any) -> AuthClient:
        config = qbo_config()
        if not config.configured:
            raise IntegrationError("QuickBooks Online is not set up on this server (QBO_CLIENT_ID / QBO_CLIENT_SECRET).")
        try:
            return AuthClient(config.client_id, config.client_secret, redirect_uri, config.environment, **tokens)
        except (AuthClientError, requests.RequestException, ValueError) as error:
            raise TemporaryFailure(f"QuickBooks' discovery document could not be read: {error}") from error

    @classmethod
    def authorization_url(cls, *, state: str, redirect_uri: str) -> str:
        return cls._auth_client(redirect_uri).get_authorization_url([Scopes.ACCOUNTING], state_token=state)

    @classmethod
    def complete_authorization(cls, *, code: str, redirect_uri: str, params: Mapping[str, str]) -> dict[str, Any]:
        realm = params.get("realmId", "")
        if not realm:
            raise IntegrationError("QuickBooks did not say which company was connected (realmId missing).")
        auth = cls._auth_client(redirect_uri)
        try:
            auth.get_bearer_token(code, realm_id=realm)
        except AuthClientError as error:
            raise IntegrationError(f"QuickBooks refused the authorization: {error.content[:200]!r}",
                                   http_status=error.status_code) from error
        tokens = {"access_token": auth.access_token, "refresh_token": auth.refresh_token,
                  "expires_in": auth.expires_in, "refresh_expires_in": auth.x_refresh_token_expires_in,
                  "remote_tenant_id": realm, "scopes": Scopes.ACCOUNTING.value, "remote_name": ""}
        try:  # the company's name, for the accounting page
            config = qbo_config()
            response = requests.get(f"{config.api_url}/company/{realm}/companyinfo/{realm}",
                                    params={"minorversion": config.minor_version},
                                    headers={"Authorization": f"Bearer {auth.access_token}", "Accept": "application/json"},
                                    timeout=30)
            if response.ok:
                tokens["remote_name"] = response.json().get("CompanyInfo", {}).get("CompanyName", "")
        except (requests.RequestException, ValueError):
            pass
        return tokens

    def disconnect(self) -> None:
        auth = self._auth_client(refresh_token=self.connection.refresh_token)
        started = time.monotonic()
        try:
            auth.revoke(token=self.connection.refresh_token or self.connection.access_token)
        except (AuthClientError, ValueError) as error:
            self.log_call(operation="oauth.revoke", outcome="failed", error=str(error)[:2000], started=started,
                          http_status=getattr(error, "status_code", None))
            raise IntegrationError(f"QuickBooks did not revoke the connection: {error}") from error
        self.log_call(operation="oauth.revoke", outcome="ok", started=started, http_status=200)

    # --- tokens and the client -------------------------------------------------------------

    def _client(self) -> QuickBooksClient:
        if self._qb is None:
            conn = self.connection
            expires = conn.access_expires_at
            if not conn.access_token or (expires and expires <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60)):
                self._refresh()
            self._qb = self._build_client()
        return self._qb

    def _build_client(self) -> QuickBooksClient:
        conn = self.connection
        if self._auth is None:
            self._auth = self._auth_client()
        self._auth.access_token = conn.access_token
        self._auth.refresh_token = conn.refresh_token
        client_class = type("QuickBooksClient", (QuickBooksClient,), {"api_url_v3": self.config.api_url,
                                                             "sandbox_api_url_v3": self.config.api_url})
        return client_class(auth_client=self._auth, refresh_token=conn.refresh_token, company_id=conn.remote_tenant_id,
                            minorversion=self.config.minor_version)

    def _refresh(self) -> None:
        """Spend the refresh token and store the new pair before anything else can go wrong.

        The row is locked while refreshing: a second worker waits, then finds a newer token
        than the one it holds and uses that instead of spending a dead one.
        """
        held = self.connection.refresh_token_encrypted
        failure: tuple[IntegrationError, dict] | None = None
        with transaction.atomic():
            conn = AccountingConnection.objects.select_for_update().get(pk=self.connection.pk)
            if conn.refresh_token_encrypted != held and conn.status == AccountingConnection.Status.CONNECTED:
                self.connection = conn  # someone else refreshed meanwhile
                if conn.access_expires_at and conn.access_expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60):
                    return
            if conn.status != AccountingConnection.Status.CONNECTED:
                raise ConnectionLost(f"The QuickBooks connection is {conn.get_status_display().lower()}.",
                                     revoked=conn.status == AccountingConnection.Status.REVOKED)
            if self._auth is None:
                self._auth = self._auth_client()
            started = time.monotonic()
            try:
                self._auth.refresh(refresh_token=conn.refresh_token)
            except AuthClientError as error:
                body = error.content.decode(errors="replace")[:500] if isinstance(error.content, bytes) else str(error.content)
                log = dict(http_status=error.status_code, error_code="invalid_grant" if "invalid_grant" in body else "",
                           error=body, started=started)
                if error.status_code in (400, 401):
                    failure = (ConnectionLost("QuickBooks no longer accepts this connection's refresh token "
                                              "(expired or revoked): reconnect.", code="invalid_grant",
                                              http_status=error.status_code), log)
                else:
                    failure = (TemporaryFailure(f"QuickBooks token refresh failed: {body}", http_status=error.status_code), log)
            except requests.RequestException as error:
                failure = (TemporaryFailure(f"QuickBooks could not be reached: {error}"),
                           dict(error=str(error)[:2000], started=started))
            else:
                self.connection = conn
                self.store_tokens(access_token=self._auth.access_token, refresh_token=self._auth.refresh_token,
                                  expires_in=self._auth.expires_in, refresh_expires_in=self._auth.x_refresh_token_expires_in)
        if failure is not None:  # logged outside the transaction, so the log survives the error
            self.log_call(operation="oauth.refresh", outcome="failed", **failure[1])
            raise failure[0]
        self.log_call(operation="oauth.refresh", outcome="ok", http_status=200, started=started)

    def _call(self, operation: str, fn: Callable[[QuickBooksClient], T], *, summary: str = "", invoice_id: int | None = None,
              key: str = "", remote_id: Callable[[T], str] | None = None, log: bool = True) -> T:
        """Run ``fn(client)``, logged; on 401 refresh, rebuild the client and run it once more."""
        for attempt in (1, 2):
            client = self._client()
            started = time.monotonic()
            try:
                result = fn(client)
            except AuthorizationException as error:
                self._log_failure(operation, error, client, summary, invoice_id, key, started)
                if attempt == 2:
                    raise ConnectionLost("QuickBooks refuses this connection's access (revoked?): reconnect.",
                                         revoked=True, code=str(error.error_code), http_status=401) from error
                self._qb = None
                self._refresh()
                continue
            except IntegrationError as error:
                self.log_call(operation=operation, outcome="failed", request_summary=summary, invoice_id=invoice_id,
                              idempotency_key=key, http_status=error.http_status, error_code=error.code,
                              error=error.message, started=started)
                raise
            except QuickbooksException as error:
                self._log_failure(operation, error, client, summary, invoice_id, key, started)
                raise IntegrationError(f"{error.message}: {error.detail}"[:2000], code=str(error.error_code),
                                       http_status=self._status(client)) from error
            if log:
                self.log_call(operation=operation, outcome="ok", request_summary=summary, invoice_id=invoice_id,
                              idempotency_key=key, http_status=self._status(client),
                              remote_id=remote_id(result) if remote_id else "", started=started)
            return result
        raise AssertionError("unreachable")

    @staticmethod
    def _status(client: QuickBooksClient) -> int | None:
        return client.last_response.status_code if client.last_response is not None else None

    def _log_failure(self, operation, error: QuickbooksException, client, summary, invoice_id, key, started) -> None:
        self.log_call(operation=operation, outcome="failed", request_summary=summary, invoice_id=invoice_id,
                      idempotency_key=key, http_status=self._status(client), error_code=str(error.error_code),
                      error=f"{error.message}: {error.detail}"[:2000], started=started)

    # --- raw requests ----------------------------------------------------------------------

    def _query_all(self, sql: str, entity: str, *, operation: str) -> list[dict]:
        rows: list[dict] = []
        start = 1
        while True:
            page_sql = f"{sql} STARTPOSITION {start} MAXRESULTS {PAGE}"
            answer = self._call(operation, lambda qb, s=page_sql: qb.query(s), summary=page_sql[:500])
            page = answer.get("QueryResponse", {}).get(entity, [])
            rows.extend(page)
            if len(page) < PAGE:
                return rows
            start += PAGE

    def _batch(self, operation: str, items: list[dict], *, request_id: str, summary: str) -> dict[str, dict]:
        """POST one batch (≤ 30 items) with ``requestid``; bId → item response."""
        assert len(items) <= BATCH_LIMIT
        body = json.dumps({"BatchItemRequest": items})

        def send(qb: QuickBooksClient) -> dict:
            url = f"{qb.api_url}/company/{qb.company_id}/batch"
            return qb.make_request("POST", url, body, request_id=request_id)

        answer = self._call(operation, send, summary=summary, key=request_id)
        return {item.get("bId", ""): item for item in answer.get("BatchItemResponse", [])}

    @staticmethod
    def _fault(item: dict) -> tuple[str, str]:
        errors = (item.get("Fault") or {}).get("Error") or [{}]
        first = errors[0]
        return str(first.get("code", "")), f"{first.get('Message', '')}: {first.get('Detail', '')}".strip(": ")

    # --- defaults: an income account and a generic item -------------------------------------

    def _defaults(self) -> dict[str, str]:
        options = dict(self.connection.options or {})
        if options.get("income_account_id") and options.get("default_item_id"):
            return options
        if not options.get("income_account_id"):
            accounts = self._query_all("SELECT * FROM Account WHERE AccountType = 'Income'", "Account",
                                       operation="account.query")
            if not accounts:
                raise IntegrationError("QuickBooks has no income account to book sales to; create one first.")
            preferred = next((a for a in accounts if a.get("AccountSubType") == "ServiceFeeIncome"), accounts[0])
            options["income_account_id"] = preferred["Id"]
        if not options.get("default_item_id"):
            name = "Services"
            found = self._query_all(f"SELECT * FROM Item WHERE Name = {bodies.quote(name)}", "Item", operation="item.query")
            if found:
                options["default_item_id"] = found[0]["Id"]
            else:
                item = QboItem()
                item.Name, item.Type = name, "Service"
                item.IncomeAccountRef = bodies.ref(options["income_account_id"])
                key = keys.object_key("item-default", 0)
                created = self._call("item.create", lambda qb: item.save(qb=qb, request_id=key), summary=name, key=key,
                                     remote_id=lambda obj: obj.Id)
                options["default_item_id"] = created.Id
        AccountingConnection.objects.filter(pk=self.connection.pk).update(options=options)
        self.connection.options = options
        return options

    # --- catalogue and customers -----------------------------------------------------------

    def fetch_customers(self) -> list[RemoteRecord]:
        rows = self._query_all("SELECT * FROM Customer WHERE Active = true", "Customer", operation="customer.query")
        return [RemoteRecord(remote_id=row["Id"], name=row.get("DisplayName", ""),
                             data={"company_name": row.get("CompanyName", ""),
                                   "email": (row.get("PrimaryEmailAddr") or {}).get("Address", ""),
                                   "currency": (row.get("CurrencyRef") or {}).get("value", ""),
                                   "address": bodies.address_text(row.get("BillAddr"))})
                for row in rows]

    def fetch_items(self) -> list[RemoteRecord]:
        rows = self._query_all("SELECT * FROM Item WHERE Active = true", "Item", operation="item.query")
        return [RemoteRecord(remote_id=row["Id"], name=row.get("Name", ""), code=row.get("Sku") or "",
                             price=Decimal(str(row.get("UnitPrice") or 0)), data={"type": row.get("Type", "")})
                for row in rows if row.get("Type") in ("Service", "NonInventory", "Inventory")]

    def fetch_tax_codes(self) -> list[RemoteRecord]:
        rows = self._query_all("SELECT * FROM TaxCode", "TaxCode", operation="taxcode.query")
        return [RemoteRecord(remote_id=row["Id"], name=row.get("Name", ""), data={"taxable": row.get("Taxable")})
                for row in rows]

    def create_customers(self, customers: Sequence) -> dict[int, RemoteRecord]:
        created: dict[int, RemoteRecord] = {}
        customers = list(customers)
        for start in range(0, len(customers), BATCH_LIMIT):
            created.update(self._create_customer_batch(customers[start:start + BATCH_LIMIT]))
        return created

    def _create_customer_batch(self, chunk: Sequence, *, required: Container[int] | None = None) -> dict[int, RemoteRecord]:
        """One batch request (≤ 30). A refused customer raises when ``required`` holds it (None: every one);
        others are logged and left unmapped, to be tried again with their own documents."""
        created: dict[int, RemoteRecord] = {}
        if chunk:
            items = [{"bId": str(c.pk), "operation": "create", "Customer": bodies.customer_body(c, home_currency=self.home_currency)}
                     for c in chunk]
            request_id = keys.chunk_key([keys.object_key("cus", c.pk) for c in chunk], prefix="c")
            answers = self._batch("customer.batch_create", items, request_id=request_id,
                                  summary=f"{len(chunk)} customers: " + ", ".join(c.legal_name for c in chunk)[:400])
            # Names already taken (6240): that customer is this one (exact name). One query for the whole batch.
            taken = self._by_name("Customer", "DisplayName", [
                bodies.display_name(c.legal_name) for c in chunk
                if self._fault(answers.get(str(c.pk), {}))[0] == DUPLICATE_NAME and "Customer" not in answers.get(str(c.pk), {})])
            for customer in chunk:
                answer = answers.get(str(customer.pk), {})
                if "Customer" in answer:
                    row = answer["Customer"]
                    created[customer.pk] = RemoteRecord(remote_id=row["Id"], name=row.get("DisplayName", ""),
                                                        data={"currency": self._currency_of(row)})
                    continue
                code, message = self._fault(answer)
                if code == DUPLICATE_NAME:
                    found = taken.get(bodies.display_name(customer.legal_name))
                    if found:
                        created[customer.pk] = RemoteRecord(remote_id=found["Id"], name=found["DisplayName"],
                                                            data={"currency": self._currency_of(found)})
                        continue
                    message += " (the name belongs to a vendor or employee in QuickBooks)"
                self.log_call(operation="customer.create", outcome="failed", request_summary=customer.legal_name,
                              error_code=code, error=message)
                if required is None or customer.pk in required:
                    raise IntegrationError(f"QuickBooks refused customer “{customer.legal_name}”: {message}", code=code)
        return created

    def create_items(self, items: Sequence[LocalItem]) -> dict[tuple[str, int], RemoteRecord]:
        created: dict[tuple[str, int], RemoteRecord] = {}
        items = list(items)
        for start in range(0, len(items), BATCH_LIMIT):
            created.update(self._create_item_batch(items[start:start + BATCH_LIMIT]))
        return created

    def _create_item_batch(self, chunk: Sequence[LocalItem], *,
                           required: Container[tuple[str, int]] | None = None) -> dict[tuple[str, int], RemoteRecord]:
        """One batch request (≤ 30); refusals as in :meth:`_create_customer_batch` (key: (local_type, local_id))."""
        created: dict[tuple[str, int], RemoteRecord] = {}
        if chunk:
            income = self._defaults()["income_account_id"]
            requests_ = [{"bId": f"{i.local_type}-{i.local_id}", "operation": "create", "Item": bodies.item_body(i, income)}
                         for i in chunk]
            request_id = keys.chunk_key([keys.object_key(i.local_type, i.local_id) for i in chunk], prefix="i")
            answers = self._batch("item.batch_create", requests_, request_id=request_id,
                                  summary=f"{len(chunk)} items: " + ", ".join(i.name for i in chunk)[:400])
            def answer_of(item: LocalItem) -> dict:
                return answers.get(f"{item.local_type}-{item.local_id}", {})

            taken = self._by_name("Item", "Name", [  # names already taken (6240): one query for the whole batch
                bodies.display_name(i.name) for i in chunk
                if "Item" not in answer_of(i) and self._fault(answer_of(i))[0] == DUPLICATE_NAME])
            for item in chunk:
                answer = answer_of(item)
                if "Item" in answer:
                    row = answer["Item"]
                    created[(item.local_type, item.local_id)] = RemoteRecord(remote_id=row["Id"], name=row["Name"],
                                                                             code=row.get("Sku") or "")
                    continue
                code, message = self._fault(answer)
                if code == DUPLICATE_NAME:
                    found = taken.get(bodies.display_name(item.name))
                    if found:
                        created[(item.local_type, item.local_id)] = RemoteRecord(remote_id=found["Id"],
                                                                                 name=found["Name"])
                        continue
                self.log_call(operation="item.create", outcome="failed", request_summary=item.name, error_code=code,
                              error=message)
                if required is None or (item.local_type, item.local_id) in required:
                    raise IntegrationError(f"QuickBooks refused item “{item.name}”: {message}", code=code)
        return created

    # --- documents -------------------------------------------------------------------------

    def export_documents(self, documents: Sequence) -> list[DocumentResult]:
        documents = list(documents)
        assert len(documents) <= self.export_batch_size
        defaults = self._defaults()
        not_created = self._ensure_customers(documents)
        results: dict[int, DocumentResult] = {
            doc.pk: DocumentResult(invoice_id=doc.pk, ok=False, error=not_created[doc.customer_id], error_code=NAME_MATCH)
            for doc in documents if doc.customer_id in not_created}
        self._ensure_items([doc for doc in documents if doc.pk not in results])
        customer_ids = store.mappings_for(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER,
                                             local_ids={doc.customer_id for doc in documents})
        item_ids = {
            local_type: store.mappings_for(system=self.system, local_type=local_type, local_ids=ids)
            for local_type, ids in bodies.item_ids(documents).items()
        }
        doc_keys = {doc.pk: keys.document_key(doc.pk) for doc in documents}
        for doc, refusal in self._currency_refusals([d for d in documents if d.pk not in results], customer_ids).items():
            results[doc.pk] = DocumentResult(invoice_id=doc.pk, ok=False, error=refusal, error_code=CURRENCY_MISMATCH)

        if self.export_run is not None and self.export_run.attempts > 1 and not self._resume_checked:
            # A worker died mid-run: documents it created may not be recorded here yet.
            self._resume_checked = True
            for doc, remote in self._already_there(documents, doc_keys).items():
                results[doc.pk] = self._ok(doc, remote)

        to_send = [doc for doc in documents if doc.pk not in results]
        if to_send:
            items = []
            for doc in to_send:
                entity, body = bodies.document_body(doc, doc_keys[doc.pk], customer_ids, item_ids, defaults,
                                              home_currency=self.home_currency)
                items.append({"bId": str(doc.pk), "operation": "create", entity: body})
            request_id = keys.chunk_key([doc_keys[doc.pk] for doc in to_send])
            answers = self._batch("document.batch_create", items, request_id=request_id,
                                  summary=f"{len(to_send)} documents: " + ", ".join(d.number for d in to_send)[:400])
            def entity_of(doc) -> str:
                return "CreditMemo" if doc.is_credit_note else "Invoice"

            # Numbers already taken (6140): which of those documents are ours, in one query per kind for the batch.
            ours_there = self._already_there([
                doc for doc in to_send if entity_of(doc) not in answers.get(str(doc.pk), {})
                and self._fault(answers.get(str(doc.pk), {}))[0] == DUPLICATE_DOCUMENT], doc_keys)
            for doc in to_send:
                answer = answers.get(str(doc.pk), {})
                entity = entity_of(doc)
                if entity in answer:
                    results[doc.pk] = self._ok(doc, answer[entity]["Id"])
                    continue
                code, message = self._fault(answer) if answer else ("", "QuickBooks returned no answer for it")
                if code == DUPLICATE_DOCUMENT:
                    ours = ours_there.get(doc)
                    if ours:
                        results[doc.pk] = self._ok(doc, ours)
                        continue
                    message = (f"QuickBooks already has a {'credit memo' if doc.is_credit_note else 'invoice'} "
                               f"numbered {doc.number} that was not exported from here. ({message})")
                results[doc.pk] = DocumentResult(invoice_id=doc.pk, ok=False, error=message, error_code=code)
        for doc in documents:
            result = results[doc.pk]
            self.log_call(operation="credit_note.export" if doc.is_credit_note else "invoice.export",
                          outcome="ok" if result.ok else "failed", invoice_id=doc.pk, idempotency_key=doc_keys[doc.pk],
                          request_summary=f"{doc.number} {doc.total} {doc.currency}", remote_id=result.remote_id,
                          error=result.error, error_code=result.error_code)
        return [results[doc.pk] for doc in documents]

    def _ok(self, doc, remote_id: str) -> DocumentResult:
        kind = "credit_note" if doc.is_credit_note else "invoice"
        return DocumentResult(invoice_id=doc.pk, ok=True, remote_id=str(remote_id),
                              remote_url=self.document_url(str(remote_id), kind=kind))

    def _currency_of(self, row: Mapping[str, Any]) -> str:
        """A QuickBooks customer's currency (none given: the company's home currency, taken to be ours)."""
        return str((row.get("CurrencyRef") or {}).get("value") or self.home_currency).upper()

    def _currency_refusals(self, documents: Sequence, customers: Mapping[str, RemoteMapping]) -> dict:
        """Documents whose QuickBooks customer is in another currency: doc → why it is not sent.

        A QuickBooks customer's currency cannot change, so such a document would be refused (or, worse,
        booked in the wrong currency). The customer's currency is remembered in its mapping; for a
        foreign-currency document whose customer's is not known yet it is read once from QuickBooks.
        """
        home = self.home_currency
        unknown = {customers[str(doc.customer_id)] for doc in documents
                   if doc.currency != home and str(doc.customer_id) in customers
                   and not (customers[str(doc.customer_id)].extra or {}).get("currency")}
        if unknown:
            ids = ", ".join(bodies.quote(mapping.remote_id) for mapping in sorted(unknown, key=lambda m: m.remote_id))
            rows = self._query_all(f"SELECT * FROM Customer WHERE Id IN ({ids})", "Customer",
                                   operation="customer.query")
            found = {str(row["Id"]): self._currency_of(row) for row in rows}
            for mapping in unknown:
                if mapping.remote_id in found:
                    mapping.extra = {**(mapping.extra or {}), "currency": found[mapping.remote_id]}
                    mapping.save(update_fields=["extra", "updated_at"])
        refusals = {}
        for doc in documents:
            mapping = customers.get(str(doc.customer_id))
            remote = str((mapping.extra or {}).get("currency") or "").upper() if mapping else ""
            if remote and remote != doc.currency.upper():
                kind = "credit note" if doc.is_credit_note else "invoice"
                refusals[doc] = (
                    f"Not sent: {doc.number} is in {doc.currency}, but the QuickBooks customer "
                    f"“{mapping.remote_name or mapping.remote_id}” it is matched to is in {remote}. A QuickBooks "
                    f"customer's currency cannot be changed: match “{doc.customer.legal_name}” to a QuickBooks "
                    f"customer in {doc.currency} (or create one) in the sync wizard, then retry this {kind}.")
        return refusals

    def _by_name(self, entity: str, field: str, names: Sequence[str]) -> dict[str, dict]:
        """``entity`` rows whose ``field`` is one of ``names`` (exact), by that name: one query, none for no names."""
        if not names:
            return {}
        wanted = sorted(set(names))
        rows = self._query_all(f"SELECT * FROM {entity} WHERE {field} IN ({', '.join(bodies.quote(n) for n in wanted)})",
                               entity, operation=f"{entity.lower()}.query")
        found: dict[str, dict] = {}
        for row in rows:
            found.setdefault(row.get(field, ""), row)
        return found

    def _already_there(self, documents: Sequence, doc_keys: Mapping[int, str]) -> dict:
        """Documents QuickBooks already has *from us* (our key in PrivateNote): doc → remote id."""
        found = {}
        for entity, docs in (("Invoice", [d for d in documents if not d.is_credit_note]),
                             ("CreditMemo", [d for d in documents if d.is_credit_note])):
            if not docs:
                continue
            numbers = ", ".join(bodies.quote(d.number) for d in docs)
            rows = self._query_all(f"SELECT * FROM {entity} WHERE DocNumber IN ({numbers})", entity,
                                   operation=f"{entity.lower()}.query")
            by_note = {row.get("PrivateNote", ""): row["Id"] for row in rows}
            for doc in docs:
                remote = by_note.get(bodies.NOTE_PREFIX + doc_keys[doc.pk])
                if remote:
                    found[doc] = remote
        return found

    def _ensure_customers(self, documents: Sequence) -> dict[int, str]:
        """Create (or link) the customers the documents need; returns those not created: local id → why."""
        customers = {doc.customer_id: doc.customer for doc in documents}
        known = store.mappings_for(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER, local_ids=customers)
        missing = [customer for pk, customer in customers.items() if str(pk) not in known]
        if not missing:
            return {}
        # The customers of the run's later documents go in the same batches: a first export creates
        # its customers 30 to a request, not a few with every chunk (one batch per chunk otherwise).
        wanted = missing + self.customers_ahead(exclude=customers)
        # Never a second customer of the same name: an exact twin is linked, a close one stops the document.
        adopt, refuse = self.customer_twins(wanted)
        for pk, record in adopt.items():
            store.mapping_set(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER, local_id=pk,
                              remote_id=record.remote_id, remote_name=record.name,
                              extra=bodies.customer_mapping_extra(record))
        wanted = [customer for customer in wanted if customer.pk not in adopt and customer.pk not in refuse]
        for start in range(0, len(wanted), BATCH_LIMIT):
            created = self._create_customer_batch(wanted[start:start + BATCH_LIMIT], required=customers)
            for pk, record in created.items():
                store.mapping_set(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER, local_id=pk,
                                     remote_id=record.remote_id, remote_name=record.name,
                                     extra=bodies.customer_mapping_extra(record))
        return {pk: why for pk, why in refuse.items() if pk in customers}

    def _ensure_items(self, documents: Sequence) -> None:
        wanted: dict[tuple[str, int], LocalItem] = {}
        for doc in documents:
            for line in doc.lines.all():
                if line.product_id:
                    wanted[("product", line.product_id)] = bodies.product_item(line.product)
                elif line.rate_item_id:
                    wanted[("rate_item", line.rate_item_id)] = bodies.rate_item_item(line.rate_item)
        missing = self._unmapped_items(wanted)
        if not missing:
            return
        # As with customers: the items the rest of the run uses go in the same batches.
        wanted_later = {key: item for key, item in self._items_ahead().items() if key not in wanted}
        missing += self._unmapped_items(wanted_later)
        for start in range(0, len(missing), BATCH_LIMIT):
            created = self._create_item_batch(missing[start:start + BATCH_LIMIT], required=wanted)
            for (local_type, local_id), record in created.items():
                store.mapping_set(system=self.system, local_type=local_type, local_id=local_id,
                                     remote_id=record.remote_id, remote_name=record.name, remote_code=record.code)

    def _unmapped_items(self, items: Mapping[tuple[str, int], LocalItem]) -> list[LocalItem]:
        missing = []
        for local_type in ("product", "rate_item"):
            ids = [local_id for (kind, local_id) in items if kind == local_type]
            known = store.mappings_for(system=self.system, local_type=local_type, local_ids=ids)
            missing += [items[(local_type, local_id)] for local_id in ids if str(local_id) not in known]
        return missing

    def _items_ahead(self) -> dict[tuple[str, int], LocalItem]:
        """Products and rate items on the lines of the run's documents still to send (none outside a run)."""
        ahead = self.documents_ahead()
        if ahead is None:
            return {}
        lines = InvoiceLine.objects.filter(invoice__in=ahead)
        items = {("product", product.pk): bodies.product_item(product) for product in
                 Product.objects.filter(pk__in=lines.filter(product__isnull=False).values("product_id")).order_by("pk")}
        items.update({("rate_item", rate_item.pk): bodies.rate_item_item(rate_item) for rate_item in
                      RateItem.objects.filter(pk__in=lines.filter(product__isnull=True, rate_item__isnull=False)
                                              .values("rate_item_id")).order_by("pk")})
        return items

    # --- payments --------------------------------------------------------------------------

    def fetch_payments(self, *, since: dt.datetime | None) -> list[RemotePayment]:
        sql = "SELECT * FROM Payment"
        if since is not None:
            sql += f" WHERE MetaData.LastUpdatedTime >= {bodies.quote(since.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%S-00:00'))}"
        rows = self._query_all(sql, "Payment", operation="payment.query")
        our_credit_memos = set(Invoice.objects.filter(exported_to=self.system, kind=Invoice.Kind.CREDIT_NOTE)
                               .exclude(remote_id="").values_list("remote_id", flat=True))
        payments: list[RemotePayment] = []
        for row in rows:
            invoice_lines: list[tuple[str, Decimal]] = []
            settled = Decimal(str(row.get("TotalAmt") or 0))  # money received
            for line in row.get("Line", []):
                amount = Decimal(str(line.get("Amount") or 0))
                for linked in line.get("LinkedTxn", []):
                    if linked.get("TxnType") == "Invoice":
                        invoice_lines.append((str(linked["TxnId"]), amount))
                    elif linked.get("TxnType") == "CreditMemo" and str(linked["TxnId"]) not in our_credit_memos:
                        settled += amount  # a credit given in QuickBooks only settles the invoice too
            date = dt.date.fromisoformat(str(row.get("TxnDate") or dt.date.today().isoformat())[:10])
            for invoice_remote_id, amount in invoice_lines:  # what was settled, in line order
                share = min(amount, settled)
                settled -= share
                if share > 0:
                    payments.append(RemotePayment(remote_id=f"qbo-payment-{row['Id']}", invoice_remote_id=invoice_remote_id,
                                                  amount=share, date=date, reference=row.get("PaymentRefNum") or ""))
        return payments

    def document_url(self, remote_id: str, *, kind: str = "invoice") -> str:
        page = "creditmemo" if kind == "credit_note" else "invoice"
        return f"{self.config.app_url}/{page}?txnId={remote_id}"


