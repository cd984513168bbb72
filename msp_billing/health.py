"""/healthz: can we reach the database, the broker, and at least one worker?

Answered by ``HealthCheckMiddleware``, placed before the tenant middleware: that one looks
the host's domain up in the database, so with PostgreSQL down it could only fail, and a
probe must get a 503 naming what is down instead. Workers are not pinged (a ping waits for
the slowest reply); each worker keeps a heartbeat fresh in Redis (msp_billing/heartbeat.py)
and the check reads its age.
"""
from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from msp_billing import heartbeat
from msp_billing.accounts.access import open_to_all

PATHS = frozenset({"/healthz", "/healthz/"})


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True}
    except Exception as exc:  # any failure means "down", reported, not raised
        return {"ok": False, "error": exc.__class__.__name__}


def _broker() -> dict:
    from msp_billing.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return {"ok": True}
    except Exception as exc:
        return {"ok": False, "error": exc.__class__.__name__}


def _workers() -> dict:
    client = None
    try:
        client = heartbeat.redis_client(timeout=1.0)
        alive = heartbeat.workers_alive(client)
    except Exception as exc:
        return {"ok": False, "count": 0, "error": exc.__class__.__name__}
    finally:
        if client is not None:
            client.close()
    return {"ok": bool(alive), "count": len(alive)}


def health_response() -> JsonResponse:
    database = _database()
    broker, workers = _broker(), _workers()
    healthy = database["ok"] and broker["ok"] and workers["ok"]
    body = {"status": "ok" if healthy else "down", "database": database, "broker": broker, "workers": workers}
    response = JsonResponse(body, status=200 if healthy else 503)
    response["Cache-Control"] = "max-age=0, no-cache, no-store, must-revalidate, private"
    return response


@never_cache
@open_to_all
def healthz(request):
    return health_response()


class HealthCheckMiddleware:
    """Serves /healthz on every host before any other middleware (no tenant lookup, no
    session, no host check), so it answers even when the database does not."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in PATHS and request.method in ("GET", "HEAD"):
            return health_response()
        return self.get_response(request)
