"""The finder against planted leaks: every planted leak found (recall), nothing else (precision),
and nothing at all on the demo MSP's data."""
from __future__ import annotations

from collections import Counter

from django.db import connection

from leaks.rules import LABELS, leaks_all
from msp_billing.tenants.today import tenant_today
from tests.leaks.generator import plant


def precision_recall(found: set, planted: set, kind: str) -> tuple[float, float]:
    found_kind = {item for item in found if item[0] == kind}
    planted_kind = {item for item in planted if item[0] == kind}
    hits = len(found_kind & planted_kind)
    precision = hits / len(found_kind) if found_kind else 1.0
    recall = hits / len(planted_kind) if planted_kind else 1.0
    return precision, recall


def test_every_planted_leak_is_found_and_nothing_else(tenant):
    planted = plant()
    leaks = leaks_all(today=planted.today)
    found = {(leak.kind, leak.key) for leak in leaks}
    assert {kind for kind, _ in planted.leaks} == set(LABELS), "the generator plants every kind"
    for kind in LABELS:
        assert precision_recall(found, planted.leaks, kind) == (1.0, 1.0), (
            kind, sorted(found - planted.leaks), sorted(planted.leaks - found))
    assert found == planted.leaks


def test_amounts_are_what_the_work_would_have_billed(tenant):
    planted = plant()
    by_kind = {leak.kind: leak for leak in leaks_all(today=planted.today)}
    assert str(by_kind["time_not_billable"].amount) == "120.00"  # 60 min onsite at Acme's 120.00 (retainer excludes onsite)
    assert str(by_kind["time_inactive_contract"].amount) == "75.00"  # 45 min at the Engineer's catalogue 100.00
    assert str(by_kind["time_unrouted"].amount) == "200.00"  # 120 min at 100.00
    assert str(by_kind["parts_unrouted"].amount) == "50.00"
    assert str(by_kind["block_overage_unbilled"].amount) == "150.00"  # 60 min beyond the 60-min block at 150.00
    assert str(by_kind["devices_unbilled"].amount) == "50.00"  # 5 servers at the contract's 10.00
    assert str(by_kind["period_skipped"].amount) > "0"
    assert str(by_kind["part_below_cost"].amount) == "10.00"  # (30 − 25) × 2
    assert str(by_kind["part_below_catalogue"].amount) == "10.00"  # 50 − 40
    assert str(by_kind["rate_stale"].amount) == "20.00"  # (100 − 80) × 1 h
    assert str(by_kind["approved_lower"].amount) == "120.00"  # onsite, 120 → 60 min at Acme's 120.00
    retainer = by_kind["retainer_over"]
    assert retainer.amount > 0 and retainer.currency == "EUR"


def test_the_demo_msp_has_no_leaks(db):
    connection.set_schema("demo")
    leaks = leaks_all(today=tenant_today())
    assert leaks == [], Counter(leak.kind for leak in leaks)
