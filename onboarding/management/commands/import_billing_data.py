"""``manage.py import_billing_data --tenant T FILE.json``: all or nothing (docs/import-format.md)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django_tenants.utils import tenant_context

from billing.management.commands._tenant import acting_user_from_option, file_bytes_from_option, msp_from_option
from onboarding.importing import ImportRejected, billing_data_import, import_document_load


class Command(BaseCommand):
    help = ("Import customers, catalogue, contracts, technicians, tickets, time and charges from a JSON file "
            "into one MSP. Every problem is listed with its JSON path; on any problem nothing is saved. "
            "Importing the same file again updates what changed and duplicates nothing.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="The JSON file (format: docs/import-format.md).")
        parser.add_argument("--tenant", required=True, help="The MSP's sub-domain (or schema name).")
        parser.add_argument("--user", help="E-mail of the user the import is recorded against in the audit log.")
        parser.add_argument("--dry-run", action="store_true", help="Check everything, then save nothing.")

    def handle(self, *args, **options):
        msp = msp_from_option(options["tenant"])
        raw = file_bytes_from_option(options["file"])
        with tenant_context(msp):
            acting_user = acting_user_from_option(options["user"])
            try:
                summary = billing_data_import(document=import_document_load(raw), acting_user=acting_user,
                                              dry_run=options["dry_run"])
            except ImportRejected as rejected:
                for problem in rejected.problems:
                    self.stderr.write(str(problem))
                raise CommandError(f"{len(rejected.problems)} problem(s) in {options['file']}; nothing was imported.") from None
        verb = "Checked (dry run, nothing saved)" if summary.dry_run else "Imported"
        self.stdout.write(self.style.SUCCESS(f"{verb} {options['file']} into {msp.name}."))
        for line in summary.lines():
            self.stdout.write(f"  {line}")
