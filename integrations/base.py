"""The one interface every accounting system implements (QuickBooks Online, Xero, ...).

A connector is built around the MSP's ``AccountingConnection`` row and speaks the
system's API. It does *not* decide what to export, keep progress or write invoice
state: ``integrations.services`` does, the same way for every system (export runs,
idempotency keys, the log, payments). See ``docs/integrations.md``.

Rules for implementations
-------------------------
* Every HTTP call is logged with :meth:`Connector.log_call` (ok or failed).
* Refreshed tokens are stored at once with :meth:`Connector.store_tokens` — refresh
  tokens rotate, and losing the newest one loses the connection.
* A dead refresh token / revoked access raises :class:`ConnectionLost` (the service marks
  the connection expired or revoked and the admin sees a reconnect button).
* A rate limit raises :class:`RateLimited` with the server's ``Retry-After``; a connector
  never sleeps — the Celery task is retried with that countdown.
* A 5xx / network problem raises :class:`TemporaryFailure` (retried with backoff).
* Anything else the system refuses for one document is a failed :class:`DocumentResult`
  (not an exception), so the other documents of a chunk still go through.
"""
from __future__ import annotations

import datetime as dt
import time
from abc import ABC, abstractmethod
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import connection as db_connection
from django.db.models import QuerySet

from contracts.models import Customer
from integrations import store
from integrations.matching import Candidate, exact_key, name_twins
from integrations.models import IntegrationLog, RemoteMapping
from invoices.models import Invoice
from msp_billing.money import is_half_unit_tie, line_amount, round_unit_price

if TYPE_CHECKING:
    from integrations.models import AccountingConnection, ExportRun


# --- errors -------------------------------------------------------------------------------


