from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from msp_billing.tenants.services import MspRequest, msp_create
from msp_billing.tenants.urls import tenant_url


class Command(BaseCommand):
    help = "Create an MSP tenant: its schema, its sub-domain and its first owner (who is e-mailed an invitation)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--subdomain", required=True)
        parser.add_argument("--region", required=True)
        parser.add_argument("--currency", required=True)
        parser.add_argument("--timezone", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", help="Set the owner's password now instead of inviting them.")

    def handle(self, *args, **options):
        request = MspRequest(
            name=options["name"],
            subdomain=options["subdomain"].strip().lower(),
            region=options["region"],
            currency=options["currency"].strip().upper(),
            timezone=options["timezone"],
            admin_email=options["admin_email"],
            admin_password=options["admin_password"],
        )
        try:
            msp = msp_create(request=request)
        except ValidationError as error:
            lines = [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]
            raise CommandError("Nothing was created.\n" + "\n".join(lines)) from None
        if not options["admin_password"]:
            from django_tenants.utils import schema_context

            from msp_billing.accounts.mail import invitation_send
            from msp_billing.accounts.models import User

            with schema_context(msp.schema_name):
                invitation_send(user_id=User.objects.get().pk)
        self.stdout.write(self.style.SUCCESS(f"Created {msp.name} at {tenant_url(msp, '/')}"))
