"""contracts.rules.routing: which contract takes a time entry, and why."""

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.rules.routing import (
    UNROUTED_REASON,
    Bucket,
    ContractCandidate,
    ContractType,
    Entry,
    RoutedSplit,
    route_entry,
)

D = dt.date
REMOTE, ONSITE, OUT_OF_HOURS = 1, 2, 3
WORK_TYPE_NAMES = {REMOTE: "Remote Support", ONSITE: "Onsite Support", OUT_OF_HOURS: "Out-of-Hours Support"}
ENGINEER, ARCHITECT = 10, 11
ROLE_NAMES = {ENGINEER: "Engineer", ARCHITECT: "Architect"}
MARCH_2 = D(2026, 3, 2)


def entry(work_type=REMOTE, minutes=90, on=MARCH_2, role=ENGINEER):
    return Entry(
        date=on,
        minutes=minutes,
        work_type_id=work_type,
        work_type_name=WORK_TYPE_NAMES[work_type],
        role_id=role,
        role_name=ROLE_NAMES[role],
    )


def contract(contract_id, contract_type, *, priority=None, name=None, start=D(2026, 1, 1), end=None, **kwargs):
    return ContractCandidate(
        id=contract_id,
        name=name or f"Contract {contract_id}",
        type=contract_type,
        priority=contract_id if priority is None else priority,
        start=start,
        end=end,
        **kwargs,
    )


# The chain from docs/design.md: Retainer (excludes Onsite, Out-of-Hours) → Block Hours
# (excludes Out-of-Hours) → Hourly.
RETAINER = contract(
    1, ContractType.RETAINER, name="Managed Services", excluded_work_type_ids={ONSITE, OUT_OF_HOURS},
    exclusion_set_name="Gold",
)
BLOCK = contract(
    2, ContractType.BLOCK_HOURS, name="Onsite Block", excluded_work_type_ids={OUT_OF_HOURS},
    exclusion_set_name="Silver", block_balance_minutes=600,
)
HOURLY = contract(3, ContractType.HOURLY, name="Time & Materials", is_hourly_fallback=True)
CHAIN = [HOURLY, BLOCK, RETAINER]  # given in any order: priority decides


def test_design_chain_remote_work_is_absorbed_by_the_retainer():
    decision = route_entry(entry=entry(REMOTE), contracts=CHAIN)
    assert decision.splits == (RoutedSplit(contract_id=1, bucket=Bucket.ABSORBED, minutes=90),)
    assert decision.explanation == "Managed Services (Retainer, priority 1): takes 90 minutes, absorbed"


def test_design_chain_onsite_work_is_deducted_from_the_block():
    decision = route_entry(entry=entry(ONSITE), contracts=CHAIN)
    assert decision.splits == (RoutedSplit(contract_id=2, bucket=Bucket.DEDUCTED, minutes=90),)
    assert decision.explanation.splitlines() == [
        "Managed Services (Retainer, priority 1): work type Onsite Support excluded by set Gold",
        "Onsite Block (Block Hours, priority 2): deducts 90 minutes from the block (balance 600 minutes)",
    ]


def test_design_chain_out_of_hours_work_is_billed_hourly():
    decision = route_entry(entry=entry(OUT_OF_HOURS), contracts=CHAIN)
    assert decision.splits == (RoutedSplit(contract_id=3, bucket=Bucket.CHARGED, minutes=90),)
    assert decision.explanation.splitlines() == [
        "Managed Services (Retainer, priority 1): work type Out-of-Hours Support excluded by set Gold",
        "Onsite Block (Block Hours, priority 2): work type Out-of-Hours Support excluded by set Silver",
        "Time & Materials (customer's default Hourly contract): takes 90 minutes, charged",
    ]
    assert [step.passed_over for step in decision.steps] == [True, True, False]


