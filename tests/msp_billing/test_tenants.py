"""Creating MSPs from the command line and the sign-up page: all of it, or nothing."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django_tenants.utils import schema_context

from msp_billing.accounts.models import User
from msp_billing.tenants.models import Domain, Msp

GOOD = dict(name="Acme IT", subdomain="acme", region="north_america", currency="usd", timezone="America/Chicago")


def schemas() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' AND nspname <> 'information_schema'")
        return {row[0] for row in cursor.fetchall()}


def create_msp(**overrides):
    options = {**GOOD, "admin_email": "owner@acme.example", **overrides}
    args = [f"--{key.replace('_', '-')}={value}" for key, value in options.items()]
    call_command("create_msp", *args)


def test_create_msp_makes_schema_domain_and_owner_and_invites_the_owner(db, mailoutbox):
    create_msp()
    msp = Msp.objects.get(subdomain="acme")
    assert (msp.schema_name, msp.currency, msp.timezone) == ("acme", "USD", "America/Chicago")
    assert Domain.objects.get(tenant=msp).domain == "acme.localhost"
    assert "acme" in schemas()
    with schema_context("acme"):
        owner = User.objects.get()
        assert (owner.email, owner.role, owner.has_usable_password()) == ("owner@acme.example", "owner", False)
    assert mailoutbox[-1].to == ["owner@acme.example"]
    assert "http://acme.localhost/accounts/reset/" in mailoutbox[-1].body


@pytest.mark.parametrize(
    "overrides,field,message",
    [
        ({"subdomain": "alpha"}, "subdomain", "already taken"),
        ({"subdomain": "www"}, "subdomain", "reserved"),
        ({"subdomain": "admin"}, "subdomain", "reserved"),
        ({"subdomain": "public"}, "subdomain", "reserved"),
        ({"subdomain": "Bad_Name!"}, "subdomain", "lower-case"),
        ({"currency": "ABC"}, "currency", "Unknown currency"),
        ({"timezone": "Mars/Olympus"}, "timezone", "Unknown time zone"),
        ({"admin_email": "not-an-address"}, "admin_email", "not a valid e-mail"),
        ({"region": "atlantis"}, "region", "Unknown region"),
    ],
)
def test_bad_input_is_refused_clearly_and_creates_nothing(db, overrides, field, message):
    before = (schemas(), Msp.objects.count(), Domain.objects.count())
    with pytest.raises(CommandError) as error:
        create_msp(**overrides)
    assert f"{field}: " in str(error.value) and message in str(error.value)
    assert "Nothing was created" in str(error.value)
    assert (schemas(), Msp.objects.count(), Domain.objects.count()) == before


def test_a_failure_after_the_schema_exists_removes_everything_again(db, monkeypatch):
    from msp_billing.tenants import services

    def owner_creation_fails(**kwargs):
        raise RuntimeError("mail server exploded")

    monkeypatch.setattr(services, "user_create", owner_creation_fails)
    before = (schemas(), Msp.objects.count(), Domain.objects.count())
    with pytest.raises(RuntimeError):
        create_msp(admin_password="a-long-enough-password")
    assert (schemas(), Msp.objects.count(), Domain.objects.count()) == before


def test_sign_up_page_creates_the_msp_and_sends_the_owner_to_their_own_host(db):
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    page = client.get("/signup/")
    assert page.status_code == 200 and b"Sub-domain" in page.content
    response = client.post(
        "/signup/",
        {**GOOD, "subdomain": "globex", "admin_email": "boss@globex.example", "admin_password": "Globex-Billing-2026", "admin_name": "Hank"},
    )
    assert response.status_code == 302
    assert response["Location"] == "http://globex.localhost/accounts/login/?welcome=1"
    tenant_client = Client(HTTP_HOST="globex.localhost")
    login = tenant_client.post("/accounts/login/", {"username": "boss@globex.example", "password": "Globex-Billing-2026"})
    assert login.status_code == 302 and login["Location"] == "/"
    assert tenant_client.get("/dashboard/").status_code == 200


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"subdomain": "beta"}, "already taken"),
        ({"subdomain": "www"}, "reserved"),
        ({"currency": "QQQ"}, "Unknown currency"),
        ({"timezone": "Nowhere/Land"}, "Select a valid choice"),
        ({"admin_email": "nobody"}, "valid email"),
        ({"admin_password": "123"}, "too short"),
    ],
)
def test_sign_up_page_shows_what_is_wrong_and_creates_nothing(db, overrides, message):
    from django.test import Client

    before = (schemas(), Msp.objects.count())
    data = {**GOOD, "subdomain": "initech", "admin_email": "a@initech.example", "admin_password": "Initech-Billing-2026", **overrides}
    response = Client(HTTP_HOST="localhost").post("/signup/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert (schemas(), Msp.objects.count()) == before