class IntegrationError(Exception):
    """Something the accounting system refused; ``code`` is the system's own error code."""

    def __init__(self, message: str, *, code: str = "", http_status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status


class ConnectionLost(IntegrationError):
    """Refresh token dead (``invalid_grant``) or access revoked: the admin must reconnect."""

    def __init__(self, message: str, *, revoked: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.revoked = revoked


class RateLimited(IntegrationError):
    """429: try again after ``retry_after`` seconds (``problem``: minute / day / concurrent)."""

    def __init__(self, message: str = "Rate limit reached", *, retry_after: float = 60, problem: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("http_status", 429)
        super().__init__(message, **kwargs)
        self.retry_after = max(1.0, float(retry_after))
        self.problem = problem


class TemporaryFailure(IntegrationError):
    """5xx or network trouble: nothing known to have happened; retry later."""


# --- values exchanged with the connectors ------------------------------------------------


@dataclass(frozen=True)
class RemoteRecord:
    """A customer, item or tax code as the accounting system has it."""

    remote_id: str
    name: str
    code: str = ""  # item code / account code / tax type, where the system has one
    price: Decimal | None = None  # items
    percent: Decimal | None = None  # tax codes
    active: bool = True
    data: Mapping[str, Any] = field(default_factory=dict)  # anything else the wizard may show


@dataclass(frozen=True)
class LocalItem:
    """A product or rate item to create (or match) as an accounting item."""

    local_type: str  # RemoteMapping.LocalType.PRODUCT / RATE_ITEM
    local_id: int
    name: str
    price: Decimal
    currency: str
    taxable: bool = True
    sku: str = ""
    accounting_code: str = ""


@dataclass(frozen=True)
class DocumentResult:
    """What happened to one invoice or credit note of a chunk."""

    invoice_id: int
    ok: bool
    remote_id: str = ""
    remote_url: str = ""
    error: str = ""
    error_code: str = ""


@dataclass(frozen=True)
class RemotePayment:
    """A payment (or credit applied) in the accounting system against one exported invoice."""

    remote_id: str  # unique per payment in the system; recorded once per invoice
    invoice_remote_id: str
    amount: Decimal
    date: dt.date
    reference: str = ""


# --- the interface ------------------------------------------------------------------------


class Connector(ABC):
    """One accounting system, for one MSP's connection."""

    system: ClassVar[str]  # integrations.models.System value
    label: ClassVar[str]
    export_batch_size: ClassVar[int] = 1  # documents per export_documents() call (QBO 30, Xero 50)
    owns_taxes: ClassVar[bool] = False  # True: invoices go out without our taxes (QuickBooks Online)

    def __init__(self, connection: AccountingConnection, *, export_run: ExportRun | None = None) -> None:
        self.connection = connection
        self.export_run = export_run
        self._remote_customers: list[RemoteRecord] | None = None  # read once, by customer_twins()

    # -- OAuth 2 ------------------------------------------------------------------------------

    @classmethod
    def settings_missing(cls) -> list[str]:
        """The settings this server still needs before the system can be connected ([]: ready)."""
        return []

    @classmethod
    @abstractmethod
    def authorization_url(cls, *, state: str, redirect_uri: str) -> str:
        """Where the admin's browser goes to grant access."""

    @classmethod
    @abstractmethod
    def complete_authorization(cls, *, code: str, redirect_uri: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Exchange the callback's code for tokens; ``params`` is the callback's query string.

        Returns ``{"access_token", "refresh_token", "expires_in", "refresh_expires_in",
        "remote_tenant_id", "remote_name", "scopes"}`` (missing keys allowed). The service
        stores them (encrypted) with ``integrations.services.connection_store``.
        """

    @abstractmethod
    def disconnect(self) -> None:
        """Revoke the tokens in the accounting system (best effort; the service forgets them anyway)."""

    # -- catalogue and customers (the sync wizard) -------------------------------------------

    @abstractmethod
    def fetch_customers(self) -> list[RemoteRecord]:
        """Every active customer / contact of the accounting system."""

    @abstractmethod
    def fetch_items(self) -> list[RemoteRecord]:
        """Every active sellable item (products and services)."""

    def fetch_tax_codes(self) -> list[RemoteRecord]:
        """Tax codes / rates (mapping our tax codes to theirs, where the system needs it)."""
        return []

    @abstractmethod
    def create_customers(self, customers: Sequence[Customer]) -> dict[int, RemoteRecord]:
        """Create customers remotely (idempotently); returns local customer id → remote record."""

    @abstractmethod
    def create_items(self, items: Sequence[LocalItem]) -> dict[tuple[str, int], RemoteRecord]:
        """Create items remotely at our price (idempotently); returns (local_type, local_id) → remote record."""

    # -- documents ----------------------------------------------------------------------------

    @abstractmethod
    def export_documents(self, documents: Sequence[Invoice]) -> list[DocumentResult]:
        """Send at most ``export_batch_size`` issued invoices / credit notes; one result each.

        The chunk is deterministic (``integrations.services`` computes it from what the
        database says is still to do), so a resend after a crash is the same request with
        the same idempotency keys (``integrations.keys``) and the system answers with the
        first result. Missing customers and items are created (and mapped) first.
        """

    @abstractmethod
    def fetch_payments(self, *, since: dt.datetime | None) -> list[RemotePayment]:
        """Payments and applied credits changed since ``since`` (None: all) on exported invoices."""

    @abstractmethod
    def document_url(self, remote_id: str, *, kind: str = "invoice") -> str:
        """Link to a document in the accounting system's web app."""

    # -- helpers for implementations --------------------------------------------------------

    def store_tokens(self, *, access_token: str, refresh_token: str, expires_in: float | None = None,
                     refresh_expires_in: float | None = None) -> None:
        """Persist the newest tokens now (own transaction if none is open)."""
        store.connection_tokens_update(connection=self.connection, access_token=access_token, refresh_token=refresh_token,
                                 expires_in=expires_in, refresh_expires_in=refresh_expires_in)

    def log_call(self, *, operation: str, outcome: str, request_summary: str = "", invoice_id: int | None = None,
                 idempotency_key: str = "", http_status: int | None = None, error_code: str = "", error: str = "",
                 remote_id: str = "", started: float | None = None) -> IntegrationLog:
        """One row in ``IntegrationLog`` (``started``: ``time.monotonic()`` before the call)."""
        return IntegrationLog.objects.create(
            system=self.system, operation=operation[:60], outcome=outcome, request_summary=request_summary[:500],
            invoice_id=invoice_id, export_run=self.export_run, idempotency_key=idempotency_key[:128],
            http_status=http_status, error_code=str(error_code)[:40], error=error, remote_id=str(remote_id)[:100],
            duration_ms=int((time.monotonic() - started) * 1000) if started is not None else None,
        )

    @property
    def schema_name(self) -> str:
        return db_connection.schema_name

    # -- what both API connectors do the same way -------------------------------------------

    def documents_ahead(self) -> QuerySet[Invoice] | None:
        """The export run's documents not sent to this system yet and not refused in it; None outside a run."""
        run = self.export_run
        if run is None:
            return None
        return Invoice.objects.filter(pk__in=run.document_ids).exclude(pk__in=run.failed_ids).exclude(exported_to=self.system)

    def customer_twins(self, customers: Sequence[Customer]) -> tuple[dict[int, RemoteRecord], dict[int, str]]:
        """Before an export creates customers: which of them the accounting system seems to have already.

        Returns ``(adopt, refuse)``. *adopt*: local id → the one remote customer whose name
        is the same ignoring case and spacing, not matched to anyone here — that customer is
        this one, and is linked instead of created. *refuse*: local id → why it is not created:
        a remote customer has the same normalised name ("Brown, Nick" for "Nick Brown", "ACME
        Inc" for "Acme Corp"; ``matching.name_key``) but only the admin can say it is the same
        one — match it, or choose Create, in the sync wizard. Customers without a twin are in
        neither: they are created. The remote list is read once per connector (a task run).
        """
        if not customers:
            return {}, {}
        if self._remote_customers is None:
            self._remote_customers = self.fetch_customers()
        remotes = {record.remote_id: record for record in self._remote_customers if record.active}
        taken = set(RemoteMapping.objects.filter(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER)
                    .values_list("remote_id", flat=True))
        candidates = [Candidate(remote_id=record.remote_id, name=record.name) for record in remotes.values()]
        adopt: dict[int, RemoteRecord] = {}
        refuse: dict[int, str] = {}
        for pk, twins in name_twins({c.pk: c.legal_name for c in customers}, candidates).items():
            local = next(c for c in customers if c.pk == pk)
            same = [t for t in twins if exact_key(t.name) == exact_key(local.legal_name)]
            if len(same) == 1 and len(twins) == 1 and same[0].remote_id not in taken \
                    and same[0].remote_id not in {r.remote_id for r in adopt.values()}:
                adopt[pk] = remotes[same[0].remote_id]
                continue
            names = ", ".join(f"“{t.name}”" for t in twins[:3])
            refuse[pk] = (f"Not sent: {self.label} already has a customer named {names}, close to "
                          f"“{local.legal_name}”, and no customer here is created twice. Match “{local.legal_name}” "
                          f"to it in the sync wizard (or choose Create there if it is another customer), then retry.")
        return adopt, refuse

    def customers_ahead(self, *, exclude: Container[int]) -> list[Customer]:
        """Customers with no mapping yet whose documents in this run are still to send (none outside a run).

        A first export creates them together with the first chunk's customers, as many to a
        request as the system takes, instead of a few with every chunk.
        """
        ahead = self.documents_ahead()
        if ahead is None:
            return []
        ids = [pk for pk in ahead.order_by("customer_id").values_list("customer_id", flat=True).distinct()
               if pk not in exclude]
        known = store.mappings_for(system=self.system, local_type=RemoteMapping.LocalType.CUSTOMER, local_ids=ids)
        unmapped = [pk for pk in ids if str(pk) not in known]
        found = Customer.objects.in_bulk(unmapped)
        return [found[pk] for pk in unmapped if pk in found]


def quantity_and_price(*, quantity: Decimal, unit_price: Decimal, target: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """A quantity and a 4-place unit price whose product rounds to exactly ``target``.

    The printed quantity and price when they do; else the quantity with the price recomputed
    (rated time: 7 min = 0.1167 h); else 1 × ``target`` (a prorated fee, a discounted line).
    Accounting systems recompute a line from quantity × price, so what they book must be
    what the invoice printed — whichever way they round: a product exactly halfway between
    two cents (0.18 h × 241.25 = 43.425) is sent with its price recomputed instead.
    """
    def books_as_target(price: Decimal) -> bool:  # and the same under any rounding rule: no half-cent tie
        return (line_amount(quantity=quantity, unit_price=price, currency=currency) == target
                and not is_half_unit_tie(quantity=quantity, unit_price=price, currency=currency))

    if quantity and books_as_target(unit_price):
        return quantity, unit_price
    if quantity:
        price = round_unit_price(Fraction(target) / Fraction(quantity))
        if books_as_target(price):
            return quantity, price
    return Decimal("1"), target
