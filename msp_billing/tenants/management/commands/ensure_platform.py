from django.core.management.base import BaseCommand

from msp_billing.tenants.services import platform_ensure


class Command(BaseCommand):
    help = "Create the public (platform) tenant and its domains if they are missing."

    def handle(self, *args, **options):
        public = platform_ensure()
        self.stdout.write(f"Platform domains: {', '.join(public.domains.values_list('domain', flat=True))}")
