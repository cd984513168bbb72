from django.apps import AppConfig


class FxConfig(AppConfig):
    name = "msp_billing.fx"
    label = "fx"
    verbose_name = "Exchange rates"
