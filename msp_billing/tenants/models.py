import datetime

from django.conf import settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin

from msp_billing.locales import msp_locale


class Msp(TenantMixin):
    """A managed-service provider: one tenant, one PostgreSQL schema."""

    name = models.CharField(max_length=120)
    subdomain = models.CharField(max_length=40, unique=True)
    region = models.CharField(max_length=40, choices=settings.TENANT_REGIONS)
    currency = models.CharField(max_length=3, help_text="Home currency (ISO 4217).")
    timezone = models.CharField(max_length=64, default="UTC")
    locale = models.CharField(
        max_length=20, blank=True,
        help_text="How money, quantities and dates are written (de_DE: 1.250,69 €); empty: the region's default.")
    address = models.TextField(blank=True, help_text="The MSP's postal address, printed on its invoices.")
    created_at = models.DateTimeField(auto_now_add=True)
    # Business hours decide whether logged time is after hours (a technician may override).
    business_day_start = models.TimeField(default=datetime.time(8, 0))
    business_day_end = models.TimeField(default=datetime.time(18, 0))
    business_weekdays = models.CharField(max_length=20, default="0,1,2,3,4", help_text="Monday is 0.")
    time_approval_required = models.BooleanField(
        default=False, help_text="Time and charges need an admin's approval before they can be billed."
    )
    unbilled_attention_days = models.SmallIntegerField(
        default=30, help_text="The billing dashboard highlights unbilled work older than this many days."
    )

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        verbose_name = "MSP"
        verbose_name_plural = "MSPs"
        constraints = [
            models.CheckConstraint(condition=models.Q(unbilled_attention_days__gte=1, unbilled_attention_days__lte=365),
                                   name="msp_unbilled_attention_days_range"),
        ]

    def __str__(self) -> str:
        return self.name

    def is_business_time(self, moment: datetime.datetime) -> bool:
        """Is a local date-time inside this MSP's business hours?"""
        weekdays = {int(day) for day in self.business_weekdays.split(",") if day.strip().isdigit()}
        return moment.weekday() in weekdays and self.business_day_start <= moment.time() < self.business_day_end

    @property
    def formatting_locale(self) -> str:
        """The locale amounts and dates are written in: the chosen one, or the region's."""
        return msp_locale(self)

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """The schema as a copy of the migrated template (``tenants/template.py``) when it can
        be made so; else by running the migrations (django-tenants)."""
        from django_tenants.utils import schema_exists

        from msp_billing.tenants.template import schema_copy_from_template

        if check_if_exists and schema_exists(self.schema_name):
            return False
        if sync_schema and schema_copy_from_template(self.schema_name):
            return True
        return super().create_schema(check_if_exists=check_if_exists, sync_schema=sync_schema, verbosity=verbosity)

    @property
    def is_public(self) -> bool:
        return self.schema_name == settings.PUBLIC_SCHEMA_NAME


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
