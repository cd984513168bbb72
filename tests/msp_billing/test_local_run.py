"""`make run` on one machine: a secret key that outlives a restart, demo logins that do not
sign anyone out, and styled error pages unless the debug page is asked for."""
from __future__ import annotations

import subprocess
import sys

from tests.support import BASE_DIR, process_env

PRINT_SECRET_KEY = "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
GET_MISSING_PAGE = (
    "import django; django.setup(); from django.test import Client; "
    "response = Client(HTTP_HOST='alpha.localhost').get('/no-such-page/'); "
    "print(response.status_code); print(response.content.decode())"
)


def _local(code: str, var_dir, **env: str) -> str:
    """Run ``code`` under the settings of `make run`, with ``var_dir`` as its var/ folder."""
    environment = process_env(DJANGO_SETTINGS_MODULE="msp_billing.settings.local", MSP_VAR_DIR=str(var_dir), **env)
    for name in ("DJANGO_SECRET_KEY", "DEBUG", "DJANGO_DEBUG"):
        if name not in env:
            environment.pop(name, None)
    result = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=environment, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_secret_key_is_made_once_and_kept_under_var(tmp_path, django_db_setup):
    first = _local(PRINT_SECRET_KEY, tmp_path / "var").strip()
    again = _local(PRINT_SECRET_KEY, tmp_path / "var").strip()
    assert len(first) >= 50 and again == first  # a restart signs nobody out
    assert (tmp_path / "var" / "secret-key").stat().st_mode & 0o077 == 0  # readable by its owner only
    assert _local(PRINT_SECRET_KEY, tmp_path / "other-var").strip() != first  # each machine its own
    assert _local(PRINT_SECRET_KEY, tmp_path / "var", DJANGO_SECRET_KEY="from-the-environment").strip() == "from-the-environment"


def test_a_missing_page_is_the_styled_404_unless_debug_is_asked_for(tmp_path, django_db_setup):
    status, page = _local(GET_MISSING_PAGE, tmp_path).split("\n", 1)
    assert status == "404"
    assert "<title>Page not found" in page and "/static/css/app.css" in page and "URLconf" not in page
    status, page = _local(GET_MISSING_PAGE, tmp_path, DEBUG="1").split("\n", 1)
    assert status == "404" and "URLconf" in page  # Django's debug page, on request


def test_refreshing_the_demo_keeps_its_users_signed_in(db):
    from django_tenants.utils import schema_context

    from msp_billing.accounts.models import User
    from msp_billing.tenants.demo import demo_ensure

    msp = demo_ensure()
    with schema_context(msp.schema_name):
        before = dict(User.objects.values_list("email", "password"))
    demo_ensure()
    with schema_context(msp.schema_name):
        # Unchanged hashes: the sessions made with them stay valid.
        assert dict(User.objects.values_list("email", "password")) == before
