"""``manage.py import_time_csv --tenant T FILE.csv [--confirm]``: time entries from another PSA.

Without ``--confirm`` it only lists what would be imported and every rejected row; with
``--confirm`` it imports the accepted rows (in one transaction) and skips the rejected ones.
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.management.commands._tenant import file_bytes_from_option, msp_from_option
from onboarding.importing_csv import CsvFileError, CsvPreviewStale, time_csv_decode, time_csv_import, time_csv_preview


class Command(BaseCommand):
    help = ("Check a CSV export of time entries (Date, Customer, Ticket, Technician, Work Type, Hours or Minutes, "
            "Notes, Billable) and, with --confirm, import the rows that passed. Rejected rows are listed with "
            "their row number, column and reason.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file (docs/import-format.md, “CSV time entries”).")
        parser.add_argument("--tenant", required=True, help="The MSP's sub-domain (or schema name).")
        parser.add_argument("--confirm", action="store_true", help="Import the accepted rows; without it nothing is saved.")

    def handle(self, *args, **options):
        msp = msp_from_option(options["tenant"])
        raw = file_bytes_from_option(options["file"])
        with tenant_context(msp):
            try:
                text = time_csv_decode(raw)
                preview = time_csv_preview(text=text)
            except CsvFileError as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"{preview.rows_read} row(s) read: {len(preview.accepted)} accepted, "
                              f"{preview.rejected_rows} rejected.")
            if preview.ignored_columns:
                self.stdout.write(f"Ignored columns: {', '.join(preview.ignored_columns)}.")
            for problem in preview.rejected:
                self.stdout.write(f"  rejected — {problem}")
            for customer, title in preview.new_tickets:
                self.stdout.write(f"  new ticket — {customer}: {title}")
            if not options["confirm"]:
                if preview.accepted:
                    self.stdout.write("Nothing imported yet: run again with --confirm to import the accepted rows.")
                return
            if not preview.accepted:
                raise CommandError("No row can be imported; nothing was imported.")
            try:
                result = time_csv_import(text=text, fingerprint=preview.fingerprint)
            except CsvPreviewStale as error:
                raise CommandError(str(error)) from None
        minutes = sum(entry.minutes for entry in result.entries)
        self.stdout.write(self.style.SUCCESS(
            f"Imported {len(result.entries)} time entries ({minutes} minutes) into {msp.name}; "
            f"{len(result.new_tickets)} new ticket(s); {result.rejected_rows} rejected row(s) skipped."))
