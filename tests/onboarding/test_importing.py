"""The JSON import (onboarding/importing/) and the demo data, on PostgreSQL in schema alpha."""
from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from djmoney.money import Money

from contracts.models import (
    BlockLedgerEntry,
    BlockPurchase,
    Contract,
    ContractPeriod,
    ContractRateLine,
    Customer,
    DeviceCount,
    ExclusionSet,
    Milestone,
    Product,
    RecurringServiceLine,
    Role,
    TaxRate,
    UsageRecord,
    WorkType,
)
from msp_billing.accounts.models import User
from onboarding.demo_data import generate
from onboarding.importing import ImportRejected, billing_data_import, import_document_load
from tests.onboarding.import_data import NEW_TECH, TECH, document
from tickets.models import Charge, TechnicianProfile, Ticket, TimeAllocation, TimeEntry

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def eur(value: str) -> Money:
    return Money(Decimal(value), "EUR")


def problems_of(doc) -> list[str]:
    with pytest.raises(ImportRejected) as caught:
        billing_data_import(document=doc)
    return [str(problem) for problem in caught.value.problems]


def allocations(ticket_title: str) -> list[tuple]:
    return [
        (a.entry.work_type.name, a.contract.name if a.contract else None, a.bucket, a.billed_minutes, a.amount, a.value)
        for a in TimeAllocation.objects.filter(entry__ticket__title=ticket_title)
        .select_related("entry__work_type", "contract").order_by("entry__date", "entry_id")
    ]


def database_counts() -> dict[str, int]:
    models = (WorkType, Role, Product, TaxRate, ExclusionSet, Customer, Contract, ContractRateLine,
              RecurringServiceLine, DeviceCount, UsageRecord, BlockPurchase, BlockLedgerEntry, Milestone,
              TechnicianProfile, Ticket, TimeEntry, TimeAllocation, Charge, ContractPeriod)
    return {model.__name__: model.objects.count() for model in models} | {"User": User.objects.count()}


# --- a valid file --------------------------------------------------------------------------------


def test_a_valid_file_imports_everything_with_the_right_counts(tenant):
    users_before = User.objects.count()
    summary = billing_data_import(document=document())

    assert WorkType.objects.count() == 4 and Role.objects.count() == 2 and Product.objects.count() == 2
    assert TaxRate.objects.get().percent == Decimal("19")
    assert set(ExclusionSet.objects.get(name="Gold").work_types.values_list("name", flat=True)) == {
        "Onsite Support", "Out-of-Hours Support"}
    assert Customer.objects.count() == 5
    chain = Customer.objects.get(legal_name="Chain GmbH")
    assert Customer.objects.get(legal_name="Chain Site Berlin GmbH").parent == chain
    assert chain.default_hourly_contract.name == "Hourly T&M" and chain.payment_terms_days == 14
    assert sorted(Contract.objects.values_list("type", flat=True)) == sorted(Contract.Type.values)
    assert ContractRateLine.objects.count() == 4
    line = RecurringServiceLine.objects.get()
    assert (line.description, line.quantity, line.unit_price) == ("Microsoft 365 Business Premium", 25, eur("20.60"))
    assert list(DeviceCount.objects.values_list("count", flat=True)) == [3, 4]
    assert UsageRecord.objects.get().quantity == Decimal("250.5")
    assert sorted(BlockPurchase.objects.values_list("minutes", flat=True), key=str) == [600, None]
    assert Milestone.objects.get(name="Design").completed_on == dt.date(2026, 2, 3)
    # Technicians: an existing user gets a role; an unknown e-mail becomes a technician without a password.
    assert TechnicianProfile.objects.get(user__email=TECH).role.name == "Engineer"
    new_user = User.objects.get(email=NEW_TECH)
    assert (new_user.role, new_user.full_name, new_user.has_usable_password()) == ("technician", "Nora New", False)
    assert User.objects.count() == users_before + 1
    assert Ticket.objects.count() == 4 and TimeEntry.objects.count() == 5 and Charge.objects.count() == 3
    assert summary.created["contracts"] == 8 and summary.created["time entries"] == 5


