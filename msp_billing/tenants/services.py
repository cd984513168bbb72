"""Creating MSP tenants: validation first, then schema, domain and owner — or nothing."""
from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django_tenants.utils import schema_context
from moneyed import CURRENCIES

from msp_billing.accounts.models import Role
from msp_billing.accounts.services import user_create
from msp_billing.tenants.models import Domain, Msp
from msp_billing.tenants.urls import tenant_host

SUBDOMAIN_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")


@dataclass(frozen=True)
class MspRequest:
    name: str
    subdomain: str
    region: str
    currency: str
    timezone: str
    admin_email: str
    admin_password: str | None = None
    admin_name: str = ""


def schema_name_for(subdomain: str) -> str:
    return subdomain.replace("-", "_")


def msp_validate(request: MspRequest) -> dict[str, list[str]]:
    """Every problem with the request, by field; empty when it can be created."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not request.name.strip():
        add("name", "Enter the MSP's name.")
    elif len(request.name) > 120:
        add("name", "Use at most 120 characters.")
    subdomain = request.subdomain
    if not SUBDOMAIN_RE.match(subdomain):
        add(
            "subdomain",
            "Use 3–40 lower-case letters, digits or hyphens, starting with a letter "
            "and not ending with a hyphen.",
        )
    elif subdomain in settings.RESERVED_SUBDOMAINS or subdomain.startswith("pg"):
        add("subdomain", f"“{subdomain}” is reserved; choose another sub-domain.")
    elif (
        Msp.objects.filter(subdomain=subdomain).exists()
        or Msp.objects.filter(schema_name=schema_name_for(subdomain)).exists()
        or Domain.objects.filter(domain=tenant_host(subdomain)).exists()
    ):
        add("subdomain", f"“{subdomain}” is already taken; choose another sub-domain.")
    if request.region not in dict(settings.TENANT_REGIONS):
        add("region", f"Unknown region “{request.region}”.")
    if request.currency.upper() not in CURRENCIES or request.currency.upper() == "XYZ":
        add("currency", f"Unknown currency “{request.currency}”; use an ISO 4217 code such as USD.")
    if request.timezone not in zoneinfo.available_timezones():
        add("timezone", f"Unknown time zone “{request.timezone}”; use a name such as Europe/London.")
    try:
        validate_email(request.admin_email)
    except ValidationError:
        add("admin_email", f"“{request.admin_email}” is not a valid e-mail address.")
    return errors


def msp_create(*, request: MspRequest) -> Msp:
    """Create the tenant, its schema, its domain and its first owner.

    Raises ``ValidationError`` (with per-field messages) before touching anything when the
    request is invalid. If a later step fails, the schema and the rows already written are
    removed again, so a failed sign-up never leaves a half-made tenant behind.
    """
    errors = msp_validate(request)
    if errors:
        raise ValidationError(errors)

    tenant = Msp(
        name=request.name.strip(),
        subdomain=request.subdomain,
        schema_name=schema_name_for(request.subdomain),
        region=request.region,
        currency=request.currency.upper(),
        timezone=request.timezone,
    )
    connection.set_schema_to_public()
    try:
        tenant.save(verbosity=0)  # creates the schema and runs the tenant migrations
        with transaction.atomic():
            Domain.objects.create(domain=tenant_host(request.subdomain), tenant=tenant, is_primary=True)
            with schema_context(tenant.schema_name):
                user_create(
                    email=request.admin_email,
                    role=Role.OWNER,
                    password=request.admin_password,
                    full_name=request.admin_name,
                )
    except Exception:
        connection.set_schema_to_public()
        if tenant.pk:
            with connection.cursor() as cursor:
                # Inside an outer transaction, deferred checks on the new schema's rows
                # would block dropping it; run them now.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            Domain.objects.filter(tenant_id=tenant.pk).delete()
            tenant.delete(force_drop=True)
        raise
    return tenant


def platform_ensure() -> Msp:
    """The public tenant and the platform's own domains (idempotent)."""
    connection.set_schema_to_public()
    public, _ = Msp.objects.get_or_create(
        schema_name=settings.PUBLIC_SCHEMA_NAME,
        defaults={
            "name": "MSP Billing platform",
            "subdomain": "public",
            "region": settings.TENANT_REGIONS[0][0],
            "currency": "USD",
        },
    )
    for host in {settings.TENANT_BASE_DOMAIN, "localhost"}:
        Domain.objects.get_or_create(
            domain=host, defaults={"tenant": public, "is_primary": host == settings.TENANT_BASE_DOMAIN}
        )
    return public


def msp_update_preferences(*, msp_id: int, name: str, timezone: str, locale: str | None = None,
                           address: str | None = None, unbilled_attention_days: int | None = None) -> Msp:
    """The MSP's own name, time zone and (when given) locale, postal address and the age
    (1–365 days) from which the dashboard highlights unbilled work (the tenant table is
    reachable from every schema). ``locale`` "" means the region's default."""
    from msp_billing.locales import forget_schema_locale, is_known

    if locale and not is_known(locale):
        raise ValidationError({"locale": f"Unknown locale “{locale}”; choose one of the list, such as en_US or de_DE."})
    msp = Msp.objects.get(pk=msp_id)
    msp.name = name.strip()
    msp.timezone = timezone
    fields = ["name", "timezone"]
    if locale is not None:
        msp.locale = locale
        fields.append("locale")
    if address is not None:
        msp.address = address.strip()
        fields.append("address")
    if unbilled_attention_days is not None:
        if not 1 <= unbilled_attention_days <= 365:
            raise ValidationError({"unbilled_attention_days": "Enter a number of days from 1 to 365."})
        msp.unbilled_attention_days = unbilled_attention_days
        fields.append("unbilled_attention_days")
    msp.save(update_fields=fields)
    forget_schema_locale(msp.schema_name)
    return msp


@transaction.atomic
def msp_set_time_approval(*, msp_id: int, required: bool, acting_user, message: str = "") -> Msp:
    """Turn time approval (Approve & Post) on or off; audited with who switched it and when.

    What happens to time already logged is decided by ``tickets.services.time_approval_switch``,
    which calls this.
    """
    from msp_billing.audit.services import audit_record

    if not isinstance(required, bool):
        raise ValidationError({"time_approval_required": "Choose whether time needs approval: on or off."})
    msp = Msp.objects.select_for_update().get(pk=msp_id)
    if msp.time_approval_required == required:
        return msp
    msp.time_approval_required = required
    msp.save(update_fields=["time_approval_required"])
    active = getattr(connection, "tenant", None)
    if isinstance(active, Msp) and active.pk == msp.pk:
        active.time_approval_required = required  # this request sees the new setting at once
    audit_record(actor=acting_user, action="time_approval_switched", obj=msp,
                 before={"time_approval_required": not required}, after={"time_approval_required": required},
                 message=message or f"Time approval switched {'on' if required else 'off'}.")
    return msp
