"""Sign in, sign out, password reset by e-mail, and lockout after repeated failures."""
from __future__ import annotations

import re

from django.test import Client

from tests.support import PASSWORD, email_for


def sign_in(client: Client, email: str, password: str):
    return client.post("/accounts/login/", {"username": email, "password": password})


def test_sign_in_and_out(db):
    client = Client(HTTP_HOST="alpha.localhost")
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b"Forgot your password?" in page.content
    response = sign_in(client, email_for("alpha", "owner"), PASSWORD)
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_wrong_password_says_so_and_does_not_sign_in(db):
    client = Client(HTTP_HOST="alpha.localhost")
    response = sign_in(client, email_for("alpha", "owner"), "wrong-password")
    assert response.status_code == 200
    assert "Please enter a correct e-mail and password" in response.content.decode()
    assert client.get("/dashboard/").status_code == 302


def test_password_reset_by_email_on_the_tenants_own_host(db, mailoutbox):
    client = Client(HTTP_HOST="alpha.localhost")
    response = client.post("/accounts/password-reset/", {"email": email_for("alpha", "accountant")})
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [email_for("alpha", "accountant")]
    link = re.search(r"https?://alpha\.localhost(/accounts/reset/\S+/)", mailoutbox[0].body).group(1)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    set_url = form.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": "Brand-New-Secret-42", "new_password2": "Brand-New-Secret-42"})
    assert done.status_code == 302
    assert sign_in(Client(HTTP_HOST="alpha.localhost"), email_for("alpha", "accountant"), "Brand-New-Secret-42").status_code == 302


def test_password_reset_for_an_address_of_another_msp_sends_nothing(db, mailoutbox):
    Client(HTTP_HOST="alpha.localhost").post("/accounts/password-reset/", {"email": email_for("beta", "owner")})
    assert mailoutbox == []


def test_repeated_failed_sign_ins_lock_the_account_even_for_the_right_password(db, settings):
    client = Client(HTTP_HOST="alpha.localhost")
    email = email_for("alpha", "billing_admin")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, email, "guess")
    locked = sign_in(client, email, PASSWORD)
    assert locked.status_code in (403, 429)
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert client.get("/dashboard/").status_code == 302
    # Lockout is per MSP: the same address on another MSP's host is unaffected.
    other = sign_in(Client(HTTP_HOST="beta.localhost"), email_for("beta", "billing_admin"), PASSWORD)
    assert other.status_code == 302