def test_inactive_contracts_are_passed_over_with_the_reason():
    ended = contract(1, ContractType.RETAINER, name="Old Retainer", end=D(2026, 2, 28))
    future = contract(2, ContractType.RETAINER, name="New Retainer", start=D(2026, 4, 1))
    paused = contract(3, ContractType.RETAINER, name="Paused", is_active=False)
    decision = route_entry(entry=entry(), contracts=[ended, future, paused, replace(HOURLY, id=9)])
    lines = decision.explanation.splitlines()
    assert lines[0] == "Old Retainer (Retainer, priority 1): inactive on 2026-03-02 (ended 2026-02-28)"
    assert lines[1] == "New Retainer (Retainer, priority 2): inactive on 2026-03-02 (starts 2026-04-01)"
    assert lines[2] == "Paused (Retainer, priority 3): inactive on 2026-03-02 (status not active)"
    assert decision.splits == (RoutedSplit(contract_id=9, bucket=Bucket.CHARGED, minutes=90),)


def test_no_contract_and_no_fallback_is_unrouted_never_dropped():
    decision = route_entry(entry=entry(OUT_OF_HOURS), contracts=[RETAINER, BLOCK])
    assert decision.is_unrouted
    assert decision.splits[-1] == RoutedSplit(contract_id=None, bucket=Bucket.UNROUTED, minutes=90)
    assert decision.explanation.splitlines()[-1] == "unrouted: no contract and no Hourly fallback"
    empty = route_entry(entry=entry(), contracts=[])
    assert empty.explanation == UNROUTED_REASON
    assert empty.minutes_in(Bucket.UNROUTED) == 90


def test_block_without_cascade_bills_the_excess_as_overage_on_the_block():
    low = contract(2, ContractType.BLOCK_HOURS, name="Block", block_balance_minutes=60)
    decision = route_entry(entry=entry(minutes=90), contracts=[low, HOURLY])
    assert decision.splits == (
        RoutedSplit(contract_id=2, bucket=Bucket.DEDUCTED, minutes=60),
        RoutedSplit(contract_id=2, bucket=Bucket.OVERAGE, minutes=30),
    )
    assert "block exhausted, 30 minutes overage on this contract" in decision.explanation
    empty = contract(2, ContractType.BLOCK_HOURS, name="Block", block_balance_minutes=0)
    assert route_entry(entry=entry(minutes=90), contracts=[empty, HOURLY]).splits == (
        RoutedSplit(contract_id=2, bucket=Bucket.OVERAGE, minutes=90),
    )


def test_block_with_cascade_splits_the_entry_over_the_next_contract():
    low = contract(2, ContractType.BLOCK_HOURS, name="Block", block_balance_minutes=60, cascade=True)
    decision = route_entry(entry=entry(minutes=90), contracts=[low, HOURLY])
    assert decision.splits == (
        RoutedSplit(contract_id=2, bucket=Bucket.DEDUCTED, minutes=60),
        RoutedSplit(contract_id=3, bucket=Bucket.CHARGED, minutes=30),
    )
    assert decision.contract_ids == (2, 3)
    assert decision.explanation.splitlines()[0] == (
        "Block (Block Hours, priority 2): deducts 60 minutes from the block (balance 60 minutes); "
        "block exhausted, 30 minutes cascade to the next contract"
    )


def test_exhausted_block_with_cascade_is_passed_over():
    empty = contract(2, ContractType.BLOCK_HOURS, name="Block", block_balance_minutes=0, cascade=True)
    decision = route_entry(entry=entry(), contracts=[empty, HOURLY])
    assert decision.steps[0].outcome == "block exhausted, cascades to the next contract"
    assert decision.steps[0].passed_over
    assert decision.splits == (RoutedSplit(contract_id=3, bucket=Bucket.CHARGED, minutes=90),)


def test_cascade_remainder_with_nowhere_to_go_is_unrouted():
    low = contract(2, ContractType.BLOCK_MONEY, name="Prepaid", block_balance_minutes=50, cascade=True)
    decision = route_entry(entry=entry(minutes=90), contracts=[low])
    assert decision.splits == (
        RoutedSplit(contract_id=2, bucket=Bucket.DEDUCTED, minutes=50),
        RoutedSplit(contract_id=None, bucket=Bucket.UNROUTED, minutes=40),
    )
    assert decision.steps[-1].outcome == "unrouted: no contract and no Hourly fallback (40 of 90 minutes)"


