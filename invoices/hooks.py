"""Tell other parts of the product that an invoice changed, without invoices/ importing them.

PDF rendering, e-mail and accounting export react to invoice changes but are not part of
the invoice core. They register a listener here at start-up (``AppConfig.ready``):

    from invoices.hooks import register_invoice_listener

    def rerender(*, invoice_id: int, action: str) -> None:
        render_invoice_pdf.delay(invoice_id)

    register_invoice_listener(rerender)

The services call :func:`invoice_changed` through ``transaction.on_commit`` — after the
change is committed, so a worker never sees uncommitted rows, and never for a change that
rolled back. ``action`` is one of ``ACTIONS``; for ``"deleted"`` the invoice no longer
exists. The tenant's schema is still active when listeners run.

A listener that raises is logged and skipped: the change is already committed and the
other listeners still deserve to hear about it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from msp_billing.hooks import hook_add, hook_remove

logger = logging.getLogger(__name__)

ACTIONS = ("created", "edited", "issued", "voided", "credited", "credit_note_issued", "paid", "exported", "deleted")


class InvoiceListener(Protocol):
    def __call__(self, *, invoice_id: int, action: str) -> None: ...


_listeners: list[InvoiceListener] = []


def register_invoice_listener(listener: InvoiceListener) -> InvoiceListener:
    """Call ``listener(invoice_id=..., action=...)`` after every committed invoice change (once, however
    often it is registered: ``msp_billing.hooks``)."""
    return hook_add(_listeners, listener)


def unregister_invoice_listener(listener: InvoiceListener) -> None:
    hook_remove(_listeners, listener)


def invoice_changed(invoice_id: int, *, action: str = "edited") -> None:
    """Run every listener for one committed change of ``invoice_id``."""
    for listener in list(_listeners):
        try:
            listener(invoice_id=invoice_id, action=action)
        except Exception:  # noqa: BLE001 — see the module docstring
            logger.exception("invoice listener %r failed for invoice %s (%s)", listener, invoice_id, action)


def invoice_listeners() -> tuple[Callable[..., None], ...]:
    return tuple(_listeners)
