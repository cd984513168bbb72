"""``manage.py load_exchange_rates [--file PATH | --url URL]``: load the day's exchange rates."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from msp_billing.fx.rates import rates_load


class Command(BaseCommand):
    help = "Load exchange rates (JSON: base, date, rates) from a file, an address, or the configured source."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--file", help="A rates document on disk.")
        group.add_argument("--url", help="An address answering with a rates document.")

    def handle(self, *args, file=None, url=None, **options):
        try:
            document = rates_load(file or url)
        except (ValidationError, OSError) as error:
            message = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            raise CommandError(message) from error
        self.stdout.write(self.style.SUCCESS(
            f"Loaded {len(document.rates)} rates against {document.base} for {document.date} from {document.source}."))