def test_role_exclusion():
    no_architects = contract(
        1, ContractType.RETAINER, name="Helpdesk", excluded_role_ids={ARCHITECT}, exclusion_set_name="Bronze"
    )
    decision = route_entry(entry=entry(role=ARCHITECT), contracts=[no_architects, HOURLY])
    assert decision.steps[0].outcome == "role Architect excluded by set Bronze"
    assert decision.contract_ids == (3,)


def test_parent_customers_contracts_come_after_the_customers_own():
    site_block = contract(5, ContractType.BLOCK_HOURS, name="Site Block", excluded_work_type_ids={ONSITE},
                          block_balance_minutes=600)
    parent_retainer = contract(6, ContractType.RETAINER, name="Group Retainer", priority=1)
    decision = route_entry(entry=entry(ONSITE), contracts=[site_block], parent_contracts=[parent_retainer])
    assert decision.splits == (RoutedSplit(contract_id=6, bucket=Bucket.ABSORBED, minutes=90),)
    assert decision.explanation.splitlines()[1] == (
        "Group Retainer (Retainer, priority 1, parent customer): takes 90 minutes, absorbed"
    )


def test_parent_fallback_takes_a_sites_entry_when_the_site_has_none():
    parent_hourly = contract(7, ContractType.HOURLY, name="Group T&M", is_hourly_fallback=True)
    decision = route_entry(entry=entry(ONSITE), contracts=[RETAINER], parent_contracts=[parent_hourly])
    assert decision.contract_ids == (7,)
    assert decision.steps[-1].label == "Group T&M (parent customer's default Hourly contract)"


def test_the_default_hourly_contract_is_the_catch_all_whatever_its_priority():
    eager_fallback = contract(3, ContractType.HOURLY, name="T&M", priority=0, is_hourly_fallback=True)
    decision = route_entry(entry=entry(REMOTE), contracts=[eager_fallback, RETAINER])
    assert decision.contract_ids == (1,)


def test_an_inactive_default_hourly_contract_leaves_the_entry_unrouted():
    old = contract(
        3, ContractType.HOURLY, name="T&M", start=D(2025, 1, 1), end=D(2025, 12, 31), is_hourly_fallback=True
    )
    decision = route_entry(entry=entry(OUT_OF_HOURS), contracts=[RETAINER, BLOCK, old])
    assert decision.is_unrouted
    assert "T&M (customer's default Hourly contract): inactive on 2026-03-02 (ended 2025-12-31)" in decision.explanation


def test_online_backup_does_not_take_time():
    backup = contract(1, ContractType.ONLINE_BACKUP, name="Backup")
    decision = route_entry(entry=entry(), contracts=[backup, HOURLY])
    assert decision.steps[0].outcome == "does not take time (Online Backup)"
    assert decision.contract_ids == (3,)


def test_retainer_cap_overage_stays_on_the_retainer():
    capped = contract(1, ContractType.RETAINER, name="Retainer 10h", included_minutes_remaining=30)
    decision = route_entry(entry=entry(minutes=90), contracts=[capped, HOURLY])
    assert decision.splits == (
        RoutedSplit(contract_id=1, bucket=Bucket.ABSORBED, minutes=30),
        RoutedSplit(contract_id=1, bucket=Bucket.OVERAGE, minutes=60),
    )


def test_equal_priorities_are_ordered_by_id():
    a = contract(4, ContractType.RETAINER, priority=1)
    b = contract(2, ContractType.PROJECT_HOURLY, priority=1)
    assert route_entry(entry=entry(), contracts=[a, b]).contract_ids == (2,)


def test_a_zero_minute_entry_still_gets_a_contract():
    decision = route_entry(entry=entry(ONSITE, minutes=0), contracts=CHAIN)
    assert decision.splits == (RoutedSplit(contract_id=2, bucket=Bucket.DEDUCTED, minutes=0),)
    assert route_entry(entry=entry(minutes=0), contracts=[]).splits == (
        RoutedSplit(contract_id=None, bucket=Bucket.UNROUTED, minutes=0),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"contract_type": ContractType.BLOCK_HOURS},  # a block needs its balance
        {"contract_type": ContractType.HOURLY, "block_balance_minutes": 60},
        {"contract_type": ContractType.HOURLY, "included_minutes_remaining": 60},
        {"contract_type": ContractType.RETAINER, "is_hourly_fallback": True},
        {"contract_type": ContractType.HOURLY, "end": D(2025, 1, 1)},
        {"contract_type": "fixed_price"},
    ],
)
def test_inconsistent_contracts_are_refused(kwargs):
    with pytest.raises(ValueError):
        contract(1, kwargs.pop("contract_type"), **kwargs)


