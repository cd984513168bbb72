from django.conf import settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Msp(TenantMixin):
    """A managed-service provider: one tenant, one PostgreSQL schema."""

    name = models.CharField(max_length=120)
    subdomain = models.CharField(max_length=40, unique=True)
    region = models.CharField(max_length=40, choices=settings.TENANT_REGIONS)
    currency = models.CharField(max_length=3, help_text="Home currency (ISO 4217).")
    timezone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = True

    class Meta:
        verbose_name = "MSP"
        verbose_name_plural = "MSPs"

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == settings.PUBLIC_SCHEMA_NAME


class Domain(DomainMixin):
    def __str__(self) -> str:
        return self.domain
