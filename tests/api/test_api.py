"""The REST API in process: time logged through the ticket services, role scoping, tenant
isolation, idempotent POSTs, the rate limit, device feeds and problem details."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client, override_settings
from django_tenants.utils import schema_context

from api.models import ApiToken
from contracts.models import DeviceCount, UnmatchedDeviceReport
from tests.api.builders import auth, token, world
from tickets.models import TimeEntry

pytestmark = pytest.mark.django_db


def client(subdomain: str = "alpha") -> Client:
    return Client(HTTP_HOST=f"{subdomain}.localhost")


def post(c: Client, path: str, data: dict, secret: str, **headers):
    return c.post(path, json.dumps(data), content_type="application/json", **auth(secret, **headers))


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["type"] == "about:blank"
    return problem


def test_time_logged_through_the_api_is_routed_and_rated_and_a_repeated_key_answers_the_first_answer(tenant):
    w = world()
    secret = token("alpha", "technician")
    c = client()
    body = {"work_type": w["work_type"].pk, "date": dt.date.today().isoformat(), "minutes": 90, "notes": "Fixed the printer", "after_hours": False}
    first = post(c, f"/api/v1/tickets/{w['ticket'].pk}/time-entries", body, secret, **{"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.content
    entry = first.json()
    assert entry["minutes"] == 90
    assert [a["contract_id"] for a in entry["allocations"]] == [w["hourly"].pk]
    assert TimeEntry.objects.get(pk=entry["id"]).allocations.get().amount.amount == 150  # 1.5 h at 100 EUR
    again = post(c, f"/api/v1/tickets/{w['ticket'].pk}/time-entries", body, secret, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 201 and again.json() == entry and again["Idempotent-Replayed"] == "true"
    assert TimeEntry.objects.filter(ticket=w["ticket"]).count() == 1
    other = post(c, f"/api/v1/tickets/{w['ticket'].pk}/time-entries", {**body, "minutes": 5}, secret, **{"Idempotency-Key": "k-1"})
    assert_problem(other, 422)
    assert TimeEntry.objects.filter(ticket=w["ticket"]).count() == 1

    # A day later the answer is forgotten (beat's clean-up) and the key is new again.
    from django.utils import timezone

    from api import tasks
    from api.models import IdempotentRequest
    assert tasks.idempotent_requests_clean() == 0  # kept while fresh
    IdempotentRequest.objects.filter(key="k-1").update(created_at=timezone.now() - dt.timedelta(hours=25))
    assert tasks.idempotent_requests_clean() == 1
    later = post(c, f"/api/v1/tickets/{w['ticket'].pk}/time-entries", {**body, "minutes": 5}, secret, **{"Idempotency-Key": "k-1"})
    assert later.status_code == 201 and TimeEntry.objects.filter(ticket=w["ticket"]).count() == 2


def test_what_the_ticket_page_refuses_the_api_refuses_with_the_same_message(tenant):
    w = world()
    secret = token("alpha", "technician")
    body = {"work_type": w["work_type"].pk, "date": dt.date.today().isoformat(), "minutes": 30, "billable_minutes": 45}
    problem = assert_problem(post(client(), f"/api/v1/tickets/{w['ticket'].pk}/time-entries", body, secret), 422)
    assert "cannot be more than the time worked" in " ".join(problem["errors"]["billable_minutes"])
    schema_error = assert_problem(post(client(), f"/api/v1/tickets/{w['ticket'].pk}/time-entries", {"minutes": "many"}, secret), 422)
    assert "work_type" in schema_error["errors"] and "minutes" in schema_error["errors"]
    assert not TimeEntry.objects.exists()


def test_a_technician_token_logs_time_but_never_reads_money(tenant):
    w = world()
    secret = token("alpha", "technician")
    c = client()
    for path in ("/api/v1/invoices", "/api/v1/payments", "/api/v1/tax-rates", "/api/v1/products", "/api/v1/customers",
                 f"/api/v1/contracts/{w['hourly'].pk}"):
        assert "view_billing" in assert_problem(c.get(path, **auth(secret)), 403)["detail"]
    assert c.get("/api/v1/tickets", **auth(secret)).status_code == 200


def test_an_accountant_token_reads_but_changes_nothing(tenant):
    w = world()
    secret = token("alpha", "accountant")
    c = client()
    assert c.get("/api/v1/invoices", **auth(secret)).status_code == 200
    body = {"work_type": w["work_type"].pk, "date": dt.date.today().isoformat(), "minutes": 30}
    assert_problem(post(c, f"/api/v1/tickets/{w['ticket'].pk}/time-entries", body, secret), 403)
    response = c.put(f"/api/v1/contracts/{w['monitoring'].pk}/devices/Servers", json.dumps({"count": 3}),
                     content_type="application/json", **auth(secret))
    assert_problem(response, 403)
    assert not TimeEntry.objects.exists() and not DeviceCount.objects.exists()


def test_tokens_and_ids_do_not_cross_msps(tenant, other_tenant):
    w = world()
    alpha_secret = token("alpha", "owner")
    with schema_context("beta"):
        beta_secret = token("beta", "owner")
    # B's token on A's host is unknown there
    assert_problem(client("alpha").get("/api/v1/tickets", **auth(beta_secret)), 401)
    # A's ids on B's host are not found
    for path in (f"/api/v1/tickets/{w['ticket'].pk}", f"/api/v1/contracts/{w['hourly'].pk}", f"/api/v1/customers/{w['customer'].pk}"):
        assert_problem(client("beta").get(path, **auth(beta_secret)), 404)
        assert client("alpha").get(path, **auth(alpha_secret)).status_code == 200


def test_no_token_an_expired_one_and_a_revoked_one_are_401(tenant):
    secret = token("alpha", "owner")
    c = client()
    assert_problem(c.get("/api/v1/tickets"), 401)
    assert c.get("/api/v1/tickets", **auth(secret)).status_code == 200
    ApiToken.objects.update(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    assert_problem(c.get("/api/v1/tickets", **auth(secret)), 401)


@override_settings(API_RATE_LIMIT=3, API_RATE_WINDOW=60)
def test_past_the_rate_limit_a_token_gets_429_with_retry_after(tenant):
    secret, other = token("alpha", "owner"), token("alpha", "billing_admin")
    c = client()
    statuses = [c.get("/api/v1/tickets", **auth(secret)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = c.get("/api/v1/tickets", **auth(secret))
    assert_problem(refused, 429)
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert c.get("/api/v1/tickets", **auth(other)).status_code == 200  # per token
    # per MSP: beta's token with the same id as alpha's spent one has its own window
    spent = ApiToken.objects.get(name="owner feed")
    with schema_context("beta"):
        beta_secret = token("beta", "owner")
        ApiToken.objects.filter(name="owner feed").update(id=spent.pk)
    assert client("beta").get("/api/v1/tickets", **auth(beta_secret)).status_code == 200


def test_device_feed_sets_todays_count_and_keeps_an_unknown_class_as_a_possible_leak(tenant, client_for):
    w = world()
    secret = token("alpha", "billing_admin")
    c = client()
    put = c.put(f"/api/v1/contracts/{w['monitoring'].pk}/devices/servers", json.dumps({"count": 12}),
                content_type="application/json", **auth(secret))
    assert put.status_code == 200, put.content
    count = DeviceCount.objects.get(device_class=w["servers"])
    assert (count.count, count.source) == (12, "api")
    by_id = c.put(f"/api/v1/contracts/{w['monitoring'].pk}/devices/{w['servers'].pk}", json.dumps({"count": 13}),
                  content_type="application/json", **auth(secret))
    assert by_id.status_code == 200 and by_id.json()["device_count"]["count"] == 13
    unknown = c.put(f"/api/v1/contracts/{w['monitoring'].pk}/devices/Firewalls", json.dumps({"count": 4}),
                    content_type="application/json", **auth(secret))
    assert unknown.status_code == 202 and unknown.json()["matched"] is False
    report = UnmatchedDeviceReport.objects.get()
    assert (report.device_class_name, report.count, report.contract) == ("Firewalls", 4, w["monitoring"])
    page = client_for("alpha", "owner").get("/dashboard/")
    assert "Possible leak" in page.content.decode() and "Firewalls" in page.content.decode()
    assert "Firewalls" not in client_for("beta", "owner").get("/dashboard/").content.decode()


def test_unknown_paths_and_ids_are_problem_404s(tenant):
    secret = token("alpha", "owner")
    c = client()
    assert_problem(c.get("/api/v1/no-such-thing", **auth(secret)), 404)
    assert_problem(c.get("/api/v1/invoices/2147483647", **auth(secret)), 404)
    assert_problem(c.get("/api/v1/invoices?cursor=bm9wZQ", **auth(secret)), 422)


def test_a_token_is_shown_once_stored_hashed_and_revoked_from_settings(tenant, client_for):
    page = client_for("alpha", "technician")
    response = page.post("/settings/api-tokens/", {"name": "Laptop script", "expires_on": (dt.date.today() + dt.timedelta(days=10)).isoformat()})
    assert response.status_code == 201
    secret = response.context["secret"]
    stored = ApiToken.objects.get(name="Laptop script")
    assert secret not in stored.digest and stored.prefix == secret[:10]
    assert secret not in page.get("/settings/api-tokens/").content.decode()
    assert client().get("/api/v1/time-entries", **auth(secret)).status_code == 200
    assert page.post(f"/settings/api-tokens/{stored.pk}/revoke/").status_code == 302
    assert_problem(client().get("/api/v1/time-entries", **auth(secret)), 401)
    # another user cannot revoke it
    other = ApiToken.objects.create(user=stored.user, name="x", prefix="p", digest="d" * 64, expires_at=stored.expires_at)
    assert client_for("alpha", "accountant").post(f"/settings/api-tokens/{other.pk}/revoke/").status_code == 404
    other.refresh_from_db()
    assert other.revoked_at is None


def test_openapi_is_3_1_and_documents_problem_details(tenant):
    response = client().get("/api/v1/schema/")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    operation = schema["paths"]["/api/v1/tickets/{ticket_id}/time-entries"]["post"]
    assert "application/problem+json" in json.dumps(operation["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
    docs = client().get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.content.decode()
    assert "script-src 'self'" in docs["Content-Security-Policy"]