# --- conservation ------------------------------------------------------------------

dates = st.dates(min_value=D(2025, 6, 1), max_value=D(2026, 12, 31))


@st.composite
def candidates(draw, first_id):
    count = draw(st.integers(min_value=0, max_value=6))
    result = []
    for offset in range(count):
        contract_type = draw(st.sampled_from(list(ContractType)))
        start = draw(dates)
        end = draw(st.none() | st.dates(min_value=start, max_value=D(2027, 6, 30)))
        is_block = contract_type in (ContractType.BLOCK_HOURS, ContractType.BLOCK_MONEY)
        result.append(
            ContractCandidate(
                id=first_id + offset,
                name=f"C{first_id + offset}",
                type=contract_type,
                priority=draw(st.integers(0, 5)),
                start=start,
                end=end,
                is_active=draw(st.booleans()),
                excluded_work_type_ids=draw(st.frozensets(st.sampled_from([REMOTE, ONSITE, OUT_OF_HOURS]))),
                excluded_role_ids=draw(st.frozensets(st.sampled_from([ENGINEER, ARCHITECT]), max_size=1)),
                exclusion_set_name=draw(st.none() | st.just("Gold")),
                is_hourly_fallback=contract_type is ContractType.HOURLY and draw(st.booleans()),
                block_balance_minutes=draw(st.integers(-30, 300)) if is_block else None,
                cascade=draw(st.booleans()),
                included_minutes_remaining=(
                    draw(st.none() | st.integers(0, 300)) if contract_type is ContractType.RETAINER else None
                ),
            )
        )
    return result


entries = st.builds(
    entry,
    work_type=st.sampled_from([REMOTE, ONSITE, OUT_OF_HOURS]),
    minutes=st.integers(min_value=0, max_value=1000),
    on=dates,
    role=st.sampled_from([ENGINEER, ARCHITECT]),
)


@given(the_entry=entries, own=candidates(first_id=1), parent=candidates(first_id=100))
def test_every_minute_lands_in_exactly_one_bucket(the_entry, own, parent):
    decision = route_entry(entry=the_entry, contracts=own, parent_contracts=parent)
    by_id = {c.id: c for c in own + parent}

    # conservation: the splits add up to the entry, nothing negative, nothing twice
    assert sum(split.minutes for split in decision.splits) == the_entry.minutes
    assert all(split.minutes >= 0 for split in decision.splits)
    assert decision.splits, "every entry ends somewhere, even a zero-minute one"
    if the_entry.minutes:
        assert all(split.minutes > 0 for split in decision.splits)
    assert sum(decision.minutes_in(bucket) for bucket in Bucket) == the_entry.minutes
    pairs = [(split.contract_id, split.bucket) for split in decision.splits]
    assert len(pairs) == len(set(pairs))

    for split in decision.splits:
        if split.bucket is Bucket.UNROUTED:
            assert split.contract_id is None
            continue
        taker = by_id[split.contract_id]
        assert taker.inactive_reason(the_entry.date) is None  # only active contracts take time
        if not taker.is_hourly_fallback:  # exclusions hold (the fallback is the catch-all)
            assert the_entry.work_type_id not in taker.excluded_work_type_ids
            assert the_entry.role_id not in taker.excluded_role_ids
        if split.bucket is Bucket.DEDUCTED:  # never deduct more than the balance
            assert split.minutes <= max(taker.block_balance_minutes, 0)

    # every contract that took minutes was explained, and so is an unrouted remainder
    step_ids = [step.contract_id for step in decision.steps]
    assert set(decision.contract_ids) <= set(step_ids)
    assert decision.is_unrouted == (None in step_ids)
    assert decision.explanation
