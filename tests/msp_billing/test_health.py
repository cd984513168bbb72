"""/healthz reports the database, the broker and the workers; 503 when one is down."""
from __future__ import annotations

from django.test import Client

from msp_billing.celery import app


def test_without_a_worker_health_is_503_and_says_why(db):
    response = Client(HTTP_HOST="localhost").get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is True
    assert body["workers"] == {"ok": False, "count": 0}


def test_an_unreachable_broker_is_reported(db):
    original = app.conf.broker_url
    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = Client(HTTP_HOST="alpha.localhost").get("/healthz")
    finally:
        app.conf.broker_url = original
    assert response.status_code == 503
    assert response.json()["broker"]["ok"] is False
