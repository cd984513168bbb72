from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # The core asks msp_billing.tax_owner who calculates taxes; we answer without it importing us.
        from integrations.registry import tax_owner
        from msp_billing.tax_owner import register_tax_owner

        register_tax_owner(tax_owner)
