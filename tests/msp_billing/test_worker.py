"""A real Celery worker process runs tenant tasks in the schema of the tenant that queued them."""
from __future__ import annotations

import time

import pytest
from django.test import Client
from django_tenants.utils import schema_context

from msp_billing.accounts.models import User
from msp_billing.accounts.tasks import send_invitation
from msp_billing.celery import app
from msp_billing.tasks import TenantContextMissing
from tests.support import celery_command, email_for, process_env, running

pytestmark = [pytest.mark.worker, pytest.mark.django_db]


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, tmp_path_factory):
    mail_dir = tmp_path_factory.mktemp("mail")
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with django_db_blocker.unblock():
        env = process_env(EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(mail_dir))

    def ready() -> bool:
        return bool(app.control.inspect(timeout=0.5).ping())

    command = celery_command("worker", "--pool=solo", "--concurrency=1", "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle")
    with running(command, env=env, ready=ready, timeout=90, log=log):
        yield mail_dir


def sent_mail(mail_dir) -> str:
    return "\n".join(path.read_text() for path in sorted(mail_dir.iterdir()))


def test_a_task_queued_in_one_msp_runs_in_that_msp(worker, db):
    with schema_context("alpha"):
        alpha_user = User.objects.get(email=email_for("alpha", "technician"))
        result = send_invitation.delay(alpha_user.pk)
    with schema_context("beta"):
        beta_user = User.objects.get(email=email_for("beta", "technician"))
        beta_result = send_invitation.delay(beta_user.pk)
    assert result.get(timeout=60) == email_for("alpha", "technician")
    assert beta_result.get(timeout=60) == email_for("beta", "technician")
    mail = sent_mail(worker)
    assert "invited to Alpha Managed IT" in mail and "http://alpha.localhost/accounts/reset/" in mail
    assert "invited to Beta Managed IT" in mail and "http://beta.localhost/accounts/reset/" in mail


def test_a_tenant_task_queued_from_the_public_schema_fails_loudly(worker, db):
    result = send_invitation.delay(1)
    with pytest.raises(TenantContextMissing, match="must be queued inside a tenant's schema"):
        result.get(timeout=60)


def test_beat_fan_out_queues_the_task_once_per_msp(worker, db):
    from msp_billing.tenants.models import Msp

    result = app.send_task("msp_billing.tasks.fan_out_to_tenants", args=("msp_billing.accounts.tasks.clear_expired_sessions",))
    assert result.get(timeout=60) == Msp.objects.exclude(schema_name="public").count()


def test_health_is_ok_while_a_worker_runs(worker, db):
    deadline = time.monotonic() + 30
    while True:
        response = Client(HTTP_HOST="localhost").get("/healthz")
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert response.status_code == 200
    assert response.json()["workers"]["count"] == 1