def test_imported_time_is_routed_and_rated_as_in_the_app(tenant):
    billing_data_import(document=document())
    # Retainer (excludes Onsite, OOH) → Block Hours (excludes OOH) → Hourly: the docs/design.md chain.
    assert allocations("Mail server slow") == [("Remote Support", "Managed Services", "absorbed", 45, None, eur("75.00"))]
    assert allocations("New printer") == [
        ("Onsite Support", "Onsite Block", "deducted", 60, None, eur("100.00")),
        # 130/h for Out-of-Hours × Engineer, × 1.5 after hours: 30 minutes = 97.50.
        ("Out-of-Hours Support", "Hourly T&M", "charged", 30, eur("97.50"), None),
    ]
    assert BlockLedgerEntry.objects.get().minutes == 60
    ooh = TimeEntry.objects.get(work_type__name="Out-of-Hours Support")
    assert ooh.after_hours and ooh.started_at == dt.datetime(2026, 3, 3, 20, 0, tzinfo=BERLIN)
    # A site without contracts of its own is covered by its parent's (valued at the Architect's 160/h).
    assert allocations("Switch replacement") == [("Remote Support", "Managed Services", "absorbed", 20, None, eur("53.33"))]
    # The ticket's contract takes its time: 90 minutes of project work at 140/h.
    assert allocations("Migrate ERP database") == [("Project Work", "ERP Migration", "charged", 90, eur("210.00"), None)]


def test_billed_flags_mark_tickets_time_charges_and_periods_billed(tenant):
    billing_data_import(document=document())
    billed_on = dt.datetime(2026, 3, 31, 12, 0, tzinfo=BERLIN)
    ticket = Ticket.objects.get(title="Mail server slow")
    assert ticket.billed_at == billed_on and ticket.status == "closed"
    assert ticket.resolved_at == dt.datetime(2026, 3, 5, 17, 0, tzinfo=BERLIN)
    assert [e.billed_at for e in ticket.time_entries.all()] == [billed_on]
    assert [c.billed_at for c in ticket.charges.all()] == [billed_on]
    assert Charge.objects.get(description="Licence true-up").billed_at == dt.datetime(2026, 3, 1, 12, 0, tzinfo=BERLIN)
    assert TimeEntry.objects.filter(billed_at__isnull=True).count() == 4
    assert Ticket.objects.get(title="New printer").billed_at is None
    retainer = Contract.objects.get(name="Managed Services")
    billed = retainer.periods.filter(billed_at__isnull=False).order_by("start")
    assert [(p.start, p.end) for p in billed] == [(dt.date(2026, 1, 1), dt.date(2026, 1, 31)),
                                                 (dt.date(2026, 2, 1), dt.date(2026, 2, 28))]
    assert retainer.periods.filter(billed_at__isnull=True).exists()


# --- every problem, with its path; nothing saved ---------------------------------------------------


def test_every_invalid_record_is_reported_with_its_path_and_nothing_is_saved(tenant):
    before = database_counts()
    doc = document()
    doc["roles"][0]["default_rate"] = "ten"
    del doc["tax_rates"][0]["percent"]
    doc["customers"][1]["colour"] = "blue"
    doc["contracts"][1].pop("overage_rate")
    doc["contracts"][2]["fee"] = "10.00"
    doc["contracts"][2]["rate_lines"][1]["work_type"] = "Onsite"
    doc["contracts"][3]["device_classes"][0]["counts"][1]["count"] = -1
    doc["tickets"][2]["customer"] = "Nobody Ltd"
    doc["time_entries"][0]["date"] = "2026-02-30"
    doc["time_entries"][3]["technician"] = "ghost@alpha.example"
    doc["time_entries"][4]["minutes"] = 30  # and "hours" is not given: 90 minutes would be fine
    doc["time_entries"][4]["hours"] = "2"
    del doc["charges"][1]["ticket"]

    problems = problems_of(doc)

    assert problems == [
        '$.roles[0].default_rate: "ten" is not a decimal number such as "95.00" (a JSON string or number)',
        "$.tax_rates[0].percent: is required",
        "$.customers[1].colour: is not a field of this record",
        "$.contracts[1].overage_rate: A Block Hours contract needs an overage rate for hours beyond the block.",
        "$.contracts[2].fee: an Hourly contract has no fee",
        '$.contracts[2].rate_lines[1].work_type: unknown work type "Onsite"',
        "$.contracts[3].device_classes[0].counts[1].count: must be at least 0",
        '$.tickets[2].customer: unknown customer "Nobody Ltd"',
        '$.time_entries[0].date: "2026-02-30" is not a date (YYYY-MM-DD)',
        '$.time_entries[3].technician: unknown user "ghost@alpha.example": add them under $.technicians',
        "$.time_entries[4]: give minutes or hours, not both",
        "$.charges[1]: a charge belongs to a ticket or a contract: give ticket, contract or both",
    ]
    assert database_counts() == before


