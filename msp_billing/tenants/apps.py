from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "msp_billing.tenants"
    label = "tenants"
    verbose_name = "MSP tenants"
