"""Which taxes a line charges: the resolution order (docs/invoices.md "Which taxes a line charges").

Plain Python, no database. For one invoice line:

1. **Not taxable** — the contract is not taxable, the product is not taxable, or the
   item's tax category says "not taxed" (labour in many US states): no tax.
2. **Jurisdiction** — the contract's own tax codes when it has an override, else the
   customer's tax codes (their jurisdiction: TX, or GST + PST), else the tenant's default
   tax codes. The customer is the contract's own: a site billed on its parent's
   consolidated invoice keeps its own codes (and takes its parent's when it has none), so
   consolidating never changes a line's taxes.
3. **Item category** — a category that names tax codes keeps only those of the
   jurisdiction's codes (goods zero-rated for the provincial tax keep GST only); a
   category without codes takes the jurisdiction's codes as they are.
4. **Customer last** — a reverse-charge customer, or one with an exemption in effect on
   the tax date (no expiry, or expiring on or after that date), is charged no tax at all.
   An expired certificate no longer exempts.

Steps 1–3 give the line's tax codes (stored on the line); step 4 is applied when the
invoice is calculated — on the draft with the customer as they are now, frozen on issue —
so a certificate that expires between the draft and the issue date does not slip through.
Compound taxes keep their meaning: the calculation charges simple taxes first, then
compound ones on the amount plus the taxes before them.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

REVERSE_CHARGE_NOTE = ("Reverse charge: VAT to be accounted for by the recipient, "
                       "Art. 196 Council Directive 2006/112/EC.")


def parse_codes(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Tax codes from "GST, pst" or a list: upper case, stripped, without repeats, in order."""
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    seen: list[str] = []
    for part in parts:
        code = str(part).strip().upper()
        if code and code not in seen:
            seen.append(code)
    return tuple(seen)


@dataclass(frozen=True)
class CategoryTerms:
    """A tax category as the rule needs it: taxed or not, and the codes it is limited to."""

    taxable: bool = True
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerTaxTerms:
    codes: tuple[str, ...] = ()
    exempt: bool = False
    exemption_expires: dt.date | None = None
    reverse_charge: bool = False


def exemption_in_effect(*, exempt: bool, expires: dt.date | None, on: dt.date) -> bool:
    """An exemption counts up to and including its expiry date."""
    return bool(exempt) and (expires is None or on <= expires)


def customer_untaxed(terms: CustomerTaxTerms, *, on: dt.date) -> bool:
    """Step 4: the customer is charged no tax on ``on`` (reverse charge or a valid exemption)."""
    return terms.reverse_charge or exemption_in_effect(exempt=terms.exempt, expires=terms.exemption_expires, on=on)


def line_taxable(*, taxable: bool, category: CategoryTerms | None) -> bool:
    """Step 1."""
    return bool(taxable) and (category is None or category.taxable)


def line_tax_codes(*, taxable: bool, category: CategoryTerms | None, contract_codes: Iterable[str] = (),
                   customer_codes: Iterable[str] = (), default_codes: Iterable[str] = ()) -> tuple[str, ...]:
    """Steps 1–3: the codes a line charges before the customer's exemption or reverse charge."""
    if not line_taxable(taxable=taxable, category=category):
        return ()
    codes = parse_codes(contract_codes) or parse_codes(customer_codes) or parse_codes(default_codes)
    if category is not None and category.codes:
        allowed = set(parse_codes(category.codes))
        codes = tuple(code for code in codes if code in allowed)
    return codes
