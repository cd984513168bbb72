"""Writes through the API go through the same services, and meet the same refusals, as the pages:
customers and their billing contacts, tickets, parts and expenses, credit notes."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client
from djmoney.money import Money

from contracts.models import BillingContact, Customer, Product
from invoices.models import Invoice
from tests.api.builders import auth, token, world
from tests.invoices import builders as ib
from tickets.models import Charge, Ticket

pytestmark = pytest.mark.django_db


def call(method: str, path: str, data, secret: str, **headers):
    client = Client(HTTP_HOST="alpha.localhost")
    return getattr(client, method)(path, json.dumps(data), content_type="application/json", **auth(secret, **headers))


def test_a_customer_is_created_with_its_contacts_and_a_taken_name_is_refused_as_on_the_page(tenant):
    secret = token("alpha", "billing_admin")
    body = {"legal_name": "Nordlicht GmbH", "currency": "EUR", "payment_terms_days": 14,
            "billing_contacts": [{"email": "AP@nordlicht.example", "name": "Accounts"}, {"email": "cfo@nordlicht.example", "kind": "cc"}]}
    created = call("post", "/api/v1/customers", body, secret, **{"Idempotency-Key": "c-1"})
    assert created.status_code == 201, created.content
    customer = Customer.objects.get(pk=created.json()["id"])
    assert customer.payment_terms_days == 14
    assert list(BillingContact.objects.filter(customer=customer).order_by("position").values_list("email", "kind")) == \
        [("ap@nordlicht.example", "to"), ("cfo@nordlicht.example", "cc")]
    assert call("post", "/api/v1/customers", body, secret, **{"Idempotency-Key": "c-1"}).json() == created.json()
    taken = call("post", "/api/v1/customers", body, secret, **{"Idempotency-Key": "c-2"})
    assert taken.status_code == 422 and "legal_name" in taken.json()["errors"]
    bad = call("post", "/api/v1/customers", {**body, "legal_name": "Other", "billing_contacts": [{"email": "not an address"}]},
               secret)
    assert bad.status_code == 422 and "billing_contacts" in bad.json()["errors"]
    assert Customer.objects.filter(legal_name="Other").count() == 0  # nothing half-written
    # Contacts replaced; an accountant's token may read but not write.
    replaced = call("put", f"/api/v1/customers/{customer.pk}/contacts", [{"email": "billing@nordlicht.example"}], secret)
    assert replaced.status_code == 200 and [c["email"] for c in replaced.json()] == ["billing@nordlicht.example"]
    assert call("post", "/api/v1/customers", {**body, "legal_name": "Acct Ltd"}, token("alpha", "accountant")).status_code == 403


def test_a_technician_opens_a_ticket_and_logs_a_part_at_its_catalogue_price_without_reading_it(tenant):
    w = world()
    product = Product.objects.create(sku="SSD-1", name="SSD 1 TB", price=Money("120", "EUR"), cost=Money("80", "EUR"))
    tech = token("alpha", "technician")
    opened = call("post", "/api/v1/tickets", {"customer": w["customer"].pk, "title": "Laptop disk failing"}, tech)
    assert opened.status_code == 201, opened.content
    ticket = Ticket.objects.get(pk=opened.json()["id"])
    assert ticket.technician.email == "technician@alpha.example"
    part = call("post", f"/api/v1/tickets/{ticket.pk}/charges", {"product": product.pk, "date": "2026-03-02", "quantity": "2"}, tech)
    assert part.status_code == 201, part.content
    assert part.json()["unit_price"] is None  # a technician never reads money
    charge = Charge.objects.get(pk=part.json()["id"])
    assert (charge.unit_price, charge.unit_cost, charge.description, charge.contract_id) == \
        (Money("120", "EUR"), Money("80", "EUR"), "SSD 1 TB", w["hourly"].pk)
    priced = call("post", f"/api/v1/tickets/{ticket.pk}/charges",
                  {"product": product.pk, "date": "2026-03-02", "quantity": "1", "unit_price": "1"}, tech)
    assert priced.status_code == 422 and "unit_price" in priced.json()["errors"]
    expense = call("post", f"/api/v1/tickets/{ticket.pk}/charges", {"description": "", "date": "2026-03-02", "quantity": "1"}, tech)
    assert expense.status_code == 422 and "product" in expense.json()["errors"]
    # A billing admin logs an expense; without a price it is refused as on the ticket page.
    admin = token("alpha", "billing_admin")
    unpriced = call("post", f"/api/v1/tickets/{ticket.pk}/charges", {"description": "Parking", "date": "2026-03-02", "quantity": "1"}, admin)
    assert unpriced.status_code == 422 and "unit_price" in unpriced.json()["errors"]
    parking = call("post", f"/api/v1/tickets/{ticket.pk}/charges",
                   {"description": "Parking", "date": "2026-03-02", "quantity": "1", "unit_price": "7.50"}, admin)
    assert parking.status_code == 201 and Decimal(parking.json()["unit_price"]) == Decimal("7.50")
    assert Charge.objects.filter(ticket=ticket).count() == 2
    unknown = call("post", "/api/v1/tickets", {"customer": 2_000_000, "title": "x"}, tech)
    assert unknown.status_code == 422 and "customer" in unknown.json()["errors"]


def test_a_credit_note_through_the_api_is_the_invoice_services_one(tenant):
    invoice = ib.issued(lines=[ib.line("Support", "2", "100"), ib.line("Backup", "1", "50")])
    secret = token("alpha", "billing_admin")
    [support, _backup] = invoice.lines.order_by("sort_order", "pk")
    part = call("post", f"/api/v1/invoices/{invoice.pk}/credit-notes",
                {"reason": "One hour was not worked", "lines": [{"invoice_line": support.pk, "amount": "100.00"}]}, secret)
    assert part.status_code == 201, part.content
    credit = part.json()
    assert credit["kind"] == "credit_note" and credit["credited_invoice_id"] == invoice.pk and credit["number"]
    assert Invoice.objects.get(pk=credit["id"]).total == -100
    rest = call("post", f"/api/v1/invoices/{invoice.pk}/credit-notes", {"reason": "Cancelled"}, secret)
    assert rest.status_code == 201 and Invoice.objects.get(pk=rest.json()["id"]).total == -150
    again = call("post", f"/api/v1/invoices/{invoice.pk}/credit-notes", {"reason": "Once more"}, secret)
    assert again.status_code == 422 and "credited in full" in again.json()["detail"]
    draft = ib.draft(lines=[ib.line()])
    assert call("post", f"/api/v1/invoices/{draft.pk}/credit-notes", {"reason": "x"}, secret).status_code == 422
    assert call("post", f"/api/v1/invoices/{invoice.pk}/credit-notes", {"reason": "x"}, token("alpha", "accountant")).status_code == 403
