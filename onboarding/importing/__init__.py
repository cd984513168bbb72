"""Import an MSP's billing data from one JSON file (format: docs/import-format.md).

The file holds the catalogue, customers, contracts with their terms, technicians,
tickets, time entries and charges; records refer to each other by natural keys (a
customer's legal name, a work type's name, a contract's or ticket's ``ref``), never by
database ids.

How an import runs:

1. The file is checked against ``docs/import.schema.json`` (``jsonschema``).
2. In one transaction every record is written through the same services the pages use
   (``contracts.services``, ``tickets.services``), so it is validated and audited as in
   the app. Time entries are created together and then routed and rated by
   ``tickets.services.entries_route``, oldest first, exactly as logged time is.
3. Every problem — schema, reference or service — is collected with its JSON path
   (``$.contracts[3].rate_lines[0].work_type: unknown work type "Onsite"``). If there is
   any, the transaction is rolled back: nothing is saved.

Re-importing a file upserts by natural key: records that exist are updated where the
file differs, ledgers (device counts, usage, blocks) and time entries and charges are
matched by their content, so nothing is duplicated. What is billed is never changed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DataError, connection, transaction

from onboarding.importing.catalogue import CatalogueSection
from onboarding.importing.checks import TooDeep, out_of_range_message, unstorable_values
from onboarding.importing.contracts import ContractsSection
from onboarding.importing.customers import CustomersSection
from onboarding.importing.document import (
    TOO_DEEP,
    ImportProblem,
    ImportRejected,
    ImportSummary,
    import_document_load,
    json_path,
    schema_check,
    schema_problems,
)
from onboarding.importing.msp_settings import SettingsSection
from onboarding.importing.technicians import TechniciansSection
from onboarding.importing.work import WorkSection

__all__ = [
    "ImportProblem", "ImportRejected", "ImportSummary", "billing_data_import", "billing_data_import_file",
    "import_document_load", "json_path", "schema_check", "schema_problems",
]


class _DryRun(Exception):
    pass


def billing_data_import(*, document: Any, acting_user=None, dry_run: bool = False) -> ImportSummary:
    """Import a parsed file into the active MSP's schema, all or nothing.

    Raises ``ImportRejected`` with every problem (nothing saved); returns what was created,
    updated and left unchanged. ``dry_run`` checks everything and then rolls back.
    """
    tenant = getattr(connection, "tenant", None)
    if tenant is None or connection.schema_name == settings.PUBLIC_SCHEMA_NAME:
        raise RuntimeError("billing data is imported into an MSP's schema: activate one first")
    try:
        unstorable = [ImportProblem(parts, message) for parts, message in unstorable_values(document)]
    except TooDeep:
        raise ImportRejected([ImportProblem((), TOO_DEEP)]) from None
    problems, blocked = schema_check(document)
    if unstorable:
        reported = {problem.path for problem in unstorable}
        raise ImportRejected(unstorable + [problem for problem in problems
                                           if problem.path.replace("\x00", "\\u0000") not in reported])
    if not isinstance(document, dict):
        raise ImportRejected(problems or [ImportProblem((), "the file must hold a JSON object")])
    summary = ImportSummary(dry_run=dry_run)
    try:
        with transaction.atomic():
            importer = _Importer(document, acting_user=acting_user or "import", summary=summary, problems=problems,
                                 blocked=blocked)
            try:
                importer.run()
            except (DataError, OverflowError) as error:  # written outside a checked record: still only a problem
                problems.append(ImportProblem((), out_of_range_message(error)))  # (the transaction is rolled back)
            if problems:
                raise ImportRejected(problems)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    finally:
        # A rolled-back file (problems, dry run) may have switched time approval in memory only.
        if getattr(tenant, "pk", None) is not None and hasattr(tenant, "time_approval_required"):
            tenant.refresh_from_db(fields=["time_approval_required"])
    return summary


class _Importer(SettingsSection, CatalogueSection, TechniciansSection, CustomersSection, ContractsSection,
                WorkSection):
    """The whole file: each section's records, in the order they depend on each other."""

    # -- the run --

    def run(self) -> None:
        # Taxes first: categories, customers, contracts and the settings name tax codes. Then the
        # settings, so the file's time entries follow the file's time approval setting.
        self.import_tax_rates()
        self.import_tax_categories()
        self.import_settings()
        self.import_work_types()
        self.import_roles()
        self.import_rate_items()
        self.import_products()
        self.import_exclusion_sets()
        self.import_technicians()
        self.import_customers()
        self.import_contracts()
        self.import_default_hourly_contracts()
        self.import_tickets()
        self.import_time_entries()
        self.import_charges()
        self.import_ticket_statuses()
        self.mark_billed()


def billing_data_import_file(*, path: str | Path, acting_user=None, dry_run: bool = False) -> ImportSummary:
    """Read, check and import a file (see ``billing_data_import``)."""
    document = import_document_load(Path(path).read_bytes())
    return billing_data_import(document=document, acting_user=acting_user, dry_run=dry_run)
