"""Whether an invoice may move to a status: ``Invoice.TRANSITIONS`` read, with the message a
user sees when it may not.

Every action that changes an invoice's status asks here first, with the invoice row locked
(``select_for_update``), so a doubled or stale request is refused with the same message as
the page shows beforehand. Conditions that are not the status (payments or credit notes
standing in the way of a void, nothing left to pay) stay with the action that needs them.
"""
from __future__ import annotations

from collections.abc import Callable

from invoices.models import Invoice

Status = Invoice.Status
Move = Invoice.Move


def _void_settled(invoice: Invoice) -> str:
    # A partially paid or paid invoice has payments, or credit notes that settle it.
    if invoice.amount_paid:
        return f"{invoice} has payments; correct it with a credit note instead."
    return f"{invoice} has credit notes; void them first, or credit the rest."


# (move, status it is refused in) -> the message; a move missing here for a status is refused
# with the move's general message (key: status None).
REFUSALS: dict[tuple[str, str | None], Callable[[Invoice], str]] = {
    (Move.ISSUE, None): lambda invoice: (
        f"{invoice} is already {invoice.get_status_display().lower()}; only a draft can be issued."),
    (Move.VOID, Status.DRAFT): lambda invoice: "A draft is deleted, not voided.",
    (Move.VOID, Status.VOID): lambda invoice: f"{invoice} is already void.",
    (Move.VOID, None): _void_settled,
    (Move.PAY, Status.DRAFT): lambda invoice: "Issue the invoice before recording a payment.",
    (Move.PAY, Status.VOID): lambda invoice: f"{invoice} is void; it takes no payments.",
    (Move.PAY, None): lambda invoice: f"{invoice} has nothing left to pay.",
    (Move.CREDIT, Status.DRAFT): lambda invoice: "A draft is edited or deleted, not credited.",
    (Move.CREDIT, Status.VOID): lambda invoice: f"{invoice} is void; there is nothing to credit.",
    (Move.CREDIT, None): lambda invoice: f"{invoice} cannot be credited while it is {invoice.get_status_display().lower()}.",
    (Move.CREDIT_VOIDED, None): lambda invoice: (
        f"{invoice} cannot take back a credit while it is {invoice.get_status_display().lower()}."),
}


def transition_allowed(status: str, to: str, *, by: str) -> bool:
    """Whether ``by`` may move an invoice in ``status`` to ``to`` (the table alone)."""
    return by in Invoice.TRANSITIONS[status].get(to, frozenset())


def moves_from(status: str) -> frozenset[str]:
    """Every move allowed in ``status`` (whatever status it leads to)."""
    return frozenset().union(*Invoice.TRANSITIONS[status].values())


def invoice_transition_refusal(invoice: Invoice, to: str, *, by: str) -> str | None:
    """Why ``by`` cannot move ``invoice`` to status ``to`` now, or None when the table allows it."""
    if transition_allowed(invoice.status, to, by=by):
        return None
    message = REFUSALS.get((by, invoice.status)) or REFUSALS[(by, None)]
    return message(invoice)


def invoice_is_final(invoice: Invoice) -> bool:
    """A status nothing moves out of (void)."""
    return not Invoice.TRANSITIONS[invoice.status]
