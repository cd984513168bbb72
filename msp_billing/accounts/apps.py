from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "msp_billing.accounts"
    label = "accounts"
    verbose_name = "Users and roles"
