"""Sign-in lock-out behind a reverse proxy: X-Forwarded-For counts only from TRUSTED_PROXIES."""
from __future__ import annotations

import pytest
from django.test import Client, RequestFactory

from msp_billing.client_ip import client_ip
from tests.support import PASSWORD, email_for

PROXY = "10.0.0.5"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::/8"]
    return settings


def visitor(remote: str, forwarded: str | None = None) -> Client:
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return Client(HTTP_HOST="alpha.localhost", **extra)


def sign_in(client: Client, email: str, password: str):
    return client.post("/accounts/login/", {"username": email, "password": password})


def lock_out(client: Client, email: str, settings) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, email, "guess")
    locked = sign_in(client, email, PASSWORD)
    assert locked.status_code in (403, 429) and "Too many failed sign-in attempts" in locked.content.decode()


def test_two_clients_behind_a_trusted_proxy_are_locked_out_separately(db, behind_proxy):
    email = email_for("alpha", "technician")
    lock_out(visitor(PROXY, "203.0.113.7"), email, behind_proxy)
    # Another person behind the same proxy is not locked out by the first one's guesses.
    assert sign_in(visitor(PROXY, "198.51.100.9"), email, PASSWORD).status_code == 302
    # The first one still is, whichever proxy of the pool carries them.
    assert sign_in(visitor("10.0.0.6", "203.0.113.7"), email, PASSWORD).status_code in (403, 429)


def test_a_forged_forwarded_header_from_an_untrusted_address_is_ignored(db, behind_proxy):
    email = email_for("alpha", "accountant")
    lock_out(visitor("192.0.2.50", "198.51.100.77"), email, behind_proxy)
    # A fresh made-up X-Forwarded-For does not make the same machine someone else.
    assert sign_in(visitor("192.0.2.50", "198.51.100.88"), email, PASSWORD).status_code in (403, 429)
    assert sign_in(visitor("192.0.2.51"), email, PASSWORD).status_code == 302


def test_without_trusted_proxies_the_header_is_never_read(db, settings):
    settings.TRUSTED_PROXIES = []
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert client_ip(request) == PROXY


@pytest.mark.parametrize("remote,forwarded,expected", [
    (PROXY, "203.0.113.7", "203.0.113.7"),
    (PROXY, "203.0.113.7, 10.1.2.3", "203.0.113.7"),  # two proxies of ours
    (PROXY, "6.6.6.6, 203.0.113.7", "203.0.113.7"),  # what the client itself claimed is not believed
    (PROXY, "203.0.113.7:4711", "203.0.113.7"),
    (PROXY, "[2001:db8::1]:4711", "2001:db8::1"),
    (PROXY, "203.0.113.7, not-an-address", PROXY),
    (PROXY, "", PROXY),
    (PROXY, "10.1.2.3", PROXY),  # only our own proxies: the nearest one is the client
    ("fd00::1", "2001:db8::7", "2001:db8::7"),
    ("192.0.2.50", "203.0.113.7", "192.0.2.50"),
])
def test_the_client_address_is_read_from_the_right_past_trusted_proxies(behind_proxy, remote, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected
