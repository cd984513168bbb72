from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from msp_billing.tenants.demo import DEMO_PASSWORD, DEMO_USERS, demo_ensure
from msp_billing.tenants.urls import tenant_url
from onboarding.demo import demo_data_load


class Command(BaseCommand):
    help = "Create or refresh the demo MSP, its users and its billing data (not for production)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Allow it with DEBUG off.")

    def handle(self, *args, **options):
        if not (settings.DEBUG or getattr(settings, "LOCAL_MACHINE", False)) and not options["force"]:
            raise CommandError("The demo MSP has known passwords; run with --force to seed it with DEBUG off.")
        msp = demo_ensure()
        demo_data_load(schema_name=msp.schema_name)  # customers, contracts and three months of work
        self.stdout.write(f"Demo MSP: {tenant_url(msp, '/')}")
        for email, _, role in DEMO_USERS:
            self.stdout.write(f"  {role.label:<14} {email}  /  {DEMO_PASSWORD}")
