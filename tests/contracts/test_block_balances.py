"""Block balances: purchased, used, left, expired and expiring per block, as the contract page,
the contract list, its CSV, the alerts and a technician's route preview read them.

The figures are worked out by hand below each set-up; dates are relative to today, so the
same figures hold whichever day the tests run.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.alerts import block_usage
from contracts.models import BlockLedgerEntry, Contract
from contracts.selectors import block_balances
from msp_billing.tenants.today import tenant_today
from tests.support import body
from tests.tickets.builders import block, catalogue, contract, customer, rate_line, technician, ticket
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db


def use(purchase, minutes: int = 0, amount: str = "0") -> None:
    BlockLedgerEntry.objects.create(block=purchase, entry_date=purchase.purchased_on, minutes=minutes,
                                    amount=Decimal(amount), source=f"test:{purchase.pk}:{minutes}:{amount}")


@pytest.fixture
def today(tenant):
    return tenant_today()


@pytest.fixture
def hours(today):
    """A Block Hours contract that lets unused hours expire:

    | block | bought     | hours | used   | expires     | state    | left  |
    | A     | today−330  | 10    | 7.5    | today−150   | expired  | 2.5 (lost) |
    | B     | today−150  | 20    | 12.25  | today+200   | in use   | 7.75  |
    | C     | today−30   | 10    | 0      | never       | in use   | 10    |
    | D     | today+30   | 10    | 0      | never       | not yet  | —     |

    purchased 10 + 20 + 10 = 40 h (D not yet); used 7.5 + 12.25 = 19.75 h;
    left 7.75 + 10 = 17.75 h; expired 2.5 h; 40 = 19.75 + 17.75 + 2.5.
    Used % over the usable blocks B and C: 12.25 of 30 h = 40.8 % → 40 %, below 75 %.
    """
    cust = customer("Balance GmbH")
    c = contract(cust, Contract.Type.BLOCK_HOURS, name="Gold Block", rollover=False)
    day = dt.timedelta(days=1)
    a = block(c, minutes=600, on=today - 330 * day, expires_on=today - 150 * day, price="900")
    b = block(c, minutes=1200, on=today - 150 * day, expires_on=today + 200 * day, price="1700")
    block(c, minutes=600, on=today - 30 * day, price="900")
    block(c, minutes=600, on=today + 30 * day, price="900")
    use(a, 300)
    use(a, 150)
    use(b, 735)
    return c


@pytest.fixture
def money(today):
    """A Block Money contract that rolls balances over: 1,000.00 bought, 812.50 used (500.00 + 312.50),
    187.50 left; its expiry date is ignored (rollover), so nothing expires.
    Used 81.25 % → 81 %, at or above the first threshold (75 %): running low."""
    cust = customer("Prepaid GmbH")
    c = contract(cust, Contract.Type.BLOCK_MONEY, name="Prepaid Support", rollover=True)
    purchase = block(c, amount="1000.00", on=today - 200 * dt.timedelta(days=1),
                     expires_on=today - 10 * dt.timedelta(days=1), price="1000")
    use(purchase, amount="500.00")
    use(purchase, amount="312.50")
    return c


def test_block_hours_figures(hours, today):
    balance = block_balances(contracts=[hours], today=today)[hours.pk]
    assert (balance.purchased, balance.used, balance.left, balance.expired) == (2400, 1185, 1065, 150)
    assert (balance.purchased_hours, balance.used_hours, balance.left_hours, balance.expired_hours) == (
        Decimal("40.00"), Decimal("19.75"), Decimal("17.75"), Decimal("2.50"))
    assert [(b.state, b.left_hours) for b in balance.blocks] == [
        ("expired", Decimal("2.50")), ("usable", Decimal("7.75")), ("usable", Decimal("10.00")), ("not_yet", Decimal("10.00"))]
    assert [(b.left_hours, b.expires_on) for b in balance.expiring] == [(Decimal("7.75"), today + dt.timedelta(days=200))]
    assert balance.percent_used == 40 and not balance.is_low


def test_block_money_figures(money, today):
    balance = block_balances(contracts=[money], today=today)[money.pk]
    assert (balance.purchased, balance.used, balance.left, balance.expired) == (
        Decimal("1000.00"), Decimal("812.50"), Decimal("187.50"), Decimal("0.00"))
    assert balance.expiring == ()  # rolls over: the expiry date takes nothing away
    assert balance.percent_used == 81 and balance.is_low and balance.low_threshold == 75


def test_the_alerts_read_the_same_figure(hours, money, today):
    for c in (hours, money):
        usage = block_usage(contract=c, today=today)
        assert usage == block_balances(contracts=[c], today=today)[c.pk].usage
    assert block_usage(contract=hours, today=today).used == 735  # B and C: the usable blocks
    assert block_usage(contract=hours, today=today).size == 1800


def test_used_up_blocks_are_low_and_other_contract_types_have_no_balance(today):
    cust = customer("Empty GmbH")
    empty = contract(cust, Contract.Type.BLOCK_HOURS, name="Used up", rollover=True)
    use(block(empty, minutes=120, on=today), 120)
    hourly = contract(cust, Contract.Type.HOURLY, name="Hourly")
    balances = block_balances(contracts=[empty, hourly], today=today)
    assert list(balances) == [empty.pk]
    assert balances[empty.pk].left == 0 and balances[empty.pk].is_low and balances[empty.pk].percent_used == 100


def test_balances_of_many_contracts_take_one_query(hours, money, today):
    with CaptureQueriesContext(connection) as queries:
        block_balances(contracts=[hours, money], today=today)
    assert len(queries) == 1


def test_the_contract_page_shows_purchased_used_left_and_expiring(client_for, hours, money, today):
    client = client_for("alpha", "accountant")  # read-only users see balances too
    page = client.get(reverse("contracts:detail", args=[hours.pk])).content.decode()
    section = page[page.index('id="block-balance"'):]
    for text in ("Purchased</dt><dd>40 h", "Used</dt><dd>19.75 h", "<strong>17.75 h</strong>", "Expired unused</dt><dd>2.5 h",
                 "7.75 h on", "Expired", "Not yet bought", "40 %"):
        assert text in section, text
    assert "Running low" not in section
    assert "Add block purchase" not in section  # no write action for an accountant
    page = client.get(reverse("contracts:detail", args=[money.pk])).content.decode()
    section = page[page.index('id="block-balance"'):]
    for text in ("Purchased</dt><dd>€1,000.00", "Used</dt><dd>€812.50", "<strong>€187.50</strong>", "Running low",
                 "Nothing: unused balance rolls over"):
        assert text in section, text


def test_the_contract_list_shows_the_balance_with_one_query_for_the_page(client_for, hours, money, today):
    client = client_for("alpha", "billing_admin")
    page = client.get(reverse("contracts:list")).content.decode()
    assert "17.75 h left of 40 h" in page and "7.75 h expiring" in page
    assert "€187.50 left of €1,000.00" in page and "Low" in page

    with CaptureQueriesContext(connection) as few:
        client.get(reverse("contracts:list"))
    cust = customer("More GmbH")
    for n in range(4):
        more = contract(cust, Contract.Type.BLOCK_HOURS, name=f"More {n}", priority=n)
        use(block(more, minutes=60, on=today), 30)
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("contracts:list")).content.decode()
    assert page.count("0.5 h left of 1 h") == 4
    assert len(many) == len(few)


def test_the_contract_csv_carries_the_balance_as_plain_figures(client_for, hours, money):
    response = client_for("alpha", "accountant").get(reverse("contracts:list_csv"), {"type": "block_hours"})
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert [(r["Contract"], r["Block unit"], r["Block purchased"], r["Block used"], r["Block left"], r["Block expired"])
            for r in rows] == [("Gold Block", "hours", "40.00", "19.75", "17.75", "2.50")]
    response = client_for("alpha", "accountant").get(reverse("contracts:list_csv"), {"q": "Prepaid"})
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert [(r["Block unit"], r["Block purchased"], r["Block left"]) for r in rows] == [("EUR", "1000.00", "187.50")]


# --- a technician's route preview ----------------------------------------------------------------


@pytest.fixture
def onsite_block(today):
    """Onsite work goes to a 10 h block (600 min) of which 420 min (7 h) are used."""
    remote, onsite, ooh, engineer = catalogue()
    technician(engineer)
    cust = customer("Route GmbH")
    c = contract(cust, Contract.Type.BLOCK_HOURS, priority=1, name="Onsite Block", overage_rate=None)
    use(block(c, minutes=600, on=today - dt.timedelta(days=10)), 420)
    return {"ticket": ticket(cust), "onsite": onsite, "contract": c}


def preview(client, tkt, work_type, minutes: str, day: dt.date) -> str:
    response = client.get(reverse("tickets:route_preview", args=[tkt.pk]), {
        "work_type": work_type.pk, "duration": minutes, "date": day.isoformat(), "after_hours": "auto", "billable": "on"})
    assert response.status_code == 200
    return response.content.decode()


def test_route_preview_says_when_an_hours_block_runs_low(client_for, onsite_block, today):
    client = client_for("alpha", "technician")
    # 420 + 45 = 465 of 600 min = 77.5 % ≥ 75 %: low, 135 min = 2.25 h left.
    page = preview(client, onsite_block["ticket"], onsite_block["onsite"], "45", today)
    assert "Block running low" in page and "Onsite Block: 2.25 h left of 10 h with this entry." in page
    # 420 + 200 = 620 > 600: the block is used up, 20 min are overage.
    page = preview(client, onsite_block["ticket"], onsite_block["onsite"], "200", today)
    assert "Block used up" in page and "no hours left" in page
    assert TimeEntry.objects.count() == 0 and BlockLedgerEntry.objects.filter(source__startswith="time").count() == 0


def test_route_preview_is_quiet_while_the_block_has_enough(client_for, onsite_block, today):
    BlockLedgerEntry.objects.filter(block__contract=onsite_block["contract"]).update(minutes=120)
    # 120 + 45 = 165 of 600 min = 27.5 %: nothing to say.
    page = preview(client_for("alpha", "technician"), onsite_block["ticket"], onsite_block["onsite"], "45", today)
    assert "Onsite Block" in page and "Block running low" not in page


def test_route_preview_never_speaks_of_a_money_block(client_for, today):
    remote, onsite, ooh, engineer = catalogue()
    technician(engineer)
    cust = customer("Money Route GmbH")
    c = contract(cust, Contract.Type.BLOCK_MONEY, priority=1, name="Prepaid Money")
    rate_line(c, "100")
    use(block(c, amount="1000.00", on=today - dt.timedelta(days=10)), amount="950.00")  # 95 % used
    page = preview(client_for("alpha", "technician"), ticket(cust), onsite, "30", today)
    assert "Prepaid Money" in page
    assert "running low" not in page.lower() and "used up" not in page.lower() and "€" not in page and "left" not in page
