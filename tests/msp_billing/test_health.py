"""/healthz reports the database, the broker and the workers; 503 when one is down.

It is answered before the tenant middleware (which needs the database to find the host's
MSP), and it reads the workers' heartbeats from Redis instead of pinging them.
"""
from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
from django.test import Client

from msp_billing import heartbeat
from msp_billing.celery import app
from tests.support import celery_command, free_port, gunicorn, process_env, running


@pytest.fixture
def heartbeats():
    client = heartbeat.redis_client()
    client.delete(heartbeat.HASH_KEY)
    yield client
    client.delete(heartbeat.HASH_KEY)
    client.close()


def health(host: str = "localhost"):
    started = time.monotonic()
    response = Client(HTTP_HOST=host).get("/healthz")
    return response, time.monotonic() - started


def test_without_a_worker_health_is_503_and_says_why(db, heartbeats):
    response, _ = health()
    body = response.json()
    assert response.status_code == 503
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["workers"] == {"ok": False, "count": 0}


def test_an_unreachable_broker_is_reported(db):
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response, _ = health("alpha.localhost")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False


def test_a_fresh_heartbeat_counts_as_a_worker_and_a_stale_one_does_not(db, heartbeats, settings):
    settings.WORKER_HEARTBEAT_STALE_SECONDS = 30
    heartbeat.beat(heartbeats, "fresh@host")
    heartbeat.beat(heartbeats, "stale@host", at=time.time() - 31)
    response, _ = health()
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": {"ok": True}, "broker": {"ok": True},
                               "workers": {"ok": True, "count": 1}}

    heartbeat.beat(heartbeats, "fresh@host", at=time.time() - 45)  # that worker stopped writing
    response, _ = health("alpha.localhost")
    assert response.status_code == 503
    assert response.json()["workers"] == {"ok": False, "count": 0}


def test_with_the_database_down_health_is_503_json_not_a_server_error(db, tmp_path):
    """A web server whose database does not answer (a closed port): /healthz still answers,
    on the platform host and on an MSP's host, and names the database."""
    port, dead_database = free_port(), free_port()
    env = process_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{dead_database}/nothing", PUBLIC_URL_PORT="")
    with gunicorn(port=port, env=env, workers=1, log=tmp_path / "gunicorn.log"):
        for host in ("localhost", "alpha.localhost"):
            request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": f"{host}:{port}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, body = response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                status, body = error.code, json.loads(error.read())
            assert status == 503, body
            assert body["status"] == "down"
            assert body["database"] == {"ok": False, "error": "OperationalError"}
            assert body["broker"]["ok"] is True


@pytest.mark.worker
def test_with_a_worker_health_answers_at_once_and_a_killed_worker_is_down_soon(db, heartbeats, settings, tmp_path):
    settings.WORKER_HEARTBEAT_STALE_SECONDS = 4
    name = f"health-{os.getpid()}@localhost"
    command = celery_command("worker", "--pool=solo", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
                             "--without-mingle", f"--hostname={name}")
    env = process_env(WORKER_HEARTBEAT_SECONDS="1")

    def ready() -> bool:
        return name in heartbeat.workers_alive(heartbeats)

    with running(command, env=env, ready=ready, timeout=90, log=tmp_path / "worker.log") as worker:
        timings = []
        for _ in range(5):
            response, elapsed = health()
            assert response.status_code == 200, response.content
            assert response.json()["workers"] == {"ok": True, "count": 1}
            timings.append(elapsed)
        # A ping of the workers waited a full second; the heartbeat is read in milliseconds.
        assert max(timings) < 0.5, timings

        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + 15
        while health()[0].status_code != 503:
            assert time.monotonic() < deadline, "a killed worker still counts after 15 s"
            time.sleep(0.5)
        assert health()[0].json()["workers"] == {"ok": False, "count": 0}


@pytest.mark.worker
def test_a_worker_that_stops_cleanly_takes_its_heartbeat_with_it(db, heartbeats, tmp_path):
    name = f"health-stop-{os.getpid()}@localhost"
    command = celery_command("worker", "--pool=solo", "--loglevel=INFO", "--without-heartbeat", "--without-gossip",
                             "--without-mingle", f"--hostname={name}")

    def ready() -> bool:
        return name in heartbeat.workers_alive(heartbeats)

    with running(command, env=process_env(), ready=ready, timeout=90, log=tmp_path / "worker.log") as worker:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert name not in heartbeat.workers_alive(heartbeats)
