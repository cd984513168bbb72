"""`manage.py billing_run --tenant T --cutoff YYYY-MM-DD [--consolidate] [--dry-run] [--json]`.

Bills everything due by the cut-off through the same services as the wizard, and prints
the batch: contracts, items, per-invoice and grand totals. With --dry-run nothing is saved.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django_tenants.utils import tenant_context

from billing import services
from billing.management.commands._tenant import acting_user_from_option, msp_from_option
from billing.models import BillingBatch
from msp_billing.templatetags.formatting import day as format_day


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class _DryRun(Exception):
    """Raised inside the run's transaction to roll a dry run back."""


class Command(BaseCommand):
    help = "Bill everything due by a cut-off date for one MSP (or preview it with --dry-run)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="The MSP's sub-domain or schema name.")
        parser.add_argument("--cutoff", required=True, help="YYYY-MM-DD: bill what is due on or before this date.")
        parser.add_argument("--consolidate", action="store_true", help="One invoice per customer instead of per contract.")
        parser.add_argument("--dry-run", action="store_true", help="Show the batch without saving anything.")
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")
        parser.add_argument("--name", help="Batch name (default: Billing to <cutoff>).")
        parser.add_argument("--user", help="E-mail of the user the batch is recorded against.")

    def handle(self, *args, **options):
        try:
            cutoff = dt.date.fromisoformat(options["cutoff"])
        except ValueError:
            raise CommandError(f"--cutoff must be a date as YYYY-MM-DD, not “{options['cutoff']}”.") from None
        msp = msp_from_option(options["tenant"])
        report = {"tenant": msp.subdomain, "cutoff": cutoff.isoformat(), "consolidated": options["consolidate"],
                  "dry_run": options["dry_run"], "invoices": [], "totals": {}}
        with tenant_context(msp):
            user = acting_user_from_option(options.get("user"))
            selection = services.selection_everything_due(cutoff=cutoff)
            name = options.get("name") or f"Billing to {format_day(cutoff)}"
            try:
                # A dry run is the real run, rolled back: it prints exactly what the run would bill.
                with transaction.atomic():
                    batch = services.batch_run(name=name, cutoff=cutoff, selection=selection, consolidated=options["consolidate"],
                                               acting_user=user, origin=BillingBatch.Origin.COMMAND)
                    report.update(self._report(batch, dry_run=options["dry_run"]))
                    if options["dry_run"]:
                        raise _DryRun
            except _DryRun:
                pass
            except ValidationError as error:
                if "select at least one contract" not in " ".join(error.messages):
                    raise CommandError(" ".join(error.messages)) from None
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._print(report)

    def _report(self, batch, *, dry_run: bool) -> dict:
        invoices, grand = [], {}
        for invoice in services.batch_invoices(batch).prefetch_related("lines__contract"):
            currency = invoice.currency
            totals = grand.setdefault(currency, {"subtotal": Decimal(0), "tax": Decimal(0), "total": Decimal(0)})
            totals["subtotal"] += invoice.total - invoice.tax_total
            totals["tax"] += invoice.tax_total
            totals["total"] += invoice.total
            lines = list(invoice.lines.all())
            contracts = {line.contract.pk: line.contract for line in lines if line.contract_id}
            kinds = [line.source_kind for line in lines]
            invoices.append({
                "customer": str(invoice.customer), "currency": currency,
                "contracts": [{"id": c.pk, "name": c.name, "type": c.get_type_display()} for c in contracts.values()],
                "items": {"period_lines": sum(k in ("period", "block", "milestone") for k in kinds),
                          "time_entries": len({line.detail.get("entry") for line in lines if line.time_allocation_id}),
                          "charges": kinds.count("charge")},
                "lines": [{"description": line.description, "amount": _money(line.amount), "tax": _money(line.tax_amount)}
                          for line in lines],
                "subtotal": _money(invoice.total - invoice.tax_total), "tax": _money(invoice.tax_total), "total": _money(invoice.total),
            })
        report = {"invoices": invoices,
                  "totals": {currency: {key: _money(value) for key, value in figures.items()} for currency, figures in grand.items()}}
        if not dry_run:
            report["batch"] = {"id": batch.pk, "name": batch.name,
                               "invoices": list(services.batch_invoices(batch).values_list("pk", flat=True))}
        return report

    def _print(self, report: dict) -> None:
        mode = "dry run, nothing saved" if report["dry_run"] else "billed"
        self.stdout.write(f"{report['tenant']}: {len(report['invoices'])} invoice(s) to {report['cutoff']} ({mode})")
        for invoice in report["invoices"]:
            names = ", ".join(c["name"] for c in invoice["contracts"])
            self.stdout.write(f"  {invoice['customer']} — {names}: {invoice['total']} {invoice['currency']} (tax {invoice['tax']})")
        for currency, figures in report["totals"].items():
            self.stdout.write(f"Total {currency}: {figures['total']} (subtotal {figures['subtotal']}, tax {figures['tax']})")
        if "batch" in report:
            self.stdout.write(f"Batch {report['batch']['name']} (id {report['batch']['id']}) saved with draft invoices.")
