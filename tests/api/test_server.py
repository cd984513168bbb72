"""The API on a real gunicorn (PostgreSQL, Redis): schemathesis over the whole schema, and
two parallel POSTs with one Idempotency-Key."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from django_tenants.utils import schema_context

from tests.api.builders import token, world
from tests.support import committed_billing_msp

SUBDOMAIN = "apifuzz"


@pytest.fixture(scope="module")
def fuzz_msp(django_db_setup, django_db_blocker):
    def build(admin_email, tech_email):
        w = world(SUBDOMAIN)
        return {"ticket": w["ticket"].pk, "work_type": w["work_type"].pk, "owner": token(SUBDOMAIN, "billing_admin"),
                "technician": token(SUBDOMAIN, "technician")}

    with committed_billing_msp(django_db_blocker, name="Api Fuzz IT", subdomain=SUBDOMAIN, build=build) as built:
        yield built


def _post(port: int, path: str, body: dict, secret: str, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Host": f"{SUBDOMAIN}.localhost", "Authorization": f"Bearer {secret}",
                                              "Content-Type": "application/json", "Idempotency-Key": key})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_two_parallel_posts_with_one_key_create_one_entry_and_answer_alike(server, fuzz_msp, django_db_blocker):
    from tickets.models import TimeEntry

    body = {"work_type": fuzz_msp["work_type"], "date": dt.date.today().isoformat(), "minutes": 25, "after_hours": False}
    path = f"/api/v1/tickets/{fuzz_msp['ticket']}/time-entries"
    answers: list = []
    barrier = threading.Barrier(2)

    def send():
        barrier.wait()
        answers.append(_post(server, path, body, fuzz_msp["technician"], "parallel-1"))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [201, 201]
    assert json.loads(answers[0][1]) == json.loads(answers[1][1])
    with django_db_blocker.unblock(), schema_context(SUBDOMAIN):
        assert TimeEntry.objects.filter(ticket_id=fuzz_msp["ticket"], minutes=25).count() == 1


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(server, fuzz_msp, tmp_path):
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"http://127.0.0.1:{server}/api/v1/schema/",
               "--url", f"http://127.0.0.1:{server}", "-H", f"Host: {SUBDOMAIN}.localhost",
               "-H", f"Authorization: Bearer {fuzz_msp['owner']}",
               "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
               "--max-examples", "4", "--phases", "examples,fuzzing", "--no-color", "--suppress-health-check", "all",
               "--request-timeout", "30"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)  # its cache stays out of the tree
    output = result.stdout + result.stderr
    (tmp_path / "schemathesis.txt").write_text(output)
    assert result.returncode == 0, output[-6000:]
