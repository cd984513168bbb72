"""Every integrations URL declares who may open it; the same rules as tests/msp_billing/test_access.py."""
from __future__ import annotations

import pytest
from django.urls import URLPattern, get_resolver

from msp_billing.accounts.roles import ROLE_CAPABILITIES, Capability, Role
from tests.integrations.conftest import URLS as URLCONF

pytestmark = [pytest.mark.django_db, pytest.mark.urls(URLCONF)]


def integration_urls():
    found = []
    for pattern in get_resolver("integrations.urls").url_patterns:
        assert isinstance(pattern, URLPattern)
        path = str(pattern.pattern)
        for converter, sample in (("<int:", "1"), ("<slug:", "x"), ("<str:", "x"), ("<", "x")):
            while converter in path:
                start = path.index(converter)
                path = path[:start] + sample + path[path.index(">", start) + 1:]
        found.append(("/integrations/" + path, pattern.callback))
    return found


PATHS = integration_urls()


def test_every_view_declares_who_may_open_it():
    assert [path for path, view in PATHS if not hasattr(view, "required_capability")] == []


@pytest.mark.parametrize("path,view", PATHS)
def test_technician_gets_403(client_for, path, view):
    client = client_for("alpha", "technician")
    assert client.get(path).status_code == 403
    assert client.post(path, {}).status_code == 403


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize("path,view", PATHS)
def test_each_role_opens_exactly_what_it_may(client_for, role, path, view):
    response = client_for("alpha", role).get(path)
    if view.required_capability in ROLE_CAPABILITIES[role]:
        assert response.status_code in (200, 404, 405) or (
            response.status_code == 302 and "/accounts/login/" not in response["Location"]), (role, path, response.status_code)
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("path,view", [(p, v) for p, v in PATHS if getattr(v, "write_capability", None)
                                       or v.required_capability == Capability.MANAGE_BILLING])
def test_accountant_cannot_post(client_for, path, view):
    assert client_for("alpha", "accountant").post(path, {}).status_code == 403
