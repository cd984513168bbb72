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
from django_tenants.utils import tenant_context

from billing import services
from billing.management.commands._tenant import acting_user_from_option, msp_from_option
from billing.models import BillingBatch
from invoices.services import invoice_preview_totals


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


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
        with tenant_context(msp):
            user = acting_user_from_option(options.get("user"))
            selection = services.selection_everything_due(cutoff=cutoff)
            plans = services.batch_plan(cutoff=cutoff, selection=selection, consolidated=options["consolidate"])
            report = self._report(msp, cutoff, plans, options)
            if not options["dry_run"] and plans:
                name = options.get("name") or f"Billing to {cutoff:%d %b %Y}"
                try:
                    batch = services.batch_run(name=name, cutoff=cutoff, selection=selection, consolidated=options["consolidate"],
                                               acting_user=user, origin=BillingBatch.Origin.COMMAND)
                except ValidationError as error:
                    raise CommandError(" ".join(error.messages)) from None
                report["batch"] = {"id": batch.pk, "name": batch.name,
                                   "invoices": list(services.batch_invoices(batch).values_list("pk", flat=True))}
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self._print(report)

    def _report(self, msp, cutoff, plans, options) -> dict:
        invoices, grand = [], {}
        for plan in plans:
            result = invoice_preview_totals(customer=plan.customer, lines=plan.lines)
            currency = plan.customer.currency
            totals = grand.setdefault(currency, {"subtotal": Decimal(0), "tax": Decimal(0), "total": Decimal(0)})
            totals["subtotal"] += result.total - result.tax_total
            totals["tax"] += result.tax_total
            totals["total"] += result.total
            invoices.append({
                "customer": str(plan.customer), "currency": currency,
                "contracts": [{"id": c.pk, "name": c.name, "type": c.get_type_display()} for c in plan.contracts],
                "items": {"periods": len(plan.period_ids), "time_entries": len(plan.entry_ids), "charges": len(plan.charge_ids)},
                "lines": [{"description": line.description, "amount": _money(r.amount), "tax": _money(r.tax_amount)}
                          for line, r in zip(plan.lines, result.lines)],
                "subtotal": _money(result.total - result.tax_total), "tax": _money(result.tax_total), "total": _money(result.total),
            })
        return {
            "tenant": msp.subdomain, "cutoff": cutoff.isoformat(), "consolidated": options["consolidate"], "dry_run": options["dry_run"],
            "invoices": invoices,
            "totals": {currency: {key: _money(value) for key, value in figures.items()} for currency, figures in grand.items()},
        }

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