def test_one_bad_record_at_the_end_keeps_everything_else_out_too(tenant):
    before = database_counts()
    doc = document()
    doc["charges"][2]["contract"] = "no-such-contract"
    assert problems_of(doc) == ['$.charges[2].contract: unknown contract "no-such-contract"']
    assert database_counts() == before  # not one customer, entry, allocation or block deduction


def test_references_within_the_file_are_checked(tenant):
    doc = document()
    doc["contracts"].append(dict(doc["contracts"][0], name="Another"))  # the same ref again
    doc["tickets"][1]["default_contract"] = "chain-retainer-typo"
    doc["tickets"].append({"ref": "T-9", "customer": "Chain GmbH", "title": "Mail server slow"})
    doc["time_entries"].append({"ticket": "T-404", "technician": TECH, "work_type": "Remote Support",
                                "date": "2026-03-03", "minutes": 5})
    doc["time_entries"].append({"ticket": "T-3", "technician": TECH, "work_type": "Remote Support",
                                "date": "2026-03-03", "minutes": 5, "billed": True})
    assert problems_of(doc) == [
        "$.contracts[8].ref: contract ref \"chain-retainer\" is already in the file at $.contracts[0].ref",
        '$.tickets[1].default_contract: unknown contract "chain-retainer-typo"',
        '$.tickets[4].title: ticket "Mail server slow" of Chain GmbH is already in the file at $.tickets[0].title',
        '$.time_entries[5].ticket: unknown ticket "T-404"',
        "$.time_entries[6].billed: time is billed together with its ticket: mark the ticket billed too",
    ]


def test_a_file_that_is_not_json_or_not_an_import_is_refused(tenant):
    with pytest.raises(ImportRejected) as caught:
        import_document_load(b'{"version": 1,')
    assert str(caught.value.problems[0]).startswith("$: not valid JSON: Expecting property name")
    assert problems_of([1, 2]) == ["$: must be an object, not an array"]
    assert set(problems_of({"version": 2, "invoices": []})) == {
        "$.version: must be 1", "$.invoices: is not a field of this record"}


# --- re-import ------------------------------------------------------------------------------------


def test_reimporting_the_same_file_duplicates_nothing(tenant):
    billing_data_import(document=document())
    first = database_counts()
    amounts = sorted(str(a.amount or a.value) for a in TimeAllocation.objects.all())

    summary = billing_data_import(document=document())

    assert database_counts() == first
    assert not summary.created and not summary.updated
    assert summary.unchanged["customers"] == 5 and summary.unchanged["time entries"] == 5
    assert sorted(str(a.amount or a.value) for a in TimeAllocation.objects.all()) == amounts


def test_reimporting_a_changed_file_updates_and_adds_only_the_difference(tenant):
    billing_data_import(document=document())
    first = database_counts()
    doc = document()
    doc["customers"][1]["payment_terms_days"] = 30
    doc["time_entries"].append({"ticket": "T-2", "technician": TECH, "work_type": "Onsite Support",
                                "date": "2026-03-05", "minutes": 30})
    doc["contracts"][2]["rate_lines"].append({"rate": "125.00", "effective_from": "2026-04-01"})

    summary = billing_data_import(document=doc)

    assert Customer.objects.get(legal_name="Chain GmbH").payment_terms_days == 30
    assert summary.updated["customers"] == 1 and summary.created["time entries"] == 1
    assert summary.created["rate lines"] == 1
    assert TimeEntry.objects.count() == first["TimeEntry"] + 1
    assert BlockLedgerEntry.objects.count() == first["BlockLedgerEntry"] + 1  # the block took the new onsite time


def test_changing_a_rate_in_place_is_refused(tenant):
    billing_data_import(document=document())
    doc = document()
    doc["contracts"][2]["rate_lines"][0]["rate"] = "99.00"
    assert problems_of(doc) == [
        "$.contracts[2].rate_lines[0].rate: the contract already has a rate of 120 for this work type and role from "
        "2026-01-01; rates are effective-dated — add a line with a later effective_from to change it"]


