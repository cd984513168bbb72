"""/healthz: can we reach the database, the broker, and at least one worker?"""
from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from msp_billing.accounts.access import open_to_all


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True}
    except Exception as exc:  # any failure means "down", reported, not raised
        return {"ok": False, "error": exc.__class__.__name__}


def _broker_and_workers() -> tuple[dict, dict]:
    from msp_billing.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            broker = {"ok": True}
            replies = app.control.inspect(timeout=1.0, connection=conn).ping() or {}
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}, {"ok": False, "count": 0}
    return broker, {"ok": bool(replies), "count": len(replies)}


@never_cache
@open_to_all
def healthz(request):
    database = _database()
    broker, workers = _broker_and_workers()
    healthy = database["ok"] and broker["ok"] and workers["ok"]
    body = {"status": "ok" if healthy else "down", "database": database, "broker": broker, "workers": workers}
    return JsonResponse(body, status=200 if healthy else 503)
