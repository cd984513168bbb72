"""Which taxes a line charges: the resolution order, and the arithmetic it feeds."""
import datetime as dt
from decimal import Decimal

from contracts.rules.taxes import (
    CategoryTerms,
    CustomerTaxTerms,
    customer_untaxed,
    exemption_in_effect,
    line_tax_codes,
    parse_codes,
)
from invoices.calculation import LineFigures, TaxSpec, calculate_invoice

LABOUR = CategoryTerms(taxable=False)
PARTS = CategoryTerms(taxable=True)
GST_ONLY = CategoryTerms(taxable=True, codes=("GST",))


def test_codes_are_read_like_people_type_them():
    assert parse_codes(" gst, PST ,gst,,") == ("GST", "PST")
    assert parse_codes(["qst", "Gst"]) == ("QST", "GST")
    assert parse_codes("") == ()


def test_customer_codes_beat_the_tenant_default_and_the_contract_override_beats_both():
    assert line_tax_codes(taxable=True, category=None, default_codes=("VAT20",)) == ("VAT20",)
    assert line_tax_codes(taxable=True, category=None, customer_codes=("TX",), default_codes=("VAT20",)) == ("TX",)
    assert line_tax_codes(taxable=True, category=None, contract_codes=("WA",), customer_codes=("TX",),
                          default_codes=("VAT20",)) == ("WA",)


def test_an_untaxed_category_or_line_charges_nothing_whatever_the_jurisdiction():
    assert line_tax_codes(taxable=True, category=LABOUR, customer_codes=("TX",)) == ()
    assert line_tax_codes(taxable=False, category=PARTS, customer_codes=("TX",)) == ()
    assert line_tax_codes(taxable=True, category=PARTS, customer_codes=("TX",)) == ("TX",)


def test_a_category_with_codes_keeps_only_those_of_the_jurisdiction():
    assert line_tax_codes(taxable=True, category=GST_ONLY, customer_codes=("GST", "PST")) == ("GST",)
    assert line_tax_codes(taxable=True, category=GST_ONLY, customer_codes=("TX",)) == ()


def test_an_exemption_counts_up_to_its_expiry_date_and_reverse_charge_always():
    expires = dt.date(2026, 6, 30)
    assert exemption_in_effect(exempt=True, expires=None, on=dt.date(2030, 1, 1))
    assert exemption_in_effect(exempt=True, expires=expires, on=expires)
    assert not exemption_in_effect(exempt=True, expires=expires, on=dt.date(2026, 7, 1))
    assert not exemption_in_effect(exempt=False, expires=None, on=expires)
    assert customer_untaxed(CustomerTaxTerms(reverse_charge=True), on=expires)
    assert not customer_untaxed(CustomerTaxTerms(exempt=True, exemption_expires=expires), on=dt.date(2026, 7, 1))


def _taxes(amount: str, specs, *, untaxed=False):
    line = LineFigures(quantity=Decimal(1), unit_price=Decimal(0), fixed_amount=Decimal(amount), taxes=tuple(specs))
    result = calculate_invoice(lines=[line], currency="CAD", tax_exempt=untaxed)
    return {tax.spec.code: tax.amount for tax in result.lines[0].taxes}, result.total


def test_resolved_canadian_taxes_keep_their_compound_terms():
    gst = TaxSpec(rate_id=1, code="GST", name="GST", percent=Decimal("5"))
    pst = TaxSpec(rate_id=2, code="PST", name="PST", percent=Decimal("7"))
    qst = TaxSpec(rate_id=3, code="QST", name="QST", percent=Decimal("9.975"), compound=True)
    specs = {"GST": gst, "PST": pst, "QST": qst}
    bc = line_tax_codes(taxable=True, category=None, customer_codes=("GST", "PST"))
    # 1,000.00: GST 5 % = 50.00, PST 7 % = 70.00, both on the amount.
    assert _taxes("1000.00", [specs[c] for c in bc]) == ({"GST": Decimal("50.00"), "PST": Decimal("70.00")}, Decimal("1120.00"))
    quebec = line_tax_codes(taxable=True, category=None, customer_codes=("QST", "GST"))
    # QST compound on 1,050.00: 104.7375 → 104.74, whatever the order the codes were given in.
    assert _taxes("1000.00", [specs[c] for c in quebec]) == ({"GST": Decimal("50.00"), "QST": Decimal("104.74")},
                                                              Decimal("1154.74"))
