"""Auto-renewal notices and extensions; block and budget threshold alerts; auto-repurchase;
the notifications page."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import path
from djmoney.money import Money

from billing.alerts import alerts_check_all, budget_alerts_check
from contracts import notifications_views
from contracts.alerts import block_alerts_check, block_usage
from contracts.models import BlockLedgerEntry, BlockPurchase, Contract, ContractPeriod, Customer, Notification
from contracts.periods import contract_periods_generate
from contracts.renewals import contract_renewals_process
from msp_billing import urls_tenant
from tests.support import email_for

D = dt.date
EUR = "EUR"
STAFF = sorted([email_for("alpha", "owner"), email_for("alpha", "billing_admin")])

# The page is routed by contracts/urls.py (owned elsewhere); the page's tests route it here.
urlpatterns = [path("notifications/", notifications_views.notification_list, name="notifications_under_test"), *urls_tenant.urlpatterns]


def eur(amount: str) -> Money:
    return Money(Decimal(amount), EUR)


@pytest.fixture
def mail(django_capture_on_commit_callbacks, mailoutbox):
    """Run the on-commit e-mail callbacks of the code under test, then read the outbox."""

    class Mail:
        outbox = mailoutbox

        @staticmethod
        def run(action, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return action(**kwargs)

    return Mail()


def make_contract(name: str, **fields) -> Contract:
    customer, _ = Customer.objects.get_or_create(legal_name="Alerts AG", defaults={"currency": EUR})
    values = dict(customer=customer, name=name, type=Contract.Type.RETAINER, currency=EUR, start_date=D(2026, 1, 1))
    values.update(fields)
    return Contract.objects.create(**values)


# --- renewals ----------------------------------------------------------------------------


def renewing_contract(**fields) -> Contract:
    values = dict(
        end_date=D(2026, 12, 31), auto_renew=True, renewal_notice_days=90, renewal_term_months=12,
        fee=eur("430.00"),
    )
    values.update(fields)
    return make_contract("Managed services", **values)


def test_renewal_notice_is_sent_once_n_days_before_the_end(tenant, mail):
    contract = renewing_contract()
    # 31 Dec 2026 − 90 days = 2 Oct 2026
    assert mail.run(contract_renewals_process, today=D(2026, 10, 1)).notices == []
    run = mail.run(contract_renewals_process, today=D(2026, 10, 2))
    assert [n.key for n in run.notices] == [f"renewal:{contract.pk}:2026-12-31"]
    for day in (D(2026, 10, 2), D(2026, 10, 3), D(2026, 12, 30)):
        assert mail.run(contract_renewals_process, today=day).notices == []

    notice = Notification.objects.get(contract=contract)
    assert notice.kind == Notification.Kind.RENEWAL and notice.read_at is None
    assert notice.message == (
        "Alerts AG — Managed services ends on 31 Dec 2026 and renews automatically for 12 months, "
        "to 31 Dec 2027, unless it is changed or cancelled before then."
    )
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == STAFF  # owners and billing admins, not technicians or accountants
    assert mail.outbox[0].subject == "Renewal notice: Alerts AG — Managed services ends on 31 Dec 2026"
    assert notice.message in mail.outbox[0].body


def test_a_run_that_missed_the_day_still_sends_the_notice(tenant, mail):
    contract = renewing_contract(renewal_notice_days=30)
    assert mail.run(contract_renewals_process, today=D(2026, 11, 30)).notices == []  # 31 days before
    assert len(mail.run(contract_renewals_process, today=D(2026, 12, 15)).notices) == 1
    assert Notification.objects.filter(contract=contract, kind=Notification.Kind.RENEWAL).count() == 1


def test_on_the_end_date_the_contract_is_extended_by_the_term_and_periods_continue(tenant, mail):
    contract = renewing_contract()
    contract_periods_generate(contract=contract, today=D(2026, 12, 1))
    assert ContractPeriod.objects.filter(contract=contract).latest("start").start == D(2026, 12, 1)

    mail.run(contract_renewals_process, today=D(2026, 12, 30))
    contract.refresh_from_db()
    assert contract.end_date == D(2026, 12, 31)

    run = mail.run(contract_renewals_process, today=D(2026, 12, 31))
    contract.refresh_from_db()
    assert contract.end_date == D(2027, 12, 31)
    assert [n.key for n in run.renewed] == [f"renewed:{contract.pk}:2026-12-31"]
    assert run.renewed[0].kind == Notification.Kind.RENEWED
    assert "now ends on 31 Dec 2027" in run.renewed[0].message
    assert mail.outbox[-1].subject == "Contract renewed: Alerts AG — Managed services"

    # again the same day, and the next: nothing more
    assert mail.run(contract_renewals_process, today=D(2026, 12, 31)).renewed == []
    assert mail.run(contract_renewals_process, today=D(2027, 1, 1)).renewed == []
    contract.refresh_from_db()
    assert contract.end_date == D(2027, 12, 31)

    # the renewal stored the new term's periods with it: the daily task finds nothing to add
    starts = list(ContractPeriod.objects.filter(contract=contract).order_by("start").values_list("start", flat=True))
    assert starts[12:14] == [D(2027, 1, 1), D(2027, 2, 1)]
    assert starts[-1] == D(2027, 12, 1)
    assert contract_periods_generate(contract=contract, today=D(2026, 12, 31)) == []

    # the renewed term gets its own notice, 90 days before its end (2 Oct 2027)
    run = mail.run(contract_renewals_process, today=D(2027, 10, 2))
    assert [n.key for n in run.notices] == [f"renewal:{contract.pk}:2027-12-31"]


def test_the_new_term_starts_the_day_after_the_old_end(tenant, mail):
    leap = renewing_contract(start_date=D(2026, 3, 1), end_date=D(2027, 2, 28))
    monthly = make_contract("Monthly term", end_date=D(2026, 1, 30), auto_renew=True, renewal_term_months=1)
    mail.run(contract_renewals_process, today=D(2027, 2, 28))
    leap.refresh_from_db()
    monthly.refresh_from_db()
    assert leap.end_date == D(2028, 2, 29)  # 1 Mar 2027 + 12 months − 1 day
    # the monthly one was not processed on its end date: it catches up term by term until
    # it runs past today. Terms start the day after the old end: 31 Jan + 1 month is clamped
    # to 28 Feb, so the term ends 27 Feb, the next 28 Feb – 27 Mar, and so on.
    assert monthly.end_date == D(2027, 3, 27)
    assert Notification.objects.filter(contract=monthly, kind=Notification.Kind.RENEWED).count() == 14


def test_contracts_without_auto_renew_or_end_date_are_left_alone(tenant, mail):
    fixed = make_contract("Fixed term", end_date=D(2026, 12, 31), auto_renew=False)
    open_ended = make_contract("Open ended", auto_renew=True)
    cancelled = make_contract("Cancelled", end_date=D(2026, 12, 31), auto_renew=True, status=Contract.Status.CANCELLED)
    mail.run(contract_renewals_process, today=D(2026, 12, 31))
    for contract in (fixed, open_ended, cancelled):
        before = contract.end_date
        contract.refresh_from_db()
        assert contract.end_date == before
    assert not Notification.objects.exists()
    assert mail.outbox == []


# --- block alerts ------------------------------------------------------------------------


def block_hours_contract(**fields) -> tuple[Contract, BlockPurchase]:
    contract = make_contract("10-hour block", type=Contract.Type.BLOCK_HOURS, overage_rate=eur("120.0000"), **fields)
    block = BlockPurchase.objects.create(contract=contract, purchased_on=D(2026, 1, 5), minutes=600, price=eur("900.00"))
    return contract, block


def use(block: BlockPurchase, *, minutes: int = 0, amount: str = "0", on: dt.date = D(2026, 2, 1)) -> None:
    BlockLedgerEntry.objects.create(
        block=block, entry_date=on, minutes=minutes, amount=Decimal(amount), source=f"test:{BlockLedgerEntry.objects.count()}"
    )


def test_block_thresholds_75_90_100_are_each_sent_once(tenant, mail):
    contract, block = block_hours_contract()
    today = D(2026, 3, 1)
    use(block, minutes=440)  # 73.3 %
    assert mail.run(block_alerts_check, contract=contract, today=today) == []

    use(block, minutes=10)  # 450 of 600 = 75 %
    sent = mail.run(block_alerts_check, contract=contract, today=today)
    assert [n.key for n in sent] == [f"block:{contract.pk}:{block.pk}:75"]
    assert sent[0].message == "Alerts AG — 10-hour block has used 75 % of its block balance (7:30 hours of 10:00 hours)."
    assert mail.run(block_alerts_check, contract=contract, today=today) == []

    use(block, minutes=90)  # 540 = 90 %
    assert [n.key for n in mail.run(block_alerts_check, contract=contract, today=today)] == [f"block:{contract.pk}:{block.pk}:90"]
    use(block, minutes=60)  # 600 = 100 %
    assert [n.key for n in mail.run(block_alerts_check, contract=contract, today=today)] == [f"block:{contract.pk}:{block.pk}:100"]
    for _ in range(3):
        assert mail.run(block_alerts_check, contract=contract, today=today) == []

    assert Notification.objects.filter(contract=contract, kind=Notification.Kind.BLOCK_THRESHOLD).count() == 3
    assert [m.subject for m in mail.outbox] == [
        "Block 75 % used: Alerts AG — 10-hour block",
        "Block 90 % used: Alerts AG — 10-hour block",
        "Block 100 % used: Alerts AG — 10-hour block",
    ]
    assert all(sorted(m.to) == STAFF for m in mail.outbox)
    assert not BlockPurchase.objects.filter(contract=contract, auto_purchased=True).exists()  # not asked for


def test_a_jump_past_two_thresholds_sends_both(tenant, mail):
    contract, block = block_hours_contract(alert_thresholds="50,80,95")
    use(block, minutes=500)  # 83.3 %
    sent = mail.run(block_alerts_check, contract=contract, today=D(2026, 3, 1))
    assert [n.key.rsplit(":", 1)[1] for n in sent] == ["50", "80"]


def test_block_money_usage_is_measured_in_money(tenant, mail):
    contract = make_contract("Prepaid support", type=Contract.Type.BLOCK_MONEY)
    block = BlockPurchase.objects.create(contract=contract, purchased_on=D(2026, 1, 5), amount=eur("1000.00"), price=eur("1000.00"))
    use(block, amount="749.99")
    assert mail.run(block_alerts_check, contract=contract, today=D(2026, 3, 1)) == []
    use(block, amount="0.01")
    sent = mail.run(block_alerts_check, contract=contract, today=D(2026, 3, 1))
    assert [n.key for n in sent] == [f"block:{contract.pk}:{block.pk}:75"]
    assert "(€750.00 of €1,000.00)" in sent[0].message


def test_usage_is_over_the_usable_blocks(tenant):
    contract, first = block_hours_contract(rollover=False)
    second = BlockPurchase.objects.create(contract=contract, purchased_on=D(2026, 2, 1), expires_on=D(2026, 12, 31), minutes=600, price=eur("900.00"))
    use(first, minutes=300)
    usage = block_usage(contract=contract, today=D(2026, 3, 1))
    assert (usage.block, usage.used, usage.size) == (second, 300, 1200)  # 25 % of both blocks
    # a block bought later than "today" does not count yet
    assert block_usage(contract=contract, today=D(2026, 1, 20)).size == 600
    # a used-up block drops out: the customer's balance is what is left of the others
    use(first, minutes=300)
    use(second, minutes=150)
    usage = block_usage(contract=contract, today=D(2026, 3, 1))
    assert (usage.block, usage.used, usage.size) == (second, 150, 600)
    # without rollover an expired block is not usable; every usable block used up is 100 %
    use(second, minutes=450)
    usage = block_usage(contract=contract, today=D(2026, 3, 1))
    assert (usage.block, usage.exhausted, usage.percent) == (second, True, 100)
    # once the second block has expired, only the first (used up, never expiring) is left
    assert block_usage(contract=contract, today=D(2027, 1, 1)).block == first


@pytest.mark.parametrize("rollover,expected", [(False, None), (True, 25)])
def test_an_expired_block_counts_only_with_rollover(tenant, rollover, expected):
    contract, block = block_hours_contract(rollover=rollover)
    BlockPurchase.objects.filter(pk=block.pk).update(expires_on=D(2026, 6, 30))
    use(block, minutes=150)
    assert block_usage(contract=contract, today=D(2026, 6, 30)).percent == 25
    usage = block_usage(contract=contract, today=D(2026, 7, 1))
    assert (usage and usage.percent) == expected


def test_auto_repurchase_buys_the_next_block_once(tenant, mail):
    contract, block = block_hours_contract(auto_repurchase=True, block_expiry_months=12)
    use(block, minutes=600)
    today = D(2026, 3, 10)
    sent = mail.run(block_alerts_check, contract=contract, today=today)
    assert [n.kind for n in sent] == ["block_threshold"] * 3 + ["block_repurchased"]

    new = BlockPurchase.objects.get(contract=contract, auto_purchased=True)
    assert (new.purchased_on, new.expires_on, new.minutes, new.price) == (today, D(2027, 3, 9), 600, eur("900.00"))
    assert sent[-1].message == (
        "Alerts AG — 10-hour block used up its block, so a new block of 10:00 hours was bought "
        "automatically on 10 Mar 2026 for €900.00."
    )
    assert mail.outbox[-1].subject == "New block bought automatically: Alerts AG — 10-hour block"

    # the next checks buy nothing more; the new block starts again at 0 %
    assert mail.run(block_alerts_check, contract=contract, today=today) == []
    assert mail.run(block_alerts_check, contract=contract, today=D(2026, 3, 11)) == []
    assert BlockPurchase.objects.filter(contract=contract).count() == 2
    use(new, minutes=450)
    assert [n.key for n in mail.run(block_alerts_check, contract=contract, today=D(2026, 4, 1))] == [f"block:{contract.pk}:{new.pk}:75"]


# --- budget alerts -----------------------------------------------------------------------


def allocate(contract: Contract, *, billed_minutes: int, amount: str) -> None:
    from contracts.models import Role, WorkType
    from msp_billing.accounts.models import User
    from tickets.models import Ticket, TimeAllocation, TimeEntry

    role, _ = Role.objects.get_or_create(name="Engineer", defaults={"default_rate": eur("120.0000"), "cost_rate": eur("50.0000")})
    work_type, _ = WorkType.objects.get_or_create(name="Project Work")
    ticket = Ticket.objects.create(customer=contract.customer, title="Migration", default_contract=contract)
    entry = TimeEntry.objects.create(
        ticket=ticket, technician=User.objects.get(email=email_for("alpha", "technician")), role=role,
        work_type=work_type, date=D(2026, 2, 1), minutes=billed_minutes,
    )
    TimeAllocation.objects.create(
        entry=entry, contract=contract, bucket="charged", minutes=billed_minutes, billed_minutes=billed_minutes,
        rate=eur("120.0000"), amount=eur(amount),
    )


def test_project_budget_in_hours_and_money(tenant, mail):
    contract = make_contract(
        "Office 365 migration", type=Contract.Type.PROJECT_HOURLY, budget_minutes=600, budget_amount=eur("1000.00"),
    )
    allocate(contract, billed_minutes=300, amount="600.00")  # 50 % of the hours, 60 % of the money
    assert mail.run(budget_alerts_check, contract=contract) == []
    allocate(contract, billed_minutes=150, amount="300.00")  # 75 % of the hours, 90 % of the money
    sent = mail.run(budget_alerts_check, contract=contract)
    assert sorted(n.key for n in sent) == sorted([
        f"budget:{contract.pk}:hours:600:75",
        f"budget:{contract.pk}:amount:1000.00:75",
        f"budget:{contract.pk}:amount:1000.00:90",
    ])
    assert {n.kind for n in sent} == {"budget_threshold"}
    assert "has used 90 % of its budget (€900.00 of €1,000.00)" in " ".join(n.message for n in sent)
    assert mail.run(budget_alerts_check, contract=contract) == []
    assert len(mail.outbox) == 3

    # raising the budget starts a new round of alerts
    contract.budget_minutes = 1200
    contract.save()
    allocate(contract, billed_minutes=450, amount="0.00")  # 900 of 1200 = 75 %
    assert [n.key for n in mail.run(budget_alerts_check, contract=contract)] == [f"budget:{contract.pk}:hours:1200:75"]


def test_alerts_check_all_covers_blocks_and_budgets_and_repeats_nothing(tenant, mail):
    block_contract, block = block_hours_contract()
    use(block, minutes=480)  # 80 %
    project = make_contract("Project", type=Contract.Type.PROJECT_HOURLY, budget_minutes=100)
    allocate(project, billed_minutes=100, amount="200.00")  # 100 %
    sent = mail.run(alerts_check_all, today=D(2026, 3, 1))
    assert sorted(n.key for n in sent) == sorted(
        [f"block:{block_contract.pk}:{block.pk}:75"] + [f"budget:{project.pk}:hours:100:{pct}" for pct in (75, 90, 100)]
    )
    assert mail.run(alerts_check_all, today=D(2026, 3, 2)) == []


# --- notifications page ------------------------------------------------------------------


@pytest.mark.urls(__name__)
def test_the_notifications_page_lists_and_marks_as_read(tenant, client_for):
    contract = make_contract("Managed services")
    first = Notification.objects.create(kind=Notification.Kind.RENEWAL, contract=contract, key="t:1", message="Renews on 31 Dec 2026.")
    second = Notification.objects.create(kind=Notification.Kind.BLOCK_THRESHOLD, contract=contract, key="t:2", message="Block 90 % used.")

    admin = client_for("alpha", "billing_admin")
    page = admin.get("/notifications/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Renews on 31 Dec 2026." in html and "Block 90 % used." in html and "Unread (2)" in html

    response = admin.post("/notifications/", {"notification": first.pk})
    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.read_at is not None and second.read_at is None
    assert "Renews on 31 Dec 2026." not in admin.get("/notifications/").content.decode()  # unread only
    assert "Renews on 31 Dec 2026." in admin.get("/notifications/?show=all").content.decode()

    admin.post("/notifications/", {"all": "on"})
    assert not Notification.objects.filter(read_at__isnull=True).exists()


@pytest.mark.urls(__name__)
def test_accountants_read_notifications_but_cannot_mark_them_and_technicians_see_none(tenant, client_for):
    notification = Notification.objects.create(kind=Notification.Kind.RENEWAL, key="t:3", message="Renews soon.")
    accountant = client_for("alpha", "accountant")
    page = accountant.get("/notifications/")
    assert page.status_code == 200 and "Renews soon." in page.content.decode()
    assert "Mark as read" not in page.content.decode()
    assert accountant.post("/notifications/", {"notification": notification.pk}).status_code == 403
    notification.refresh_from_db()
    assert notification.read_at is None
    assert client_for("alpha", "technician").get("/notifications/").status_code == 403
