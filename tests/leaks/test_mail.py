"""The weekly leak e-mail: Monday 08:00 in the MSP's time zone, to its billing admins, its own leaks only."""
from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.db import connection

from leaks.mail import leaks_weekly_send
from leaks.rules import leaks_all
from tests.leaks.generator import plant
from msp_billing.templatetags.formatting import money
from tests.support import email_for


@pytest.fixture
def outbox(smtp_outbox):
    """What a real SMTP server on 127.0.0.1 received, read back as the messages it was sent."""
    return smtp_outbox


def next_monday_8_30(today: dt.date) -> dt.datetime:
    """08:30 on the coming Monday in Berlin, where alpha and beta are."""
    monday = today + dt.timedelta(days=(7 - today.weekday()) % 7)
    return dt.datetime.combine(monday, dt.time(8, 30), tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))


def test_billing_admins_get_the_total_and_the_top_five_with_a_link(tenant, outbox):
    planted = plant()
    monday = next_monday_8_30(planted.today)
    leaks = leaks_all(today=monday.date())
    assert leaks_weekly_send(now=monday.astimezone(dt.UTC)) == 1
    [message] = outbox
    assert message["X-Rcpt-To"] == email_for("alpha", "billing_admin")
    assert f"{len(leaks)} revenue leaks" in message["Subject"]
    body = message.get_content()
    for leak in leaks[:5]:
        assert leak.description in body
        assert money(leak.amount, leak.currency) in body  # written in the MSP's locale
    assert leaks[5].description not in body
    assert "http://alpha." in body or "https://alpha." in body
    assert "/leaks/" in body


def test_nothing_is_sent_outside_the_weekly_slot(tenant, outbox):
    monday = next_monday_8_30(plant().today)
    for moment in (monday + dt.timedelta(hours=1), monday - dt.timedelta(hours=1),
                   monday + dt.timedelta(days=1)):
        assert leaks_weekly_send(now=moment) == 0
    assert outbox == []


def test_another_msp_mail_holds_none_of_these_leaks(tenant, other_tenant, outbox):
    monday = next_monday_8_30(plant().today)
    connection.set_tenant(other_tenant)
    assert leaks_weekly_send(now=monday) == 0  # beta has no leaks: no mail at all
    assert outbox == []
    connection.set_tenant(tenant)
    leaks_weekly_send(now=monday)
    assert [m["X-Rcpt-To"] for m in outbox] == [email_for("alpha", "billing_admin")]