def test_time_for_a_billed_ticket_is_refused(tenant):
    billing_data_import(document=document())
    doc = document()
    doc["time_entries"].append({"ticket": "T-1", "technician": TECH, "work_type": "Remote Support",
                                "date": "2026-04-01", "minutes": 10})
    assert problems_of(doc) == [
        '$.time_entries[5].ticket: ticket "T-1" was billed and is locked: it takes no more time']


# --- the command ----------------------------------------------------------------------------------


def test_the_command_imports_a_file_and_lists_every_problem(tenant, tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(document()))
    call_command("import_billing_data", str(good), "--tenant", "alpha")
    assert "customers: 5 created" in capsys.readouterr().out
    assert Customer.objects.count() == 5

    doc = document()
    doc["customers"].append({"legal_name": "Extra Ltd", "parent": "Nowhere Inc."})
    doc["work_types"][0]["after_hours_multiplier"] = "0.5"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(CommandError, match=r"2 problem\(s\) in .*bad.json; nothing was imported"):
        call_command("import_billing_data", str(bad), "--tenant", "alpha")
    err = capsys.readouterr().err
    assert "$.work_types[0].after_hours_multiplier: Enter a value of at least 1." in err
    assert '$.customers[5].parent: unknown customer "Nowhere Inc."' in err
    assert not Customer.objects.filter(legal_name="Extra Ltd").exists()

    with pytest.raises(CommandError, match="No MSP with the sub-domain or schema “public”"):
        call_command("import_billing_data", str(good), "--tenant", "public")


def test_dry_run_checks_and_saves_nothing(tenant, tmp_path, capsys):
    path = tmp_path / "good.json"
    path.write_text(json.dumps(document()))
    call_command("import_billing_data", str(path), "--tenant", "alpha", "--dry-run")
    assert "dry run, nothing saved" in capsys.readouterr().out
    assert not Customer.objects.exists()


# --- the demo data ------------------------------------------------------------------------------


def test_demo_json_is_what_the_generator_writes():
    assert generate.OUTPUT.read_text(encoding="utf-8") == generate.render()


def test_the_demo_file_imports_cleanly_into_a_fresh_tenant(tenant):
    summary = billing_data_import(document=import_document_load(generate.OUTPUT.read_bytes()))

    assert summary.created["customers"] >= 20 and Customer.objects.filter(parent__isnull=False).count() >= 3
    assert set(Contract.objects.values_list("type", flat=True)) == set(Contract.Type.values)
    assert TechnicianProfile.objects.filter(user__email__endswith="@demo.example").count() == 5
    entries = TimeEntry.objects.all()
    assert entries.filter(date__lt=dt.date(2026, 8, 1)).count() == 0 and entries.filter(date__gt=dt.date(2026, 10, 31)).count() == 0
    assert {e.date.month for e in entries} == {8, 9, 10}
    assert Ticket.objects.filter(status__in=["resolved", "closed"]).exists()
    assert Ticket.objects.filter(billed_at__isnull=False).count() >= 5
    assert TimeEntry.objects.filter(billed_at__isnull=False).exists()
    assert ContractPeriod.objects.filter(billed_at__isnull=False).exists()
    # Every billable minute ended somewhere: in allocations of the same length as the billed time.
    for entry in entries.filter(billable=True).prefetch_related("allocations"):
        assert entry.allocations.all(), entry
    # Zephyr has only a backup contract: its time is unrouted and visible, not lost.
    assert TimeEntry.objects.filter(ticket__customer__legal_name="Zephyr Marketing Studio LLC", is_unrouted=True).exists()


