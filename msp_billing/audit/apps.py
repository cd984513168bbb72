from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "msp_billing.audit"
    label = "audit"
    verbose_name = "Audit trail"
