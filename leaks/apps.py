"""The revenue leak finder (docs/leaks.md): money left between the work and the invoice."""
from django.apps import AppConfig


class LeaksConfig(AppConfig):
    name = "leaks"
    verbose_name = "Revenue leaks"