def test_the_demo_chain_customer_time_is_routed_as_design_md_says(tenant):
    billing_data_import(document=import_document_load(generate.OUTPUT.read_bytes()))
    chain = Customer.objects.get(legal_name=generate.CHAIN)
    where = {"Remote Support": set(), "Onsite Support": set(), "Out-of-Hours Support": set()}
    for allocation in TimeAllocation.objects.filter(entry__ticket__customer__in=[chain, *chain.sites.all()],
                                                    entry__chosen_contract__isnull=True,
                                                    entry__ticket__default_contract__isnull=True):
        work_type = allocation.entry.work_type.name
        if work_type in where:
            where[work_type].add((allocation.contract.name, allocation.bucket))
    # Remote work is absorbed by the retainer, onsite work deducted from the block (overage
    # on the block once it is used up), out-of-hours work billed hourly.
    assert where["Remote Support"] == {("Managed Services Gold", "absorbed")}
    assert where["Onsite Support"] == {("Onsite Block Hours", "deducted"), ("Onsite Block Hours", "overage")}
    block = Contract.objects.get(name="Onsite Block Hours").blocks.get()
    assert sum(block.ledger.values_list("minutes", flat=True)) == block.minutes  # used up, then overage
    assert where["Out-of-Hours Support"] == {("Hourly T&M", "charged")}


def test_demo_data_load_is_safe_to_run_again(db):
    from django_tenants.utils import schema_context

    from onboarding.demo import demo_data_load

    # The demo MSP exists (conftest runs demo_ensure); the test's transaction rolls the load back.
    demo_data_load()
    with schema_context("demo"):
        counts = database_counts()
        techs = User.objects.filter(email__in=["tech3@demo.example", "tech4@demo.example", "tech5@demo.example"])
        assert techs.count() == 3 and all(user.has_usable_password() for user in techs)
    again = demo_data_load()
    with schema_context("demo"):
        assert database_counts() == counts
    assert not again.created and not again.updated


# --- values the database cannot take ---------------------------------------------------------------


def rejected_by_command(tmp_path, raw: bytes) -> list[str]:
    """Runs the command on ``raw``; returns the problems it lists (it must refuse the file)."""
    path = tmp_path / "hostile.json"
    path.write_bytes(raw)
    with pytest.raises(CommandError, match=r"\d+ problem\(s\) in .*hostile.json; nothing was imported\."):
        call_command("import_billing_data", str(path), "--tenant", "alpha")
    return [line for line in err_lines()]


_captured: list = []


@pytest.fixture(autouse=True)
def _stderr(capsys):
    _captured[:] = [capsys]
    yield


def err_lines() -> list[str]:
    return [line for line in _captured[0].readouterr().err.splitlines() if line.strip()]


def test_a_nul_byte_in_any_text_is_a_problem_with_its_path_and_nothing_is_saved(tenant, tmp_path):
    before = database_counts()
    doc = document()
    doc["customers"][2]["legal_name"] = "Monitor\x00 AG"
    doc["time_entries"][0]["notes"] = "Checked\x00queues"
    doc["contracts"][0]["name"] = "Managed \ud800 Services"  # an unpaired surrogate cannot be stored either
    raw = json.dumps(doc).encode()
    assert rejected_by_command(tmp_path, raw) == [
        "$.customers[2].legal_name: contains a NUL character (\\u0000), which cannot be stored; remove it",
        "$.contracts[0].name: contains \\ud800, half of a surrogate pair, which is not text; fix the file's encoding",
        "$.time_entries[0].notes: contains a NUL character (\\u0000), which cannot be stored; remove it",
    ]
    assert database_counts() == before


def test_a_nul_in_a_field_name_is_a_problem(tenant):
    doc = document()
    doc["customers"][0]["legal\x00name"] = "x"
    assert problems_of(doc) == [
        "$.customers[0].legal\\u0000name: the field name contains a NUL character (\\u0000), which cannot be stored; "
        "remove it"]


@pytest.mark.parametrize("depth", [40, 900, 100_000])
def test_deeply_nested_json_is_one_problem_not_a_crash(tenant, tmp_path, depth):
    raw = ('{"version": 1, "description": ' + "[" * depth + "]" * depth + "}").encode()
    assert rejected_by_command(tmp_path, raw) == [
        "$: arrays and objects are nested more than 32 deep; this is not an import file"]
    doc = {"version": 1, "customers": [{"legal_name": "A"}]}
    node = doc["customers"][0]
    for _ in range(depth if depth < 5000 else 5000):
        node["x"] = {}
        node = node["x"]
    assert problems_of(doc) == ["$: arrays and objects are nested more than 32 deep; this is not an import file"]


