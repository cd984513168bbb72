from django.contrib import admin

from msp_billing.tenants.models import Domain, Msp


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Msp)
class MspAdmin(admin.ModelAdmin):
    list_display = ("name", "subdomain", "schema_name", "region", "currency", "timezone", "created_at")
    search_fields = ("name", "subdomain")
    readonly_fields = ("schema_name",)
    inlines = [DomainInline]
