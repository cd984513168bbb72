"""Production settings pass Django's deployment checks; the compose file runs real commands."""
from __future__ import annotations

import shlex
import subprocess
import sys

import yaml

from tests.support import BASE_DIR


def test_check_deploy_has_no_warnings_under_production_settings():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "msp_billing.settings.production",
        "DJANGO_SECRET_KEY": "x7#pQ2!vL9@mZ4$kR8&nT1^wY6*bH3(jF5)dG0_sC2+eA9-uK7=oN4",
        "DATABASE_URL": "postgres://billing:secret@db:5432/msp_billing",
        "REDIS_URL": "redis://redis:6379/0",
        "TENANT_BASE_DOMAIN": "billing.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_compose_file_runs_the_five_services_with_commands_that_exist():
    compose = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "web", "worker", "beat"}
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("web", "worker", "beat"):
        service = services[name]
        assert service["build"] == "." or service.get("image")
        env = service["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "msp_billing.settings.production"
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert set(service["depends_on"]) >= {"postgres", "redis"}
    web = shlex.split(services["web"]["command"]) if isinstance(services["web"]["command"], str) else services["web"]["command"]
    assert web[0] == "gunicorn" and web[1] == "msp_billing.wsgi:application"
    for name, sub in (("worker", "worker"), ("beat", "beat")):
        cmd = services[name]["command"]
        cmd = shlex.split(cmd) if isinstance(cmd, str) else cmd
        assert cmd[:4] == ["celery", "-A", "msp_billing", sub]
    # The application objects those commands name exist.
    import msp_billing.wsgi  # noqa: F401  (imports under the test settings already configured)
    from msp_billing import celery_app

    assert celery_app.main == "msp_billing"
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert "pip install" in dockerfile and "collectstatic" in dockerfile
    entry = (BASE_DIR / "docker" / "entrypoint.sh")
    assert entry.exists() and "migrate_schemas" in entry.read_text()
