"""The invoice states, declared once in ``Invoice.TRANSITIONS``: every status, the moves
allowed from it and the message for a move that is not."""
from decimal import Decimal

import pytest

from invoices.models import Invoice
from invoices.states import invoice_is_final, invoice_transition_refusal, moves_from, transition_allowed

S = Invoice.Status
M = Invoice.Move


def test_every_status_is_in_the_table_and_leads_only_to_statuses():
    assert set(Invoice.TRANSITIONS) == set(S.values)
    for targets in Invoice.TRANSITIONS.values():
        assert set(targets) <= set(S.values)
        for moves in targets.values():
            assert moves and set(moves) <= set(M.values)


@pytest.mark.parametrize(("status", "allowed"), [
    (S.DRAFT, {(S.ISSUED, M.ISSUE)}),
    (S.ISSUED, {(S.PARTIALLY_PAID, M.PAY), (S.PAID, M.PAY), (S.PARTIALLY_PAID, M.CREDIT), (S.PAID, M.CREDIT),
                (S.VOID, M.VOID)}),
    (S.PARTIALLY_PAID, {(S.PARTIALLY_PAID, M.PAY), (S.PAID, M.PAY), (S.PARTIALLY_PAID, M.CREDIT), (S.PAID, M.CREDIT),
                        (S.ISSUED, M.CREDIT_VOIDED), (S.PARTIALLY_PAID, M.CREDIT_VOIDED)}),
    (S.PAID, {(S.PAID, M.CREDIT), (S.ISSUED, M.CREDIT_VOIDED), (S.PARTIALLY_PAID, M.CREDIT_VOIDED),
              (S.PAID, M.CREDIT_VOIDED)}),
    (S.VOID, set()),
])
def test_allowed_and_refused_moves_of_each_status(status, allowed):
    every = {(to, by) for to in S.values for by in M.values}
    assert {(to, by) for to, by in every if transition_allowed(status, to, by=by)} == allowed
    # Everything else is refused, e.g. a draft is never paid or voided, a void invoice never moves.
    assert not any(transition_allowed(status, to, by=by) for to, by in every - allowed)


def test_moves_from_and_final():
    assert moves_from(S.DRAFT) == {M.ISSUE}
    assert moves_from(S.PAID) == {M.CREDIT, M.CREDIT_VOIDED}
    assert M.PAY not in moves_from(S.PAID)  # nothing left to pay
    assert moves_from(S.VOID) == set()
    assert invoice_is_final(Invoice(status=S.VOID))
    assert not any(invoice_is_final(Invoice(status=s)) for s in S.values if s != S.VOID)


def _invoice(status, *, number="INV-2026-00007", amount_paid=Decimal("0.00")):
    return Invoice(status=status, number=number if status != S.DRAFT else None, amount_paid=amount_paid,
                   currency="EUR")


def test_refusal_messages_are_the_ones_users_see():
    issued = _invoice(S.ISSUED)
    name = str(issued)
    assert invoice_transition_refusal(issued, S.VOID, by=M.VOID) is None
    assert invoice_transition_refusal(issued, S.PAID, by=M.PAY) is None
    assert invoice_transition_refusal(_invoice(S.DRAFT), S.ISSUED, by=M.ISSUE) is None

    assert invoice_transition_refusal(_invoice(S.PAID), S.ISSUED, by=M.ISSUE) == (
        f"{name} is already paid; only a draft can be issued.")
    assert invoice_transition_refusal(_invoice(S.PARTIALLY_PAID), S.ISSUED, by=M.ISSUE) == (
        f"{name} is already partially paid; only a draft can be issued.")
    assert invoice_transition_refusal(_invoice(S.DRAFT), S.VOID, by=M.VOID) == "A draft is deleted, not voided."
    assert invoice_transition_refusal(_invoice(S.VOID), S.VOID, by=M.VOID) == f"{name} is already void."
    assert invoice_transition_refusal(_invoice(S.PAID, amount_paid=Decimal("5.00")), S.VOID, by=M.VOID) == (
        f"{name} has payments; correct it with a credit note instead.")
    assert invoice_transition_refusal(_invoice(S.PAID), S.VOID, by=M.VOID) == (
        f"{name} has credit notes; void them first, or credit the rest.")
    assert invoice_transition_refusal(_invoice(S.DRAFT), S.PAID, by=M.PAY) == "Issue the invoice before recording a payment."
    assert invoice_transition_refusal(_invoice(S.VOID), S.PAID, by=M.PAY) == f"{name} is void; it takes no payments."
    assert invoice_transition_refusal(_invoice(S.PAID), S.PAID, by=M.PAY) == f"{name} has nothing left to pay."
    assert invoice_transition_refusal(_invoice(S.DRAFT), S.PAID, by=M.CREDIT) == "A draft is edited or deleted, not credited."
    assert invoice_transition_refusal(_invoice(S.VOID), S.PAID, by=M.CREDIT) == f"{name} is void; there is nothing to credit."
