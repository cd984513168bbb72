"""Tokens and a small world for the API tests (schema of the MSP given, currency EUR)."""
from __future__ import annotations

import datetime as dt

from djmoney.money import Money

from api.services import token_create
from contracts.models import Contract, DeviceClass
from msp_billing.accounts.models import User
from tests.support import email_for
from tests.tickets import builders as b


def token(subdomain: str, role: str) -> str:
    user = User.objects.get(email=email_for(subdomain, role))
    return token_create(user=user, name=f"{role} feed", expires_on=dt.date.today() + dt.timedelta(days=30))[1]


def world(subdomain: str = "alpha") -> dict:
    """A customer with an Hourly default contract (100 EUR/h), an open ticket, a technician with a role,
    and another customer's Remote Monitoring contract with a "Servers" device class."""
    remote, _, _, engineer = b.catalogue()
    b.technician(engineer, email=email_for(subdomain, "technician"))
    customer = b.customer(f"Acme {subdomain}")
    hourly = b.hourly_default(customer, "100")
    monitored = b.customer(f"Servers {subdomain}")  # its own customer: the Hourly contract takes the ticket's time
    monitoring = b.contract(monitored, Contract.Type.REMOTE_MONITORING, priority=20, name="Monitoring")
    servers = DeviceClass.objects.create(contract=monitoring, name="Servers", unit_price=Money(10, "EUR"))
    return {"customer": customer, "hourly": hourly, "ticket": b.ticket(customer), "work_type": remote,
            "monitoring": monitoring, "servers": servers}


def auth(secret: str, **headers) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}", **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}}
