"""Time lines added in bulk: a billing run's time entries (up to a million in a month-end
run) become invoice lines, line taxes and invoice totals set-based, in PostgreSQL.

The invoices app owns every invoice line however it is made; this is the path for lines
too many to build one by one. Lines of one contract with the same amount and work-type tax
category have the same tax, so each such group is calculated once with
``invoices.calculation`` (through ``DraftLineFigures``), and one ``INSERT … SELECT`` writes
the lines from the billed rows themselves, their taxes straight from its ``RETURNING``.
With an invoice-level discount or surcharge the invoices are recalculated line by line
instead. Each line is also the record that its time is billed (``line_time_billed_once``).

When an invoice leaves its batch, ``invoice_time_lines_release`` marks its time lines as no
longer billing their time, also in one statement.

Time lines print as ``#ticket title — work type, date, technician`` with the bucket noted
(covered by the contract, deducted from the block, overage), after the invoice's other
lines, in date order.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal

from django.db import connection

from contracts.models import Contract
from invoices.audit import audit_record_many
from invoices.models import Invoice, InvoiceLine
from invoices.services import DraftLineFigures, invoice_recalculate
from msp_billing.templatetags.formatting import day_sql


class TimeLinesMissing(RuntimeError):
    """The statement wrote fewer (or more) time lines than allocations were claimed."""


def invoice_time_lines_bulk_insert(*, invoices_by_contract: Mapping[int, Invoice],
                                   time_groups: Mapping[int, Sequence[tuple[Decimal, int, int]]],
                                   line_counts: Mapping[int, int], contracts: Mapping[int, Contract],
                                   source_table: str, charged_buckets: Sequence[str], acting_user) -> int:
    """Add the time lines of every draft in ``invoices_by_contract`` and their taxes with one
    statement, and bring each invoice's figures up to date; returns the number of lines.

    ``source_table`` is a table of the time allocations to bill (columns ``id``: the
    allocation, ``work_tax_category``: its work type's tax category or NULL); the caller has
    claimed them. ``time_groups`` lists per contract each (amount, tax category or -1, count)
    among them, an amount being the allocation's for a bucket in ``charged_buckets`` and 0
    otherwise. ``line_counts`` is how many lines each invoice has already: the time lines
    follow them. A time line's taxes are resolved like any other line's
    (``contracts.rules.taxes``): the work type's tax category, the contract's override, the
    invoice customer's codes, the tenant's default; exemption and reverse charge last."""
    if not source_table.isidentifier():
        raise ValueError(f"not a table name: {source_table!r}")
    if not time_groups:
        return 0
    draft_lines = DraftLineFigures()
    today = draft_lines.tax_date
    figures_contract, figures_amount, figures_category, figures_taxable, figures_codes, figures_tax = ([] for _ in range(6))
    tax_contract, tax_amount_key, tax_codes_key, tax_rate, tax_code, tax_name, tax_percent, tax_compound, tax_base, tax_value, tax_order = ([] for _ in range(11))
    invoices = {i.pk: i for i in invoices_by_contract.values()}
    sums: dict[int, list] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    untaxed: dict[int, bool] = {}
    taxed_keys: set[tuple] = set()
    for contract_id in sorted(time_groups):
        contract = contracts[contract_id]
        invoice = invoices_by_contract[contract_id]
        customer = invoice.customer
        if invoice.pk not in untaxed:
            untaxed[invoice.pk] = customer.untaxed_on(today)
        for amount, category, count in time_groups[contract_id]:
            is_taxable, codes = draft_lines.codes_for(
                taxable=contract.taxable, category_id=None if category == -1 else category,
                contract_codes=contract.tax_codes, customer_codes=contract.customer.tax_codes or customer.tax_codes)
            line = None if draft_lines.adjusted else draft_lines.line(
                amount, taxable=is_taxable, tax_exempt=untaxed[invoice.pk], currency=invoice.currency, codes=codes)
            codes_json = json.dumps(list(codes))
            figures_contract.append(contract_id)
            figures_amount.append(amount)
            figures_category.append(category)
            figures_taxable.append(is_taxable)
            figures_codes.append(codes_json)
            figures_tax.append(line.tax_amount if line else Decimal(0))
            total = sums[invoice.pk]
            total[0] += amount * count
            total[1] += (line.tax_amount if line else Decimal(0)) * count
            total[2] += count
            # Lines of one contract with the same amount and codes have the same taxes: listed once.
            if (contract_id, amount, codes_json) in taxed_keys:
                continue
            taxed_keys.add((contract_id, amount, codes_json))
            for order, tax in enumerate(line.taxes if line else ()):
                tax_contract.append(contract_id)
                tax_amount_key.append(amount)
                tax_codes_key.append(codes_json)
                tax_rate.append(tax.spec.rate_id)
                tax_code.append(tax.spec.code)
                tax_name.append(tax.spec.name)
                tax_percent.append(tax.spec.percent)
                tax_compound.append(tax.spec.compound)
                tax_base.append(tax.base)
                tax_value.append(tax.amount)
                tax_order.append(order)
    taxes_sql = """
        , taxes AS (
            INSERT INTO invoices_invoicelinetax (line_id, tax_rate_id, code, name, percent, compound, base, amount, sort_order)
            SELECT l.id, x.rate_id, x.code, x.name, x.percent, x.compound, x.base, x.amount, x.sort_order
            FROM lines l
            JOIN unnest(%s::bigint[], %s::numeric[], %s::text[], %s::bigint[], %s::text[], %s::text[], %s::numeric[],
                        %s::boolean[], %s::numeric[], %s::numeric[], %s::int[])
                 AS x(contract_id, key_amount, codes, rate_id, code, name, percent, compound, base, amount, sort_order)
              ON l.contract_id = x.contract_id AND l.fixed_amount = x.key_amount AND l.tax_codes = x.codes::jsonb)
    """ if tax_contract else ""
    contract_ids = sorted(time_groups)
    date_sql, date_params = day_sql("e.date")  # the entry's date as the MSP's locale writes it
    with connection.cursor() as cursor:
        # The new lines feed their taxes straight from RETURNING: no second read of a million
        # fresh rows. Each line is also the record that its time is billed (line_time_billed_once).
        # The figures are a small lookup joined on an expression: PostgreSQL's estimate would
        # sort a million rows to merge them; hashing the small side is several seconds faster.
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(f"""
            WITH lines AS (
            INSERT INTO invoices_invoiceline (
                invoice_id, sort_order, description, quantity, unit_price, fixed_amount, gross_amount, discount_kind,
                discount_value, discount_amount, amount, invoice_discount_share, invoice_surcharge_share, taxable_amount,
                taxable, tax_codes, tax_amount, source_kind, time_allocation_id, contract_id, detail)
            SELECT m.invoice_id,
                   m.first_line + row_number() OVER (PARTITION BY m.invoice_id ORDER BY e.date, e.id, a.id),
                   '#' || e.ticket_id || ' ' || t.title || ' — ' || w.name || ', ' || {date_sql} || ', '
                       || COALESCE(NULLIF(u.full_name, ''), u.email)
                       || CASE a.bucket WHEN 'charged' THEN '' WHEN 'overage' THEN ' (overage)'
                                        WHEN 'deducted' THEN ' (deducted from the block)' ELSE ' (covered by the contract)' END,
                   round(a.billed_minutes / 60.0, 4), COALESCE(a.rate, 0), f.amount, f.amount, '', 0, 0, f.amount, 0, 0,
                   f.amount, f.taxable, f.codes::jsonb, f.tax, %s, a.id, a.contract_id,
                   jsonb_build_object('ticket', e.ticket_id, 'entry', e.id, 'minutes', e.minutes,
                                      'billed_minutes', a.billed_minutes, 'bucket', a.bucket, 'rate_rule', a.rate_explanation)
            FROM {source_table} bt
            JOIN tickets_timeallocation a ON a.id = bt.id
            JOIN tickets_timeentry e ON e.id = a.entry_id
            JOIN tickets_ticket t ON t.id = e.ticket_id
            JOIN contracts_worktype w ON w.id = e.work_type_id
            JOIN accounts_user u ON u.id = e.technician_id
            JOIN unnest(%s::bigint[], %s::bigint[], %s::int[]) AS m(contract_id, invoice_id, first_line) ON m.contract_id = a.contract_id
            JOIN unnest(%s::bigint[], %s::numeric[], %s::bigint[], %s::boolean[], %s::text[], %s::numeric[])
                 AS f(contract_id, amount, category, taxable, codes, tax)
                 ON f.contract_id = a.contract_id AND f.category = COALESCE(bt.work_tax_category, -1)
                AND f.amount = CASE WHEN a.bucket = ANY(%s::text[]) THEN a.amount ELSE 0 END
            RETURNING id, invoice_id, contract_id, fixed_amount, tax_codes, time_allocation_id)
            {taxes_sql}
            SELECT count(*) FROM lines
        """, [
            *date_params, InvoiceLine.SourceKind.TIME.value,
            contract_ids, [invoices_by_contract[c].pk for c in contract_ids], [line_counts[invoices_by_contract[c].pk] for c in contract_ids],
            figures_contract, figures_amount, figures_category, figures_taxable, figures_codes, figures_tax, list(charged_buckets),
            *([tax_contract, tax_amount_key, tax_codes_key, tax_rate, tax_code, tax_name, tax_percent, tax_compound, tax_base,
               tax_value, tax_order] if tax_contract else []),
        ])
        inserted = cursor.fetchone()[0]
        expected = sum(total[2] for total in sums.values())
        if inserted != expected:
            # Every claimed allocation must have its line: a database that drops rows of an
            # INSERT … SELECT (seen on a sharded setup) must stop the run, not bill without them.
            raise TimeLinesMissing(f"{expected} time lines were to be written, {inserted} were: the run is rolled back")
        cursor.execute("SET LOCAL enable_mergejoin = on")
        if sums and not draft_lines.adjusted:
            ids = sorted(sums)
            cursor.execute("""
                UPDATE invoices_invoice i SET subtotal = i.subtotal + s.subtotal, tax_total = i.tax_total + s.tax,
                       total = i.total + s.subtotal + s.tax
                FROM unnest(%s::bigint[], %s::numeric[], %s::numeric[]) AS s(id, subtotal, tax) WHERE i.id = s.id
            """, [ids, [sums[i][0] for i in ids], [sums[i][1] for i in ids]])
    if draft_lines.adjusted:  # an invoice discount or surcharge is shared over every line: line by line
        for invoice_id in sorted(sums):
            invoice_recalculate(invoice_id=invoice_id, acting_user=acting_user)
    else:
        audit_record_many(actor=acting_user, action="invoice_time_lines_added", records=[
            (invoices[i], None, {"time_lines": sums[i][2], "subtotal": invoices[i].subtotal + sums[i][0],
                                 "tax_total": invoices[i].tax_total + sums[i][1],
                                 "total": invoices[i].total + sums[i][0] + sums[i][1]}) for i in sorted(sums)])
    return inserted


def invoice_time_lines_release(*, invoice_ids: Sequence[int], at) -> int:
    """Mark the time lines of ``invoice_ids`` as no longer billing their time (their invoice
    leaves its billing batch), in one statement; returns how many. The lines stay on the
    invoice as printed, and the time can be billed again on another line."""
    return InvoiceLine.objects.filter(invoice_id__in=invoice_ids, time_allocation__isnull=False,
                                      source_released_at__isnull=True).update(source_released_at=at)
