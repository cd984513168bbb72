"""One MSP's users, sessions, objects and cache entries are invisible on another MSP's host."""
from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from msp_billing.accounts.models import User
from tests.support import PASSWORD, email_for


def test_a_user_of_one_msp_cannot_sign_in_on_another_msps_host(db):
    client = Client(HTTP_HOST="beta.localhost")
    response = client.post("/accounts/login/", {"username": email_for("alpha", "owner"), "password": PASSWORD})
    assert response.status_code == 200 and "Please enter a correct" in response.content.decode()
    assert client.get("/dashboard/").status_code == 302


def test_a_session_from_one_msp_is_worthless_on_another(client_for):
    alpha = client_for("alpha", "owner")
    assert alpha.get("/dashboard/").status_code == 200
    stolen = Client(HTTP_HOST="beta.localhost")
    stolen.cookies = alpha.cookies
    response = stolen.get("/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_another_msps_objects_cannot_be_reached_by_id(client_for):
    with schema_context("alpha"):
        extra = User.objects.create_user("extra@alpha.example", PASSWORD, role="technician")
        for _ in range(3):  # push alpha's ids past beta's
            extra = User.objects.create_user(f"extra{_}@alpha.example", PASSWORD, role="technician")
    with schema_context("beta"):
        assert not User.objects.filter(pk=extra.pk).exists()
    assert client_for("alpha", "owner").get(f"/settings/users/{extra.pk}/").status_code == 200
    assert client_for("beta", "owner").get(f"/settings/users/{extra.pk}/").status_code == 404
    response = client_for("beta", "owner").post(f"/settings/users/{extra.pk}/", {"role": "owner", "is_active": "on"})
    assert response.status_code == 404
    with schema_context("alpha"):
        assert User.objects.get(pk=extra.pk).role == "technician"


def test_cache_keys_carry_the_tenant(db):
    with schema_context("alpha"):
        cache.set("dashboard:unbilled", "alpha's figure", 30)
    with schema_context("beta"):
        assert cache.get("dashboard:unbilled") is None
        cache.set("dashboard:unbilled", "beta's figure", 30)
    with schema_context("alpha"):
        assert cache.get("dashboard:unbilled") == "alpha's figure"
        key = cache.make_key("dashboard:unbilled")
    assert key.startswith("alpha:")
    with schema_context("alpha"):
        cache.delete("dashboard:unbilled")
    with schema_context("beta"):
        cache.delete("dashboard:unbilled")


def test_pages_show_only_their_own_msps_users(client_for):
    alpha_page = client_for("alpha", "owner").get("/settings/users/").content.decode()
    assert email_for("alpha", "technician") in alpha_page
    assert "@beta.example" not in alpha_page and "@demo.example" not in alpha_page
    assert connection.schema_name in ("alpha", "public")