@pytest.mark.parametrize(
    "raw_value,message",
    [
        ("1" + "0" * 5000, "is far too large a number"),
        ("1e400", "is far too large a number"),
        ("-1e30", "is far too large a number"),
        ("NaN", "nan is not a number"),
        ("Infinity", "inf is not a number"),
        ("-Infinity", "-inf is not a number"),
    ],
)
def test_absurd_json_numbers_are_problems(tenant, tmp_path, raw_value, message):
    raw = json.dumps(document()).replace('"budget_minutes": 6000', f'"budget_minutes": {raw_value}').encode()
    assert f"$.contracts[6].budget_minutes: {message}" in rejected_by_command(tmp_path, raw)
    assert not Customer.objects.exists()


def _numbers(node, parts=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, (*parts, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _numbers(value, (*parts, index))
    elif isinstance(node, (int, Decimal)) and not isinstance(node, bool) or (
            isinstance(node, str) and node.replace(".", "").isdigit() and "-" not in node):
        yield parts


def _set(doc, parts, value):
    for part in parts[:-1]:
        doc = doc[part]
    doc[parts[-1]] = value


def test_every_number_the_schema_allows_but_a_column_cannot_hold_is_a_problem_not_a_crash(tenant):
    """The schema takes up to ten integer digits; quantities, percentages and multipliers hold
    fewer. Every numeric value of a section set to the largest the schema allows: problems
    (the column's overflow among them), never a DataError; and nothing is saved."""
    before = database_counts()
    paths = list(_numbers(document()))
    assert len(paths) > 30
    messages = []
    for section in dict.fromkeys(parts[0] for parts in paths):
        doc = document()
        for parts in paths:
            if parts[0] == section:
                original = document()
                for part in parts:
                    original = original[part]
                _set(doc, parts, 9999999999 if isinstance(original, int) else "9999999999.9999")
        try:
            billing_data_import(document=doc, dry_run=True)
        except ImportRejected as rejected:
            messages += [str(problem) for problem in rejected.problems]
        assert database_counts() == before, section
    assert any("is out of range and cannot be stored (numeric field overflow)" in m for m in messages), messages


@pytest.mark.parametrize("field,value", [
    (("contracts", 0, "start_date"), "9999-12-01"),
    (("contracts", 0, "start_date"), "0001-01-01"),
    (("time_entries", 0, "date"), "9999-12-31"),
    (("time_entries", 2, "started_at"), "0001-01-01T00:00:00"),
    (("time_entries", 2, "ended_at"), "9999-12-31T23:59:59"),
    (("tax_rates", 0, "effective_from"), "0001-01-01"),
    (("tickets", 0, "billed"), "9999-12-31"),
])
def test_dates_at_the_ends_of_the_calendar_are_a_problem_not_a_crash(tenant, field, value):
    doc = document()
    _set(doc, field, value)
    try:
        billing_data_import(document=doc, dry_run=True)
    except ImportRejected as rejected:
        assert rejected.problems


def test_billing_contacts_are_imported_as_to_and_cc_and_checked(tenant):
    doc = document()
    doc["customers"][1]["billing_contacts"] = [{"email": "Dana@Chain.example", "name": "Dana Reyes"},
                                               {"email": "controller@chain.example", "kind": "cc"}]
    billing_data_import(document=doc)
    chain = Customer.objects.get(legal_name="Chain GmbH")
    assert [(c.email, c.name, c.kind) for c in chain.billing_contacts.all()] == [
        ("dana@chain.example", "Dana Reyes", "to"), ("controller@chain.example", "", "cc")]
    assert billing_data_import(document=doc).unchanged["customers"] == 5  # the same contacts: nothing changes

    doc["customers"][1]["billing_contacts"] = "Dana Reyes <dana@chain.example>\ncc: boss@chain.example"  # older files: text
    assert billing_data_import(document=doc).updated["customers"] == 1
    assert [(c.email, c.kind) for c in chain.billing_contacts.all()] == [("dana@chain.example", "to"), ("boss@chain.example", "cc")]

    doc["customers"][1]["billing_contacts"] = [{"email": "not an address"}, {"email": "x@chain.example", "kind": "bcc"}]
    problems = problems_of(doc)
    assert any(p.startswith("$.customers[1]") and "Contact 1: enter an e-mail address" in p for p in problems), problems
    assert any("Contact 2: the kind is “to” or “cc”" in p for p in problems), problems
    assert [c.email for c in chain.billing_contacts.all()] == ["dana@chain.example", "boss@chain.example"]
