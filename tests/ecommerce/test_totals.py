"""Totals worked by hand the way Xero works them: every line rounded on its own, half away from zero."""

from decimal import Decimal as D

import pytest

from ecommerce import totals


def figures(quantity, unit_amount, *, tax_rate="15", discount_rate="0", kind=totals.EXCLUSIVE):
    return totals.line_figures(
        quantity=D(quantity), unit_amount=D(unit_amount), discount_rate=D(discount_rate), tax_rate=D(tax_rate),
        line_amount_type=kind,
    )


def test_exclusive_tax_is_rounded_per_line_not_on_the_total():
    # given three lines of 7 x 1.4330 = 10.031 -> 10.03, each taxed 15% = 1.5045 -> 1.50
    lines = [figures("7", "1.4330") for _ in range(3)]
    # when the sale is totalled
    result = totals.sale_totals(lines, line_amount_type=totals.EXCLUSIVE)
    # then the tax is 3 x 1.50 = 4.50, where taxing the subtotal once would give 30.09 x 15% = 4.51
    assert [line.line_amount for line in lines] == [D("10.03")] * 3
    assert [line.tax for line in lines] == [D("1.50")] * 3
    assert result == totals.Totals(subtotal=D("30.09"), total_tax=D("4.50"), total=D("34.59"))


def test_per_line_rounding_differs_from_rounding_the_total():
    # given two lines of 1 x 0.10 at 15%: each tax 0.015 -> 0.02; on the sum it would be 0.03
    lines = [figures("1", "0.10"), figures("1", "0.10")]
    result = totals.sale_totals(lines, line_amount_type=totals.EXCLUSIVE)
    # then Xero's way gives 0.04 tax, a cent more than rounding once
    assert result.total_tax == D("0.04")
    assert result.total == D("0.24")


def test_inclusive_tax_is_extracted_per_line():
    # given 3 x 9.99 GST inclusive: 29.97 * 15/115 = 3.90913 -> 3.91
    line = figures("3", "9.99", kind=totals.INCLUSIVE)
    assert line == totals.LineFigures(line_amount=D("29.97"), tax=D("3.91"))
    # and a shipping line of 8.50 inclusive: 8.50 * 15/115 = 1.108695 -> 1.11
    shipping = figures("1", "8.50", kind=totals.INCLUSIVE)
    result = totals.sale_totals([line, shipping], line_amount_type=totals.INCLUSIVE)
    # then the total is what the customer paid, and subtotal + tax adds up to it
    assert result == totals.Totals(subtotal=D("33.45"), total_tax=D("5.02"), total=D("38.47"))


def test_discount_applies_before_rounding_the_line():
    # given 3 x 18.3333 with 12.5% off: 54.9999 * 0.875 = 48.1249125 -> 48.12; tax 7.218 -> 7.22
    line = figures("3", "18.3333", discount_rate="12.5")
    assert line == totals.LineFigures(line_amount=D("48.12"), tax=D("7.22"))


def test_four_decimal_unit_price_rounds_half_away_from_zero():
    # given 1 x 2.0050: the line is 2.005 -> 2.01 (half up, not banker's 2.00); tax 0.3015 -> 0.30
    assert figures("1", "2.0050") == totals.LineFigures(line_amount=D("2.01"), tax=D("0.30"))
    # and inclusive: 2.01 * 15/115 = 0.26217 -> 0.26
    assert figures("1", "2.0050", kind=totals.INCLUSIVE).tax == D("0.26")


def test_no_tax_lines_carry_no_tax_whatever_the_rate():
    line = figures("2", "10.005", kind=totals.NO_TAX)
    assert line == totals.LineFigures(line_amount=D("20.01"), tax=D("0.00"))
    assert totals.sale_totals([line], line_amount_type=totals.NO_TAX).total == D("20.01")


def test_full_discount_and_zero_rate_give_zero():
    assert figures("5", "12.00", discount_rate="100") == totals.LineFigures(D("0.00"), D("0.00"))
    assert figures("5", "12.00", tax_rate="0").tax == D("0.00")


def test_money_stays_decimal_and_an_empty_sale_totals_zero():
    result = totals.sale_totals([], line_amount_type=totals.EXCLUSIVE)
    assert result == totals.Totals(D("0.00"), D("0.00"), D("0.00"))
    assert all(isinstance(value, D) for value in (result.subtotal, result.total_tax, result.total))


def test_unknown_line_amount_type_is_refused():
    with pytest.raises(ValueError, match="unknown line amount type"):
        figures("1", "1", kind="gross")
