"""contracts.rules.blocks: oldest block first, expiry or rollover, overage, Retainer cap."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.rules.blocks import (
    Block,
    available_balance,
    deduct_from_blocks,
    money_balance_in_minutes,
    split_by_included_cap,
)

D = dt.date


def test_oldest_unexpired_block_is_used_first_then_the_next():
    blocks = [
        Block(id=2, purchased_on=D(2026, 2, 1), balance=600),
        Block(id=1, purchased_on=D(2026, 1, 1), balance=30),
    ]
    usage = deduct_from_blocks(blocks=blocks, amount=90, on_date=D(2026, 3, 2), rollover=False)
    assert [(d.block_id, d.amount, d.balance_after) for d in usage.deductions] == [(1, 30, 0), (2, 60, 540)]
    assert usage.overage == 0
    assert usage.deducted == 90


def test_beyond_the_balance_is_overage():
    block = Block(id=1, purchased_on=D(2026, 1, 1), balance=45)
    usage = deduct_from_blocks(blocks=[block], amount=60, on_date=D(2026, 1, 5), rollover=False)
    assert [(d.block_id, d.amount) for d in usage.deductions] == [(1, 45)]
    assert usage.overage == 15


def test_expired_block_is_skipped_and_reported_unless_balances_roll_over():
    blocks = [
        Block(id=1, purchased_on=D(2025, 1, 1), balance=120, expires_on=D(2025, 12, 31)),
        Block(id=2, purchased_on=D(2026, 1, 1), balance=600),
    ]
    expiring = deduct_from_blocks(blocks=blocks, amount=60, on_date=D(2026, 1, 10), rollover=False)
    assert [(d.block_id, d.amount) for d in expiring.deductions] == [(2, 60)]
    assert [(s.block_id, s.reason) for s in expiring.skipped] == [(1, "expired on 2025-12-31")]

    rolling = deduct_from_blocks(blocks=blocks, amount=60, on_date=D(2026, 1, 10), rollover=True)
    assert [(d.block_id, d.amount) for d in rolling.deductions] == [(1, 60)]
    assert rolling.skipped == ()


def test_a_block_is_usable_on_its_expiry_date_but_not_before_its_purchase():
    blocks = [
        Block(id=1, purchased_on=D(2026, 1, 1), balance=60, expires_on=D(2026, 1, 31)),
        Block(id=2, purchased_on=D(2026, 2, 15), balance=60),
    ]
    on_expiry = deduct_from_blocks(blocks=blocks, amount=30, on_date=D(2026, 1, 31), rollover=False)
    assert [(d.block_id, d.amount) for d in on_expiry.deductions] == [(1, 30)]
    assert [(s.block_id, s.reason) for s in on_expiry.skipped] == [(2, "not yet purchased on 2026-01-31")]


def test_block_money_deducts_money():
    blocks = [Block(id=1, purchased_on=D(2026, 1, 1), balance=Decimal("500.00"))]
    usage = deduct_from_blocks(blocks=blocks, amount=Decimal("612.50"), on_date=D(2026, 1, 2), rollover=False)
    assert usage.deductions[0].amount == Decimal("500.00")
    assert usage.overage == Decimal("112.50")
    left = available_balance(blocks=blocks, on_date=D(2026, 1, 2), rollover=False, zero=Decimal("0.00"))
    assert left == Decimal("500.00")


def test_minutes_and_money_never_mix_and_floats_are_refused():
    with pytest.raises(TypeError):
        deduct_from_blocks(
            blocks=[Block(id=1, purchased_on=D(2026, 1, 1), balance=60)],
            amount=Decimal("10"),
            on_date=D(2026, 1, 1),
            rollover=False,
        )
    with pytest.raises(TypeError):
        Block(id=1, purchased_on=D(2026, 1, 1), balance=60.0)


def test_available_balance_counts_only_usable_blocks():
    blocks = [
        Block(id=1, purchased_on=D(2025, 1, 1), balance=120, expires_on=D(2025, 12, 31)),
        Block(id=2, purchased_on=D(2026, 1, 1), balance=600),
        Block(id=3, purchased_on=D(2026, 6, 1), balance=600),
    ]
    assert available_balance(blocks=blocks, on_date=D(2026, 3, 1), rollover=False, zero=0) == 600
    assert available_balance(blocks=blocks, on_date=D(2026, 3, 1), rollover=True, zero=0) == 720
    assert available_balance(blocks=[], on_date=D(2026, 3, 1), rollover=True, zero=0) == 0


@pytest.mark.parametrize(
    ("minutes", "included", "used", "absorbed", "overage"),
    [(60, 600, 0, 60, 0), (60, 600, 570, 30, 30), (60, 600, 600, 0, 60), (60, 600, 700, 0, 60), (0, 0, 0, 0, 0)],
)
def test_retainer_included_hours_cap(minutes, included, used, absorbed, overage):
    cap = split_by_included_cap(minutes=minutes, included_minutes=included, used_minutes=used)
    assert (cap.absorbed, cap.overage) == (absorbed, overage)


def test_money_balance_in_minutes_rounds_down():
    assert money_balance_in_minutes(balance=Decimal("250.00"), hourly_rate=Decimal("150.0000")) == 100
    assert money_balance_in_minutes(balance=Decimal("-5.00"), hourly_rate=Decimal("150")) == 0
    with pytest.raises(ValueError):
        money_balance_in_minutes(balance=Decimal("10"), hourly_rate=Decimal("0"))


dates = st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 12, 31))


@st.composite
def minute_blocks(draw):
    count = draw(st.integers(min_value=0, max_value=6))
    blocks = []
    for block_id in range(1, count + 1):
        purchased = draw(dates)
        expires = draw(st.none() | st.dates(min_value=purchased, max_value=D(2028, 12, 31)))
        blocks.append(
            Block(id=block_id, purchased_on=purchased, balance=draw(st.integers(0, 3000)), expires_on=expires)
        )
    return blocks


@given(blocks=minute_blocks(), amount=st.integers(0, 10_000), on=dates, rollover=st.booleans())
def test_every_minute_is_deducted_or_overage_and_no_block_goes_negative(blocks, amount, on, rollover):
    usage = deduct_from_blocks(blocks=blocks, amount=amount, on_date=on, rollover=rollover)
    assert usage.deducted + usage.overage == amount
    assert usage.overage >= 0
    by_id = {block.id: block for block in blocks}
    assert len({d.block_id for d in usage.deductions}) == len(usage.deductions)
    for deduction in usage.deductions:
        assert 0 < deduction.amount <= by_id[deduction.block_id].balance
        assert deduction.balance_after == by_id[deduction.block_id].balance - deduction.amount >= 0
    usable = available_balance(blocks=blocks, on_date=on, rollover=rollover, zero=0)
    assert usage.deducted == min(amount, usable)  # overage only once the usable balance is gone
    # oldest first: a younger block is touched only when every older usable block is emptied
    used = {d.block_id: d for d in usage.deductions}
    order = sorted(blocks, key=lambda b: (b.purchased_on, b.id))
    for i, younger in enumerate(order):
        if younger.id in used:
            for older in order[:i]:
                if older.id in used:
                    assert used[older.id].balance_after == 0
                else:  # untouched: it was empty or unusable on the date
                    assert any(s.block_id == older.id for s in usage.skipped)


@given(
    balances=st.lists(st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=2), max_size=5),
    amount=st.decimals(min_value=Decimal("0"), max_value=Decimal("20000"), places=2),
)
def test_money_blocks_conserve_money(balances, amount):
    blocks = [Block(id=i, purchased_on=D(2026, 1, i + 1), balance=b) for i, b in enumerate(balances)]
    usage = deduct_from_blocks(blocks=blocks, amount=amount, on_date=D(2026, 2, 1), rollover=False)
    assert usage.deducted + usage.overage == amount
    assert usage.overage == max(amount - sum(balances, Decimal(0)), Decimal(0))


@given(minutes=st.integers(0, 2000), included=st.integers(0, 6000), used=st.integers(0, 8000))
def test_retainer_cap_conserves_minutes(minutes, included, used):
    cap = split_by_included_cap(minutes=minutes, included_minutes=included, used_minutes=used)
    assert cap.absorbed + cap.overage == minutes
    assert used + cap.absorbed <= max(included, used)
