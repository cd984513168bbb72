"""``manage.py benchmark_rollup``: run the nightly benchmark now (every MSP's roll-up, then the aggregates)."""
from django.core.management.base import BaseCommand

from benchmark.rollup import nightly


class Command(BaseCommand):
    help = "Roll up every MSP's benchmark figures and store the platform's aggregates (as the nightly task does)."

    def handle(self, *args, **options):
        result = nightly()
        self.stdout.write(self.style.SUCCESS(
            f"Rolled up {result['tenants']} MSPs; {result['contributors']} contribute; {result['groups']} groups stored."))
